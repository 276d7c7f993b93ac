"""The probe app beside FAUCET: topologies/nets/faucet.py, a bridge run by FAUCET 1.10 (its
own process, .venv-faucet) with its router and port ACLs, our app its second controller.

The tenant's own kernel ping is the ground truth for every probe and every fault of the
topology. Probing sends FAUCET no PacketIn (its Prometheus `of_packet_ins` counter) and
changes none of its flows. A warm reload (an ACL change on vm2's port) leaves other
controllers' flows alone, except those matching in_port=vm2: FAUCET restarts the port
with non-strict deletes in its port_acl, vlan and eth_src tables, any cookie. A cold
reload (routers changed) deletes every flow. After a cold start in the middle of a probe
FAUCET switches again. The app's verdicts are printed (`pytest -s`), not asserted:
the app is being rewritten for pipelines like FAUCET's.
"""
import re
import threading
import time

import pytest

from test_topologies import all_flows, app, bring_up, probe_all  # noqa: F401 (fixture)
from topologies import faucet
from topologies.nets.faucet import faucet_config

PLACE = 'hv1/br0'
OUR_COOKIE = re.compile(r'cookie=0x72797570[0-9a-f]{8}\b')
TIMEOUTS = re.compile(r'\b(?:hard|idle)_timeout=\d+,')   # FAUCET jitters them per learn
RELOAD = {'acl-drop': 'warm', 'router-off': 'cold', 'link-down': None}


def kernel_ping(network, src: str, dst: str) -> str:
    return network.ping(src, network.vms()[dst].ip)


def faucet_flows(network) -> list[str]:
    """The bridge's flows, without ours."""
    return [f for f in all_flows(network)[tuple(PLACE.split('/'))] if not OUR_COOKIE.search(f)]


def report(title: str, rows) -> None:
    """Print what the app said beside the ground truth (pytest -s shows it)."""
    print('\n%s\n' % title + '\n'.join(
        '  %-10s kernel ping %-12s app %-12s %s' % (pair, truth, result.get('verdict'), ' '.join(
            '%s=%s' % (key, result.get(key)) for key in ('sent', 'received', 'broken_at', 'error')
            if result.get(key) is not None)) for pair, truth, result in rows))


def test_kernel_ping_agrees_with_each_probes_expected_verdict(request, app):
    network = bring_up(request, app, 'faucet')
    probes = [p for p in network.topology.probes if p.ping]
    got = [(p.src, p.dst, kernel_ping(network, p.src, p.dst)) for p in probes]
    assert got == [(p.src, p.dst, p.expect) for p in probes]


@pytest.mark.parametrize('fault', sorted(RELOAD))
def test_each_fault_stops_the_tenants_ping_and_reloads_faucet_warm_or_cold(request, app, fault):
    network = bring_up(request, app, 'faucet', faults=(fault,))
    probe = network.topology.faults[fault].probe
    assert kernel_ping(network, probe.src, probe.dst) == 'unreachable'
    reloads = faucet.of(network, PLACE).reloads()
    assert reloads == {'warm': float(RELOAD[fault] == 'warm'),
                       'cold': float(RELOAD[fault] == 'cold')}
    result = app.probe(**network.body(probe, count=2, interval=0.1, timeout=1.0))
    report('fault %s' % fault, [('%s->%s' % (probe.src, probe.dst), 'unreachable', result)])


def test_probing_sends_faucet_no_packet_in_and_changes_only_our_flows(request, app):
    network = bring_up(request, app, 'faucet')
    controller = faucet.of(network, PLACE)
    flows, packet_ins = faucet_flows(network), controller.metric('of_packet_ins_total')
    results = probe_all(app, network, network.topology.probes)
    time.sleep(0.5)   # a PacketIn that reached FAUCET is counted by now
    report('probes through the current app', [
        ('%s->%s' % (src, dst), expect, result)
        for (src, dst, expect), _, result in results])
    assert controller.metric('of_packet_ins_total') == packet_ins
    assert faucet_flows(network) == flows


def test_warm_reload_deletes_other_controllers_flows_on_its_ports_and_a_cold_one_all(request, app):
    network = bring_up(request, app, 'faucet')
    controller, ovs = faucet.of(network, PLACE), network.ovs('hv1')
    ports = {vm.port_name: vm.port_no for vm in network.vms().values()}
    for i, port in enumerate(('vm1', 'vm2'), 1):   # acl-drop warm-restarts vm2's port
        ovs.ofctl('add-flow', 'br0', 'cookie=0x727975700000000%d,table=0,priority=65535,'
                  'in_port=%d,udp,tp_dst=9,actions=drop' % (i, ports[port]))

    def ours() -> list[str]:
        return [f for f in all_flows(network)[('hv1', 'br0')] if OUR_COOKIE.search(f)]
    assert controller.reload(faucet_config(controller.dpid, ports, frozenset({'acl-drop'}))) == 'warm'
    left = ours()   # FAUCET deleted the one matching in_port=vm2 as it restarted that port
    assert len(left) == 1 and 'in_port=%d,' % ports['vm1'] in left[0], left
    assert controller.reload(faucet_config(controller.dpid, ports, frozenset({'router-off'}))) == 'cold'
    assert ours() == []


def test_faucet_cold_start_in_the_middle_of_a_probe_leaves_it_switching(request, app):
    network = bring_up(request, app, 'faucet')
    controller = faucet.of(network, PLACE)
    flows = {TIMEOUTS.sub('', f) for f in faucet_flows(network)}
    probe = network.topology.probes[0]
    result = {}
    worker = threading.Thread(target=lambda: result.update(app.probe(**network.body(
        probe, count=30, interval=0.1, timeout=1.0))))
    worker.start()
    time.sleep(1.0)
    controller.restart()
    worker.join(30)
    report('a probe across a FAUCET cold start', [
        ('%s->%s' % (probe.src, probe.dst), probe.expect, result)])
    assert controller.metric('dp_status') == 1
    for command in network.topology.setup:   # FAUCET learns the VMs again
        network.run(command.where, command.argv)
    assert [(p.src, p.dst, kernel_ping(network, p.src, p.dst)) for p in network.topology.probes
            if p.ping] == [(p.src, p.dst, p.expect) for p in network.topology.probes if p.ping]
    deadline = time.monotonic() + 10   # FAUCET learns from PacketIns, in its own time
    while True:
        after = {TIMEOUTS.sub('', f) for f in faucet_flows(network)}
        if after == flows or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (sorted(flows - after), sorted(after - flows)) == ([], [])
