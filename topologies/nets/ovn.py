"""OVN 23.03 on two chassis: two logical switches joined by a distributed logical router,
an ACL, and Geneve between the chassis over a br-phy underlay (see gre.py for its warm-up).

The instance runs its own NB and SB databases and ovn-northd; each chassis' ovn-controller
creates br-int and programs it over br-int.mgmt. br-int has no controller target, and a
first active one would flush every flow OVN put there, so it is `passive`: the app dials
it (`Network.switch_addresses()`, ryu-manager --ofp-switch-address-list).

The ACL drops ICMP to vm3 in ls1's egress pipeline, which runs on vm3's chassis: the
requests to vm3 and the replies to vm3's own requests die there alike.

IPv6 runs beside IPv4: ls1 is also fd00:0:0:1::/64 and ls2 fd00:0:0:2::/64 (the same host
numbers, lr1 ::1 on each), every logical port's addresses carry its IPv6 one (OVN answers
neighbour solicitations for it), and a second ACL drops ICMPv6 echo requests and replies
to vm3, the way the first drops ICMP, leaving neighbour discovery alone.
"""
from topologies.model import (OVN, Bridge, Broken, Fault, Host, Iface, Link, Node, Probe,
                              Run, Topology, ipv6, link_down)
from topologies.netns import mac_for_ip
from topologies.nets.gre import ENDPOINTS, warm_up

SUBNETS = {'ls1': '10.1.0', 'ls2': '10.2.0'}
SUBNETS6 = {'ls1': 'fd00:0:0:1::', 'ls2': 'fd00:0:0:2::'}
VMS = {'vm1': ('hv1', 'ls1', 11), 'vm2': ('hv1', 'ls1', 12), 'vm3': ('hv2', 'ls1', 13),
       'vm5': ('hv2', 'ls1', 15), 'vm4': ('hv2', 'ls2', 14)}
ROUTER_MACS = {'ls1': '02:00:00:00:01:01', 'ls2': '02:00:00:00:02:01'}   # lr1's ports
ACL = 'ip4.dst == 10.1.0.13 && icmp'          # ICMP to vm3, dropped
ACL6 = 'ip6.dst == fd00:0:0:1::13 && icmp6.type == {128, 129}'   # and ICMPv6 echoes
# br-int's OpenFlow tables, as OVN 23.03 numbers them: 0 physical to logical; logical
# ingress stage N is table 8+N; 37-38 large packets; 39 remote output (to a tunnel), 40
# local output, 41 loopback check; egress stage N is table 42+N; 64 save in_port, 65 to
# the VM's port.
L2_UNKNOWN = 34                               # ls_in_l2_unknown: no port has the MAC
REMOTE_OUTPUT, LOCAL_OUTPUT, TO_PHYSICAL = 39, 40, 65
EGRESS_ACL = 46                               # ls_out_acl
ROUTER_DELIVERY = 48                          # lr_out_delivery


def ip(vm: str) -> str:
    host, switch, n = VMS[vm]
    return '%s.%d' % (SUBNETS[switch], n)


def ip6(vm: str) -> str:
    host, switch, n = VMS[vm]
    return '%s%d' % (SUBNETS6[switch], n)


def logical_network() -> list[list[str]]:
    """ovn-nbctl commands: ls1 and ls2, lr1 between them, the VMs' ports, the ACL."""
    commands = [['lr-add', 'lr1']]
    for switch, subnet in SUBNETS.items():
        lrp, lsp = 'lr1-' + switch, switch + '-lr1'
        commands += [['ls-add', switch],
                     ['lrp-add', 'lr1', lrp, ROUTER_MACS[switch], subnet + '.1/24',
                      SUBNETS6[switch] + '1/64'],
                     ['lsp-add', switch, lsp, '--', 'lsp-set-type', lsp, 'router', '--',
                      'lsp-set-addresses', lsp, 'router', '--',
                      'lsp-set-options', lsp, 'router-port=' + lrp]]
    for vm, (_, switch, _) in VMS.items():
        commands.append(['lsp-add', switch, vm, '--', 'lsp-set-addresses', vm,
                         '%s %s %s' % (mac_for_ip(ip(vm)), ip(vm), ip6(vm))])
    return commands + [['acl-add', 'ls1', 'to-lport', '1001', acl, 'drop'] for acl in (ACL, ACL6)]


def chassis(host: str, n: int) -> Host:
    return Host(host, [Bridge('br-int', dpid=2 * n + 1, passive=True),
                       Bridge('br-phy', dpid=2 * n + 2, probed=False, ip=ENDPOINTS[host] + '/24')],
                ovn_chassis=True)


def nbctl(*argv: str) -> Run:
    return Run(OVN, ['ovn-nbctl', '--wait=hv', *argv])


def ping(src: str, dst: str) -> Run:
    return Run(src, ['ping', '-n', '-q', '-c', '1', '-W', '2', ip(dst)])


DROPPED_TO_VM3 = Broken('request', 'hv2/br-int', 'dropped', EGRESS_ACL)
PROBES = [
    Probe('vm1', 'vm2'),                          # same chassis
    Probe('vm1', 'vm5'), Probe('vm5', 'vm1'),     # across the Geneve tunnel
    Probe('vm1', 'vm4', via='lr1'),               # routed, and across the tunnel
    Probe('vm4', 'vm1', via='lr1'),
    Probe('vm2', 'vm4', via='lr1'),
    Probe('vm1', 'vm3', 'unreachable', broken=DROPPED_TO_VM3),
    Probe('vm4', 'vm3', 'unreachable', via='lr1', broken=DROPPED_TO_VM3),
    # vm1's request arrives; its reply to vm3 is dropped on vm3's own bridge
    Probe('vm3', 'vm1', 'unreachable',
          broken=Broken('reply', 'hv2/br-int', 'dropped', EGRESS_ACL)),
    # to vm4's own MAC: on ls1 no port has it
    Probe('vm1', 'vm4', 'unreachable', ping=False,
          broken=Broken('request', 'hv1/br-int', 'dropped', L2_UNKNOWN)),
]

TOPOLOGY = Topology(
    name='ovn',
    description='OVN 23.03: two chassis over Geneve, logical switches ls1 and ls2 joined by '
                'router lr1, an ACL dropping ICMP to vm3; the app attached passively.',
    diagram='''
          hv1 (chassis)                                    hv2 (chassis)
    vm1 10.1.0.11 --+                                   +-- vm3 10.1.0.13   ACL: ICMP to it dropped
    vm2 10.1.0.12 --+-- br-int ~~~~~~ Geneve ~~~~~~ br-int -+-- vm5 10.1.0.15
                          (ovn-controller)  (ovn-controller) +-- vm4 10.2.0.14 (ls2)
          172.16.0.1 br-phy ======== underlay ======== br-phy 172.16.0.2
    logical: ls1 10.1.0.0/24 (vm1 vm2 vm3 vm5) -- lr1 .1 | .1 -- ls2 10.2.0.0/24 (vm4)
             private NB/SB ovsdb-servers and ovn-northd; br-int attached passively
    IPv6: ls1 fd00:0:0:1::/64, ls2 fd00:0:0:2::/64, the same host numbers (lr1 ::1)
''',
    hosts=[chassis(host, n) for n, host in enumerate(ENDPOINTS)],
    links=[Link('hv1/br-phy', 'hv2/br-phy')],
    nodes=[Node(vm, [Iface(host + '/br-int', ip(vm) + '/24', ip6=ip6(vm) + '/64')],
                routes=['default via %s.1' % SUBNETS[switch], 'default via %s1' % SUBNETS6[switch]])
           for vm, (host, switch, _) in VMS.items()],
    setup=[*[Run(host, ['ovs-vsctl', 'set', 'interface', vm, 'external_ids:iface-id=' + vm])
             for vm, (host, _, _) in VMS.items()],
           *warm_up(),
           nbctl('sync'),
           *[Run(OVN, ['ovn-nbctl', '--timeout=20', 'wait-until', 'Logical_Switch_Port', vm,
                       'up=true']) for vm in VMS],
           ping('vm1', 'vm5'), ping('vm5', 'vm1'), ping('vm1', 'vm4')],
    probes=PROBES + ipv6(PROBES),
    faults={
        'acl-drop': Fault('an ACL dropping ICMP to vm4, added at run time',
                          [nbctl('acl-add', 'ls2', 'to-lport', '1001',
                                 'ip4.dst == 10.2.0.14 && icmp', 'drop')],
                          Probe('vm1', 'vm4', 'unreachable', via='lr1',
                                broken=Broken('request', 'hv2/br-int', 'dropped', EGRESS_ACL))),
        'link-down': link_down(Probe('vm1', 'vm5'),
                               Broken('request', 'hv2/br-int', 'no-answer', TO_PHYSICAL)),
        'tunnel-down': Fault("hv1's underlay link down",
                             [Run('hv1', ['ip', 'link', 'set', 'to-hv2', 'down'])],
                             Probe('vm1', 'vm5', 'unreachable', broken=Broken(
                                 'request', 'hv1/br-int', 'left-on-port', REMOTE_OUTPUT))),
        'router-port-off': Fault("lr1's port on ls2 disabled",
                                 [nbctl('set', 'Logical_Router_Port', 'lr1-ls2', 'enabled=false')],
                                 Probe('vm1', 'vm4', 'unreachable', via='lr1',
                                       broken=Broken('request', 'hv1/br-int', 'dropped',
                                                     ROUTER_DELIVERY))),
        # a graceful exit deletes hv2's Chassis: hv1 drops its tunnel, vm5 is bound nowhere
        'chassis-down': Fault("hv2's ovn-controller exits",
                              [Run('hv2', ['ovn-appctl', '-t', 'ovn-controller', 'exit']),
                               nbctl('sync')],
                              Probe('vm1', 'vm5', 'unreachable',
                                    broken=Broken('request', 'hv1/br-int', 'dropped',
                                                  LOCAL_OUTPUT))),
    },
    tenant_ping=('vm1', 'vm5'),
    ovn=logical_network(),
)
