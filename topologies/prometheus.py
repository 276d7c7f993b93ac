"""Debian's `prometheus` as a private process: its own config, rules, data and port.

The rules are a copy of examples/prometheus/rules.yml whose `for:` durations are
rewritten (tests cannot wait a minute for a switch alert); scrapes and rule evaluation
run every second.
"""
import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from typing import Sequence

from topologies.controller import ROOT, free_port
from topologies.process import Daemon

PROMETHEUS = shutil.which('prometheus') or '/usr/bin/prometheus'
RULES = os.path.join(ROOT, 'examples', 'prometheus', 'rules.yml')
FOR = re.compile(r'^(\s*for:\s*)\S+', re.MULTILINE)
Target = str | tuple[str, dict]


def rewrite_for(rules: str, duration: str) -> str:
    """The rules with every `for:` set to `duration`."""
    return FOR.sub(lambda m: m.group(1) + duration, rules)


class Prometheus(Daemon):
    """`prometheus` on 127.0.0.1:<free port>, scraping `targets` every `interval`.

    Each target is "HOST:PORT", or ("HOST:PORT", {label: value}) for labels such as
    `shard`; all of them belong to one job. `rule_for` replaces every `for:` of `rules`."""
    name = 'prometheus'

    def __init__(self, targets: Sequence[Target], job: str = 'ryu-probe',
                 metrics_path: str = '/metrics', interval: str = '1s',
                 rules: str = RULES, rule_for: str = '2s', port: int | None = None):
        super().__init__('ryu-probe-prometheus.', 'prometheus.log')
        self.scrape_targets, self.job, self.metrics_path = list(targets), job, metrics_path
        self.interval, self.rules, self.rule_for = interval, rules, rule_for
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.port

    def config(self) -> dict:
        static = []
        for target in self.scrape_targets:
            address, labels = (target, {}) if isinstance(target, str) else target
            static.append({'targets': [address], 'labels': dict(labels)})
        return {'global': {'scrape_interval': self.interval, 'scrape_timeout': self.interval,
                           'evaluation_interval': self.interval},
                'rule_files': ['rules.yml'],
                'scrape_configs': [{'job_name': self.job, 'metrics_path': self.metrics_path,
                                    'static_configs': static}]}

    def start(self, timeout: float = 30.0) -> 'Prometheus':
        with open(self.rules) as f:
            rules = rewrite_for(f.read(), self.rule_for)
        with open(os.path.join(self.dir, 'rules.yml'), 'w') as f:
            f.write(rules)
        config = os.path.join(self.dir, 'prometheus.yml')
        with open(config, 'w') as f:
            json.dump(self.config(), f, indent=1)     # JSON is YAML
        self._spawn([PROMETHEUS, '--config.file=' + config,
                     '--storage.tsdb.path=' + os.path.join(self.dir, 'data'),
                     '--web.listen-address=127.0.0.1:%d' % self.port], timeout, cwd=self.dir)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + '/-/ready', timeout=2) as res:
                return res.status == 200
        except OSError:
            return False

    # --- HTTP API -----------------------------------------------------------------

    def api(self, path: str, **params) -> object:
        """The `data` of GET /api/v1/<path>; RuntimeError unless its status is success."""
        url = '%s/api/v1/%s' % (self.url, path)
        if params:
            url += '?' + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as res:
                body = json.loads(res.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b'null') or {}
        if body.get('status') != 'success':
            raise RuntimeError('GET %s: %s' % (url, body))
        return body['data']

    def query(self, expr: str) -> list[dict]:
        """An instant query's result: [{"metric": {labels}, "value": [time, "value"]}]."""
        return self.api('query', query=expr)['result']

    def alerts(self) -> list[dict]:
        """Pending and firing alerts: [{"labels", "annotations", "state", "value", ...}]."""
        return self.api('alerts')['alerts']

    def targets(self) -> list[dict]:
        """The active targets: [{"labels", "scrapeUrl", "health", "lastError", ...}]."""
        return self.api('targets')['activeTargets']
