"""A bridge run by another controller, ryu.app.simple_switch_13 in its own ryu-manager,
with the probe app added as a second controller (README: "a bridge that already has a
controller").

simple_switch_13 owns the flow table: its table-miss flow sends every unknown packet to
it, and it installs a flow (in_port, eth_src, eth_dst) for each pair it has seen talk;
the bridge gets no NORMAL flow (`flows=[]`). `setup` waits for its table-miss flow and
lets vm1, vm2 and vm3 ping each other once, so it has learned them before anything is
probed and the flow table stays put while we probe. quiet1 and quiet2 never talk during
setup or probing: a test pings between them afterwards to show simple_switch_13 still
learns and switches.

The talkers have IPv6 addresses too (fd00:0:0:1::N/64, quietly: see netns.QUIET_IPV6);
quiet1 and quiet2 stay IPv4 only, so that not even an MLD report of theirs is sent.
"""
from itertools import combinations

from topologies.model import (Bridge, Host, Iface, Node, Probe, Run, Topology, ipv6, link_down,
                              no_answer, sg_drop)

TALKERS = {'vm1': '10.0.0.1', 'vm2': '10.0.0.2', 'vm3': '10.0.0.3'}
QUIET = {'quiet1': '10.0.0.11', 'quiet2': '10.0.0.12'}
TALKERS6 = {vm: 'fd00:0:0:1::%s' % ip.split('.')[-1] for vm, ip in TALKERS.items()}
PROBES = [Probe(a, b) for a in TALKERS for b in TALKERS if a != b]
# simple_switch_13 connects on its own time; until its table-miss flow is in, the bridge
# (fail_mode=secure, no flows) drops everything.
WAIT_FOR_OTHER_CONTROLLER = [
    'sh', '-c', 'until ovs-ofctl dump-flows br0 | grep -q actions=CONTROLLER; do sleep 0.05; done']

TOPOLOGY = Topology(
    name='beside',
    description='A bridge switched by ryu.app.simple_switch_13 in another ryu-manager, '
                'the probe app beside it as a second controller.',
    diagram='''
    simple_switch_13 (its own ryu-manager)     probe app
                        \\                      /
                         +-- 2 controllers --+
                                  |
    vm1    10.0.0.1  --+          |
    vm2    10.0.0.2  --+          |
    vm3    10.0.0.3  --+------ hv1/br0   (simple_switch_13's flows only, no NORMAL)
    quiet1 10.0.0.11 --+
    quiet2 10.0.0.12 --+
    IPv6: vmN fd00:0:0:1::N/64 (not quiet1, quiet2)
''',
    hosts=[Host('hv1', [Bridge('br0', dpid=0x1, flows=[],
                               other_controller='ryu.app.simple_switch_13')])],
    nodes=[Node(name, [Iface('hv1/br0', ip + '/24',
                             ip6=TALKERS6[name] + '/64' if name in TALKERS6 else None)])
           for name, ip in {**TALKERS, **QUIET}.items()],
    setup=[Run('hv1', WAIT_FOR_OTHER_CONTROLLER)] + [
        Run(a, ['ping', '-n', '-q', '-c', '1', '-w', '5', TALKERS[b]])
        for a, b in combinations(TALKERS, 2)],
    probes=PROBES + ipv6(PROBES),
    faults={
        'sg-drop': sg_drop(Probe('vm1', 'vm2'), 'hv1', 'br0', '10.0.0.2'),
        'link-down': link_down(Probe('vm1', 'vm2'), no_answer('hv1/br0')),
    },
    tenant_ping=('vm1', 'vm2'),
)
