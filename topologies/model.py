"""What a topology is made of. A topology module (topologies/nets/NAME.py) builds one
`Topology` out of these, and the engine (engine.py) brings it up; nothing else is needed
to add a network.

Places are named `HOST` (a hypervisor's namespace) or `HOST/BRIDGE` (a bridge on it).
Commands (`Run`) are shell-free argument lists run inside a host or node namespace;
ovs-vsctl/ovs-ofctl/ovs-appctl there talk to that host's own OVS, and port names can
stand in for port numbers in flows (`in_port=vm1`). With OVN, `ovn-nbctl`/`ovn-sbctl`
run anywhere reach the instance's own databases, `ovn-appctl -t ovn-controller` on a
chassis its ovn-controller, and `OVN` (`Run(OVN, ...)`) is the central's place.
"""
from dataclasses import dataclass, field, replace
from typing import Callable


@dataclass
class Port:
    """An OVS port that is not a node's interface: patch, tunnel or internal."""
    name: str
    type: str = ''                    # '', 'internal', 'patch', 'gre', 'vxlan', ...
    options: dict[str, str] = field(default_factory=dict)
    tag: int | None = None


@dataclass
class Bridge:
    name: str
    dpid: int | None = None           # low 16 bits; the engine adds the instance's prefix
    probed: bool = True               # a controller of it is the probe app
    ip: str | None = None             # address (CIDR) of its internal interface, e.g. a tunnel endpoint
    ports: list[Port] = field(default_factory=list)
    flows: list[str] | None = None    # ovs-ofctl add-flow lines; None: priority=0,actions=NORMAL
    other_controller: str | None = None   # a Ryu app run in its own ryu-manager, as a second controller
    # FAUCET runs it (its own process, topologies/faucet.py): its faucet.yaml, as a dict,
    # from the bridge's real dpid, its ports' numbers by name and the faults that are on
    faucet: Callable[[int, dict[str, int], frozenset[str]], dict] | None = None
    passive: bool = False             # the app dials out to it: a passive listener, relayed to 127.0.0.1


@dataclass
class Host:
    """A hypervisor: its own ovsdb-server and ovs-vswitchd in its own namespace.
    `ovn_chassis`: it also runs ovn-controller, which creates its br-int (listed in
    `bridges` for its dpid and attachment); its Geneve endpoint is its bridge's `ip`."""
    name: str
    bridges: list[Bridge]
    ovn_chassis: bool = False


@dataclass
class Link:
    """A veth between two bridges (`HOST/BRIDGE`), each end an OVS port named after the
    other side's host; `tag` makes both ends access ports, no tag makes them trunks."""
    a: str
    b: str
    tag: int | None = None


@dataclass
class Iface:
    bridge: str                       # HOST/BRIDGE the interface plugs into
    ip: str | None = None             # CIDR; with dhcp=True, the address the lease must give
    mac: str | None = None            # default: derived from the IP
    tag: int | None = None            # access VLAN of its OVS port
    name: str = 'eth0'
    dhcp: bool = False                # get the address with dhclient instead of setting it
    # IPv6 address (CIDR, in fd00::/8), set statically (nodad) even with dhcp=True;
    # without it IPv6 stays off on the interface
    ip6: str | None = None


@dataclass
class Node:
    """A namespace on the bridges: a VM, a router, a NAT gateway, a DHCP server..."""
    name: str
    ifaces: list[Iface]
    # `ip route add` arguments; `ip -6 route add` when they name an IPv6 address or prefix
    routes: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)   # run inside once it is wired
    daemons: list[list[str]] = field(default_factory=list)    # long-running, inside
    vm: bool = True                   # a probe endpoint, listed by `show`


OVN = 'ovn'                           # the place of OVN's central daemons: the root namespace


@dataclass
class Run:
    where: str                        # a host or node name
    argv: list[str]


# Why a probe that is not reachable broke: the `reason` of the app's `broken_at`.
REASONS = {
    'dropped': 'dropped by a flow',
    'no-flow': 'no flow matched in the table',
    'left-on-port': 'left on a port and was never seen again on a bridge the app controls',
    'no-answer': 'the request left the last bridge that saw it toward a unicast MAC (the '
                 'next hop, or the destination) and no answer came',
    'not-delivered': 'the reply reached the source bridge and was not delivered to the '
                     "source VM's port",
    'to-controller': 'sent to another controller',
}


@dataclass(frozen=True)
class Broken:
    """Where a probe breaks: what its result's `broken_at` must say."""
    direction: str                    # 'request' or 'reply'
    bridge: str | None                # HOST/BRIDGE; None: any (a flooded packet ends on many)
    reason: str                       # a key of REASONS
    table: int | None = None          # None: any table


@dataclass
class Probe:
    """A probe to try and the verdict it must get. `via`: the node whose interface on the
    source's subnet (else on its bridge) is the next hop (a router), so its MAC is the
    probe's dst_mac. `broken`: where an unreachable probe breaks. `ping`: the tenant's
    own kernel ping between the two must agree with `expect` (False for a probe no tenant
    ping can make, such as one sent to the wrong next hop). `family`: 4, or 6 for a probe
    between the two VMs' IPv6 addresses (`Iface.ip6`)."""
    src: str
    dst: str
    expect: str = 'reachable'
    via: str | None = None
    broken: Broken | None = None
    ping: bool = True
    family: int = 4


def ipv6(probes: list[Probe]) -> list[Probe]:
    """The same probes between the same VMs' IPv6 addresses, expecting the same."""
    return [replace(probe, family=6) for probe in probes]


@dataclass
class Fault:
    """Something broken on purpose: `commands` break it, `probe` must turn unreachable."""
    description: str
    commands: list[Run]
    probe: Probe


@dataclass
class Topology:
    name: str
    description: str
    diagram: str
    hosts: list[Host]
    nodes: list[Node]
    links: list[Link] = field(default_factory=list)
    setup: list[Run] = field(default_factory=list)     # after everything is wired
    probes: list[Probe] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)
    tenant_ping: tuple[str, str] | None = None         # a reachable pair for tenant traffic
    # next hops that are no node (a router inside a controller's pipeline), for `via`:
    # name -> {subnet or HOST/BRIDGE: MAC}
    next_hops: dict[str, dict[str, str]] = field(default_factory=dict)
    ovn: list[list[str]] = field(default_factory=list)  # ovn-nbctl commands: the logical network


# --- the usual faults, each turning `probe` unreachable ------------------------------

def _unreachable(probe: Probe, broken: Broken | None = None) -> Probe:
    return replace(probe, expect='unreachable', broken=broken)


def no_answer(bridge: str, table: int = 0) -> Broken:
    """The request left `bridge` toward the next hop, and nothing answered."""
    return Broken('request', bridge, 'no-answer', table)


def sg_drop(probe: Probe, host: str, bridge: str, dst_ip: str) -> Fault:
    """ICMP to the probe's destination dropped on its bridge, as a security group would:
    the request is dropped there, in table 0."""
    return Fault('ICMP to %s dropped at its port (a security group)' % probe.dst,
                 [Run(host, ['ovs-ofctl', 'add-flow', bridge,
                             'priority=100,icmp,nw_dst=%s,actions=drop' % dst_ip])],
                 _unreachable(probe, Broken('request', '%s/%s' % (host, bridge), 'dropped', 0)))


def link_down(probe: Probe, broken: Broken | None = None) -> Fault:
    """The destination VM's link down."""
    return Fault("%s's link is down" % probe.dst,
                 [Run(probe.dst, ['ip', 'link', 'set', 'eth0', 'down'])],
                 _unreachable(probe, broken))


def vlan_changed(probe: Probe, host: str, port: str, tag: int, why: str = '',
                 broken: Broken | None = None) -> Fault:
    """An OVS port moved to another access VLAN."""
    return Fault("%s's port moved to VLAN %d%s" % (port, tag, why),
                 [Run(host, ['ovs-vsctl', 'set', 'port', port, 'tag=%d' % tag])],
                 _unreachable(probe, broken))
