"""Two subnets on two VLANs of one bridge, joined by a router namespace, and a NAT
gateway to an outside host that has no route back (seed 002, experiment 6; seed 004).

Probes across subnets go to the router's MAC (`via`), as the VM's own packets would.
The outside host answers only what the gateway masqueraded (10.1.0.0/24): its reply
comes back to the gateway and is de-NATed there, identifier 111 restored even when
conntrack had to change it (vm1 and vm2 probe ext at once, so one of them clashes).

IPv6 mirrors it all: each VLAN's subnet is fd00:0:0:VLAN::/64, every address keeps its
IPv4 host number (vm1 fd00:0:0:10::11, nat fd00:0:0:10::254), r1 forwards IPv6 too (the
engine turns it on where IPv4 forwarding is), and nat masquerades fd00:0:0:10::/64 with
ip6tables. The routes name next hops by their ULA addresses, so r1 sends no redirect
(Linux redirects IPv6 only to a link-local target).
"""
from topologies.model import (Bridge, Fault, Host, Iface, Node, Probe, Run,
                              Topology, ipv6, link_down, no_answer, sg_drop)

BR = 'hv1/br0'
INSIDE, OTHER, OUTSIDE = 10, 20, 30      # VLANs: 10.1.0.0/24, 10.2.0.0/24, 203.0.113.0/24
V6 = {vlan: 'fd00:0:0:%d::' % vlan for vlan in (INSIDE, OTHER, OUTSIDE)}   # their /64s


def ip6(vlan: int, host: int) -> str:
    return '%s%d/64' % (V6[vlan], host)


def gw6(vlan: int, host: int) -> str:
    return 'default via %s%d' % (V6[vlan], host)


def sysctl(*settings: str) -> list[str]:
    return ['sysctl', '-qw', *settings]


PROBES = [
    Probe('vm1', 'vm2'),                          # same subnet
    Probe('vm1', 'vm3', via='r1'),                # across subnets, both ways
    Probe('vm3', 'vm1', via='r1'),
    Probe('vm1', 'vm3', 'unreachable', broken=no_answer(BR), ping=False),   # vm3's MAC: another VLAN
    Probe('vm2', 'ext', via='nat'),               # masqueraded, de-NATed on the way back
    Probe('vm1', 'ext', via='r1'),                # router, then NAT
    Probe('vm3', 'ext', 'unreachable', via='r1',    # not NATed: ext has no route back
          broken=no_answer(BR)),
]

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
    IPv6: subnet fd00:0:0:VLAN::/64, same host numbers (vm1 fd00:0:0:10::11, ext fd00:0:0:30::10)
''',
    hosts=[Host('hv1', [Bridge('br0', dpid=0x1)])],
    nodes=[
        Node('vm1', [Iface(BR, '10.1.0.11/24', tag=INSIDE, ip6=ip6(INSIDE, 11))],
             routes=['default via 10.1.0.1', gw6(INSIDE, 1)]),
        Node('vm2', [Iface(BR, '10.1.0.12/24', tag=INSIDE, ip6=ip6(INSIDE, 12))],
             routes=['default via 10.1.0.254', gw6(INSIDE, 254)]),
        Node('vm3', [Iface(BR, '10.2.0.13/24', tag=OTHER, ip6=ip6(OTHER, 13))],
             routes=['default via 10.2.0.1', gw6(OTHER, 1)]),
        Node('ext', [Iface(BR, '203.0.113.10/24', tag=OUTSIDE, ip6=ip6(OUTSIDE, 10))]),
        Node('r1', [Iface(BR, '10.1.0.1/24', tag=INSIDE, ip6=ip6(INSIDE, 1)),
                    Iface(BR, '10.2.0.1/24', tag=OTHER, name='eth1', ip6=ip6(OTHER, 1))],
             routes=['default via 10.1.0.254', gw6(INSIDE, 254)],
             # vm1 -> ext goes back out of eth0: no ICMP redirect to vm1 for that
             commands=[sysctl('net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0',
                              'net.ipv4.conf.eth0.send_redirects=0')],
             vm=False),
        Node('nat', [Iface(BR, '10.1.0.254/24', tag=INSIDE, ip6=ip6(INSIDE, 254)),
                     Iface(BR, '203.0.113.1/24', tag=OUTSIDE, name='eth1', ip6=ip6(OUTSIDE, 1))],
             routes=['10.2.0.0/24 via 10.1.0.1', '%s/64 via %s1' % (V6[OTHER], V6[INSIDE])],
             commands=[sysctl('net.ipv4.ip_forward=1'),
                       ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '10.1.0.0/24',
                        '-o', 'eth1', '-j', 'MASQUERADE'],
                       ['ip6tables', '-t', 'nat', '-A', 'POSTROUTING', '-s', V6[INSIDE] + '/64',
                        '-o', 'eth1', '-j', 'MASQUERADE']],
             vm=False),
    ],
    probes=PROBES + ipv6(PROBES),
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
