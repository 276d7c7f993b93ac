"""Following a probe table by table, to say where a path broke.

OVS has no OpenFlow hook for "the packet left this table", and a flow that copies a
packet to us and sends it on (resubmit) needs a guard field the pipeline never reads,
which no register is across Neutron, OVN, FAUCET and Antrea. So a trace uses none: it
walks the path one table at a time, like traceroute, with echoes that carry a second
DSCP mark, the *trace mark*, that nothing else carries:

    1. on every bridge the app controls, in every table that has flows, two *watches*
       (top priority: trace-marked echo requests, and replies) take the packet to us;
       and the source gets a catch for trace-marked replies where they are delivered;
    2. a trace echo goes out; the first watch it meets takes it: an observation (bridge,
       table, in_port, pipeline fields). The flow it would have met there is found by
       replaying that table's flows (as read from the switch) against the packet;
    3. that one watch is deleted and the next echo goes out: it passes the tables seen
       so far untouched, and is taken at the next one; and so on, request then reply;
    4. the walk ends when an echo is taken where the reply is delivered (the path
       works), or when nothing comes back: the path ends after the last observation,
       whose flow says what happened (dropped, no flow, out of a port...).

Nothing but trace-marked packets ever meets a watch, and every trace echo is taken by
the app: the tenant sees none. Traces run one at a time. A table a packet enters twice
in one direction is seen the first time only.

A next hop that did not answer is walked the same way, with the requests the source VM
would send, marked where no tenant's request is and no receiver looks: an ARP request
(ArpWalk) by its target hardware address, ours (RFC 826: ignored in a request); a
neighbour solicitation (NdWalk) by the trace mark in its traffic class (Linux sends its
own with 0; RFC 4861 checks the hop limit, not the class). There is no reply to follow:
the walk shows where the request went.
"""
from dataclasses import dataclass, field

from ryu_apps import packet, pipeline
from ryu_apps.bridge import Bridge, Catch
from ryu_apps.options import Settings

# At most this many observations (OVN's pipeline visits some 50 tables each way), and
# this many seconds (plus the probe's timeout for the last echo) for a whole walk.
MAX_STAGES = 256
MAX_SECONDS = 15.0
# A deleted watch may still take packets for a moment (the datapath's cached flows):
# an echo taken again where it was seen already is sent again, this many times at most.
MAX_RESENDS = 6
# The reason of a broken_at, by what the last flow seen did (see REASONS in rest.py).
REASON = {'dropped': 'dropped', 'no-flow': 'no-flow', 'controller': 'to-controller',
          'group': 'left-on-port'}


EFFECTS = {'goto': 'to table {}', 'output': 'output to port {}', 'normal': 'NORMAL',
           'controller': 'to a controller', 'group': 'to group {}', 'dropped': 'dropped',
           'no-flow': 'no flow matched', 'delivered': 'delivered to port {}'}


def describe_effect(kind: str, arg) -> str:
    return EFFECTS[kind].format(arg)


class EchoWalk:
    """Trace-marked echoes of the probe's IP version: the request's way, then the reply's."""

    def __init__(self, probe, settings: Settings, seq: int):
        self.probe, self.settings, self.seq = probe, settings, seq
        self.family, self.dscp = probe.family, settings.trace_dscp
        self.directions = self.family.kinds()      # by ICMP type

    def watch_fields(self, icmp_type: int) -> dict:
        fields = self.family.match(icmp_type, ip_dscp=self.dscp)
        del fields[self.family.type_field.replace('_type', '_code')]
        return fields

    def frame(self) -> bytes:
        return self.probe.frame(self.seq, self.dscp)

    def read(self, data: bytes) -> tuple[int, dict] | None:
        """(its type, its headers as match fields), if `data` is this walk's packet."""
        for kind in self.directions:
            echo = self.family.parse(data, kind)
            if (echo is not None and echo.ident == self.settings.dye and echo.seq == self.seq
                    and echo.payload == self.probe.token):
                return echo.icmp_type, echo.fields()
        return None

    def catch(self, bridge: Bridge, now: float) -> Catch:
        request = self.probe.request
        return bridge.acquire(request.in_port, request.src_mac, request.src_ip, now + 60,
                              now, self.dscp)


class _RequestWalk:
    """A next hop's request, one frame sent again and again, taken where `_fields`
    match; no answer to follow. A subclass sets `_frame`, `_fields`, `directions`."""

    def watch_fields(self, kind: int) -> dict:
        return self._fields

    def frame(self) -> bytes:
        return self._frame

    def catch(self, bridge: Bridge, now: float) -> None:
        return None


class ArpWalk(_RequestWalk):
    """ARP requests for `target` from the source VM, marked by `mark` (our MAC) as their
    target hardware address."""

    def __init__(self, probe, target: str, mark: str):
        request = probe.request
        self.target, self.mark = packet.ip_bytes(target), packet.mac_bytes(mark)
        self.src_ip = packet.ip_bytes(request.src_ip)
        self._frame = packet.arp_request(packet.mac_bytes(request.src_mac), self.src_ip,
                                         self.target, tha=self.mark)
        self.directions = {packet.ARP_REQUEST: 'request'}
        self._fields = dict(eth_type=packet.ETH_ARP, arp_op=packet.ARP_REQUEST,
                            arp_tha=mark, arp_tpa=target)

    def read(self, data: bytes) -> tuple[int, dict] | None:
        arp = packet.parse_arp(data)
        if (arp is None or arp.op != packet.ARP_REQUEST or arp.tha != self.mark
                or (arp.spa, arp.tpa) != (self.src_ip, self.target)):
            return None
        return arp.op, arp.fields()


class NdWalk(_RequestWalk):
    """Neighbour solicitations for `target` from the source VM, marked by `dscp` in their
    traffic class."""

    def __init__(self, probe, target: str, dscp: int):
        request = probe.request
        self.target, self.dscp = packet.ip_bytes(target), dscp
        self.src_ip = packet.ip_bytes(request.src_ip)
        self._frame = packet.neighbor_solicitation(packet.mac_bytes(request.src_mac),
                                                   self.src_ip, self.target, dscp)
        self.directions = {packet.NEIGHBOR_SOLICITATION: 'request'}
        self._fields = dict(eth_type=packet.ETH_IPV6, ip_proto=packet.ICMPV6, ip_dscp=dscp,
                            icmpv6_type=packet.NEIGHBOR_SOLICITATION, icmpv6_code=0,
                            ipv6_nd_target=target)

    def read(self, data: bytes) -> tuple[int, dict] | None:
        ns = packet.parse_neighbor_solicitation(data)
        if ns is None or (ns.src_ip6, ns.target, ns.dscp) != (self.src_ip, self.target,
                                                               self.dscp):
            return None
        return packet.NEIGHBOR_SOLICITATION, ns.fields()


def next_hop_walk(probe, target: str, mac: str, dscp: int):
    """The walk of the request for a next hop that did not answer: ARP requests marked
    by `mac` (ours) for IPv4, neighbour solicitations marked by `dscp` for IPv6."""
    if probe.family.version == 6:
        return NdWalk(probe, target, dscp)
    return ArpWalk(probe, target, mac)


@dataclass
class Trace:
    """One probe's walk; `bridges` are every bridge the app controls. `walk`: what it
    sends (EchoWalk when None)."""
    probe: object
    bridges: dict[int, Bridge]
    settings: Settings
    seq: int
    started: float
    walk: object = None
    path: list[dict] = field(default_factory=list)
    broken_at: dict | None = None
    done: bool = False
    _indexes: dict[int, int] = field(default_factory=dict)      # dpid -> cookie index
    _flows: dict[int, list] = field(default_factory=dict)       # dpid -> flows, as read
    _barriers: set[tuple[int, int]] = field(default_factory=set)   # (dpid, xid)
    _live: set[tuple] = field(default_factory=set)     # watches: (dpid, table, kind, key)
    _catch: Catch | None = None
    _send_at: float | None = None
    _sent_at: float = 0.0
    _wait_until: float | None = None
    _resends: int = 0
    _observed: list[tuple] = field(default_factory=list)   # (direction, dpid, table, flow,
    #                                                         fields, effect, its argument)

    def __post_init__(self):
        if self.walk is None:
            self.walk = EchoWalk(self.probe, self.settings, self.seq)

    def start(self, now: float) -> None:
        """Read every bridge's flow table that we have not read just now."""
        for bridge in self.bridges.values():
            if not self._fresh(bridge):
                bridge.read_flows(now)
        self.flows_read(now)

    def _fresh(self, bridge: Bridge) -> bool:
        return bridge.flows is not None and (
            bridge.flows_at + self.settings.resync_interval >= self.started)

    def flows_read(self, now: float) -> None:
        """Once every bridge's flows are known, lay the watches."""
        if self._indexes or self.done or not all(map(self._fresh, self.bridges.values())):
            return
        walk = self.walk
        for dpid, bridge in self.bridges.items():
            index = self._indexes[dpid] = bridge.reserve_index()
            self._flows[dpid] = list(bridge.flows)
            for table in sorted({f.table for f in bridge.flows} | {0}):
                for key in [None] + watch_keys(bridge, table):
                    for kind in walk.directions:
                        bridge.watch(index, table, walk.watch_fields(kind), key)
                        self._live.add((dpid, table, kind, key))
            self._barriers.add((dpid, bridge.barrier()))
        self._catch = walk.catch(self.bridges[self.probe.request.dpid], now)

    def confirmed(self, dpid: int, xid: int, now: float) -> None:
        if (dpid, xid) in self._barriers:
            self._barriers.discard((dpid, xid))
            if not self._barriers:
                self._send_at = now + self.settings.catch_settle

    def tick(self, now: float) -> float | None:
        """Send the next echo when due; end the walk when nothing comes back."""
        if self.done:
            return None
        if not self._indexes and now > self.started + 5:
            return self.end(now, 'the switches did not send their flow tables')
        if now > self.started + MAX_SECONDS + self.probe.request.timeout:
            return self.end(now, 'the walk stopped after %g seconds' % MAX_SECONDS)
        ready_at = self._ready_at()
        if self._send_at is not None and ready_at is not None and now >= max(self._send_at,
                                                                             ready_at):
            self._send_at = None
            self._sent_at = now
            self._wait_until = now + self.probe.request.timeout
            bridge = self.bridges[self.probe.request.dpid]
            bridge.inject(self.probe.request.in_port, self.walk.frame())
        elif self._wait_until is not None and now >= self._wait_until:
            return self.end(now)
        due = [t for t in (self._send_at, self._wait_until) if t is not None]
        return min(due) if due else now + 0.05

    def _ready_at(self) -> float | None:
        """When the walk's catch is live (at once if it has none); None: not yet."""
        if not self._indexes:
            return None
        return self._catch.ready_at if self._catch is not None else self.started
    def packet_in(self, dpid: int, msg, caught, now: float) -> bool:
        """A PacketIn that is this trace's echo: True (it is handled)."""
        if self.done or dpid not in self._indexes:
            return False
        seen = self.walk.read(msg.data)
        probe = self.probe
        if seen is None:
            return False
        kind_seen, headers = seen
        fields = dict(headers, **dict(msg.match.items()))
        elapsed = now - self._sent_at
        if caught and caught[0] is self._catch:   # the reply is where the source VM gets it
            shadow = caught[1]
            self.path.append(step('reply', dpid, msg.table_id, shadow and shadow.over,
                                   fields, 'delivered', probe.request.in_port, elapsed))
            self._observed.clear()
            self.end(now)
            return True
        if not self.bridges[dpid].is_watch(msg, self._indexes[dpid]):
            return False
        table, icmp = msg.table_id, kind_seen
        specific = (dpid, table, icmp, _key(table, fields))
        hit = next((w for w in (specific, (dpid, table, icmp, None)) if w in self._live), None)
        self._wait_until = None
        if hit is None:       # a deleted watch, still cached in the datapath
            self._resends += 1
            if self._resends > MAX_RESENDS:
                self.end(now)
            else:
                self._send_at = now + self.settings.catch_settle * 2 ** self._resends
            return True
        self._resends = 0
        flow = pipeline.replay(self._flows[dpid], msg.table_id, fields)
        kind, arg = pipeline.effect(flow, fields)
        direction = self.walk.directions[kind_seen]
        self.path.append(step(direction, dpid, msg.table_id, flow, fields, kind, arg, elapsed))
        self._observed.append((direction, dpid, msg.table_id, flow, fields, kind, arg))
        if len(self.path) >= MAX_STAGES:
            self.end(now, 'the walk stopped after %d observations' % MAX_STAGES)
            return True
        bridge = self.bridges[dpid]
        # A specific watch takes the catch-all of its table with it: the packet is to pass
        # this table in that context from now on, and to be seen in the others.
        for watch in {hit, (dpid, table, icmp, None)} & self._live:
            self._live.discard(watch)
            bridge.watch(self._indexes[dpid], table, self.walk.watch_fields(icmp), watch[3],
                         add=False)
        self._barriers.add((dpid, bridge.barrier()))
        return True

    def end(self, now: float, error: str | None = None) -> None:
        """Stop: delete the watches, and say where the path broke."""
        self.done = True
        for dpid, index in self._indexes.items():
            if dpid in self.bridges:
                self.bridges[dpid].free_index(index)
        if self._catch is not None and self.probe.request.dpid in self.bridges:
            self.bridges[self.probe.request.dpid].release(self._catch, now)
        if error:
            self.broken_at = dict(self._broken(*self._breaking()) if self._observed else {
                'direction': None, 'dpid': None, 'table': None, 'flow': None},
                reason=None, detail=error)
        elif self._observed:
            self.broken_at = self._broken(*self._breaking())

    def _breaking(self) -> tuple:
        """The observation where the path broke. Each bridge's last one in the final
        direction is where the packet ended there: a flooded packet ends on several. One
        that a flow dropped is the break, if any is; else the last of them."""
        direction = self._observed[-1][0]
        ends = {}
        for i, seen in enumerate(self._observed):
            if seen[0] == direction:
                ends[seen[1]] = self._ending(i)
        dropped = [e for e in ends.values() if e[5] in ('dropped', 'no-flow', 'controller')]
        return dropped[-1] if dropped else self._ending(len(self._observed) - 1)

    def _ending(self, i: int) -> tuple:
        """Observation i, unless the packet was sent out of a port on that bridge before
        a copy of it went on to be dropped there (OVN outputs to the tunnel, then
        resubmits for local ports): then that output."""
        last = self._observed[i]
        if last[5] in ('dropped', 'no-flow'):
            for seen in reversed(self._observed[:i]):
                if seen[:2] != last[:2]:
                    continue
                if seen[3] is not None and pipeline.outputs(seen[3]):
                    return seen[:5] + ('output', pipeline.outputs(seen[3])[0])
        return last

    def _broken(self, direction, dpid, table, flow, fields, kind, arg) -> dict:
        request = self.probe.request
        detail = describe_effect(kind, arg)
        if kind == 'normal':
            detail += ' (to %s)' % fields.get('eth_dst')
        if kind in REASON:
            reason = REASON[kind]
        elif kind == 'goto':
            reason = 'no-flow' if not any(f.table == arg for f in self._flows[dpid]) \
                else 'left-on-port'
            detail += ', and was not seen there' + (' again' if reason != 'no-flow' else '')
        elif direction == 'reply' and dpid == request.dpid:
            reason = 'not-delivered'
        elif (direction == 'request' and not int(fields['eth_dst'][:2], 16) & 1
              and (kind == 'normal' or arg in self.bridges[dpid].ports)
              and not (flow and pipeline.tunnels(flow))):
            reason = 'no-answer'    # toward a unicast MAC: the next hop, or the destination
        else:
            reason = 'left-on-port'
        port = self.bridges[dpid].ports.get(arg) if kind == 'output' else None
        if port is not None:
            detail += ' (%s)' % port.name
        elif kind == 'output' and arg is not None:
            detail += ' (no such port)'
        tunnel = pipeline.tunnels(flow) if flow else {}
        if 'tun_ipv4_dst' in tunnel:
            detail += ', tunnel to %s' % tunnel['tun_ipv4_dst']
        if fields.get('tun_ipv4_src'):
            detail += '; it came through a tunnel from %s' % fields['tun_ipv4_src']
        return {'direction': direction, 'dpid': '%016x' % dpid, 'table': table,
                'flow': flow.to_json() if flow is not None else None, 'reason': reason,
                'detail': detail}


def watch_keys(bridge: Bridge, table: int) -> list[tuple[str, int]]:
    """The contexts a packet may enter a table in more than once, each watched apart:
    table 0 by in_port (a packet back from a router namespace), the others by metadata
    (OVN's logical datapath: a routed packet crosses the same tables once per datapath)."""
    if table == 0:
        return [('in_port', port) for port in sorted(bridge.ports)]
    values = {dict(f.match).get('metadata') for f in bridge.flows if f.table == table}
    return [('metadata', v) for v in sorted(v for v in values if isinstance(v, int))]


def _key(table: int, fields: dict) -> tuple[str, int]:
    name = 'in_port' if table == 0 else 'metadata'
    return name, fields.get(name, 0)


def step(direction: str, dpid: int, table: int, flow, fields: dict, kind: str, arg,
         elapsed: float) -> dict:
    """One observation of a path: where a probe packet was seen, the flow it met there,
    what that flow did with it, and when (µs after its echo was sent)."""
    return {'direction': direction, 'dpid': '%016x' % dpid, 'table': table,
            'flow': flow.to_json() if flow is not None else None,
            'in_port': fields.get('in_port'), 'action': describe_effect(kind, arg),
            'time_us': round(elapsed * 1e6)}
