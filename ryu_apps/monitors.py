"""Monitors: named sets of probe pairs run again and again, kept in a file across restarts.

`Monitors` has no event loop, like `Prober`: the shim calls `tick(now)` at the deadline it
returns and `finished(probe, now)` when a probe ends. Each pair of a monitor has its own
slot in the interval (slot i of n at i/n of it, jittered within the slot), so a monitor's
probes are spread over the interval, never fired at once; a pair's rounds then keep that
grid. A round is late when it starts more than LATE_SLACK seconds after its slot (its
previous round still ran, or the monitors' share of the app was taken).

Slots go round robin over the switches (`interleaved`), so one switch never takes the
whole echo rate for a while. Monitors may take at most SHARE of `max_echo_rate` (checked when one is added: 429) and of
`max_active_probes` (a round waits for room), so one-off probes still get through.
Their probes are not kept with the one-off results: each pair keeps its last round's
probe, and its last failure's.
"""
import bisect
import collections
import heapq
import json
import logging
import os
import random
import tempfile
from dataclasses import dataclass, field

from ryu_apps.kinds import KINDS
from ryu_apps.probes import DONE, Probe, ProbeError, ProbeRequest, Prober, format_dpid

LOG = logging.getLogger(__name__)
SHARE = 0.5
LATE_SLACK = 1.0
RETRY = 0.05            # when the monitors' share of active probes is taken
HISTORY = 30
# A round succeeds on its kind's `success` verdicts (kinds.py: icmp reachable or partial,
# as ping's exit status 0; tcp and udp open); any other verdict is a failure.
# For ryu_probe_rtt_seconds: 0.1 ms to 1 s.
RTT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
               0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Target:
    """One pair of a monitor: a probe request less its timing. `in_port` may be a port
    name, looked up on every round (a re-created port gets a new number)."""
    name: str
    src: str
    dst: str
    dpid: int
    in_port: int | str
    src_mac: str | None             # None: found by the app on each round (resolve.py)
    src_ip: str | None
    dst_mac: str | None
    dst_ip: str | None
    gateway: str | None = None
    kind: str = 'icmp'              # kinds.py, and its fields
    dst_port: int | None = None
    payload: str | None = None


@dataclass(frozen=True)
class MonitorSpec:
    """A validated monitor definition; `definition` is its normalised JSON, as stored."""
    name: str
    interval: float
    count: int
    timeout: float
    echo_interval: float
    targets: tuple[Target, ...]
    definition: dict

    @property
    def echo_rate(self) -> float:
        return len(self.targets) * self.count / self.interval


@dataclass(eq=False)
class Pair:
    spec: MonitorSpec
    target: Target
    due: float | None               # its next slot; None once its monitor is gone
    wake: float = 0.0               # when its timer fires
    running: Probe | None = None    # the round under way
    last: Probe | None = None       # the last round's
    result: dict = field(default_factory=dict)   # its loss, rtt_ms and broken_at
    late: bool = False              # the running round started late
    overdue: bool = False           # its slot came while the last round still ran
    verdict: str | None = None
    error: str | None = None
    changed_at: float | None = None
    last_at: float | None = None
    rounds: int = 0
    late_rounds: int = 0
    failures: int = 0               # rounds in a row with no answer
    success: int | None = None      # 1 if the last round (not an error) got a reply
    last_failure: dict | None = None
    history: collections.deque = field(default_factory=lambda: collections.deque(maxlen=HISTORY))
    # cumulative, for the metrics
    sent: int = 0
    received: int = 0
    errors: int = 0
    rtt_counts: list = field(default_factory=lambda: [0] * (len(RTT_BUCKETS) + 1))
    rtt_sum: float = 0.0

    def observe(self, rtt: float) -> None:
        self.rtt_counts[bisect.bisect_left(RTT_BUCKETS, rtt)] += 1
        self.rtt_sum += rtt


@dataclass
class Monitor:
    spec: MonitorSpec
    created_at: float
    pairs: list[Pair]

    @property
    def name(self) -> str:
        return self.spec.name


class Monitors:
    """Every monitor of the app, run on `prober`. `wall(now)` turns monotonic seconds into
    Unix time for what is shown."""

    def __init__(self, prober: Prober, store: 'Store | None' = None, wall=lambda now: now,
                 rng: random.Random | None = None):
        self.prober = prober
        self.store = store
        self.wall = wall
        self.rng = rng or random.Random()
        self.monitors: dict[str, Monitor] = {}
        self._by_probe: dict[str, Pair] = {}        # running rounds
        self._kept: dict[str, Probe] = {}           # the pairs' last and last failed probes
        self._timers: list = []                     # (when, tiebreak, pair)
        self._tiebreak = 0
        self._invalid: list[dict] = []

    # --- definitions -----------------------------------------------------------------

    def add(self, spec: MonitorSpec, now: float, replace: bool = False) -> Monitor:
        old = self.monitors.get(spec.name)
        if old is not None and not replace:
            raise ProbeError(409, 'name: a monitor named %s exists' % spec.name)
        load = sum(m.spec.echo_rate for m in self.monitors.values() if m is not old)
        share = self.prober.settings.max_echo_rate * SHARE
        if load + spec.echo_rate > share:
            raise ProbeError(429, 'interval: the monitors would send %.0f echoes/s, more than '
                             'their share of max_echo_rate (%.0f/s); make the interval longer '
                             'or the count smaller' % (load + spec.echo_rate, share))
        if old is not None:
            self._drop(old, now)
        monitor = Monitor(spec, self.wall(now), self._pairs(spec, now))
        self.monitors[spec.name] = monitor
        self._save()
        return monitor

    def remove(self, name: str, now: float) -> Monitor | None:
        monitor = self.monitors.pop(name, None)
        if monitor is not None:
            self._drop(monitor, now)
            self._save()
        return monitor

    def load(self, specs: list[MonitorSpec], now: float, invalid: list[dict] = ()) -> None:
        """The monitors kept in the file, started again; `invalid`: definitions in it that
        no longer validate, kept in the file as they are."""
        self._invalid = list(invalid)
        for spec in specs:
            self.monitors[spec.name] = Monitor(spec, self.wall(now), self._pairs(spec, now))

    def _pairs(self, spec: MonitorSpec, now: float) -> list[Pair]:
        n = len(spec.targets)
        slots = {id(t): i for i, t in enumerate(interleaved(spec.targets))}
        pairs = [Pair(spec, t, now + (slots[id(t)] + self.rng.random()) * spec.interval / n)
                 for t in spec.targets]
        for pair in pairs:
            self._schedule(pair, pair.due)
        return pairs

    def _drop(self, monitor: Monitor, now: float) -> None:
        """Its running rounds cancelled, its kept probes and its idle catch flows gone."""
        for pair in monitor.pairs:
            pair.due = None
            if pair.running is not None:
                del self._by_probe[pair.running.id]
                self.prober.cancel(pair.running.id, now)
            for probe_id in (pair.last and pair.last.id,
                             pair.last_failure and pair.last_failure['probe_id']):
                self._kept.pop(probe_id, None)
        for dpid in {p.target.dpid for p in monitor.pairs}:
            bridge = self.prober.bridges.get(dpid)
            if bridge is not None:
                bridge.forget_idle()

    def _save(self) -> None:
        if self.store is not None:
            self.store.save([m.spec.definition for m in self.monitors.values()]
                            + self._invalid)

    # --- rounds ----------------------------------------------------------------------

    def tick(self, now: float) -> float | None:
        """Start the rounds that are due; the next deadline."""
        while self._timers and self._timers[0][0] <= now:
            when, _, pair = heapq.heappop(self._timers)
            if pair.due is not None and when == pair.wake:
                self._round(pair, now)
        return self._timers[0][0] if self._timers else None

    def _round(self, pair: Pair, now: float) -> None:
        if pair.running is not None:
            pair.overdue = True         # starts when the running round ends
            return
        most = self.prober.settings.max_active_probes
        if len(self._by_probe) >= most * SHARE or len(self.prober.running) >= most:
            self._schedule(pair, now + RETRY)     # no room now: soon, and late
            return
        spec, target = pair.spec, pair.target
        pair.late = now - pair.due > LATE_SLACK
        while pair.due <= now:
            pair.due += spec.interval
        self._schedule(pair, pair.due)
        bridge = self.prober.ready(target.dpid)
        if bridge is None:              # shown as switch-not-connected; tried next slot
            return
        port = bridge.find_port(target.in_port)
        if port is None:
            self._record(pair, None, now, 'in_port: switch %s has no port %r'
                         % (format_dpid(target.dpid), target.in_port))
            return
        request = ProbeRequest(
            dpid=target.dpid, in_port=port.port_no, src_mac=target.src_mac,
            src_ip=target.src_ip, dst_mac=target.dst_mac, dst_ip=target.dst_ip,
            gateway=target.gateway, count=spec.count, interval=spec.echo_interval,
            timeout=spec.timeout, kind=target.kind, dst_port=target.dst_port,
            payload=target.payload)
        try:
            probe = self.prober.start(request, now, store=False)
        except ProbeError as error:     # the port is gone, say
            self._record(pair, None, now, str(error))
            return
        pair.running = probe
        self._by_probe[probe.id] = pair

    def finished(self, probe: Probe, now: float) -> None:
        """A probe ended: if it was a round of ours, record it."""
        pair = self._by_probe.pop(probe.id, None)
        if pair is None:
            return
        pair.running = None
        if pair.last is not None and not (
                pair.last_failure and pair.last_failure['probe_id'] == pair.last.id):
            self._kept.pop(pair.last.id, None)
        pair.last = self._kept[probe.id] = probe
        self._record(pair, probe, now, probe.error if probe.state != DONE else None)
        if pair.overdue:            # its slot has passed: start now (late)
            pair.overdue = False
            self._schedule(pair, now)

    def _record(self, pair: Pair, probe: Probe | None, now: float, error: str | None) -> None:
        at = round(self.wall(now), 3)
        pair.rounds += 1
        pair.late_rounds += pair.late
        pair.last_at = at
        verdict = probe.verdict if probe is not None and error is None else None
        result = probe.to_json() if probe is not None else {}
        pair.result = {k: result.get(k) for k in ('loss', 'rtt_ms', 'broken_at')}
        if probe is not None:
            pair.sent += len(probe.echoes)
            for echo in probe.echoes:
                if echo.rtt is not None:
                    pair.received += 1
                    pair.observe(echo.rtt)
        if verdict is None:
            pair.errors += 1
        else:
            if verdict != pair.verdict:
                pair.changed_at = at
            pair.verdict = verdict
            kind = KINDS[pair.target.kind]
            answered = verdict in kind.success
            pair.success = int(answered)
            pair.failures = 0 if answered else pair.failures + 1
            if verdict != kind.verdicts[0]:
                if pair.last_failure:
                    self._kept.pop(pair.last_failure['probe_id'], None)
                pair.last_failure = {'at': at, 'verdict': verdict,
                                     'broken_at': pair.result['broken_at'],
                                     'probe_id': probe.id}
                self._kept[probe.id] = probe
        pair.error = error
        rtt = pair.result['rtt_ms']
        pair.history.append({'at': at, 'verdict': verdict, 'loss': pair.result['loss'],
                             'rtt_ms': rtt and rtt['avg'], 'error': error})

    def _schedule(self, pair: Pair, when: float) -> None:
        pair.wake = when
        self._tiebreak += 1
        heapq.heappush(self._timers, (when, self._tiebreak, pair))

    # --- reading ---------------------------------------------------------------------

    def probe(self, probe_id: str) -> Probe | None:
        """A kept round: a pair's last, or its last failure."""
        return self._kept.get(probe_id)

    def get(self, name: str) -> Monitor | None:
        return self.monitors.get(name)

    def to_json(self, monitor: Monitor, history: bool = True) -> dict:
        return dict(monitor.spec.definition, created_at=round(monitor.created_at, 3),
                    pairs=[self.pair_json(p, history) for p in monitor.pairs])

    def pair_json(self, pair: Pair, history: bool = True) -> dict:
        target, last, result = pair.target, pair.last, pair.result
        if self.prober.ready(target.dpid) is None:
            status = 'switch-not-connected'
        else:
            status = 'ok' if pair.rounds else 'waiting'
        body = {'name': target.name, 'src': target.src, 'dst': target.dst,
                'dpid': format_dpid(target.dpid), 'status': status,
                'verdict': None if pair.error else pair.verdict,
                'loss': result.get('loss'), 'rtt_ms': result.get('rtt_ms'),
                'broken_at': result.get('broken_at'), 'error': pair.error,
                'last_at': pair.last_at, 'changed_at': pair.changed_at,
                'probe_id': last and last.id,
                'rounds': pair.rounds, 'late_rounds': pair.late_rounds,
                'last_failure': pair.last_failure}
        if history:
            body['history'] = list(pair.history)
        return body


def interleaved(targets) -> list[Target]:
    """The targets in slot order: one switch after another, round robin, so that no switch
    takes all of a monitor's echoes (and our PacketIn meter's whole budget) at once. A
    mesh lists its pairs source by source: in that order, the slots of one bridge's VMs
    would fill a contiguous stretch of the interval."""
    by_switch: dict[int, collections.deque] = {}
    for target in targets:
        by_switch.setdefault(target.dpid, collections.deque()).append(target)
    queues, order = list(by_switch.values()), []
    while queues:
        for queue in queues:
            order.append(queue.popleft())
        queues = [q for q in queues if q]
    return order


class Store:
    """The monitors' definitions in a JSON file, written atomically: a new file beside it,
    flushed to disk, then renamed over it. A crash at any moment leaves the old file or
    the new one, never a mix, so no monitor already in it is lost."""

    def __init__(self, path: str):
        self.path = path

    def load(self) -> list[dict]:
        try:
            with open(self.path) as f:
                body = json.load(f)
        except FileNotFoundError:
            return []
        return body['monitors']

    def save(self, definitions: list[dict]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.monitors.', dir=directory)
        try:
            with os.fdopen(fd, 'w') as f:
                json.dump({'version': 1, 'monitors': definitions}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
