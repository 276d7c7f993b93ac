"""The probe app beside another controller: topologies/nets/beside.py, a bridge switched by
ryu.app.simple_switch_13 in its own ryu-manager, with our app as its second controller.

Once simple_switch_13 has learned the VMs, probing them sends it no PacketIn at all (it
logs one `packet in` line per PacketIn), changes none of its flows, harms no tenant
packet, and afterwards it still learns and switches a pair it has never seen talk.
"""
import os
import subprocess
import time

from test_topologies import all_flows, app, bring_up, probe_all  # noqa: F401 (fixture)

ROUNDS = 3   # every probe of the topology, this many times


def packet_ins(network) -> list[str]:
    """The PacketIns simple_switch_13 has handled so far, one log line each."""
    with open(os.path.join(network.dir, 'other-hv1.log')) as log:
        return [line.strip() for line in log if line.startswith('packet in ')]


def ping(network, src: str, dst: str, *options: str) -> subprocess.Popen:
    return subprocess.Popen(['ip', 'netns', 'exec', network.netns(src), 'ping', '-n',
                             *options, network.vms()[dst].ip], stdout=subprocess.PIPE, text=True)


def clean(output: str) -> bool:
    return ' 0% packet loss' in output and 'DUP!' not in output


def test_probes_beside_simple_switch_13_send_it_nothing_and_leave_it_switching(request, app):
    network = bring_up(request, app, 'beside')
    topology = network.topology
    talkers = sorted({p.src for p in topology.probes})
    for src in talkers:   # warm-up, both directions (setup already made each pair talk once)
        for dst in talkers:
            if src != dst:
                output = ping(network, src, dst, '-c', '1', '-w', '5').communicate(timeout=10)[0]
                assert clean(output), output
                if network.vms()[dst].ip6:     # its IPv6 neighbours too
                    output = network.run(src, ['ping', '-6', '-n', '-c', '1', '-w', '5',
                                               network.vms()[dst].ip6], check=False)
                    assert clean(output), output
    flows, seen = all_flows(network), packet_ins(network)

    tenant = ping(network, *topology.tenant_ping, '-i', '0.05', '-c', '40')
    try:
        results = probe_all(app, network, topology.probes * ROUNDS)
        output = tenant.communicate(timeout=30)[0]
    finally:
        tenant.kill()
    time.sleep(0.5)   # a PacketIn that did reach simple_switch_13 would be logged by now

    assert [(pair, verdict) for pair, verdict, _ in results if verdict != pair[2]] == []
    assert clean(output), output
    assert packet_ins(network)[len(seen):] == []
    assert all_flows(network) == flows

    quiet = [vm for vm in network.vms() if vm not in talkers]
    output = ping(network, quiet[0], quiet[1], '-c', '3', '-i', '0.2', '-w', '5').communicate(timeout=10)[0]
    assert clean(output), output
    learned = ' '.join(packet_ins(network)[len(seen):])
    assert all(network.vms()[vm].mac in learned for vm in quiet), learned
    new_flows = set(all_flows(network)[('hv1', 'br0')]) - set(flows[('hv1', 'br0')])
    assert len(new_flows) == 2, new_flows   # one per direction, installed by simple_switch_13
