"""Section 9 of `make bench`: monitors on the `scale` topology, in the same app.

1. A monitor of the full mesh of the probed VMs (2,450 pairs), interval 10 s, count 3,
   measured over 3 intervals after one interval of warm-up: the app's CPU and RSS, the
   echoes it sends (GET /probe/stats and /metrics), the rounds completed and how many of
   them on time, the pairs' verdicts (the lab has no fault: all must read reachable);
   one GET /metrics and one GET /probe/monitors/<name>, and the rounds' RTT while
   /metrics is scraped every 2 s.
2. The tenant's ping (-i 0.01) without a monitor and with that monitor running.
3. The bound: the load raised step by step (Sizes.monitor_steps: shorter intervals, then
   two monitors of the mesh) until rounds start late (over 1 %) or fall short, a round
   reads other than reachable, the app uses about one core, or the monitors' echo share
   refuses a monitor (429); then one more monitor on top, which the share must refuse.

The monitors are deleted at the end; then no catch may be left in the app, nor any of
our flows on the switches (a deleted monitor's idle catches go at once).

    sudo .venv/bin/python -m bench.monitor [--quick]     # this section alone
"""
import collections
import os
import re
import statistics
import textwrap
import time
import urllib.request
from dataclasses import dataclass

from bench.measure import OVERRIDES, pct
from ryu_apps import metrics
from ryu_apps.monitors import SHARE
from ryu_apps.options import Settings

NAME = 'bench-mesh'
LATE_BOUND = 1.0        # % of the window's rounds that started late
SHORT_BOUND = 97.0      # % of the window's due rounds completed (a short window is +-1 a pair)
CPU_BOUND = 95.0        # % of one core: the app is one Python process
SECTION = '9. monitors'
SCRAPE_EVERY = 2.0      # s between the scrapes of the RTT-with-scrapes row
CATCH_UP = 0.5          # s after the window's first GETs, before its counters
OURS = re.compile(r'cookie=0x72797570[0-9a-f]{4}7270')   # as tests/e2e/test_topologies.py


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of every core, from /proc/stat."""
    values = [int(v) for v in open('/proc/stat').readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


@dataclass
class Snapshot:
    """The counters at one edge of a window. The monitors' list (and /metrics) are read
    first, then, once the app has caught up with what queued behind those GETs (they hold
    its one event loop), the CPU, the stats and the clocks, back to back."""
    pairs: list[dict]       # every pair of our monitors (GET /probe/monitors)
    rounds: int
    late: int
    list_at: float
    echoes: float | None    # ryu_probe_echoes_sent_total, summed
    metrics_at: float | None
    meter_drops: int        # PacketIns our meters (packet_in_rate) dropped, every bridge
    cpu: float
    ovs: float
    machine: tuple[int, int]
    stats: dict
    at: float
    wall: float


class Monitoring:
    def __init__(self, bench):
        self.bench, self.app, self.sizes = bench, bench.app, bench.sizes
        self.vms = bench.vms[:self.sizes.monitor_vms]
        self.pairs = len(self.vms) * (len(self.vms) - 1)
        self.names: list[str] = []
        self.notes: dict = {}
        default = Settings()
        self.share_rounds = int(OVERRIDES.get('max_active_probes', default.max_active_probes)
                                * SHARE)
        self.share_echoes = OVERRIDES.get('max_echo_rate', default.max_echo_rate) * SHARE

    # --- REST -------------------------------------------------------------------------

    def body(self, name: str, interval: float) -> dict:
        return {'name': name, 'interval': interval, 'count': 3,
                'mesh': [{'dpid': '%016x' % vm.dpid, 'in_port': vm.port_no, 'mac': vm.mac,
                          'ip': vm.ip, 'name': vm.name} for vm in self.vms]}

    def put(self, name: str, interval: float) -> tuple[int, object, float]:
        """POST (a new name) or PUT the mesh monitor: (status, answer, seconds)."""
        start = time.perf_counter()
        if name in self.names:
            status, answer = self.app.request('PUT', '/probe/monitors/' + name,
                                              self.body(name, interval), timeout=120)
        else:
            status, answer = self.app.request('POST', '/probe/monitors',
                                              self.body(name, interval), timeout=120)
        seconds = time.perf_counter() - start
        if status in (200, 201) and name not in self.names:
            self.names.append(name)
        return status, answer, seconds

    def load(self, monitors: int, interval: float) -> tuple[int, object]:
        """`monitors` monitors of the mesh, every one at `interval`: (status, answer) of
        the first refused, or of the last."""
        for k in range(1, monitors + 1):
            status, answer, _ = self.put(NAME if k == 1 else '%s-%d' % (NAME, k), interval)
            if status not in (200, 201):
                return status, answer
        return status, answer

    def raw(self, path: str) -> tuple[bytes, float, float]:
        """GET path: (body, seconds, app CPU seconds)."""
        cpu = self.bench.proc('cpu')
        start = time.perf_counter()
        with urllib.request.urlopen(self.app.url + path, timeout=120) as res:
            data = res.read()
        return data, time.perf_counter() - start, self.bench.proc('cpu') - cpu

    def listed(self) -> tuple[list[dict], float]:
        """Every pair of our monitors (GET /probe/monitors, no history): (pairs, when)."""
        start = time.monotonic()
        monitors = self.app.get('/probe/monitors')
        at = (start + time.monotonic()) / 2
        return [p for m in monitors if m['name'] in self.names for p in m['pairs']], at

    def snapshot(self, scrape: bool, first: bool) -> Snapshot:
        """`first`: the window's start (the GETs, a pause, the counters); else its end
        (the counters, then the GETs)."""
        def counters():
            return dict(cpu=self.bench.proc('cpu'), ovs=self.bench.ovs_cpu(),
                        machine=machine_cpu(), stats=self.bench.stats(), at=time.monotonic(),
                        wall=time.time())
        now = None if first else counters()
        pairs, list_at = self.listed()
        echoes = metrics_at = None
        if scrape:
            start = time.monotonic()
            text, _, _ = self.raw('/metrics')
            metrics_at = (start + time.monotonic()) / 2
            echoes = sum(float(v) for v in re.findall(
                rb'^ryu_probe_echoes_sent_total\{[^}]*\} (\S+)$', text, re.M))
        meter_drops = self.meter_drops()
        if first:
            time.sleep(CATCH_UP)
        return Snapshot(pairs=pairs, rounds=sum(p['rounds'] for p in pairs),
                        late=sum(p['late_rounds'] for p in pairs), list_at=list_at,
                        echoes=echoes, metrics_at=metrics_at, meter_drops=meter_drops,
                        **(now or counters()))

    def meter_drops(self) -> int:
        """Packets the meters' drop bands dropped, on every probed bridge (the app's
        meter caps its PacketIns at packet_in_rate a bridge)."""
        network, dropped = self.bench.network, 0
        for host, bridge, _ in network.probed_bridges():
            stats = network.ovs(host).ofctl('-O', 'OpenFlow13', 'meter-stats', bridge)
            for bands in stats.split('bands:')[1:]:
                dropped += sum(int(n) for n in re.findall(r'^\s*\d+: packet_count:(\d+)',
                                                          bands, re.M))
        return dropped

    def rounds_in(self, since: float, until: float) -> list[tuple[str, dict]]:
        """The rounds of our monitors that ended in (since, until] (Unix time), from the
        pairs' history (GET /probe/monitors/<name>): (monitor and pair, entry)."""
        return [('%s %s' % (name, pair['name']), h)
                for name in self.names
                for pair in self.app.get('/probe/monitors/' + name)['pairs']
                for h in pair['history'] if since < h['at'] <= until]

    @staticmethod
    def rtts(rounds: list[tuple[str, dict]]) -> tuple[float, float, float]:
        """p50, p99 and max of the rounds' RTT (each round's average), ms."""
        rtts = [h['rtt_ms'] for _, h in rounds if h['rtt_ms'] is not None] or [float('nan')]
        return pct(rtts, 50), pct(rtts, 99), max(rtts)

    # --- one window -------------------------------------------------------------------

    def window(self, interval: float, started: float, pairs: int, scrape: bool = False) -> dict:
        """Warm-up (one interval from `started`), then the measured window of
        monitor_rounds intervals (at least monitor_window s): what it held. The rounds
        running are sampled once a second (GET /probe/stats)."""
        time.sleep(max(0.0, started + interval - time.monotonic()))
        seconds = max(self.sizes.monitor_rounds * interval, self.sizes.monitor_window)
        s0 = self.snapshot(scrape, first=True)
        running = []
        while time.monotonic() < s0.at + seconds:
            time.sleep(max(0.0, min(1.0, s0.at + seconds - time.monotonic())))
            running.append(self.app.get('/probe/stats')['running'])
        s1 = self.snapshot(scrape, first=False)
        rss = self.bench.proc('rss')
        done = self.rounds_in(s0.wall, s1.wall)
        failed = [(name, h['at'], h['verdict'], h['error']) for name, h in done
                  if h['verdict'] != 'reachable']
        span, listed = s1.at - s0.at, s1.list_at - s0.list_at
        rounds, late = s1.rounds - s0.rounds, s1.late - s0.late
        expected = pairs * listed / interval
        verdicts = collections.Counter(p['verdict'] for p in s1.pairs)
        return dict(
            interval=interval, pairs=pairs, offered=pairs * 3 / interval, seconds=span,
            cpu=100 * (s1.cpu - s0.cpu) / span, ovs=100 * (s1.ovs - s0.ovs) / span,
            machine=100 * os.cpu_count() * (s1.machine[0] - s0.machine[0]) / max(
                1, s1.machine[1] - s0.machine[1]), rss=rss,
            packet_outs=(s1.stats['packet_outs'] - s0.stats['packet_outs']) / span,
            echoes=scrape and (s1.echoes - s0.echoes) / (s1.metrics_at - s0.metrics_at),
            counters={k: round((v - s0.stats.get(k, 0)) / span, 1) for k, v in
                      s1.stats.items() if v != s0.stats.get(k, 0)},
            rounds=rounds, late=late, expected=expected,
            late_pct=100 * late / max(1, rounds), done_pct=100 * rounds / max(1, expected),
            running=statistics.mean(running), running_max=max(running),
            round_s=statistics.mean(running) / max(1e-9, rounds / listed),
            rtt=self.rtts(done)[0], rtts=self.rtts(done),
            reachable=verdicts['reachable'], failed=failed,
            meter_drops=s1.meter_drops - s0.meter_drops,
            others=[(p['name'], p['verdict'], p['error'], p['loss']) for p in s1.pairs
                    if p['verdict'] != 'reachable'],
            failures=[(p['name'], p['last_failure']) for p in s1.pairs if p['last_failure']])

    def bound(self, step: dict) -> str | None:
        """Which bound this step hit, if any: "<bound>: <why, where the numbers tell>"."""
        if step['late_pct'] > LATE_BOUND:
            hit = 'rounds late (%.1f%% > %g%%)' % (step['late_pct'], LATE_BOUND)
        elif step['done_pct'] < SHORT_BOUND:
            hit = 'rounds short (%.1f%% of those due completed)' % step['done_pct']
        elif step['failed'] or step['reachable'] < step['pairs']:
            verdicts = collections.Counter(f[2] or 'error' for f in step['failed'])
            errors = collections.Counter(f[3] for f in step['failed'] if f[3])
            hit = 'false alarms (%s of the window\'s rounds in %d pairs, e.g. %s%s)' % (
                ', '.join('%d %s' % (n, v) for v, n in verdicts.most_common()) or
                '%d pairs not reachable' % (step['pairs'] - step['reachable']),
                len({f[0] for f in step['failed']}),
                ', '.join(sorted({f[0].split()[-1] for f in step['failed']})[:2]),
                '; errors: %s' % ', '.join('%d "%s"' % (n, e) for e, n in errors.most_common(2))
                if errors else '')
        elif step['cpu'] >= CPU_BOUND:
            hit = 'app CPU (%.0f%% of one core)' % step['cpu']
        else:
            return None
        why = []
        if step['running_max'] >= 0.95 * self.share_rounds:
            why.append("the monitors' share of max_active_probes (%d rounds at once) was full, "
                       "a round taking %.2f s (%.2f s at %g s)" % (
                           self.share_rounds, step['round_s'], self.notes['first']['round_s'],
                           self.sizes.monitor_interval))
        if step['meter_drops']:
            why.append("our meters (packet_in_rate %d/s a bridge) dropped %d PacketIns: a "
                       "monitor's pairs from one bridge take contiguous slots of its interval, "
                       "so each bridge gets the monitor's whole echo rate in turn" % (
                           Settings().packet_in_rate, step['meter_drops']))
        why.append('app CPU %.0f%% of one core, the machine %.0f%% of %d00%%' % (
            step['cpu'], step['machine'], os.cpu_count()))
        return hit + ': ' + '; '.join(why)

    # --- the section ------------------------------------------------------------------

    def run(self) -> list[tuple]:
        b, sizes, rows = self.bench, self.sizes, []
        interval = sizes.monitor_interval
        what = '%d VMs, %d pairs every %g s, count 3' % (len(self.vms), self.pairs, interval)
        rss0, cpu0, t0 = b.proc('rss'), b.proc('cpu'), time.monotonic()
        idle = b.tenant_ping(b.sizes.load_seconds)
        idle_cpu = 100 * (b.proc('cpu') - cpu0) / (time.monotonic() - t0)
        try:
            status, answer, post = self.put(NAME, interval)
            if status != 201:
                raise RuntimeError('POST /probe/monitors: %s %s' % (status, answer))
            first = self.window(interval, time.monotonic(), self.pairs, scrape=True)
            self.notes.update(first=first, post=post, rss0=rss0, idle_cpu=idle_cpu,
                              vms=len(self.vms),
                              share_rounds=self.share_rounds, share_echoes=self.share_echoes)
            rows += [
                (SECTION, 'POST /probe/monitors, mesh of %d VMs (%d pairs): ms'
                 % (len(self.vms), self.pairs), '%.0f' % (1000 * post), ''),
                (SECTION, '%s (%.0f echoes/s), %.0f s after a %g s warm-up: app CPU of one '
                 'core (before the monitor) / all ovs-vswitchd; app RSS MB before / at the end'
                 % (what, first['offered'], first['seconds'], interval),
                 '%.1f%% (%.1f%%) / %.0f%%; %.0f / %.0f' % (
                     first['cpu'], idle_cpu, first['ovs'], rss0, first['rss']), ''),
                (SECTION, '  echoes/s: PacketOuts (GET /probe/stats) / '
                 'ryu_probe_echoes_sent_total (/metrics)',
                 '%.0f / %.0f' % (first['packet_outs'], first['echoes']),
                 '%.0f' % first['offered']),
                (SECTION, '  rounds completed (of due), on time; s per round, probe RTT p50 ms; '
                 'pairs reachable at the end (others); rounds of the window not reachable; '
                 'pairs with a failed round since the POST',
                 '%d (%.0f, %.1f%%), %.2f%%; %.2f, %.2f; %d (%s); %d; %d' % (
                     first['rounds'], first['expected'], first['done_pct'],
                     100 - first['late_pct'], first['round_s'], first['rtt'],
                     first['reachable'], ', '.join(
                         '%s %s' % o[:2] for o in first['others'][:5]) or 'none',
                     len(first['failed']), len(first['failures'])),
                 '>= 99%%; ; %d (none); 0; 0' % self.pairs)]
            # one scrape and one full read of the monitor, as a dashboard would
            text, secs, cpu = self.raw('/metrics')
            series = len(re.findall(rb'^ryu_probe_\w+\{[^}]*monitor=', text, re.M))
            self.notes['metrics'] = (secs, len(text), cpu, series)
            rows.append((SECTION, '  GET /metrics: ms, MB, app CPU ms; series of the '
                         'monitor', '%.0f, %.2f, %.0f; %d' % (
                             1000 * secs, len(text) / 1e6, 1000 * cpu, series), ''))
            body, secs, cpu = self.raw('/probe/monitors/' + NAME)
            self.notes['get'] = (secs, len(body), cpu)
            rows.append((SECTION, '  GET /probe/monitors/%s (%d pairs, with history): ms, MB, '
                         'app CPU ms' % (NAME, self.pairs),
                         '%.0f, %.2f, %.0f' % (1000 * secs, len(body) / 1e6, 1000 * cpu), ''))
            rows.append(self.scraped(first))
            busy = b.tenant_ping(b.sizes.load_seconds)
            self.notes.update(tenant=(idle, busy), pings=int(b.sizes.load_seconds / 0.01))
            for label, (p50, p99, lost, dups) in (('no monitor', idle),
                                                  ('the %d-pair monitor running' % self.pairs,
                                                   busy)):
                rows.append((SECTION, 'tenant ping (-i 0.01), %s: RTT p50 / p99 ms, lost, DUP, '
                             'p99 vs no monitor' % label,
                             '%.3f / %.3f, %d, %d, %+.0f%%' % (p50, p99, lost, dups,
                                                              100 * (p99 / idle[1] - 1)),
                             '0, 0, <= +10%' if label != 'no monitor' else ''))
            rows += self.bounds(first)
        finally:
            rows += self.cleanup()
        return rows

    def scraped(self, first: dict) -> tuple:
        """The rounds' RTT while /metrics is scraped every SCRAPE_EVERY s (the scrape runs
        in the app's one event loop), against the window of `first` (no scrape)."""
        since, until = time.time(), time.monotonic() + self.sizes.monitor_window
        scrapes = 0
        while time.monotonic() < until:
            self.raw('/metrics')
            scrapes += 1
            time.sleep(max(0.0, min(SCRAPE_EVERY, until - time.monotonic())))
        time.sleep(1.0)         # the rounds under way at the last scrape end
        scraped = self.rtts(self.rounds_in(since, time.time()))
        self.notes['scraped'] = (first['rtts'], scraped)
        return (SECTION, '  probe RTT (a round\'s average) p50 / p99 / max ms: in the window '
                'above / with GET /metrics every %g s (%d scrapes)' % (SCRAPE_EVERY, scrapes),
                '%.2f / %.2f / %.1f; %.2f / %.2f / %.1f' % (first['rtts'] + scraped), '')

    def bounds(self, first: dict) -> list[tuple]:
        """Raise the load until a bound is hit: each step's row, which bound, and the
        monitors' echo share checked at the load reached."""
        steps = [(1, self.sizes.monitor_interval, first)]
        held, hit, refused = None, self.bound(first), None
        if not hit:
            held = steps[0]
            for monitors, interval in self.sizes.monitor_steps:
                print('  ... %d monitor(s) of %d pairs every %g s' % (
                    monitors, self.pairs, interval), flush=True)
                status, answer = self.load(monitors, interval)
                if status == 429:
                    hit = ('the echo share (429 for %d x %d pairs every %g s: %s)'
                           % (monitors, self.pairs, interval, answer['error']))
                    refused = (monitors, interval)
                    break
                if status not in (200, 201):
                    raise RuntimeError('monitors at %g s: %s %s' % (interval, status, answer))
                step = self.window(interval, time.monotonic(), monitors * self.pairs)
                steps.append((monitors, interval, step))
                hit = self.bound(step)
                if hit:
                    break
                held = steps[-1]
            else:
                hit = 'none up to %d x %d pairs every %g s' % (monitors, self.pairs, interval)
        rows = []
        for monitors, interval, step in steps:
            rows.append((SECTION, 'bound: %d x %d pairs every %g s (%.0f echoes/s): echoes/s; '
                         'CPU app / ovs-vswitchd / machine (of %d00%%); RSS MB; rounds done '
                         'of due, on time; rounds running (mean / max, share %d), s per round; '
                         'probe RTT p50 ms; rounds not reachable; PacketIns our meters '
                         'dropped' % (
                             monitors, self.pairs, interval, step['offered'], os.cpu_count(),
                             self.share_rounds),
                         '%.0f; %.0f%% / %.0f%% / %.0f%%; %.0f; %.1f%%, %.2f%%; %.0f / %d, %.2f; '
                         '%.2f; %d; %d' % (
                             step['packet_outs'], step['cpu'], step['ovs'], step['machine'],
                             step['rss'], step['done_pct'], 100 - step['late_pct'],
                             step['running'], step['running_max'], step['round_s'],
                             step['rtt'], len(step['failed']), step['meter_drops']), ''))
        if held:
            monitors, interval, step = held
            value = ('%d x %d pairs every %g s (%.0f pair-rounds/s, %.0f echoes/s, app CPU '
                     '%.0f%%); next: %s' % (monitors, self.pairs, interval,
                                            step['pairs'] / interval, step['packet_outs'],
                                            step['cpu'], hit))
        else:
            value = 'none held: %s' % hit
        self.notes.update(steps=steps, held=held, hit=hit, refused=refused)
        rows.append((SECTION, 'bound: the most held (late <= %g%%, >= %g%% of due rounds '
                     'done, all reachable, app CPU < %g%%); the bound hit next'
                     % (LATE_BOUND, SHORT_BOUND, CPU_BOUND), value, ''))
        if not hit.startswith('the echo share'):
            rows += self.share(steps[-1][0], steps[-1][1])
        return rows

    def share(self, monitors: int, interval: float) -> list[tuple]:
        """One more monitor of the mesh, at the shortest interval a round allows, on top of
        the load reached: refused (429) when it passes the monitors' echo share."""
        load = monitors * self.pairs * 3 / interval
        extra = self.pairs * 3 / 1.5
        if load + extra <= self.share_echoes:
            return []
        status, answer, _ = self.put('%s-extra' % NAME, 1.5)
        self.notes['share'] = (status, load + extra)
        return [(SECTION, "the monitors' echo share (max_echo_rate x %g = %.0f/s): one more "
                 'monitor of %d pairs every 1.5 s on top of %.0f echoes/s: status'
                 % (SHARE, self.share_echoes, self.pairs, load),
                 '%d' % status, '429')]

    def cleanup(self) -> list[tuple]:
        """Every monitor deleted; until no catch is left in the app, and none of our flows
        on the switches."""
        gone = time.monotonic()
        for name in self.names:
            status, answer = self.app.request('DELETE', '/probe/monitors/' + name, timeout=120)
            if status != 200:
                raise RuntimeError('DELETE %s: %s %s' % (name, status, answer))
        deleted = time.monotonic()
        self.names = []
        deadline = deleted + 3 * Settings().catch_linger + 30
        while True:
            stats = self.app.get('/probe/stats')
            flows = 0 if stats['catches'] or stats['catch_flows'] else self.our_flows()
            if not stats['catches'] and not stats['catch_flows'] and not flows:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('catches left %.0f s after the monitors went: %s, %d flows'
                                   % (time.monotonic() - deleted, stats, flows))
            time.sleep(0.2)
        clear = time.monotonic() - deleted
        left = self.app.get('/probe/monitors')
        series = len(re.findall(rb'monitor=', self.raw('/metrics')[0]))
        self.notes['cleanup'] = (deleted - gone, clear)
        return [(SECTION, 'DELETE every monitor: ms; then s until no catch in the app '
                 '(GET /probe/stats) and none of our flows on the %d switches; monitors / '
                 'monitor series left' % len(self.bench.network.probed_bridges()),
                 '%.0f; %.1f; %d / %d' % (1000 * (deleted - gone), clear, len(left), series),
                 '; ; 0 / 0')]

    def our_flows(self) -> int:
        """The app's flows (its cookie) on every probed bridge."""
        network = self.bench.network
        return sum(1 for host, bridge, _ in network.probed_bridges()
                   for flow in network.ovs(host).dump_flows(bridge) if OURS.search(flow))


READING = """\
* **9: a monitor** of the %(pairs)d-pair mesh (%(vms)d VMs, as in section 4) every
  %(interval)g s, count 3 (%(offered).0f echoes/s), takes %(cpu).0f%% of the app's core
  (%(idle_cpu).1f%% before it): about %(us_round).0f µs of CPU per round, %(us_echo).0f per
  echo, against %(us3).0f in section 3's batches. A batch's probes run in step and can share
  the app's timer wake-ups; a monitor spreads its rounds over its interval, so nearly every
  echo is a wake-up of its own, and each round is a probe with its own start and end and the
  pair's record (the cost per round falls as the rate rises: the bound rows). RSS grows from
  %(rss0).0f to %(rss1).0f MB: each pair keeps its last round's probe, its last failure and
  30 history entries. %(verdicts)s The echoes counted by the core (PacketOuts) and by the
  metrics (ryu_probe_echoes_sent_total) match the offered rate. The tenant's ping: p50
  %(t0_50).3f ms without the monitor, %(t1_50).3f ms with it; p99 %(t0_99).2f / %(t1_99).2f
  ms, %(tail)s
* **9: reading a monitor.** A scrape of /metrics for %(pairs)d pairs is %(mb).1f MB
  (%(series)d series, mostly the RTT histograms' buckets) and %(scrape_ms).0f ms,
  %(scrape_cpu).0f ms of it the app's CPU in its one event loop. %(pause)s so an echo
  answered meanwhile is read late, and its RTT with it. A round's RTT p99 was %(p99a).1f ms
  with no scrape, %(p99b).1f ms (max %(maxb).0f ms) with a scrape every %(every)g s; scraped
  every 15 s, that is %(scrape_pct).1f%% of a core and the RTT of about %(skewed).0f%% of
  the echoes. GET /probe/monitors/<name> with history: %(get_mb).1f MB in %(get_ms).0f ms.
"""
PAUSED = ('The collector pauses every %d pairs to let other work run, but prometheus_client\'s '
          'text serialisation of what it collected (about three quarters of the time, timed '
          'apart) runs in one piece,')
TAIL_NOISE = ('within the lab\'s own tail (a handful of the %(pings)d pings; section 6\'s '
              'idle p99 this run: %(idle6).2f ms).')
TAIL_UP = ('above the lab\'s own tail (section 6\'s idle p99 this run: %(idle6).2f ms): the '
           'monitor\'s echoes share the userspace ovs-vswitchd with the tenant.')
BOUND = ('* **9: the bound.** %(held)s held (under %(late)g%% of rounds late, %(short)g%% of due '
         'rounds done, no round but reachable, the app under %(cpu_bound)g%% of its core); the '
         'next step, %(next)s, hit %(hit)s.')
BOUND_NONE = ('* **9: the bound.** %(held)s held (under %(late)g%% of rounds late, %(short)g%% of '
              'due rounds done, no round but reachable, the app under %(cpu_bound)g%% of its '
              'core), the last load of the bench: no bound was hit.')
MACHINE = (' The app used %(cpu).0f%% of its core there and the machine %(machine).0f%% of '
           '%(cores)d00%%: neither all of it, but the machine\'s %(cores)d cores are shared by '
           'the app with the 21 userspace ovs-vswitchd that forward every echo, reply and '
           'PacketIn, and with other engineers\' tests. A round\'s RTT p50 grew from '
           '%(rtt_lo).1f ms (%(first)s) to %(rtt_hi).1f ms, and a round from %(round_lo).2f s to '
           '%(round_hi).2f s')
TIMERS = (', far more than the RTT explains: the app falls behind its own timers (a round\'s '
          'second and third echoes are due 0.2 and 0.4 s after its first).')
FULL_SHARE = (' So the monitors\' share of max_active_probes (%(share_rounds)d rounds at once) '
              'fills, and a round waits for room (retried every 50 ms) and starts late.')
SHARE_LATER = (' The echo share (429) would refuse more only at %(share_echoes).0f echoes/s '
               '(max_echo_rate = %(max_echo_rate)g here); at the default max_echo_rate '
               '(%(default_rate)g) the share is %(default_share).0f/s: one %(pairs)d-pair monitor '
               'every %(default_interval).2f s or longer, %(compare)s.')
METER = (' Our meters (packet_in_rate %(rate)d/s a bridge) dropped %(drops)d PacketIns in the last '
         'step (%(failed)d rounds read other than reachable, where the lab broke nothing): a '
         'monitor gives its pairs '
         'the slots of its interval in definition order, a mesh\'s by source, so the pairs '
         'from one bridge are contiguous and each bridge takes the monitor\'s whole echo rate '
         'in turn.')


def bound_reading(notes: dict) -> str:
    first, steps, hit = notes['first'], notes['steps'], notes['hit']
    default = Settings()

    def load(monitors, interval, step):
        return '%d x %d pairs every %g s (%.0f echoes/s)' % (monitors, first['pairs'], interval,
                                                             step['offered'])
    held = load(*notes['held']) if notes['held'] else 'Nothing'
    last = None
    if notes['refused']:
        monitors, interval = notes['refused']
        following = '%d x %d pairs every %g s (%.0f echoes/s)' % (
            monitors, first['pairs'], interval, monitors * first['pairs'] * 3 / interval)
    elif not hit.startswith('none'):
        last, following = steps[-1][2], load(*steps[-1])
    if hit.startswith('none'):
        text = BOUND_NONE % dict(held=held, late=LATE_BOUND, short=SHORT_BOUND,
                                 cpu_bound=CPU_BOUND)
    else:
        text = BOUND % dict(held=held, late=LATE_BOUND, short=SHORT_BOUND, cpu_bound=CPU_BOUND,
                            next=following, hit=hit.split(': ')[0] + (
                                ')' if notes['refused'] else ''))
    if last is not None:
        text += MACHINE % dict(cpu=last['cpu'], machine=last['machine'], cores=os.cpu_count(),
                               rtt_lo=first['rtt'], rtt_hi=last['rtt'],
                               first='one monitor every %g s' % first['interval'],
                               round_lo=first['round_s'], round_hi=last['round_s'])
        if last['round_s'] > first['round_s'] + 0.1:
            text += TIMERS
        else:
            text += '.'
        if last['running_max'] >= 0.95 * notes['share_rounds']:
            text += FULL_SHARE % notes
    if last is not None and last['meter_drops']:
        text += METER % dict(rate=default.packet_in_rate, drops=last['meter_drops'],
                             failed=len(last['failed']))
    if not hit.startswith('the echo share'):
        text += SHARE_LATER % dict(
            share_echoes=notes['share_echoes'], max_echo_rate=notes['share_echoes'] / SHARE,
            default_rate=default.max_echo_rate, default_share=default.max_echo_rate * SHARE,
            pairs=first['pairs'],
            default_interval=first['pairs'] * 3 / (default.max_echo_rate * SHARE),
            compare=('less than the most this machine held here'
                     if notes['held'] and notes['held'][2]['offered']
                     >= default.max_echo_rate * SHARE else
                     'more than this machine held here'))
    return textwrap.fill(text, 88, subsequent_indent='  ') + '\n'


def reading(notes: dict, us3: float, idle6: float) -> str:
    """Section 9's paragraphs of "Reading the numbers", from `measure`'s notes."""
    first = notes['first']
    idle, busy = notes['tenant']
    secs, size, cpu, series = notes['metrics']
    rounds_s = first['pairs'] / first['interval']
    (_, p99a, _), (_, p99b, maxb) = notes['scraped']
    others = first['others'] or first['failed']
    text = READING % dict(
        pairs=first['pairs'], vms=notes['vms'],
        pings=notes['pings'], interval=first['interval'], offered=first['offered'],
        cpu=first['cpu'], idle_cpu=notes['idle_cpu'],
        us_round=1e4 * first['cpu'] / rounds_s, us_echo=1e4 * first['cpu'] / first['offered'],
        us3=us3, rss0=notes['rss0'], rss1=first['rss'],
        verdicts=('Every round was on time and every pair reachable, as the tenant\'s ping '
                  'would have it (the lab has no fault: any other verdict is a false alarm).'
                  if not others and not first['late'] else
                  'Not every round was on time and reachable: %d late, %d not reachable (%s).'
                  % (first['late'], len(first['failed']), ', '.join(
                      '%s %s' % (f[0], f[2] or f[3]) for f in first['failed'][:3]))),
        t0_50=idle[0], t1_50=busy[0], t0_99=idle[1], t1_99=busy[1], idle6=idle6,
        mb=size / 1e6, series=series, scrape_ms=1000 * secs, scrape_cpu=1000 * cpu,
        pause=PAUSED % metrics.PAUSE_EVERY if hasattr(metrics, 'PAUSE_EVERY') else
        'It runs in one piece,', p99a=p99a, p99b=p99b, maxb=maxb,
        every=SCRAPE_EVERY, scrape_pct=100 * cpu / 15,
        skewed=100 * secs / 15,
        get_mb=notes['get'][1] / 1e6, get_ms=1000 * notes['get'][0],
        tail=(TAIL_UP if busy[1] > 1.5 * max(idle[1], idle6) else TAIL_NOISE) % dict(
            pings=notes['pings'], idle6=idle6))
    text = ''.join(textwrap.fill(' '.join(bullet.split()), 88, subsequent_indent='  ') + '\n'
                   for bullet in re.split(r'\n(?=\* )', text))
    return text + bound_reading(notes)


def measure(bench) -> list[tuple]:
    monitoring = Monitoring(bench)
    rows = monitoring.run()
    bench.notes['monitors'] = monitoring.notes
    return rows


def main() -> int:
    """This section alone, on its own scale topology and app."""
    import argparse
    from bench import measure as bench_measure
    from topologies import engine
    from topologies.controller import ProbeController
    parser = argparse.ArgumentParser(prog='python -m bench.monitor')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    app = ProbeController(config=bench_measure.CONFIG)
    app.start()
    try:
        network = engine.up(engine.load('scale'), controller=app.target, instance='bmon')
        app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=60)
        bench = bench_measure.Bench(app, network, bench_measure.QUICK if args.quick
                                    else bench_measure.FULL)
        started = time.monotonic()
        for row in measure(bench):
            print('  %s | %s | %s' % row[1:], flush=True)
        print('section 9: %.0f s' % (time.monotonic() - started))
        for monitors, interval, step in bench.notes['monitors'].get('steps', []):
            print('  %d x %g s: failed %s' % (monitors, interval, step['failed'][:10]))
        for monitors, interval, step in bench.notes['monitors'].get('steps', []):
            print('  %d x %g s: counters/s %s' % (monitors, interval, step['counters']))
    finally:
        engine.down('bmon')
        app.close()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
