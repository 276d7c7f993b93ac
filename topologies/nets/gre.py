"""VLANs across two hypervisors over a GRE tunnel (seed 002, experiments 4-5).

`tunnelled(kind)` builds it for any OVS tunnel type; vxlan.py reuses it. Userspace
tunnels need an underlay: each tunnel endpoint is the address of br-phy's internal port,
and OVS finds the remote endpoint's MAC only by snooping ARP replies to br-phy (until then
tunnelled packets are dropped). So `setup` has each host's kernel ARP for the other
endpoint, and checks that OVS learned it (`ovs-appctl tnl/neigh/show`).

The MTU is 1500 everywhere, so a VM's full-size packet does not fit the tunnel (GRE adds
42 bytes with the VLAN tag, VXLAN 54) and is dropped without an ICMP error (ovs-vswitchd
logs "Message too long"). Probes are small and do not notice.

The VMs have IPv6 addresses too (fd00:0:0:1::N/64); the underlay stays IPv4.
"""
from topologies.model import (Bridge, Fault, Host, Iface, Link, Node, Port,
                              Probe, Run, Topology, ipv6, link_down, no_answer, sg_drop,
                              vlan_changed)

ENDPOINTS = {'hv1': '172.16.0.1', 'hv2': '172.16.0.2'}
PEERS = [('hv1', 'hv2'), ('hv2', 'hv1')]
VMS = [('vm1', 'hv1', 10), ('vm2', 'hv1', 11), ('vm3', 'hv2', 10), ('vm4', 'hv2', 11)]

DIAGRAM = '''
    hv1                                               hv2
    vm1 10.0.0.1 (tag 10) --+                       +-- vm3 10.0.0.3 (tag 10)
    vm2 10.0.0.2 (tag 11) --+-- br-int     br-int --+-- vm4 10.0.0.4 (tag 11)
                                {tun:>6} ~~~~~ {tun:<6}      {kind}, a trunk: carries VLAN tags
                                  :          :
                     172.16.0.1 br-phy === br-phy 172.16.0.2    underlay (veth), not probed
    IPv6: vmN fd00:0:0:1::N/64
'''


def warm_up() -> list[Run]:
    """Each host's OVS learns the other endpoint's MAC from an ARP reply its kernel asked for.

    arp_ignore=1 first: a host's kernel sees the underlay veth's packets too (the
    userspace datapath reads them with a packet socket) and would answer ARP there as
    well, with the veth's MAC; only br-phy's answer is right.
    """
    runs = [Run(host, ['sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1']) for host in ENDPOINTS]
    for host, peer in PEERS:
        peer_ip = ENDPOINTS[peer]
        runs += [Run(host, ['ip', 'neigh', 'flush', 'dev', 'br-phy']),
                 Run(host, ['ping', '-n', '-q', '-c', '1', '-W', '2', peer_ip]),
                 Run(host, ['sh', '-c', 'ovs-appctl tnl/neigh/show | grep -qwF ' + peer_ip])]
    return runs


def tunnelled(kind: str) -> Topology:
    """Two hypervisors whose br-int are joined by a `kind` tunnel over br-phy."""
    tunnel = kind + '0'
    probes = [Probe('vm1', 'vm3'), Probe('vm3', 'vm1'),
              Probe('vm2', 'vm4'), Probe('vm4', 'vm2'),
              # another VLAN: flooded on VLAN 10 over the trunk, last seen on the far side
              Probe('vm1', 'vm2', 'unreachable', broken=no_answer('hv2/br-int')),
              Probe('vm1', 'vm4', 'unreachable', broken=no_answer('hv2/br-int')),
              Probe('vm3', 'vm2', 'unreachable', broken=no_answer('hv1/br-int'))]
    hosts = [Host(host, [
        Bridge('br-int', dpid=2 * i + 1, ports=[
            Port(tunnel, kind, {'remote_ip': ENDPOINTS[peer]})]),
        Bridge('br-phy', dpid=2 * i + 2, probed=False, ip=ENDPOINTS[host] + '/24'),
    ]) for i, (host, peer) in enumerate(PEERS)]
    return Topology(
        name=kind,
        description='VLANs 10 and 11 on two hypervisors, their br-int joined by a %s '
                    'tunnel over br-phy (seed 002, experiments 4-5).' % kind.upper(),
        diagram=DIAGRAM.format(tun=tunnel, kind=kind.upper()),
        hosts=hosts,
        links=[Link('hv1/br-phy', 'hv2/br-phy')],
        nodes=[Node(vm, [Iface(host + '/br-int', '10.0.0.%d/24' % n, tag=tag,
                               ip6='fd00:0:0:1::%d/64' % n)])
               for n, (vm, host, tag) in enumerate(VMS, 1)],
        setup=warm_up(),
        probes=probes + ipv6(probes),
        faults={
            'tunnel-removed': Fault('the %s port of hv1/br-int deleted' % tunnel,
                                    [Run('hv1', ['ovs-vsctl', 'del-port', 'br-int', tunnel])],
                                    Probe('vm1', 'vm3', 'unreachable',
                                          broken=no_answer('hv1/br-int'))),
            'vlan-changed': vlan_changed(Probe('vm1', 'vm3'), 'hv2', 'vm3', 11,
                                         broken=no_answer('hv2/br-int')),
            'sg-drop': sg_drop(Probe('vm1', 'vm3'), 'hv2', 'br-int', '10.0.0.3'),
            'link-down': link_down(Probe('vm1', 'vm3'), no_answer('hv2/br-int')),
        },
        tenant_ping=('vm1', 'vm3'),
    )


TOPOLOGY = tunnelled('gre')
