"""schemathesis, a client nobody here wrote, against the app on the `flat` lab: it reads
GET /probe/openapi.json and sends each operation requests it generates from the document,
valid and not. No answer may be a 5xx, break the document's schemas or its status codes,
or take longer than REQUEST_TIMEOUT.

Requests built from the document alone name no switch that is there, and are all 404s.
So the lab's dpid, MACs and IPs are given to schemathesis as dictionaries it draws a
field's value from most of the time (schemathesis.toml): then probes and monitors start
and end on real OVS, and their answers are checked too. The port is always one of the
lab's, by number or name, so sources and ports mix: two probes that claim one source
from two ports of a bridge whose one NORMAL flow delivers to both once laid identical
catch flows that replaced each other without end (a FlowMod storm, and neither probe
ended), a bug of bridge.py's that schemathesis found; the second now ends in error.

POST /probe/switches is left out: it makes the app dial whatever address it is given,
and redial it forever. tests/unit/test_properties.py sends it any JSON instead.

On failure, tmp_path keeps schemathesis.toml, a HAR of every request and the app's log.
"""
import json
import os
import sys
import subprocess
import time

import pytest

from test_topologies import bring_up
from ryu_apps.rest import UI_DIR
from topologies.controller import ProbeController
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
ST = os.path.join(os.path.dirname(sys.executable), 'st')
CHECKS = 'not_a_server_error,response_schema_conformance,status_code_conformance'
EXAMPLES = 100                  # per operation and phase
SEED = os.environ.get('ST_SEED', '1')     # another seed explores other requests
REQUEST_TIMEOUT = 30            # s: any request here answers well within it
# Small limits, which the document carries, so that a request that waits for its probes
# ("wait": true) answers in seconds: a probe lasts at most (count - 1) * interval +
# timeout twice (its second round), then its trace, about a timeout, waits for those
# of the others running (traces run one at a time): 8 of them make some 15 s at most.
CONFIG = '[probe]\nmax_count = 3\nmax_timeout = 1.0\nmax_active_probes = 8\n'
# (dictionary, the body fields it fills): a probe's, a batch's probes', a monitor's pairs'
FIELDS = {'dpids': ['dpid'], 'ports': ['in_port'], 'macs': ['src_mac', 'dst_mac', 'mac'],
          'ips': ['src_ip', 'dst_ip', 'gateway', 'ip']}
WHERE = ['body.%s', 'body.probes[*].%s', 'body.mesh[*].%s']


def config(network) -> str:
    """schemathesis.toml: the lab's addresses, drawn for their fields 4 times in 5 (a
    port of the lab's always), the status page's files, and monitor intervals longer
    than a round."""
    vms = network.vms()
    values = {'dpids': ['%016x' % vm.dpid for vm in vms.values()],
              'ports': [p for vm in vms.values() for p in (vm.port_no, vm.port_name)],
              'macs': [vm.mac for vm in vms.values()],
              'ips': [ip for vm in vms.values() for ip in (vm.ip, vm.ip6) if ip],
              'files': os.listdir(UI_DIR), 'intervals': [5, 30]}
    bind = lambda key, name, chance=0.8: '"%s" = { dictionary = "%s", probability = %g }' % (
        key, name, chance)
    addresses = [bind(where % field, name, 1 if name == 'ports' else 0.8)
                 for name, fields in FIELDS.items() for field in fields for where in WHERE]
    lines = ['[dictionaries]'] + ['%s = { values = %s }' % (name, json.dumps(sorted(
        set(v), key=str))) for name, v in values.items()]
    lines += ['[parameters]', *addresses, bind('path.file', 'files', 0.5)]
    lines += ['[[operations]]', 'include-path-regex = "^/probe/monitors"',
              '[operations.parameters]', *addresses, bind('body.interval', 'intervals')]
    return '\n'.join(lines) + '\n'


@pytest.fixture
def app():
    app = ProbeController(config=CONFIG)
    app.start()
    yield app
    app.close()


def test_schemathesis_finds_no_server_error_no_schema_break_and_no_hang(request, app,
                                                                         tmp_path):
    network = bring_up(request, app, 'flat', prefix='a')
    (tmp_path / 'schemathesis.toml').write_text(config(network))
    started = time.monotonic()
    run = subprocess.run(
        [ST, 'run', app.url + '/probe/openapi.json', '--checks', CHECKS,
         '--max-examples', str(EXAMPLES), '--request-timeout', str(REQUEST_TIMEOUT),
         '--exclude-name', 'POST /probe/switches', '--seed', SEED, '--no-color',
         '--report', 'junit,har', '--report-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    print(run.stdout[-4000:])
    print('schemathesis took %.1f s' % (time.monotonic() - started))
    (tmp_path / 'ryu-manager.log').write_text(app.log())
    assert run.returncode == 0, '%s%s\nthe app\'s log: %s' % (
        run.stdout[-20000:], run.stderr[-4000:], tmp_path / 'ryu-manager.log')
    assert app.get('/probe/switches'), 'the app lost its switch'
    assert 'Traceback' not in app.log(), app.log()[-20000:]    # nothing failed unanswered
