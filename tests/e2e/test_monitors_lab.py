"""Monitors on real OVS: every pair's verdict is the tenant's own ping's, a fault shows up
and goes away, the monitors survive a killed app, and a switch that goes away is reported
and probed again when it is back."""
import re
import time
import urllib.request

import pytest

from test_topologies import OURS, bring_up
from topologies.controller import ProbeController
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')


def mesh(network, names) -> list[dict]:
    vms = network.vms()
    return [{'dpid': '%016x' % vms[n].dpid, 'in_port': vms[n].port_no, 'mac': vms[n].mac,
             'ip': vms[n].ip, 'name': n} for n in names]


def ping(network, src: str, dst: str) -> str:
    """The tenant's own ping: reachable, partial or unreachable."""
    return network.ping(src, network.vms()[dst].ip)


def wait_pairs(app, name: str, done, timeout: float = 60.0) -> dict:
    """GET the monitor until done(pairs by (src, dst)) holds; the pairs."""
    deadline = time.monotonic() + timeout
    while True:
        pairs = {(p['src'], p['dst']): p for p in app.get('/probe/monitors/' + name)['pairs']}
        if done(pairs):
            return pairs
        if time.monotonic() > deadline:
            raise AssertionError('monitor %s never got there: %s' % (name, pairs))
        time.sleep(0.2)


def rounds_after(pairs: dict, at: float) -> bool:
    """Every pair has a round that ended after `at` (Unix time)."""
    return all(p['last_at'] and p['last_at'] > at for p in pairs.values())


def our_flows(network, host: str, bridge: str) -> list[str]:
    return [f for f in network.ovs(host).dump_flows(bridge) if OURS.search(f)]


def metrics(app) -> str:
    with urllib.request.urlopen(app.url + '/metrics', timeout=10) as res:
        return res.read().decode()


@pytest.fixture
def app(tmp_path):
    app = ProbeController(config='[probe]\nmonitors_file = %s\n' % (tmp_path / 'monitors.json'))
    app.start()
    yield app
    app.close()


def test_every_pair_gets_the_tenants_verdict_and_a_fault_comes_and_goes(request, app):
    network = bring_up(request, app, 'vlan', prefix='m')
    names = ['vm1', 'vm2', 'vm3']
    status, body = app.request('POST', '/probe/monitors', {
        'name': 'vlan', 'interval': 3, 'count': 2, 'mesh': mesh(network, names)})
    assert status == 201, body
    start = time.time()
    pairs = wait_pairs(app, 'vlan', lambda pairs: rounds_after(pairs, start))
    truth = {pair: ping(network, *pair) for pair in pairs}
    assert {pair: p['verdict'] for pair, p in pairs.items()} == truth
    assert truth[('vm1', 'vm3')] == 'reachable' and truth[('vm1', 'vm2')] == 'unreachable'
    # a one-off probe gets through while the monitor runs
    result = app.probe(**network.body(network.topology.probes[0], count=2, interval=0.1))
    assert result['verdict'] == 'reachable'

    network.run('vm3', ['ip', 'link', 'set', 'eth0', 'down'])
    try:
        pairs = wait_pairs(app, 'vlan', lambda p: p[('vm1', 'vm3')]['verdict'] == 'unreachable')
        assert ping(network, 'vm1', 'vm3') == 'unreachable'
        failure = pairs[('vm1', 'vm3')]['last_failure']
        assert failure['broken_at']['reason'] == 'no-answer', failure
        assert app.get('/probe/probes/' + failure['probe_id'])['verdict'] == 'unreachable'
        assert pairs[('vm1', 'vm2')]['verdict'] == 'unreachable'
        assert re.search(r'ryu_probe_success\{dst="vm3",kind="icmp",monitor="vlan",src="vm1"\} 0.0',
                         metrics(app))
    finally:
        network.run('vm3', ['ip', 'link', 'set', 'eth0', 'up'])
    pairs = wait_pairs(app, 'vlan', lambda p: p[('vm1', 'vm3')]['verdict'] == 'reachable')
    assert ping(network, 'vm1', 'vm3') == 'reachable'
    changed = pairs[('vm1', 'vm3')]['changed_at']
    assert changed > failure['at']
    history = [h['verdict'] for h in pairs[('vm1', 'vm3')]['history']]
    assert history[0] == 'reachable' and 'unreachable' in history and history[-1] == 'reachable'

    assert app.request('DELETE', '/probe/monitors/vlan')[0] == 200
    deadline = time.monotonic() + 10     # the deletes are on their way to the switch
    while any(our_flows(network, 'hv1', b) for b in ('br-in', 'br1-in')):
        assert time.monotonic() < deadline, 'our flows stayed after the monitor went'
        time.sleep(0.1)
    assert 'monitor="vlan"' not in metrics(app)


def test_monitors_come_back_after_the_app_is_killed_and_its_flows_are_swept(request, app):
    network = bring_up(request, app, 'flat', prefix='m')
    body = {'name': 'flat', 'interval': 2, 'count': 2, 'mesh': mesh(network, ['vm1', 'vm2'])}
    assert app.request('POST', '/probe/monitors', body)[0] == 201
    wait_pairs(app, 'flat', lambda p: all(x['verdict'] == 'reachable' for x in p.values()))
    before = set(our_flows(network, 'hv1', 'br0'))
    assert before
    app.kill()
    again = ProbeController(config=app.config, of_port=app.of_port, rest_port=app.rest_port)
    request.addfinalizer(again.close)
    again.start()
    again.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=30)
    monitor = again.get('/probe/monitors/flat')
    assert {k: monitor[k] for k in body if k != 'mesh'} == {k: body[k] for k in body
                                                             if k != 'mesh'}
    start = time.time()
    pairs = wait_pairs(again, 'flat', lambda p: rounds_after(p, start))
    assert all(p['verdict'] == 'reachable' for p in pairs.values())
    assert ping(network, 'vm1', 'vm2') == 'reachable'
    # the killed app's flows were swept at connect: what is there now is the new one's
    assert not before & set(f.split(' duration')[0] for f in our_flows(network, 'hv1', 'br0'))


def test_a_switch_that_goes_away_is_reported_and_probed_again_when_back(request, app):
    network = bring_up(request, app, 'flat', prefix='m')
    body = {'name': 'flat', 'interval': 2, 'count': 2, 'mesh': mesh(network, ['vm1', 'vm2'])}
    assert app.request('POST', '/probe/monitors', body)[0] == 201
    wait_pairs(app, 'flat', lambda p: all(x['verdict'] == 'reachable' for x in p.values()))
    ovs = network.ovs('hv1')
    target = ovs.vsctl('get-controller', 'br0').strip()
    # Pointed elsewhere, not deleted: a bridge that gets a controller after it had none
    # flushes its flows (README), which would be a real outage.
    ovs.vsctl('set-controller', 'br0', 'tcp:127.0.0.1:9')
    try:
        pairs = wait_pairs(app, 'flat', lambda p: all(
            x['status'] == 'switch-not-connected' for x in p.values()))
        dpid = pairs[('vm1', 'vm2')]['dpid']
        assert 'ryu_probe_switch_up{dpid="%s"} 0.0' % dpid in metrics(app)
    finally:
        ovs.vsctl('set-controller', 'br0', target)
    start = time.time()
    pairs = wait_pairs(app, 'flat', lambda p: rounds_after(p, start) and all(
        x['status'] == 'ok' for x in p.values()))
    assert all(p['verdict'] == 'reachable' for p in pairs.values()), pairs
    assert ping(network, 'vm1', 'vm2') == 'reachable'
    assert 'ryu_probe_switch_up{dpid="%s"} 1.0' % dpid in metrics(app)
