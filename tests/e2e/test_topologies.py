"""Every topology, on real OVS, probed through the app's REST API.

For each topology: every listed probe gets its expected verdict, and the tenant's own
kernel ping between the same VMs agrees with it, pair by pair; meanwhile a tenant pings
a reachable pair with the dye's identifier (0% loss, no DUP, exactly its own replies),
and afterwards every bridge's flow table, ours aside, is back to its baseline; each fault
turns its probe unreachable, and its kernel ping fails too; `down` leaves nothing behind.
"""
import concurrent.futures
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from topologies import engine
from topologies.controller import ProbeController
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
FAULTS = [(name, fault) for name in engine.names() for fault in sorted(engine.load(name).faults)]
# every topology's IPv4 probes, and its IPv6 ones (Probe.family 6) apart
MATRIX = [pytest.param(name, 4, id=name) for name in engine.names()] + [
    pytest.param(name, 6, id=name + '-ipv6')
    for name in engine.names() if any(p.family == 6 for p in engine.load(name).probes)]
PROBE = dict(count=2, interval=0.1, timeout=1.0)
OURS = re.compile(r'cookie=0x72797570[0-9a-f]{4}7270')   # the app's flows, any catch


@pytest.fixture(scope='module')
def app():
    app = ProbeController()
    app.start()
    yield app
    app.close()


def bring_up(request, app, name: str, faults=(), prefix: str = 't') -> engine.Network:
    instance = prefix + name[:11]
    request.addfinalizer(lambda: assert_gone(instance))
    network = engine.up(engine.load(name), controller=app.target, faults=faults,
                        instance=instance)
    request.node.network = network
    for address in network.switch_addresses():   # passive bridges (OVN's br-int): dial them
        assert app.request('POST', '/probe/switches', {'address': address})[0] == 202
    app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=30)
    return network


def assert_gone(instance: str) -> None:
    engine.down(instance)
    namespaces = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True).stdout
    assert not [line for line in namespaces.splitlines() if line.startswith(instance + '-')]
    assert not os.path.exists(os.path.join(engine.RUN_ROOT, instance))


def all_flows(network: engine.Network, ours: bool = False) -> dict:
    """Every bridge's flows; without ours unless asked."""
    return {(host, bridge): [f for f in network.ovs(host).dump_flows(bridge)
                             if ours or not OURS.search(f)]
            for host, bridges in network.state['hosts'].items() for bridge in bridges}


def where_broken(network, result) -> tuple | None:
    """(direction, HOST/BRIDGE, table, reason) of a result's broken_at."""
    broken = result['broken_at']
    if broken is None:
        return None
    bridges = {'%016x' % dpid: '%s/%s' % (host, bridge)
               for host, bridge, dpid in network.probed_bridges()}
    return broken['direction'], bridges.get(broken['dpid']), broken['table'], broken['reason']


def expected_broken(probe) -> tuple | None:
    b = probe.broken
    return b and (b.direction, b.bridge, b.table, b.reason)


def wrong_broken(network, probe, result) -> tuple | None:
    """What is wrong with a result's broken_at, or None."""
    got, want = where_broken(network, result), expected_broken(probe)
    if result['verdict'] == 'reachable':
        return None if got is None and result['path'] else (probe.src, probe.dst, got, 'path',
                                                             result['path'])
    if want is None or got is None or got[0] != want[0] or got[3] != want[3] or (
            want[1] is not None and got[1] != want[1]) or (
            want[2] is not None and got[2] != want[2]):
        return probe.src, probe.dst, 'got', got, 'want', want, result['broken_at']
    return None


def kernel_ping(network, probe) -> str:
    """What the tenant's own ping from the probe's source to its destination says."""
    dst = network.vms()[probe.dst]
    return network.ping(probe.src, dst.ip6 if probe.family == 6 else dst.ip)


def probe_all(app, network, probes) -> list[tuple]:
    def one(probe):
        result = app.probe(**network.body(probe, **PROBE))
        return (probe.src, probe.dst, probe.expect), result['verdict'], result
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, probes))


@pytest.mark.parametrize('name, family', MATRIX)
def test_topology_probes_get_expected_verdicts_without_harming_tenant_traffic(request, app, name,
                                                                             family):
    network = bring_up(request, app, name)
    topology = network.topology
    probes = [p for p in topology.probes if p.family == family]
    baseline = all_flows(network)
    ping = None
    if topology.tenant_ping:
        src, dst = topology.tenant_ping
        # identifier 111, the dye: it must see its own replies, no probe's
        ping = subprocess.Popen(
            ['ip', 'netns', 'exec', network.netns(src), 'ping', '-n', '-e', '111', '-i', '0.05',
             '-c', '60', network.vms()[dst].ip], stdout=subprocess.PIPE, text=True)
    try:
        results = probe_all(app, network, probes)
        output = ping.communicate(timeout=60)[0] if ping else ''
    finally:
        if ping:
            ping.kill()
    wrong = [(pair, verdict, result['error']) for pair, verdict, result in results
             if verdict != pair[2]]
    assert not wrong
    broken = [wrong_broken(network, probe, result)
              for probe, (_, _, result) in zip(probes, results)]
    assert [b for b in broken if b] == []
    if ping:
        assert '60 packets transmitted, 60 received, 0% packet loss' in output, output
        assert 'DUP!' not in output, output
    assert all_flows(network) == baseline
    truth = [(p.src, p.dst, p.expect, kernel_ping(network, p)) for p in probes if p.ping]
    assert [t for t in truth if t[2] != t[3]] == []


@pytest.mark.parametrize('name, fault', FAULTS)
def test_fault_turns_its_probe_unreachable(request, app, name, fault):
    network = bring_up(request, app, name, faults=(fault,))
    probe = network.topology.faults[fault].probe
    result = app.probe(**network.body(probe, **PROBE))
    assert (result['state'], result['verdict']) == ('done', 'unreachable'), result
    assert wrong_broken(network, probe, result) is None
    if probe.ping:
        assert kernel_ping(network, probe) == 'unreachable'


def test_up_is_idempotent_and_down_leaves_nothing(request, app):
    network = bring_up(request, app, 'flat')
    again = engine.up(engine.load('flat'), controller=app.target, instance=network.instance)
    assert again.state == network.state
    assert network.ovs('hv1').running


def test_a_failing_step_is_named_and_cleaned_up(app):
    topology = dataclasses.replace(engine.load('flat'), setup=[engine.Run('hv1', ['false'])])
    with pytest.raises(engine.TopologyError, match='step "setup in hv1: false" failed'):
        engine.up(topology, controller=app.target, instance='tbroken')
    assert_gone('tbroken')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    network = getattr(item, 'network', None)
    if report.when == 'call' and report.failed and network is not None:
        dump = ['--- %s/%s\n%s' % (host, bridge, '\n'.join(flows))
                for (host, bridge), flows in all_flows(network).items()]
        app = item.funcargs.get('app')
        if app is not None:
            dump.append('--- ryu-manager log (tail)\n' + app.log()[-8000:])
        report.sections.append(('topology dump', '\n'.join(dump)))


def test_down_after_up_was_killed_half_way_leaves_nothing(tmp_path):
    env = dict(os.environ, RYU_PROBE_SCALE_HOSTS='6')
    up = subprocess.Popen([sys.executable, '-m', 'topologies', 'up', 'scale', '--controller',
                           'tcp:127.0.0.1:9'], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    base = os.path.join(engine.RUN_ROOT, 'scale')
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(base, 'hv3')) and time.monotonic() < deadline:
        time.sleep(0.05)
    up.send_signal(signal.SIGKILL)
    up.wait()
    pids = []
    for root, _, files in os.walk(base):
        pids += [int(open(os.path.join(root, f)).read().split()[0]) for f in files
                 if f.endswith('.pid')]
    assert pids, 'up was killed before it started anything'
    subprocess.run([sys.executable, '-m', 'topologies', 'down', 'scale'], check=True, env=env)
    assert_gone('scale')
    for pid in pids:
        assert not os.path.exists('/proc/%d' % pid) or open(
            '/proc/%d/stat' % pid).read().split(') ')[1][0] == 'Z'


def test_two_topologies_up_at_once_on_one_app(request, app):
    flat, vlan = bring_up(request, app, 'flat'), bring_up(request, app, 'vlan')
    assert not {d for _, _, d in flat.probed_bridges()} & {d for _, _, d in vlan.probed_bridges()}
    for network in (flat, vlan):
        results = probe_all(app, network, network.topology.probes)
        assert [verdict for _, verdict, _ in results] == [
            p.expect for p in network.topology.probes]
