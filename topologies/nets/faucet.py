"""A bridge run by FAUCET (topologies/faucet.py), with its router and a port ACL, the probe
app beside it as a second controller.

FAUCET owns the flow tables (`flows=[]`, no NORMAL): VLAN 100 holds vm1, vm2 and vm4,
VLAN 200 vm5, and FAUCET's own router joins them. The router lives inside FAUCET's
pipeline: the VMs route via its VIPs, whose MAC is FAUCET's `faucet_mac`, so a routed
probe's next hop (`via='faucet'`) is that MAC. vm4's port has an ingress ACL dropping
ICMP. The engine starts FAUCET once the ports exist (the config needs their numbers and
the bridge's real dpid) and waits until it has programmed the bridge; `setup` then makes
every VM talk once, so FAUCET has learned them all and its flows stay put while we probe.

Faults change FAUCET's config and SIGHUP it, as an operator would: `acl-drop` is a warm
reload, `router-off` (no router, no VIPs: dp-level config) a cold start, which deletes
every flow of the bridge.
"""
from topologies.model import (Bridge, Broken, Fault, Host, Iface, Node, Probe, Run,
                              Topology, link_down)

FAUCET_MAC = '0e:00:00:00:00:01'
VLANS = {100: '10.100.0.254/24', 200: '10.200.0.254/24'}     # vid: FAUCET's VIP
VMS = {'vm1': (100, '10.100.0.1'), 'vm2': (100, '10.100.0.2'),
       'vm4': (100, '10.100.0.4'), 'vm5': (200, '10.200.0.5')}
NO_ICMP = 'vm4'           # its port's acls_in drops ICMP (FAUCET ACLs are ingress only)
BR = 'hv1/br0'
# FAUCET's table ids with this config: port_acl 0, vlan 1, eth_src 2, ipv4_fib 3, vip 4,
# eth_dst 5, flood 6 (FAUCET numbers only the tables its config needs)
PORT_ACL, FLOOD = 0, 6


def faucet_config(dpid: int, ports: dict[str, int], faults: frozenset[str]) -> dict:
    """faucet.yaml: the VMs on their VLANs, the router, the ACLs; faults change it."""
    vlans = {'v%d' % vid: {'vid': vid, 'faucet_mac': FAUCET_MAC, 'faucet_vips': [vip]}
             for vid, vip in VLANS.items()}
    routers = {'r1': {'vlans': list(vlans)}}
    if 'router-off' in faults:
        routers = {}
        for vlan in vlans.values():
            del vlan['faucet_vips']
    no_icmp = {NO_ICMP} | ({'vm2'} if 'acl-drop' in faults else set())
    interfaces = {vm: {'number': ports[vm], 'native_vlan': 'v%d' % vid,
                       **({'acls_in': ['no-icmp']} if vm in no_icmp else {})}
                  for vm, (vid, _) in VMS.items()}
    config = {'vlans': vlans,
              'acls': {'no-icmp': [{'rule': {'dl_type': 0x800, 'ip_proto': 1,
                                             'actions': {'allow': 0}}},
                                   {'rule': {'actions': {'allow': 1}}}]},
              'dps': {'br0': {'dp_id': dpid, 'hardware': 'Open vSwitch',
                              'interfaces': interfaces}}}
    if routers:
        config['routers'] = routers
    return config


def ping(ip: str) -> list[str]:
    return ['ping', '-n', '-q', '-c', '1', '-w', '5', ip]


def gateway(vm: str) -> str:
    return VLANS[VMS[vm][0]].split('/')[0]


TOPOLOGY = Topology(
    name='faucet',
    description="A bridge run by FAUCET: two VLANs, FAUCET's router between them, an "
                'ICMP-dropping port ACL; the probe app beside it as a second controller. '
                "IPv4 only: IPv6 VIPs would add FAUCET's ipv6_fib table and renumber the "
                "tables after it, which the IPv4 probes' broken_at name.",
    diagram='''
        FAUCET 1.10 (its own process)          probe app
                        \\                      /
                         +-- 2 controllers --+
                                  |
    vm1 10.100.0.1 (VLAN 100) --+ |
    vm2 10.100.0.2 (VLAN 100) --+-- hv1/br0   FAUCET's flows only, no NORMAL;
    vm4 10.100.0.4 (VLAN 100) --+             router r1: VIPs 10.100.0.254 | 10.200.0.254
      acls_in: ICMP dropped     |             (faucet_mac 0e:00:00:00:00:01)
    vm5 10.200.0.5 (VLAN 200) --+
''',
    hosts=[Host('hv1', [Bridge('br0', dpid=0x1, flows=[], faucet=faucet_config)])],
    nodes=[Node(vm, [Iface(BR, ip + '/24')], routes=['default via ' + gateway(vm)])
           for vm, (_, ip) in VMS.items()],
    # every VM talks once (vm4 only ARP: its ICMP is dropped), so FAUCET learns them all
    setup=[Run(vm, ping(gateway(vm))) for vm in VMS if vm != NO_ICMP] + [
        Run('vm1', ping(VMS['vm2'][1])), Run('vm1', ping(VMS['vm5'][1])),
        Run('vm4', ['sh', '-c', 'ping -n -q -c 1 -w 1 %s; true' % gateway('vm4')])],
    next_hops={'faucet': {'10.100.0.0/24': FAUCET_MAC, '10.200.0.0/24': FAUCET_MAC}},
    probes=[
        Probe('vm1', 'vm2'), Probe('vm2', 'vm1'),
        Probe('vm1', 'vm5', via='faucet'), Probe('vm5', 'vm1', via='faucet'),
        # vm4 answers, and its reply is dropped as it enters the bridge
        Probe('vm1', 'vm4', 'unreachable', broken=Broken('reply', BR, 'dropped', PORT_ACL)),
        Probe('vm4', 'vm1', 'unreachable', broken=Broken('request', BR, 'dropped', PORT_ACL)),
        Probe('vm5', 'vm4', 'unreachable', via='faucet',
              broken=Broken('reply', BR, 'dropped', PORT_ACL)),
        # to vm5's own MAC: unknown on VLAN 100, so flooded there; no tenant sends that
        Probe('vm1', 'vm5', 'unreachable', ping=False,
              broken=Broken('request', BR, 'no-answer', FLOOD)),
    ],
    faults={
        'acl-drop': Fault("an ACL dropping ICMP added to vm2's port (a warm reload)", [],
                          Probe('vm1', 'vm2', 'unreachable',
                                broken=Broken('reply', BR, 'dropped', PORT_ACL))),
        # FAUCET forgets vm2 when its port goes down: the request is flooded on VLAN 100
        'link-down': link_down(Probe('vm1', 'vm2'), Broken('request', BR, 'no-answer', FLOOD)),
        # without routing FAUCET's pipeline has no ipv4_fib and vip tables (flood is 4):
        # the request to faucet_mac is unknown unicast, flooded on VLAN 100
        'router-off': Fault("FAUCET's router and VIPs removed (a cold start)", [],
                            Probe('vm1', 'vm5', 'unreachable', via='faucet',
                                  broken=Broken('request', BR, 'no-answer', 4))),
    },
    tenant_ping=('vm1', 'vm2'),
)
