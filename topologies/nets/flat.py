"""One bridge, two VMs (seed 003), on IPv4 and IPv6."""
from topologies.model import (Bridge, Host, Iface, Node, Probe, Topology, ipv6, link_down,
                              no_answer, sg_drop)

PROBES = [Probe('vm1', 'vm2'), Probe('vm2', 'vm1')]

TOPOLOGY = Topology(
    name='flat',
    description='One bridge on one hypervisor, two VMs on it (seed 003).',
    diagram='''
    vm1 10.0.0.1 --+
                   +-- hv1/br0 (NORMAL)
    vm2 10.0.0.2 --+
    IPv6: vmN fd00:0:0:1::N/64
''',
    hosts=[Host('hv1', [Bridge('br0', dpid=0x1)])],
    nodes=[Node('vm1', [Iface('hv1/br0', '10.0.0.1/24', ip6='fd00:0:0:1::1/64')]),
           Node('vm2', [Iface('hv1/br0', '10.0.0.2/24', ip6='fd00:0:0:1::2/64')])],
    probes=PROBES + ipv6(PROBES),
    faults={
        'sg-drop': sg_drop(Probe('vm1', 'vm2'), 'hv1', 'br0', '10.0.0.2'),
        'link-down': link_down(Probe('vm1', 'vm2'), no_answer('hv1/br0')),
    },
    tenant_ping=('vm1', 'vm2'),
)
