"""VLAN access ports on two bridges joined by a trunk (seed 002, experiment 2), on IPv4
and IPv6."""
from topologies.model import (Bridge, Host, Iface, Link, Node, Probe, Topology, ipv6,
                              link_down, no_answer, sg_drop, vlan_changed)

PROBES = [Probe('vm1', 'vm3'), Probe('vm3', 'vm1'),
          # another VLAN: flooded over the trunk, last seen on the far side
          Probe('vm1', 'vm2', 'unreachable', broken=no_answer('hv1/br1-in')),
          Probe('vm2', 'vm3', 'unreachable', broken=no_answer('hv1/br1-in'))]

TOPOLOGY = Topology(
    name='vlan',
    description='br-in with access ports on VLANs 10 and 11, and br1-in, joined to it by '
                'a veth trunk, with a VM on VLAN 10 (seed 002, experiment 2).',
    diagram='''
    vm1 10.0.0.1 (tag 10) --+
    vm2 10.0.0.2 (tag 11) --+-- hv1/br-in ==trunk== hv1/br1-in --+-- vm3 10.0.0.3 (tag 10)
    IPv6: vmN fd00:0:0:1::N/64
''',
    hosts=[Host('hv1', [Bridge('br-in', dpid=0x1), Bridge('br1-in', dpid=0x2)])],
    links=[Link('hv1/br-in', 'hv1/br1-in')],
    nodes=[Node('vm1', [Iface('hv1/br-in', '10.0.0.1/24', tag=10, ip6='fd00:0:0:1::1/64')]),
           Node('vm2', [Iface('hv1/br-in', '10.0.0.2/24', tag=11, ip6='fd00:0:0:1::2/64')]),
           Node('vm3', [Iface('hv1/br1-in', '10.0.0.3/24', tag=10, ip6='fd00:0:0:1::3/64')])],
    probes=PROBES + ipv6(PROBES),
    faults={
        'vlan-changed': vlan_changed(Probe('vm1', 'vm3'), 'hv1', 'vm3', 11,
                                     broken=no_answer('hv1/br1-in')),
        'sg-drop': sg_drop(Probe('vm1', 'vm3'), 'hv1', 'br1-in', '10.0.0.3'),
        'link-down': link_down(Probe('vm1', 'vm3'), no_answer('hv1/br1-in')),
    },
    tenant_ping=('vm1', 'vm3'),
)
