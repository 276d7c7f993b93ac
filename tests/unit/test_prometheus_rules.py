"""examples/prometheus: promtool accepts the scrape config and the rules, the rules' own
tests pass (each alert firing and not), and every ryu_probe_* name and label the rules
use is one the app exports."""
import json
import os
import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import SETTINGS
from ryu_apps import metrics
from ryu_apps.monitors import Monitors
from ryu_apps.probes import Prober
from ryu_apps.rest import parse_monitor

EXAMPLES = os.path.join(os.path.dirname(__file__), '..', '..', 'examples', 'prometheus')
PROMTOOL = shutil.which('promtool')
RULES = os.path.join(EXAMPLES, 'rules.yml')


@pytest.fixture
def promtool():
    if PROMTOOL is None:
        # Outside CI a machine without Prometheus skips; in CI that must fail.
        if os.environ.get('CI'):
            pytest.fail('promtool not found (make setup installs Debian\'s prometheus)')
        pytest.skip('promtool not found (make setup installs Debian\'s prometheus)')

    def run(*args: str) -> str:
        done = subprocess.run([PROMTOOL, *args], cwd=EXAMPLES, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr
    return run


def test_promtool_accepts_the_scrape_config_and_its_rule_file(promtool):
    assert '1 rule files found' in promtool('check', 'config', 'prometheus.yml')


def test_promtool_accepts_the_four_alert_rules(promtool):
    assert '4 rules found' in promtool('check', 'rules', 'rules.yml')


def test_every_alert_fires_and_resolves_as_its_promtool_tests_say(promtool):
    assert 'SUCCESS' in promtool('test', 'rules', 'rules_test.yml')
    with open(os.path.join(EXAMPLES, 'rules_test.yml')) as f:
        tested = set(re.findall(r'alertname: (\w+)', f.read()))
    with open(RULES) as f:
        alerts = set(re.findall(r'- alert: (\w+)', f.read()))
    assert tested == alerts == {'RyuProbePairUnreachable', 'RyuProbePairLoss',
                                'RyuProbeSwitchDown', 'RyuProbeAppDown'}


def exported() -> dict[str, set[str]]:
    """Sample name -> its label names, as GET /metrics serves them for one monitor."""
    prober = Prober(SETTINGS)
    monitors = Monitors(prober)
    endpoints = [{'dpid': 1, 'in_port': n, 'mac': '02:00:00:00:00:%02x' % n,
                  'ip': '10.0.0.%d' % n, 'name': 'vm%d' % n} for n in (1, 2)]
    monitors.add(parse_monitor({'name': 'm', 'interval': 10, 'mesh': endpoints}, SETTINGS,
                               None), now=0.0)
    monitors.get('m').pairs[0].success = 1     # shown once a round has ended
    text = metrics.exposition(prober, monitors).decode()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_the_rules_use_only_metric_names_and_labels_the_app_exports():
    with open(RULES) as f:
        rules = f.read()
    names = exported()
    used = set(re.findall(r'\bryu_probe_\w+', rules))
    assert used and used <= set(names), used - set(names)
    pair = names['ryu_probe_consecutive_failures']
    assert {'monitor', 'src', 'dst'} <= pair
    assert names['ryu_probe_success'] == names['ryu_probe_echoes_sent_total'] == pair
    assert names['ryu_probe_switch_up'] == {'dpid'}
    # labels the annotations name: the pair's, the switch's and Prometheus' own
    templated = set(re.findall(r'\$labels\.(\w+)', rules))
    assert templated <= pair | names['ryu_probe_switch_up'] | {'instance', 'job'}, templated


def test_the_test_prometheus_config_and_its_shortened_rules_pass_promtool(promtool, tmp_path):
    from topologies.prometheus import Prometheus, rewrite_for
    prometheus = Prometheus(['127.0.0.1:1', ('127.0.0.1:2', {'shard': 'b'})], rule_for='3s')
    try:
        config = prometheus.config()
    finally:
        prometheus.close()
    with open(RULES) as f:
        rules = rewrite_for(f.read(), '3s')
    assert re.findall(r'for: (\S+)', rules) == ['3s', '3s']
    (tmp_path / 'rules.yml').write_text(rules)
    (tmp_path / 'prometheus.yml').write_text(json.dumps(config))
    assert '4 rules found' in promtool('check', 'config', str(tmp_path / 'prometheus.yml'))
