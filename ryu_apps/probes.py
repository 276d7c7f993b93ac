"""Probes: what was asked, what was sent, what came back, and the verdict.

`Prober` owns every bridge and every probe and has no event loop. The Ryu shim feeds
it switch events and the time (`now`, monotonic seconds) and calls `tick(now)` at the
deadline `tick` returns. A probe's life:

    start    -> the bridge installs (or shares) the source's catch flow, plus a barrier
    confirmed-> the barrier reply arms the probe `catch_settle` seconds later
    tick     -> echo i goes out at armed + i * interval, with a sequence number unique
                among the bridge's outstanding echoes and the probe's secret token
    reply    -> a PacketIn counts if dye, sequence, addresses and token all match
    tick     -> an echo unanswered after `timeout` is lost; when every echo is
                answered or lost, the probe is done and its catch released

A confirmed flow is not yet a live one: for a few milliseconds after the FlowMod the
datapath may go on using flows it cached before, and miss replies (measured: with no
settle time, 199 of 200 first replies were missed while tenant traffic flowed). Each
path a reply can take has its own cached flow, so one caught reply proves nothing for
another probe. So while the catch flow is young (RETRANSMIT_WINDOW catch_settles), a
probe's first echo is sent again, same sequence number, after catch_settle, then 2x,
4x, ... that, until it is answered. A probe does not read unreachable because its catch
flow was new; an old catch flow costs no retransmissions, and the window is short so
that a sweep of a congested network does not add to the congestion.
"""
import collections
import dataclasses
import heapq
import secrets
from dataclasses import asdict, dataclass, field
from typing import Callable

from ryu_apps import icmp, kinds, trace
from ryu_apps.resolve import Resolver
from ryu_apps.trace import Trace
from ryu_apps.bridge import Bridge, Catch, Port, Send
from ryu_apps.options import Settings

TOKEN_BYTES = 16
# How long a probe waits for the switch to confirm its catch flow before giving up.
ARM_TIMEOUT = 5.0
# The echo rate limit lets a burst of this many seconds' worth through at once.
BURST_SECONDS = 0.01
# For how many catch_settles after a catch flow is confirmed first echoes are
# retransmitted (250 ms by default: OVS revalidated its cached flows within 5 ms here;
# a loaded switch wants a larger catch_settle, which widens the window too).
RETRANSMIT_WINDOW = 25
RUNNING, DONE, CANCELLED, ERROR = 'running', 'done', 'cancelled', 'error'
# What a verdict covers, by whether the replies kept our mark.
COVERS = {
    'kept': "the destination answered and the source bridge's pipeline delivered the reply "
            "to the source VM's port (taken at the flow that outputs it)",
    'lost': "the path cleared or rewrote the DSCP mark: the reply was seen at the flow that "
            "delivers it to the source VM's port, and the VM got it too",
    None: 'no reply reached a flow that delivers to the source VM, marked or not',
    'taken': "answers are taken at the flow of the source bridge that delivers them to the "
             "source VM's port (TCP and UDP: the exact 4-tuple; ARP, ICMP errors: copied)",
}


def format_dpid(dpid: int) -> str:
    return '%016x' % dpid


@dataclass(frozen=True)
class ProbeRequest:
    """A validated, normalised probe request."""
    dpid: int
    in_port: int
    src_mac: str | None             # None: asked of the VM (resolve.py)
    src_ip: str | None              # None: not needed (dhcp, with src_mac given)
    dst_mac: str | None             # None: the next hop's, asked as the VM
    dst_ip: str | None              # None: not needed (dhcp)
    count: int = 3
    interval: float = 0.2
    timeout: float = 1.0
    gateway: str | None = None      # the next hop, for an off-subnet destination
    kind: str = 'icmp'              # kinds.py
    dst_port: int | None = None     # tcp, udp
    payload: str | None = None      # udp: hex

    @property
    def duration(self) -> float:
        """The longest a probe can run once armed."""
        return (self.count - 1) * self.interval + self.timeout

    def to_json(self) -> dict:
        return {name: value for name, value in dict(asdict(self), dpid=format_dpid(
            self.dpid)).items() if value is not None or name not in ('dst_port', 'payload')}


@dataclass
class Echo:
    seq: int
    sent_at: float              # its timeout runs from here
    last_sent: float            # the RTT runs from here (the newest copy)
    retransmits: int = 0
    rtt: float | None = None    # seconds, once answered
    lost: bool = False
    suspended: bool = False     # our flows were deleted under it: it is sent again
    dscp: int | None = None     # of its reply
    answer: str | None = None   # what the reply said (kinds.py: 'reply', 'open'...)
    fields: dict | None = None  # and what it told

    @property
    def pending(self) -> bool:
        return self.rtt is None and not self.lost


@dataclass
class Probe:
    id: str
    request: ProbeRequest
    created_at: float
    mark_value: int = 0
    token: bytes = field(default_factory=lambda: secrets.token_bytes(TOKEN_BYTES))
    state: str = RUNNING
    error: str | None = None
    echoes: list[Echo] = field(default_factory=list)
    duplicates: int = 0
    second: bool = False            # the second round, after a first with no answer at all
    first_sent: int = 0             # attempts of the first round, once it is over
    path: list[dict] = field(default_factory=list)
    broken_at: dict | None = None
    reinstalls: int = 0
    catches: list[Catch] = field(default_factory=list)
    frame: Callable[[int], bytes] | None = None   # attempt by sequence number (kinds.py)
    reset: Callable[[int], bytes] | None = None   # tcp: the RST after a SYN-ACK
    reply_from: tuple = ()          # the addresses its answers carry (kinds.py)
    ident: int | None = None        # its kind's number, unique on the bridge: a source port
    round_at: float = 0.0           # when this round (first, then second) began
    armed_at: float | None = None   # when echo 0 is due
    due: float | None = None        # the probe's next deadline
    blocked: bool = False           # waiting for the echo rate limit
    stored: bool = True             # kept with the results once done (a monitor keeps its own)
    outcome: str | None = None      # a verdict before any echo: the addresses did not resolve

    @property
    def family(self) -> icmp.Family:
        return icmp.family(self.request.src_ip or '0.0.0.0')

    @property
    def kind(self) -> kinds.Kind:
        return kinds.KINDS[self.request.kind]

    @property
    def ready_at(self) -> float | None:
        """When all its catches are live; None: not all are confirmed."""
        ready = [c.ready_at for c in self.catches]
        return None if not ready or None in ready else max(ready)

    @property
    def lost_at(self) -> float | None:
        return max((c.lost_at for c in self.catches if c.lost_at is not None), default=None)

    @property
    def shadows(self) -> bool:
        """Whether a flow delivers its answers to the source port."""
        return bool(self.catches and self.catches[0].shadows)

    @property
    def received(self) -> int:
        return sum(1 for e in self.echoes if e.rtt is not None)

    @property
    def verdict(self) -> str | None:
        if self.state != DONE:
            return None
        if self.outcome is not None:
            return self.outcome
        return self.kind.verdict(self)

    @property
    def mark(self) -> str | None:
        """'kept' or 'lost': whether the replies came back with our DSCP mark."""
        marks = [e.dscp for e in self.echoes if e.dscp is not None]
        if not marks:
            return None
        return 'lost' if self.second and self.mark_value not in marks else 'kept'

    def to_json(self) -> dict:
        rtts = [e.rtt * 1000 for e in self.echoes if e.rtt is not None]
        resolved = [e for e in self.echoes if e.rtt is not None or e.lost]
        lost = sum(1 for e in resolved if e.lost)
        return {
            'id': self.id,
            'state': self.state,
            'verdict': self.verdict,
            'sent': len(self.echoes),
            'received': len(rtts),
            'loss': round(lost / len(resolved), 4) if resolved else None,
            'rtt_ms': {'min': round(min(rtts), 3), 'avg': round(sum(rtts) / len(rtts), 3),
                       'max': round(max(rtts), 3)} if rtts else None,
            'replies': [dict({'seq': e.seq, 'rtt_ms': round(e.rtt * 1000, 3)},
                             **({'answer': e.answer} if e.answer != 'reply' else {}),
                             **(e.fields or {}))
                        for e in self.echoes if e.rtt is not None],
            'duplicates': self.duplicates,
            'retransmits': sum(e.retransmits for e in self.echoes),
            'flows_reinstalled': self.reinstalls,
            'observed_at': 'source-port',
            'mark': self.mark,
            'covers': COVERS[self.mark] if self.kind.marked else COVERS['taken'],
            'path': self.path,
            'broken_at': self.broken_at,
            'error': self.error,
            'request': self.request.to_json(),
            **self.kind.summary(self),
        }


class ProbeError(Exception):
    """A request that cannot run; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def port_of(bridges: dict[int, Bridge], dpid: int, key: int | str) -> Port:
    """A connected switch's port, by number or name; ProbeError says why not."""
    bridge = bridges.get(dpid)
    if bridge is None:
        raise ProbeError(404, 'dpid: no connected switch %s' % format_dpid(dpid))
    if not bridge.ports_known:
        raise ProbeError(503, 'dpid: switch %s is connecting (its ports are not known '
                         'yet): try again' % format_dpid(dpid))
    port = bridge.find_port(key)
    if port is None:
        raise ProbeError(404, 'in_port: switch %s has no port %r' % (format_dpid(dpid), key))
    return port


class Prober:
    """Every bridge and every probe of the app."""

    def __init__(self, settings: Settings, on_done: Callable[[Probe], None] = lambda p: None):
        self.settings = settings
        self.on_done = on_done
        self.bridges: dict[int, Bridge] = {}
        self.seen: set[int] = set()         # every dpid that ever connected
        self.counters: collections.Counter = collections.Counter()
        self.running: dict[str, Probe] = {}
        self.finished: collections.OrderedDict[str, Probe] = collections.OrderedDict()
        # (dpid, *key) -> the probe an answer with that key is for (kinds.py)
        self._outstanding: dict[tuple, Probe] = {}
        self._next_seq: dict[tuple, int] = {}
        self._timers: list[tuple[float, int, str]] = []   # (when, tiebreak, probe id)
        self._tiebreak = 0
        self._tokens, self._tokens_at = self._burst, 0.0   # the echo rate limit
        self._blocked: collections.deque[Probe] = collections.deque()
        self.trace: Trace | None = None      # one at a time
        self._traces: collections.deque[Probe] = collections.deque()
        self.resolver = Resolver(self.bridges, settings, self.counters)
        self.woken = False

    # --- switches ------------------------------------------------------------------

    def connect(self, dpid: int, send: Send, now: float) -> Bridge:
        """A switch (re)connected: set the session up and sweep stale flows."""
        if dpid in self.bridges:
            self.disconnect(dpid, now)
        self.seen.add(dpid)
        bridge = self.bridges[dpid] = Bridge(dpid, send, self.settings, self.counters)
        bridge.connect()
        return bridge

    def disconnect(self, dpid: int, now: float) -> None:
        """The switch is gone: its probes end in error (its catch flows time out)."""
        bridge = self.bridges.pop(dpid, None)
        if bridge is None:
            return
        bridge.send = lambda msg: None
        if self.trace is not None and dpid in self.trace.bridges:
            del self.trace.bridges[dpid]
            self.trace.end(now, 'switch %s disconnected during the trace' % format_dpid(dpid))
            self._trace_done(now)
        for probe in [p for p in self.running.values() if p.request.dpid == dpid]:
            self._finish(probe, ERROR, now,
                         'switch %s disconnected' % format_dpid(dpid))

    def port_status(self, dpid: int, port: Port, deleted: bool, now: float) -> None:
        """A port was added, changed or deleted. When its number no longer names the
        port it named (deleted, or another port plugged in under it), whatever runs from
        that number ends in error: a probe must never go on injecting on a number that
        is now another VM's, or nobody's."""
        bridge = self.bridges.get(dpid)
        old = bridge and bridge.port_changed(port, deleted)
        if not old:
            return
        why = ('port %d (%s) of switch %s was %s' % (
            old.port_no, old.name, format_dpid(dpid),
            'deleted' if deleted else 'replaced by port %s' % port.name))
        for probe in [p for p in self.running.values()
                      if p.request.dpid == dpid and p.request.in_port == old.port_no]:
            self._finish(probe, ERROR, now, why + ' during the probe: no verdict')
        self.resolver.port_gone(dpid, old.port_no, now, why)
        bridge.forget_port(old.port_no)

    # --- probes --------------------------------------------------------------------

    def start_all(self, requests: list[ProbeRequest], now: float,
                  store: bool = True) -> list[Probe]:
        """Start every probe, or (ProbeError) none of them."""
        if len(self.running) + len(requests) > self.settings.max_active_probes:
            raise ProbeError(429, 'too many probes running (max_active_probes=%d)'
                             % self.settings.max_active_probes)
        keys = set()
        for request in requests:
            self._check(request, keys)
        return [self._start(request, now, store) for request in requests]

    def start(self, request: ProbeRequest, now: float, store: bool = True) -> Probe:
        return self.start_all([request], now, store)[0]

    def ready(self, dpid: int) -> Bridge | None:
        """The switch's bridge, once it is connected and its ports are known."""
        bridge = self.bridges.get(dpid)
        return bridge if bridge is not None and bridge.ports_known else None

    def _check(self, request: ProbeRequest, keys: set) -> None:
        port_of(self.bridges, request.dpid, request.in_port)
        kind = kinds.KINDS[request.kind]
        if kind.ident_range is None and not kind.per_echo:   # arp: its answers name no probe
            key = (request.dpid,) + kind.key(Probe('', request, 0.0), 0)
            if key in self._outstanding or key in keys:
                raise ProbeError(409, 'kind: an arp probe from %s for %s is already running '
                                 'on switch %s' % (request.src_ip, request.dst_ip,
                                                    format_dpid(request.dpid)))
            keys.add(key)

    def _start(self, request: ProbeRequest, now: float, store: bool) -> Probe:
        self.counters['probes_started'] += 1
        probe = Probe(id=secrets.token_hex(6), request=request, created_at=now,
                      round_at=now, mark_value=self.settings.dscp, stored=store)
        self.running[probe.id] = probe
        kind = probe.kind
        if not kind.per_echo:
            if kind.ident_range is not None:
                probe.ident = self._free_seq(request.dpid, kind.name, kind.ident_range)
            if probe.ident is None and kind.ident_range is not None:
                self._finish(probe, ERROR, now, 'no free %s source port on the switch'
                             % kind.name)
                return probe
            self._outstanding[(request.dpid,) + kind.key(probe, 0)] = probe
        self._resolve(probe, now)
        return probe

    def _resolve(self, probe: Probe, now: float) -> None:
        """Find the MACs the request left out (resolve.py), then start the echoes."""
        request = probe.request
        if request.src_mac is None:
            self.resolver.resolve(request.dpid, request.in_port, request.src_ip, None, now,
                                  lambda mac, t, error: self._resolved(probe, 'src_mac', mac,
                                                                       t, error))
        elif request.dst_mac is None and probe.kind.wants_dst_mac:
            self.resolver.resolve(request.dpid, request.in_port,
                                  request.gateway or request.dst_ip,
                                  (request.src_mac, request.src_ip), now,
                                  lambda mac, t, error: self._resolved(probe, 'dst_mac', mac,
                                                                       t, error))
        else:
            probe.kind.wire(probe, self.settings)
            self._catch(probe, self.bridges[request.dpid], now)

    def _resolved(self, probe: Probe, name: str, mac: str | None, now: float,
                  error: str | None = None) -> None:
        if probe.state != RUNNING:
            return
        if error is not None:       # we could not ask: no verdict
            self._finish(probe, ERROR, now, error)
            return
        if mac is None:
            request = probe.request
            if name == 'src_mac':
                probe.outcome = 'source-not-answering'
                detail = ('%s did not answer %s for its own address out of port %d'
                          % (request.src_ip, probe.family.asks_itself, request.in_port))
            else:
                probe.outcome = 'next-hop-unresolved'
                detail = ('no %s for %s to %s, asked as the source VM from port %d'
                          % (probe.family.next_hop_answer, request.gateway or request.dst_ip,
                             request.src_ip, request.in_port))
            probe.broken_at = {'direction': 'request', 'dpid': format_dpid(request.dpid),
                               'table': None, 'flow': None, 'reason': probe.outcome,
                               'detail': detail}
            if name == 'dst_mac':                   # where did the request go?
                self._traces.append(probe)
                self._next_trace(now)
            else:
                self._finish(probe, DONE, now)
            return
        probe.request = dataclasses.replace(probe.request, **{name: mac})
        self._resolve(probe, now)

    def _catch(self, probe: Probe, bridge: Bridge, now: float) -> None:
        request = probe.request
        dscp = None if probe.second or not probe.kind.marked else self.settings.dscp
        probe.catches = [bridge.catch(request.in_port, fields, now + ARM_TIMEOUT
                                      + request.duration, now, copy)
                         for fields, copy in probe.kind.catches(probe, dscp)]
        ready = probe.ready_at is not None or any(c.error for c in probe.catches)
        self._schedule(probe, now if ready else now + ARM_TIMEOUT)

    def cancel(self, probe_id: str, now: float) -> Probe | None:
        probe = self.get(probe_id)
        if probe is not None and probe.state == RUNNING:
            self._finish(probe, CANCELLED, now)
        return probe

    def get(self, probe_id: str) -> Probe | None:
        return self.running.get(probe_id) or self.finished.get(probe_id)

    def probes(self) -> list[Probe]:
        """Running and finished probes, newest first."""
        every = list(self.running.values()) + list(self.finished.values())
        return sorted(every, key=lambda p: p.created_at, reverse=True)

    # --- switch events -------------------------------------------------------------

    def confirmed(self, dpid: int, xid: int, now: float) -> None:
        """A barrier reply: probes waiting on that catch arm after the settle time."""
        bridge = self.bridges.get(dpid)
        catch = bridge and bridge.confirmed(xid, now)
        if catch:
            for probe in self._probes_of(catch):
                if probe.ready_at is not None:
                    self._schedule(probe, probe.ready_at)
        if self.trace is not None:
            self.trace.confirmed(dpid, xid, now)

    def flow_stats(self, dpid: int, xid: int, body: list, more: bool, now: float) -> None:
        """A part of a flow table read: catches whose flows changed are laid anew."""
        bridge = self.bridges.get(dpid)
        if bridge is not None:
            for catch in bridge.flow_stats(xid, body, more, now):
                self._suspend(catch, now)
            if bridge.clash:    # its flows and ours replace each other: no verdict holds
                for probe in [p for p in self.running.values() if p.request.dpid == dpid]:
                    self._finish(probe, ERROR, now, bridge.clash)
            if not more:        # echoes waiting for this read to be declared lost
                for probe in [p for p in self.running.values() if p.request.dpid == dpid
                              and p.ready_at is not None]:
                    self._schedule(probe, now)
        if self.trace is not None and not more:
            self.trace.flows_read(now)

    def removed(self, dpid: int, cookie: int, reason: int, now: float) -> None:
        """A FLOW_REMOVED: if it was one of a catch's flows, its probes' outstanding
        echoes wait until the catch is back, then go again; none is counted lost."""
        bridge = self.bridges.get(dpid)
        catch = bridge and bridge.removed(cookie, reason, now)
        if catch:
            self._suspend(catch, now)

    def _suspend(self, catch: Catch, now: float) -> None:
        for probe in self._probes_of(catch):
            probe.reinstalls += 1
            for echo in probe.echoes:
                if echo.pending:
                    echo.suspended = True
            self._schedule(probe, now + ARM_TIMEOUT)

    def refused(self, dpid: int, xid: int, reason: str, now: float) -> bool:
        """An OpenFlow error for one of our messages; False if it does not matter."""
        bridge = self.bridges.get(dpid)
        if bridge is not None and bridge.ignores(xid):
            return False
        catch = bridge and bridge.refused(xid, reason)
        if catch:
            for probe in self._probes_of(catch):
                self._finish(probe, ERROR, now, 'switch refused the catch flow: ' + reason)
        return True

    def packet_in(self, dpid: int, msg, now: float) -> Probe | None:
        """A PacketIn; the probe it answered, if it answered one."""
        bridge = self.bridges.get(dpid)
        caught = bridge and bridge.catch_of(msg)
        resolved = bridge is not None and self.resolver.packet_in(dpid, msg, caught, now)
        if resolved:
            self.woken = True       # a probe may go on: the shim runs tick() at once
            if not caught:
                return None
        if self.trace is not None and self.trace.packet_in(dpid, msg, caught, now):
            self.counters['packet_ins'] += 1
            self.counters['trace_packet_ins'] += 1
            probe = self.trace.probe
            if self.trace.done:
                self._trace_done(now)
            return probe
        if not caught:
            return None
        probe, echo = self._reply(dpid, msg, now)
        if probe is None and resolved:      # an answer the resolver asked for
            return None
        self.counters['packet_ins'] += 1
        if probe is None:
            reply = kinds.Echo.parse(msg.data)
            catch = caught[0]
            if reply is not None and reply.ident == self.settings.dye:
                self.counters['late_replies'] += 1   # a retransmitted echo's twin, say
            else:
                self.counters['tenant_packet_ins'] += 1
                if catch.dscp is not None:   # a tenant's packet with our mark
                    bridge.tenant_at = now
                if catch.takes:         # on to the VM, as it was going
                    self.counters['handed_on'] += 1
                    shadow = caught[1]
                    bridge.hand_on(catch.in_port, shadow and shadow.over, msg.data,
                                   msg.match.get('in_port'))
        elif echo is not None and not probe.path:   # the first answer shows its last step
            shadow = caught[1]
            probe.path.append(trace.step(
                'reply', dpid, msg.table_id, shadow and shadow.over, dict(msg.match.items()),
                'delivered', probe.request.in_port, now - echo.last_sent))
        return probe

    def _reply(self, dpid: int, msg, now: float) -> tuple[Probe | None, Echo | None]:
        """The probe (and the echo, unless it is a duplicate) that a PacketIn answers."""
        probe = next((found for kind in kinds.KINDS.values()
                      if (key := kind.key_of(msg.data)) is not None
                      and (found := self._outstanding.get((dpid,) + key)) is not None), None)
        answer = probe and probe.frame and probe.kind.read(probe, msg.data)
        if not answer:
            return None, None
        if answer.attempt is None:      # the oldest unanswered one
            echo = next((e for e in probe.echoes if e.pending), None)
        else:
            echo = next((e for e in probe.echoes if e.seq == answer.attempt), None)
            if echo is None:
                return None, None
        if echo is None or echo.rtt is not None:
            probe.duplicates += 1
            return probe, None
        if echo.suspended:      # a copy sent before our flows went, caught after all
            echo.suspended = False
        echo.rtt, echo.dscp = now - echo.last_sent, answer.dscp
        echo.answer, echo.fields = answer.outcome, answer.fields or None
        if answer.then is not None:
            self.bridges[dpid].inject(probe.request.in_port, answer.then)
        self.counters['replies'] += 1
        self._maybe_done(probe, now)
        return probe, echo

    # --- time ----------------------------------------------------------------------

    def tick(self, now: float) -> float | None:
        """Send due echoes, expire lost ones, finish probes; the next deadline."""
        while self._blocked and self._refill(now) >= 1:   # first come, first served
            probe = self._blocked.popleft()
            probe.blocked = False
            if probe.state == RUNNING:
                self._advance(probe, now)
        while self._timers and self._timers[0][0] <= now:
            when, _, probe_id = heapq.heappop(self._timers)
            probe = self.running.get(probe_id)
            if probe is not None and probe.due == when:
                self._advance(probe, now)
        due = None
        if self.trace is not None:
            due = self.trace.tick(now)
            if self.trace.done:
                self._trace_done(now)
        deadlines = [bridge.expire(now) for bridge in self.bridges.values()]
        deadlines.append(self.resolver.tick(now))
        if self.trace is not None:      # perhaps a new one (the resolver gave up): at once
            deadlines.append(now if due is None else due)
        if self._timers:
            deadlines.append(self._timers[0][0])
        if self._blocked:
            deadlines.append(now + (1 - self._tokens) / self.settings.max_echo_rate)
        return min((d for d in deadlines if d is not None), default=None)

    @property
    def _burst(self) -> float:
        return max(1.0, self.settings.max_echo_rate * BURST_SECONDS)

    def _refill(self, now: float) -> float:
        self._tokens = min(self._burst, self._tokens
                           + (now - self._tokens_at) * self.settings.max_echo_rate)
        self._tokens_at = now
        return self._tokens

    def _may_send(self, probe: Probe, now: float) -> bool:
        """Take a token of the echo rate limit, or queue the probe until there is one."""
        if self._refill(now) >= 1:
            self._tokens -= 1
            return True
        probe.due = None
        if not probe.blocked:
            probe.blocked = True
            self._blocked.append(probe)
        return False

    def _advance(self, probe: Probe, now: float) -> None:
        request, ready_at, lost_at = probe.request, probe.ready_at, probe.lost_at
        if ready_at is None:
            if any(c.error for c in probe.catches):
                self._finish(probe, ERROR, now, 'no catch flow: '
                             + next(c.error for c in probe.catches if c.error))
            elif lost_at is not None:
                if now >= lost_at + ARM_TIMEOUT:
                    self._finish(probe, ERROR, now, 'our flows on switch %s were deleted by '
                                 'another controller, and no flow delivers to port %d again'
                                 % (format_dpid(request.dpid), request.in_port))
                else:
                    self._schedule(probe, lost_at + ARM_TIMEOUT)
            elif now >= probe.round_at + ARM_TIMEOUT:
                self._finish(probe, ERROR, now, 'switch did not confirm the catch flow')
            else:
                self._schedule(probe, probe.round_at + ARM_TIMEOUT)
            return
        if ready_at > now:
            self._schedule(probe, ready_at)
            return
        if probe.armed_at is None:
            probe.armed_at = max(ready_at, probe.round_at)
        for echo in probe.echoes:
            if echo.suspended:      # our flows are back: send it again
                echo.suspended = False
                echo.sent_at = echo.last_sent = now
                self.bridges[request.dpid].inject(request.in_port, probe.frame(echo.seq))
            elif echo.pending and now >= echo.sent_at + request.timeout:
                # Lost, unless our flows were not all there: only a flow table read asked
                # for after its deadline can tell (another controller may have added a
                # delivery flow that has no shadow yet, and the reply took it).
                bridge = self.bridges[request.dpid]
                if bridge.flows_since >= echo.sent_at + request.timeout:
                    echo.lost = True
                    if probe.kind.per_echo:
                        del self._outstanding[(request.dpid,) + probe.kind.key(probe, echo.seq)]
                else:
                    bridge.read_flows(now)
        armed = probe.armed_at
        while (len(probe.echoes) < request.count
               and now >= armed + len(probe.echoes) * request.interval):
            if not self._may_send(probe, now) or not self._send_echo(probe, now):
                return
        if self._maybe_done(probe, now):
            return
        # an echo past its deadline waits for the flow table read (which reschedules us)
        deadlines = [max(e.sent_at + request.timeout, now + ARM_TIMEOUT * (
            e.sent_at + request.timeout <= now)) for e in probe.echoes if e.pending]
        if len(probe.echoes) < request.count:
            deadlines.append(armed + len(probe.echoes) * request.interval)
        first = probe.echoes[0] if probe.echoes else None
        if (first is not None and first.pending
                and now < ready_at + RETRANSMIT_WINDOW * self._backoff(0)):
            resend_at = first.last_sent + self._backoff(first.retransmits)
            if now >= resend_at:
                if not self._may_send(probe, now):
                    return
                first.retransmits += 1
                first.last_sent = now
                self.bridges[request.dpid].inject(request.in_port, probe.frame(first.seq))
                resend_at = now + self._backoff(first.retransmits)
            deadlines.append(resend_at)
        self._schedule(probe, min(deadlines))

    def _backoff(self, retransmits: int) -> float:
        return max(self.settings.catch_settle, 0.001) * 2 ** retransmits

    def _send_echo(self, probe: Probe, now: float) -> bool:
        dpid, kind = probe.request.dpid, probe.kind
        if kind.per_echo:
            seq = self._free_seq(dpid)
            if seq is None:
                self._finish(probe, ERROR, now, 'no free ICMP sequence number on the switch')
                return False
            self._outstanding[(dpid,) + kind.key(probe, seq)] = probe
        else:
            seq = kind.attempt_seq(probe)
        echo = Echo(seq=seq, sent_at=now, last_sent=now)
        probe.echoes.append(echo)
        self.bridges[dpid].inject(probe.request.in_port, probe.frame(seq))
        return True

    def _free_seq(self, dpid: int, space: str = 'echo',
                  values: range = range(1 << 16)) -> int | None:
        """A number of `space` (an ICMP sequence number, a source port...) that no
        outstanding probe of the bridge has."""
        at = self._next_seq.get((dpid, space), secrets.randbelow(len(values)))
        for _ in range(len(values)):
            at = (at + 1) % len(values)
            if (dpid, space, values[at]) not in self._outstanding:
                self._next_seq[(dpid, space)] = at
                return values[at]
        return None

    def _maybe_done(self, probe: Probe, now: float) -> bool:
        if len(probe.echoes) < probe.request.count or any(e.pending for e in probe.echoes):
            return False
        marked = probe.kind.marked
        if probe.received == 0 and not probe.second and probe.shadows:
            self._second_round(probe, now)
            return True
        bridge = self.bridges[probe.request.dpid]
        if (marked and probe.received < len(probe.echoes)
                and bridge.tenant_at >= probe.round_at):
            # Our meter drops PacketIns beyond packet_in_rate, and cannot tell a tenant's
            # marked replies from ours (OpenFlow 1.3 cannot match the ICMP identifier).
            self._finish(probe, ERROR, now, 'tenant traffic to %s carries our DSCP mark %d: '
                         'lost replies may be our meter\'s doing; give the app another '
                         '`mark`' % (probe.request.src_ip, self.settings.dscp))
            return True
        if marked and probe.received == 0 and probe.shadows:
            self._queue_trace(probe, now)
            return True
        if probe.received == 0 and not probe.shadows:   # nothing delivers to the source port
            probe.broken_at = self._undeliverable(probe)
        self._finish(probe, DONE, now)
        return True

    def _queue_trace(self, probe: Probe, now: float) -> None:
        """No reply, marked or not: find where the path breaks (trace.py)."""
        self._release(probe, now)
        self._traces.append(probe)
        self._next_trace(now)

    def _next_trace(self, now: float) -> None:
        while self.trace is None and self._traces:
            probe = self._traces.popleft()
            if probe.state != RUNNING:
                continue
            seq = self._free_seq(probe.request.dpid)
            if seq is None:
                self._finish(probe, DONE, now)
                continue
            self._outstanding[(probe.request.dpid, 'echo', seq)] = probe
            self.counters['traces'] += 1
            walk = None
            if probe.outcome == 'next-hop-unresolved':
                request = probe.request
                walk = trace.next_hop_walk(probe, request.gateway or request.dst_ip,
                                           self.resolver.mac, self.settings.trace_dscp)
            self.trace = Trace(probe, dict(self.bridges), self.settings, seq, now, walk)
            self.trace.start(now)

    def _trace_done(self, now: float) -> None:
        done, self.trace = self.trace, None
        probe = done.probe
        self._outstanding.pop((probe.request.dpid, 'echo', done.seq), None)
        if probe.state == RUNNING:
            probe.path = probe.path + done.path
            if probe.outcome is None:
                probe.broken_at = done.broken_at
            elif done.broken_at is not None:    # where the unanswered ARP request went
                probe.broken_at = dict(done.broken_at, reason=probe.outcome, detail='%s; the '
                                       'request was last seen: %s' % (probe.broken_at['detail'],
                                                                       done.broken_at['detail']))
            self._finish(probe, DONE, now)
        self._next_trace(now)

    def _second_round(self, probe: Probe, now: float) -> None:
        """No answer at all came back: send the attempts again before saying silence.
        A marked kind's path may clear the mark: its second round is caught by unmarked
        (copying) flows. Any kind's catch may have been missed by the datapath (measured:
        1 of ~4,500 udp probes to a closed port, under CPU hogs, heard nothing in 5 sends
        over 0.15 s; an ARP reply's datapath flow cached without our catch, for seconds:
        Bridge.lay_again): the other kinds' second round lays its catches anew, and
        waits for the switch to confirm them."""
        probe.second, probe.first_sent = True, len(probe.echoes)
        probe.echoes, probe.armed_at = [], None
        probe.round_at = now
        bridge = self.bridges[probe.request.dpid]
        if probe.kind.marked:
            self.counters['unmarked_rounds'] += 1
            self._release(probe, now)
            self._catch(probe, bridge, now)
        else:
            self.counters['second_rounds'] += 1
            for catch in probe.catches:
                bridge.lay_again(catch, now + ARM_TIMEOUT + probe.request.duration, now)
            self._advance(probe, now)

    def _undeliverable(self, probe: Probe) -> dict:
        request = probe.request
        return {'direction': 'reply', 'dpid': format_dpid(request.dpid), 'table': None,
                'flow': None, 'reason': 'not-delivered',
                'detail': 'no flow of the source bridge outputs to port %d' % request.in_port}

    def _finish(self, probe: Probe, state: str, now: float, error: str | None = None) -> None:
        probe.state, probe.error = state, error
        dpid, kind = probe.request.dpid, probe.kind
        for key in ([kind.key(probe, e.seq) for e in probe.echoes] if kind.per_echo
                    else [kind.key(probe, 0)]):
            if self._outstanding.get((dpid,) + key) is probe:
                del self._outstanding[(dpid,) + key]
        self._release(probe, now)
        if self.trace is not None and self.trace.probe is probe and not self.trace.done:
            self.trace.end(now)
            self._trace_done(now)
        del self.running[probe.id]
        probe.frame = probe.reset = None   # a stored result keeps only what it shows
        self.counters['probes_' + state] += 1
        if probe.stored:
            self.finished[probe.id] = probe
            while len(self.finished) > self.settings.max_results:
                self.finished.popitem(last=False)
        self.on_done(probe)

    def _schedule(self, probe: Probe, when: float) -> None:
        probe.due = when
        self._tiebreak += 1
        heapq.heappush(self._timers, (when, self._tiebreak, probe.id))

    def _probes_of(self, catch: Catch) -> list[Probe]:
        return [p for p in self.running.values() if catch in p.catches]

    def _release(self, probe: Probe, now: float) -> None:
        bridge = self.bridges.get(probe.request.dpid)
        if bridge is not None:
            for catch in probe.catches:
                bridge.release(catch, now)
        probe.catches = []
