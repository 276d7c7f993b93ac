"""The `ovn` topology on real OVN 23.03 and Open vSwitch, with the app attached passively.

The tenant's own kernel ping is the truth: every probe's expected verdict, and every
fault's, must be what a ping between the two VMs finds. Attaching the app (it dials each
br-int's passive listener) must leave OVN's flows exactly as they were, and ovn-controller
still in charge. The app's own verdicts are printed (`pytest -s`), not asserted.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess

import pytest

from topologies import engine
from topologies.controller import ProbeController
from topologies.lab import missing_requirements
from topologies.model import OVN

pytestmark = pytest.mark.skipif(missing_requirements() is not None or not shutil.which('ovn-northd'),
                                reason=missing_requirements() or 'OVN is not installed')
TOPOLOGY = engine.load('ovn')
OUR_COOKIE = 'cookie=0x72797570'      # the app's cookie prefix (high 32 bits)
PROBE = dict(count=2, interval=0.1, timeout=1.0)


def bring_up(instance: str, faults=()) -> engine.Network:
    return engine.up(TOPOLOGY, controller=None, faults=faults, instance=instance)


def assert_gone(instance: str) -> None:
    engine.down(instance)
    namespaces = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True).stdout
    assert not [line for line in namespaces.splitlines() if line.startswith(instance + '-')]
    processes = subprocess.run(['ps', '-eo', 'stat=,args='], capture_output=True, text=True).stdout
    assert not [line for line in processes.splitlines()
                if '/%s/' % instance in line and not line.startswith('Z')]


def kernel_ping(network: engine.Network, src: str, dst: str) -> str:
    return network.ping(src, network.vms()[dst].ip)


def ovn_flows(network: engine.Network) -> dict:
    """Every br-int's flows, without counters and without the app's own."""
    return {host: [flow for flow in network.ovs(host).dump_flows(bridge)
                   if OUR_COOKIE not in flow]
            for host, bridge, _ in network.probed_bridges()}


def uncookied(flows: dict) -> dict:
    return {host: sorted(re.sub(r'cookie=0x[0-9a-f]+, ', '', flow) for flow in host_flows)
            for host, host_flows in flows.items()}


def connect_app(network: engine.Network) -> ProbeController:
    """The app, dialling every passive br-int; returns once all have reported their ports."""
    app = ProbeController(listen=False, args=(
        '--ofp-switch-address-list', ','.join(network.switch_addresses())))
    app.start()
    app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=30)
    return app


def app_verdicts(app: ProbeController, network: engine.Network, probes) -> list[str]:
    def one(probe):
        result = app.probe(**network.body(probe, **PROBE))
        return result['verdict'] or '%s (%s)' % (result['state'], result['error'])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, probes))


@pytest.fixture(scope='module')
def network():
    network = bring_up('oovn')
    yield network
    assert_gone('oovn')


@pytest.fixture(scope='module')
def attached(network):
    """(app, OVN's flows just before the app connected)."""
    before = ovn_flows(network)
    app = connect_app(network)
    yield app, before
    app.close()


def test_every_probe_expects_what_the_tenants_kernel_ping_finds(network):
    probes = [probe for probe in TOPOLOGY.probes if probe.ping]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pings = list(pool.map(lambda p: kernel_ping(network, p.src, p.dst), probes))
    got = [('%s -> %s' % (p.src, p.dst), ping) for p, ping in zip(probes, pings)]
    assert got == [('%s -> %s' % (p.src, p.dst), p.expect) for p in probes]


def test_attaching_passively_leaves_ovns_flows_and_ovn_controller_alone(network, attached):
    app, before = attached
    assert sum(len(flows) for flows in before.values()) > 400
    assert ovn_flows(network) == before
    for host, bridge, _ in network.probed_bridges():     # no controller target was added
        assert network.run(host, ['ovs-vsctl', 'get-controller', bridge]).split() == [
            'punix:' + network.ovs(host).path(bridge + '.probe')]

    verdicts = app_verdicts(app, network, TOPOLOGY.probes)
    print('\nprobe (expected): app verdict')
    for probe, verdict in zip(TOPOLOGY.probes, verdicts):
        print('  %s -> %s%s (%s): %s' % (probe.src, probe.dst, ' via ' + probe.via if probe.via
                                         else '', probe.expect, verdict))
    assert ovn_flows(network) == before

    # OVN's own PacketIns still reach ovn-controller: lr1 answers TTL 1 with an ICMP error.
    ttl1 = network.run('vm1', ['ping', '-n', '-c', '1', '-W', '1', '-t', '1', '10.2.0.14'],
                       check=False)
    assert 'From 10.1.0.1 icmp_seq=1 Time to live exceeded' in ttl1
    # ovn-controller still programs br-int: an ACL comes and goes, and so do its flows.
    for host, _, _ in network.probed_bridges():
        assert network.run(host, ['ovn-appctl', '-t', 'ovn-controller',
                                  'connection-status']).strip() == 'connected'
    acl = ['ls2', 'to-lport', '1001', 'ip4.dst == 10.2.0.14 && udp']
    network.run(OVN, ['ovn-nbctl', '--wait=hv', 'acl-add', *acl, 'drop'])
    assert any('udp' in flow and 'nw_dst=10.2.0.14' in flow and 'actions=drop' in flow
               for flow in ovn_flows(network)['hv2'])
    network.run(OVN, ['ovn-nbctl', '--wait=hv', 'acl-del', *acl])
    # the flows northd made again come back, under new cookies (their logical flows' uuids)
    assert uncookied(ovn_flows(network)) == uncookied(before)


@pytest.mark.parametrize('name', sorted(TOPOLOGY.faults))
def test_fault_makes_its_probe_unreachable_by_kernel_ping(request, name):
    probe = TOPOLOGY.faults[name].probe
    assert any((p.src, p.dst, p.via, p.expect) == (probe.src, probe.dst, probe.via, 'reachable')
               for p in TOPOLOGY.probes), 'the pair must be reachable without the fault'
    request.addfinalizer(lambda: assert_gone('oovnf'))
    network = bring_up('oovnf', faults=(name,))
    assert kernel_ping(network, probe.src, probe.dst) == 'unreachable'
    app = connect_app(network)
    try:
        print('\nfault %s: %s -> %s: app verdict %s' % (
            name, probe.src, probe.dst, app_verdicts(app, network, [probe])[0]))
    finally:
        app.close()


def test_down_leaves_no_daemon_namespace_or_file():
    network = bring_up('oovnd')
    assert network.switch_addresses()
    assert_gone('oovnd')
    assert not os.path.exists(network.dir)
