"""One bridge, two VMs (seed 003)."""
from topologies.model import Bridge, Host, Iface, Node, Probe, Topology, link_down, no_answer, sg_drop

TOPOLOGY = Topology(
    name='flat',
    description='One bridge on one hypervisor, two VMs on it (seed 003).',
    diagram='''
    vm1 10.0.0.1 --+
                   +-- hv1/br0 (NORMAL)
    vm2 10.0.0.2 --+
''',
    hosts=[Host('hv1', [Bridge('br0', dpid=0x1)])],
    nodes=[Node('vm1', [Iface('hv1/br0', '10.0.0.1/24')]),
           Node('vm2', [Iface('hv1/br0', '10.0.0.2/24')])],
    probes=[Probe('vm1', 'vm2'), Probe('vm2', 'vm1')],
    faults={
        'sg-drop': sg_drop(Probe('vm1', 'vm2'), 'hv1', 'br0', '10.0.0.2'),
        'link-down': link_down(Probe('vm1', 'vm2'), no_answer('hv1/br0')),
    },
    tenant_ping=('vm1', 'vm2'),
)
