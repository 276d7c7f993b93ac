"""Addresses the operator did not give: MACs found by asking the network, as the VM would.

A probe request may leave out `src_mac`, `dst_mac` or both. Before its echoes go out:

* **the source VM's own MAC**: a question that claims no address, sent out of its port
  straight to it: for IPv4 an ARP probe (RFC 5227: sender IP 0.0.0.0), whose reply is
  addressed to our own MAC (app_mac); for IPv6 a neighbour solicitation from :: (as
  duplicate address detection sends it), answered to all-nodes. A flow of ours in table
  0 takes exactly that answer from the VM's port (for IPv6: an advertisement of the
  VM's own address, for the second it is asked). No answer: `source-not-answering`,
  which also says the VM is not alive at L2.
* **the next hop's MAC** (the destination's, or the `gateway`'s): an ARP request or a
  neighbour solicitation injected as the source VM, from its port, through the bridge's
  pipeline, as the VM's own would be; the answer is copied to us by a copy catch over
  the flows that deliver to the VM's port, and delivered to the VM as it would have
  been. Its last request goes out on that catch laid anew (Bridge.lay_again). No
  answer: `next-hop-unresolved`.

Answers are kept CACHE_SECONDS, keyed by (dpid, port, IP). Like the rest of the core,
this has no event loop: `tick(now)` sends what is due and gives the next deadline.
"""
import collections
import ipaddress
from dataclasses import dataclass, field
from typing import Callable

from ryu_apps import packet
from ryu_apps.bridge import Bridge, Catch

CACHE_SECONDS = 30.0
# Lookups asking at once, per switch; the rest wait their turn. Each asks with a broadcast
# that every VM of the segment receives, and lays a catch (FlowMods): more at once only
# makes every answer later, not the whole sooner. Measured on a 2,450-pair mesh of live VMs
# with no MAC (from 10 switches, each request flooded to the 100 VMs of 20), the machine
# loaded: with no limit, 444 false next-hop-unresolved; with 32, answers up to 3.2 s after
# the first request and 10 false in 2 runs of 18; with 8, answers within 1.0 s (p50
# 0.14-0.24 s), none false in 10 runs, and the mesh no slower (11-20 s against 9-30 s).
IN_FLIGHT = 8
# As a Linux VM asks before its ping says "Destination Host Unreachable" (ucast/mcast_solicit
# 3, retrans_time 1 s): an answer slower than that would fail the tenant too, and a faster
# give-up was wrong under load (measured: 4 tries 0.25 s apart gave 15 false
# next-hop-unresolved of a 2,450-pair mesh of live VMs, whose answers came late).
TRIES = 3
TRY_EVERY = 1.0           # seconds between ARP requests of one lookup
READY_TIMEOUT = 5.0       # for the switch to confirm our flows


def app_mac(controller_id: int) -> str:
    """Our own MAC for the source ARP probes' replies: locally administered, unicast,
    and ours alone (it carries the controller id)."""
    return '0a:72:70:00:%02x:%02x' % (controller_id >> 8, controller_id & 0xff)


@dataclass(eq=False)
class Lookup:
    dpid: int
    in_port: int
    ip: str
    as_vm: tuple[str, str] | None       # (MAC, IP) we ask as; None: ask the VM itself
    started: float
    waiters: list[Callable] = field(default_factory=list)
    catch: Catch | None = None          # next hop: the copy catch of the replies
    index: int | None = None            # source: our flow's cookie index
    ready_at: float | None = None       # source: when our flow is live
    tries: int = 0
    next_at: float = 0.0
    laid_again: bool = False            # next hop: the catch laid anew for the last try

    @property
    def started_asking(self) -> bool:
        return self.catch is not None or self.index is not None


class Resolver:
    """Every lookup in flight, and the answers of the last CACHE_SECONDS."""

    def __init__(self, bridges: dict[int, Bridge], settings, counters):
        self.bridges, self.settings, self.counters = bridges, settings, counters
        self.mac = app_mac(settings.controller_id)
        self.cache: dict[tuple[int, int, str], tuple[str, float]] = {}
        self.lookups: dict[tuple, Lookup] = {}
        self._by_catch: dict[int, tuple] = {}      # id(catch) -> lookup key
        self._by_index: dict[int, tuple] = {}      # our flow's cookie index -> lookup key
        self._waiting: dict[int, collections.deque] = {}   # dpid -> keys not asking yet
        self._asking: dict[int, int] = {}          # dpid -> lookups asking now

    def resolve(self, dpid: int, in_port: int, ip: str, as_vm: tuple[str, str] | None,
                now: float, done: Callable) -> None:
        """done(MAC or None, now, error or None) once the answer is known: at once if
        cached."""
        key = (dpid, in_port, ip, as_vm)
        cached = self.cache.get(key[:3])
        if cached and cached[1] > now:
            self.counters['resolved_cached'] += 1
            done(cached[0], now, None)
            return
        lookup = self.lookups.get(key)
        if lookup is None:
            lookup = self.lookups[key] = Lookup(dpid, in_port, ip, as_vm, now)
            self._waiting.setdefault(dpid, collections.deque()).append(key)
            self._start_waiting(dpid, now)
        lookup.waiters.append(done)

    def _start_waiting(self, dpid: int, now: float) -> None:
        waiting = self._waiting.get(dpid)
        while waiting and self._asking.get(dpid, 0) < IN_FLIGHT:
            key = waiting.popleft()
            lookup = self.lookups.get(key)
            if lookup is None:
                continue
            self._asking[dpid] = self._asking.get(dpid, 0) + 1
            lookup.started = now
            self._arm(lookup, now)
            if lookup.catch is not None:
                self._by_catch[id(lookup.catch)] = key
            else:
                self._by_index[lookup.index] = key

    def _arm(self, lookup: Lookup, now: float) -> None:
        bridge = self.bridges[lookup.dpid]
        if lookup.as_vm is None:
            lookup.index = bridge.reserve_index()
            bridge.answer_watch(lookup.index, self._own_answer(lookup))
            lookup.ready_at = now + self.settings.catch_settle
        else:
            mac, ip = lookup.as_vm
            lookup.catch = bridge.catch(lookup.in_port, answer_fields(lookup.ip, mac, ip),
                                        now + READY_TIMEOUT + TRIES * TRY_EVERY, now,
                                        copy=True)
        lookup.next_at = now

    def _own_answer(self, lookup: Lookup) -> dict:
        """What the VM's answer about its own address looks like, as it enters its port."""
        if _v6(lookup.ip):
            return dict(in_port=lookup.in_port, eth_type=packet.ETH_IPV6,
                        ip_proto=packet.ICMPV6, icmpv6_type=packet.NEIGHBOR_ADVERTISEMENT,
                        ipv6_nd_target=lookup.ip)
        return dict(in_port=lookup.in_port, eth_dst=self.mac, eth_type=packet.ETH_ARP,
                    arp_spa=lookup.ip)

    def tick(self, now: float) -> float | None:
        deadlines = []
        for key, lookup in list(self.lookups.items()):
            bridge = self.bridges.get(lookup.dpid)
            if bridge is None:
                self._end(key, lookup, None, now, 'switch %016x disconnected' % lookup.dpid)
                continue
            if not lookup.started_asking:
                continue
            ready = lookup.ready_at if lookup.catch is None else lookup.catch.ready_at
            if ready is None or ready > now:
                if now - lookup.started > READY_TIMEOUT or (
                        lookup.catch is not None and lookup.catch.error):
                    self._end(key, lookup, None, now, 'could not ask for %s: the switch did '
                              'not confirm our flows' % lookup.ip)
                else:
                    deadlines.append(ready if ready is not None else now + TRY_EVERY)
                continue
            if lookup.catch is not None and not lookup.catch.shadows:
                self._end(key, lookup, None, now, 'could not ask for %s: no flow of the '
                          'switch delivers to port %d' % (lookup.ip, lookup.in_port))
                continue
            if lookup.next_at <= now:
                if lookup.tries == TRIES:
                    self._end(key, lookup, None, now)
                    continue
                if (lookup.tries == TRIES - 1 and lookup.catch is not None
                        and not lookup.laid_again):
                    # the last try on the catch laid anew: the datapath may have cached a
                    # flow for the answer without it (Bridge.lay_again)
                    lookup.laid_again = True
                    bridge.lay_again(lookup.catch, now + READY_TIMEOUT + TRY_EVERY, now)
                    deadlines.append(now + TRY_EVERY)
                    continue
                self._ask(bridge, lookup)
                lookup.tries += 1
                lookup.next_at = now + TRY_EVERY
            deadlines.append(lookup.next_at)
        return min(deadlines, default=None)

    def port_gone(self, dpid: int, port_no: int, now: float, why: str) -> None:
        """The port under that number is gone: its answers are forgotten, and its
        lookups end in error (we can no longer ask as it, nor it)."""
        for key in [k for k in self.cache if k[:2] == (dpid, port_no)]:
            del self.cache[key]
        for key, lookup in [(k, v) for k, v in self.lookups.items()
                            if (v.dpid, v.in_port) == (dpid, port_no)]:
            if key in self.lookups:
                self._end(key, lookup, None, now, why)

    def _ask(self, bridge: Bridge, lookup: Lookup) -> None:
        self.counters['arp_requests' if not _v6(lookup.ip) else 'neighbor_solicitations'] += 1
        target = packet.ip_bytes(lookup.ip)
        if lookup.as_vm is None:       # to the VM itself, out of its port
            frame = (packet.neighbor_solicitation(packet.mac_bytes(self.mac), None, target)
                     if _v6(lookup.ip) else
                     packet.arp_request(packet.mac_bytes(self.mac), None, target))
            bridge.send_out(lookup.in_port, frame)
        else:                          # as the VM, into the pipeline
            bridge.inject(lookup.in_port, question(*lookup.as_vm, lookup.ip))

    def packet_in(self, dpid: int, msg, caught, now: float) -> bool:
        """Whether the PacketIn was an answer to one of our lookups (taken, then)."""
        key = self._by_catch.get(id(caught[0])) if caught else None
        if key is None:
            bridge = self.bridges[dpid]
            key = next((k for index, k in self._by_index.items()
                        if k[0] == dpid and bridge.is_watch(msg, index)), None)
        lookup = self.lookups.get(key) if key else None
        if lookup is None or lookup.dpid != dpid:
            return False
        self.counters['packet_ins'] += 1
        mac = mac_in(lookup.ip, msg.data)
        if mac is not None:
            self.cache[key[:3]] = (mac, now + CACHE_SECONDS)
            self._end(key, lookup, mac, now)
        return True

    def _end(self, key: tuple, lookup: Lookup, mac: str | None, now: float,
             error: str | None = None) -> None:
        """The lookup is over: `mac`, or None with no `error` (asked, and no answer
        came: a verdict), or an `error` (we could not ask: never a verdict)."""
        del self.lookups[key]
        self._by_catch.pop(id(lookup.catch), None)
        self._by_index.pop(lookup.index, None)
        if lookup.started_asking:
            self._asking[lookup.dpid] -= 1
        bridge = self.bridges.get(lookup.dpid)
        if bridge is not None:
            if lookup.catch is not None:
                bridge.release(lookup.catch, now)
            if lookup.index is not None:
                bridge.free_index(lookup.index)
        self.counters['resolved' if mac else 'unresolved' if not error
                      else 'resolve_errors'] += 1
        for done in lookup.waiters:
            done(mac, now, error)
        if bridge is not None:
            self._start_waiting(lookup.dpid, now)


def question(mac: str, ip: str, target: str) -> bytes:
    """Who has `target`: an ARP request (or a neighbour solicitation) from the VM at
    `mac`, `ip`, as its own kernel would send it."""
    mac_b, ip_b, target_b = packet.mac_bytes(mac), packet.ip_bytes(ip), packet.ip_bytes(target)
    return (packet.neighbor_solicitation(mac_b, ip_b, target_b) if _v6(target)
            else packet.arp_request(mac_b, ip_b, target_b))


def answer_fields(target: str, mac: str, ip: str) -> dict:
    """What the answer about `target` to the VM at `mac`, `ip` carries, where it is
    delivered."""
    if _v6(target):
        return dict(eth_type=packet.ETH_IPV6, ip_proto=packet.ICMPV6,
                    icmpv6_type=packet.NEIGHBOR_ADVERTISEMENT, icmpv6_code=0,
                    eth_dst=mac, ipv6_dst=ip, ipv6_nd_target=target)
    return dict(eth_type=packet.ETH_ARP, arp_op=packet.ARP_REPLY, eth_dst=mac,
                arp_tpa=ip, arp_spa=target)


def mac_in(target: str, data: bytes) -> str | None:
    """The MAC an answer gives for `target`, if it is one."""
    if _v6(target):
        na = packet.parse_neighbor_advertisement(data)
        ok = na is not None and na.target == packet.ip_bytes(target) and na.target_mac
        return packet.mac_text(na.target_mac) if ok else None
    arp = packet.parse_arp(data)
    ok = arp is not None and arp.op == packet.ARP_REPLY and arp.spa == packet.ip_bytes(target)
    return packet.mac_text(arp.sha) if ok else None


def _v6(ip: str) -> bool:
    return ipaddress.ip_address(ip).version == 6
