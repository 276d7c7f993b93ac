"""One bridge, two VMs (seed 003)."""
from topologies.model import Bridge, Fault, Host, Iface, Node, Probe, Run, Topology

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
        'sg-drop': Fault('ICMP to vm2 dropped at its port (a security group)',
                         [Run('hv1', ['ovs-ofctl', 'add-flow', 'br0',
                                      'priority=100,icmp,nw_dst=10.0.0.2,actions=drop'])],
                         Probe('vm1', 'vm2', 'unreachable')),
        'link-down': Fault("vm2's link is down",
                           [Run('vm2', ['ip', 'link', 'set', 'eth0', 'down'])],
                           Probe('vm1', 'vm2', 'unreachable')),
    },
    tenant_ping=('vm1', 'vm2'),
)
