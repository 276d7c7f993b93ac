"""Two subnets on two VLANs of one bridge, joined by a router namespace, and a NAT
gateway to an outside host that has no route back (seed 002, experiment 6; seed 004).

Probes across subnets go to the router's MAC (`via`), as the VM's own packets would.
The outside host answers only what the gateway masqueraded (10.1.0.0/24): its reply
comes back to the gateway and is de-NATed there, identifier 111 restored even when
conntrack had to change it (vm1 and vm2 probe ext at once, so one of them clashes).
"""
from topologies.model import (Bridge, Fault, Host, Iface, Node, Probe, Run,
                              Topology, link_down, no_answer, sg_drop)

BR = 'hv1/br0'
INSIDE, OTHER, OUTSIDE = 10, 20, 30      # VLANs: 10.1.0.0/24, 10.2.0.0/24, 203.0.113.0/24


def sysctl(*settings: str) -> list[str]:
    return ['sysctl', '-qw', *settings]


TOPOLOGY = Topology(
    name='routed',
    description='Subnets 10.1.0.0/24 (VLAN 10) and 10.2.0.0/24 (VLAN 20) joined by a '
                'router, and a NAT gateway to an outside host (seed 002 exp. 6, seed 004).',
    diagram='''
    vm1 10.1.0.11 (tag 10, gw r1) --+                 +-- r1  10.1.0.1 (tag 10) | 10.2.0.1 (tag 20)
    vm2 10.1.0.12 (tag 10, gw nat) -+                 |       ip_forward, default via nat
    vm3 10.2.0.13 (tag 20, gw r1) --+-- hv1/br0 ------+
    ext 203.0.113.10 (tag 30) ------+   (NORMAL)      +-- nat 10.1.0.254 (tag 10) | 203.0.113.1 (tag 30)
      no route to 10.x                                        MASQUERADE 10.1.0.0/24 out of eth1
''',
    hosts=[Host('hv1', [Bridge('br0', dpid=0x1)])],
    nodes=[
        Node('vm1', [Iface(BR, '10.1.0.11/24', tag=INSIDE)], routes=['default via 10.1.0.1']),
        Node('vm2', [Iface(BR, '10.1.0.12/24', tag=INSIDE)], routes=['default via 10.1.0.254']),
        Node('vm3', [Iface(BR, '10.2.0.13/24', tag=OTHER)], routes=['default via 10.2.0.1']),
        Node('ext', [Iface(BR, '203.0.113.10/24', tag=OUTSIDE)]),
        Node('r1', [Iface(BR, '10.1.0.1/24', tag=INSIDE),
                    Iface(BR, '10.2.0.1/24', tag=OTHER, name='eth1')],
             routes=['default via 10.1.0.254'],
             # vm1 -> ext goes back out of eth0: no ICMP redirect to vm1 for that
             commands=[sysctl('net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0',
                              'net.ipv4.conf.eth0.send_redirects=0')],
             vm=False),
        Node('nat', [Iface(BR, '10.1.0.254/24', tag=INSIDE),
                     Iface(BR, '203.0.113.1/24', tag=OUTSIDE, name='eth1')],
             routes=['10.2.0.0/24 via 10.1.0.1'],
             commands=[sysctl('net.ipv4.ip_forward=1'),
                       ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '10.1.0.0/24',
                        '-o', 'eth1', '-j', 'MASQUERADE']],
             vm=False),
    ],
    probes=[
        Probe('vm1', 'vm2'),                          # same subnet
        Probe('vm1', 'vm3', via='r1'),                # across subnets, both ways
        Probe('vm3', 'vm1', via='r1'),
        Probe('vm1', 'vm3', 'unreachable', broken=no_answer(BR), ping=False),   # vm3's MAC: another VLAN
        Probe('vm2', 'ext', via='nat'),               # masqueraded, de-NATed on the way back
        Probe('vm1', 'ext', via='r1'),                # router, then NAT
        Probe('vm3', 'ext', 'unreachable', via='r1',    # not NATed: ext has no route back
              broken=no_answer(BR)),
    ],
    faults={
        'sg-drop': sg_drop(Probe('vm1', 'vm3', via='r1'), 'hv1', 'br0', '10.2.0.13'),
        'link-down': link_down(Probe('vm1', 'vm3', via='r1'), no_answer(BR)),
        'forwarding-off': Fault('the router does not forward (ip_forward=0)',
                                [Run('r1', sysctl('net.ipv4.ip_forward=0'))],
                                Probe('vm1', 'vm3', 'unreachable', via='r1',
                                      broken=no_answer(BR))),
        'nat-off': Fault("the NAT gateway's MASQUERADE rule is flushed",
                         [Run('nat', ['iptables', '-t', 'nat', '-F', 'POSTROUTING'])],
                         Probe('vm2', 'ext', 'unreachable', via='nat', broken=no_answer(BR))),
    },
    tenant_ping=('vm1', 'vm3'),
)
