"""Neutron's OVS agent on two hypervisors: br-int, br-tun over VXLAN, DHCP (seeds 001, 002/3).

The flows are the agent's own (neutron/plugins/ml2/drivers/openvswitch/agent/openflow/
native/br_int.py and br_tun.py), with port names where it writes port numbers. Each VM
leases its address from dnsmasq, hv2's VMs over the tunnel.

br-tun learns (table 10 -> 20) the MAC of every frame that comes out of the tunnel, so its
flow table changes with traffic. `setup` therefore first warms the underlay (OVS resolves
the remote endpoint only from ARP replies it sees on br-phy), then makes every MAC cross
the tunnel: every flow br-tun will learn is there before a baseline is taken, and the same
traffic later re-learns it with the same text (only its hard_age changes).

IPv6: each VM also has fd00:0:0:1::N/64 (N its IPv4 host number), set statically (dnsmasq
serves DHCPv4 only). br-int guards it as the agent does (install_icmpv6_na_spoofing_
protection): a VM port's neighbour advertisements go to table 24 and pass only for the
port's own addresses, its fixed IP and its EUI-64 link-local one; vm4's security group
drops ICMPv6 echo requests as it drops ICMP ones, and lets neighbour discovery through.
"""
import ipaddress

from topologies.model import (Bridge, Broken, Fault, Host, Iface, Link, Node, Port,
                              Probe, Run, Topology, ipv6, link_down, no_answer, vlan_changed)

VLAN, VNI = 1, 0x64                   # the network's hypervisor-local VLAN and its VXLAN id
LEARN_COOKIE = '0xb8a7772eecbcd5b8'   # of the flows br-tun learns in table 20 (seed 001)
UNDERLAY = {'hv1': '172.16.0.1', 'hv2': '172.16.0.2'}   # tunnel endpoints, on br-phy
VMS = {'vm1': ('hv1', '10.0.0.11'), 'vm2': ('hv1', '10.0.0.12'),
       'vm3': ('hv2', '10.0.0.13'), 'vm4': ('hv2', '10.0.0.14')}
NO_ICMP = 'vm4'                       # its security group has no ICMP rule
# where an echo request to a VM without an ICMP rule is dropped: its firewall table
SG_DROPPED = Broken('request', 'hv2/br-int', 'dropped', 60)
DHCP_IP = '10.0.0.2'
WARM_UP = [('vm1', 'vm3'), ('vm2', 'vm3'), ('qdhcp', 'vm3'), ('vm4', 'vm1')]   # pings
PROBES = [Probe('vm1', 'vm3'), Probe('vm3', 'vm1'), Probe('vm1', 'vm2'),
          Probe('vm4', 'vm1'),
          Probe('vm1', 'vm4', 'unreachable', broken=SG_DROPPED),
          Probe('vm3', 'vm4', 'unreachable', broken=SG_DROPPED)]


def mac(vm: str) -> str:
    return 'fa:16:3e:00:00:' + VMS[vm][1].split('.')[-1]


def ip6(vm: str) -> str:
    return 'fd00:0:0:1::' + VMS[vm][1].split('.')[-1]


def link_local(mac_address: str) -> str:
    """The EUI-64 link-local address the kernel gives an interface with this MAC."""
    octets = bytearray(int(octet, 16) for octet in mac_address.split(':'))
    octets[0] ^= 0x02
    eui64 = bytes(octets[:3]) + b'\xff\xfe' + bytes(octets[3:])
    return str(ipaddress.IPv6Address(b'\xfe\x80' + bytes(6) + eui64))


def tunnel(remote: str) -> str:
    """The agent's name for the tunnel port to `remote`: vxlan-<its IP in hex>."""
    return 'vxlan-' + ''.join('%02x' % int(octet) for octet in UNDERLAY[remote].split('.'))


def icmp_drop(vm: str, match: str = '') -> str:
    """A security group without an ICMP rule on `vm`'s port, where the firewall sits."""
    return f'table=60,priority=50,icmp,{match}nw_dst={VMS[vm][1]},actions=drop'


def icmp6_echo_drop(vm: str) -> str:
    """The same for ICMPv6: echo requests only (neighbour discovery is always let in)."""
    return f'table=60,priority=50,icmp6,icmp_type=128,ipv6_dst={ip6(vm)},actions=drop'


def br_int_flows(host: str) -> list[str]:
    """The agent's defaults, then ARP (24) and MAC (25) anti-spoofing on each VM port."""
    flows = ['table=0,priority=65535,vlan_tci=0x0fff/0x1fff,actions=drop',   # dead VLAN
             'table=0,priority=0,actions=goto_table:60',
             'table=23,priority=0,actions=drop',                              # canary
             'table=24,priority=0,actions=drop',
             'table=25,priority=0,actions=drop',
             'table=60,priority=3,actions=NORMAL']
    for vm, (where, ip) in VMS.items():
        if where == host:
            port = 'in_port=' + vm
            flows += [f'table=0,priority=10,arp,{port},actions=goto_table:24',
                      f'table=0,priority=9,{port},actions=goto_table:25',
                      f'table=24,priority=2,arp,{port},arp_spa={ip},actions=goto_table:25',
                      f'table=25,priority=2,{port},dl_src={mac(vm)},actions=goto_table:60',
                      # neighbour advertisements: only for the port's own addresses
                      f'table=0,priority=10,icmp6,icmp_type=136,{port},actions=goto_table:24',
                      *[f'table=24,priority=2,icmp6,icmp_type=136,{port},nd_target={target},'
                        'actions=goto_table:25' for target in (ip6(vm), link_local(mac(vm)))]]
    if VMS[NO_ICMP][0] == host:   # echo requests only: replies to its own pings get in
        flows += [icmp_drop(NO_ICMP, 'icmp_type=8,'), icmp6_echo_drop(NO_ICMP)]
    return flows


def br_tun_flows(host: str) -> list[str]:
    """0: from br-int -> 2, from a tunnel -> 4. 2: unicast -> 20, else -> 22. 4: VNI ->
    local VLAN, -> 10: learn the sender into 20, to br-int. 20: learned unicast, else
    -> 22. 22: local VLAN -> VNI, flooded into every tunnel."""
    tunnels = [tunnel(other) for other in UNDERLAY if other != host]
    learn = (f'learn(table=20,hard_timeout=300,priority=1,cookie={LEARN_COOKIE},'
             'NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],'
             'load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],'
             'output:OXM_OF_IN_PORT[])')
    unicast = '00:00:00:00:00:00/01:00:00:00:00:00'     # the group bit clear
    multicast = '01:00:00:00:00:00/01:00:00:00:00:00'   # and set
    return ['table=0,priority=1,in_port=patch-int,actions=goto_table:2',
            *[f'table=0,priority=1,in_port={t},actions=goto_table:4' for t in tunnels],
            'table=0,priority=0,actions=drop',
            f'table=2,priority=0,dl_dst={unicast},actions=goto_table:20',
            f'table=2,priority=0,dl_dst={multicast},actions=goto_table:22',
            f'table=4,priority=1,tun_id={VNI:#x},actions=mod_vlan_vid:{VLAN},goto_table:10',
            'table=4,priority=0,actions=drop',
            f'table=10,priority=1,actions={learn},output:patch-int',
            'table=20,priority=0,actions=goto_table:22',
            f'table=22,priority=1,dl_vlan={VLAN},actions=strip_vlan,set_tunnel:{VNI:#x},'
            + ','.join('output:' + t for t in tunnels),
            'table=22,priority=0,actions=drop']


def hypervisor(host: str) -> Host:
    n = int(host[2:])
    tunnels = [Port(tunnel(other), 'vxlan', {'local_ip': UNDERLAY[host], 'remote_ip': ip,
                                             'in_key': 'flow', 'out_key': 'flow'})
               for other, ip in UNDERLAY.items() if other != host]
    return Host(host, [
        Bridge('br-int', dpid=0x10 * n + 1, flows=br_int_flows(host),
               ports=[Port('patch-tun', 'patch', {'peer': 'patch-int'})]),
        Bridge('br-tun', dpid=0x10 * n + 2, flows=br_tun_flows(host),
               ports=[Port('patch-int', 'patch', {'peer': 'patch-tun'}), *tunnels]),
        Bridge('br-phy', dpid=0x10 * n + 3, probed=False, ip=UNDERLAY[host] + '/24')])


def ping(ip: str) -> list[str]:
    return ['ping', '-n', '-q', '-c', '1', '-w', '3', ip]


# As Neutron runs it (static leases only, no router), minus DNS, and leaving no files.
DNSMASQ = ['dnsmasq', '--keep-in-foreground', '--log-facility=-', '--conf-file=/dev/null',
           '--pid-file=', '--leasefile-ro', '--port=0', '--no-hosts', '--no-resolv',
           '--bind-interfaces', '--interface=eth0', '--dhcp-option=3',
           '--dhcp-range=10.0.0.0,static,255.255.255.0,86400s',
           *[f'--dhcp-host={mac(vm)},{ip}' for vm, (_, ip) in VMS.items()]]

TOPOLOGY = Topology(
    name='neutron',
    description="Neutron's OVS agent: br-int with ARP anti-spoofing, br-tun learning over "
                'VXLAN, VMs on DHCP from dnsmasq (seeds 001, 002/3).',
    diagram='''
            hv1                                                   hv2
  vm1  .11 -+                                                       +- vm3 .13
  vm2  .12 -+- br-int =patch= br-tun ~~VXLAN 0x64~~ br-tun =patch= br-int -+- vm4 .14
  qdhcp .2 -+  VLAN 1           |                      |           VLAN 1    (no ICMP in)
                        br-phy 172.16.0.1 ---- br-phy 172.16.0.2
  10.0.0.0/24: the VMs lease their addresses from dnsmasq in qdhcp
  IPv6, static: fd00:0:0:1::/64, the same host numbers (vm1 fd00:0:0:1::11)
''',
    hosts=[hypervisor(host) for host in UNDERLAY],
    links=[Link('hv1/br-phy', 'hv2/br-phy')],
    nodes=[Node('qdhcp', [Iface('hv1/br-int', DHCP_IP + '/24', mac='fa:16:3e:00:00:02',
                                tag=VLAN)], daemons=[DNSMASQ], vm=False),
           *[Node(vm, [Iface(host + '/br-int', ip + '/24', mac=mac(vm), tag=VLAN, dhcp=True,
                             ip6=ip6(vm) + '/64')])
             for vm, (host, ip) in VMS.items()]],
    setup=[*[Run(host, argv) for host, peer in (('hv1', 'hv2'), ('hv2', 'hv1'))
             for argv in (['ip', 'neigh', 'flush', 'dev', 'br-phy'], ping(UNDERLAY[peer]))],
           *[Run(src, ping(VMS[dst][1])) for src, dst in WARM_UP]],
    probes=PROBES + ipv6(PROBES),
    faults={
        'sg-drop': Fault('ICMP to vm3 dropped at its port (a security group)',
                         [Run('hv2', ['ovs-ofctl', 'add-flow', 'br-int', icmp_drop('vm3')])],
                         Probe('vm1', 'vm3', 'unreachable', broken=SG_DROPPED)),
        'link-down': link_down(Probe('vm1', 'vm3'), no_answer('hv2/br-int', 60)),
        'tunnel-removed': Fault(
            "hv1's VXLAN port to hv2 deleted from br-tun",
            [Run('hv1', ['ovs-vsctl', 'del-port', 'br-tun', tunnel('hv2')])],
            # br-tun's learned flow still outputs to the deleted port's number
            Probe('vm1', 'vm3', 'unreachable',
                  broken=Broken('request', 'hv1/br-tun', 'left-on-port', 20))),
        'vlan-changed': vlan_changed(Probe('vm1', 'vm3'), 'hv2', 'vm3', 2,
                                     ', which br-tun maps to no VNI',
                                     no_answer('hv2/br-int', 60)),
    },
    tenant_ping=('vm1', 'vm3'),
)
