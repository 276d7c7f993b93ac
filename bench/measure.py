"""The measurements of `make bench`, each a method of `Bench` that returns table rows.

A row is (section, what, value, target or ''). Every number is measured in this run.
"""
import collections
import os
import re
import statistics
import subprocess
import time
from dataclasses import dataclass

from ryu_apps import packet
from ryu_apps.options import Settings
from topologies import engine
from topologies.engine import Network, VmInfo

SEED_FILTER = 'icmp and src host %s and dst host %s and icmp[4:2]=111'
OPEN_PORT, CLOSED_PORT = 8080, 9    # section 10: a socat listens on the first, nothing on 9


# Room for the whole mesh in one batch and a long tenant-impact probe; the echo rate
# limit raised so that throughput measures the app and the switches, not the limit.
OVERRIDES = {'max_active_probes': 5000, 'max_count': 10000, 'max_echo_rate': 20000}
CONFIG = '[probe]\n' + ''.join('%s = %s\n' % item for item in OVERRIDES.items())


@dataclass(frozen=True)
class Sizes:
    original: int           # probes of the original method, each way
    latency: int            # sequential REST probes
    load_seconds: float     # throughput and tenant-impact windows
    mesh: tuple[int, ...]   # VM counts of the full meshes
    memory: tuple[int, ...]  # finished probes at which RSS is read
    settle: int             # new-catch probes per catch_settle (bench/settle.py)
    # section 9 (bench/monitor.py): a mesh monitor of the first monitor_vms VMs at
    # monitor_interval, measured over monitor_rounds intervals (at least monitor_window
    # s); then the bound: monitor_steps, each (monitors of that mesh, their interval)
    monitor_vms: int
    monitor_interval: float
    monitor_rounds: int
    monitor_window: float
    monitor_steps: tuple[tuple[int, float], ...]
    resolution: int           # section 10: pairs probed with and without their MACs


FULL = Sizes(original=10, latency=500, load_seconds=5.0, mesh=(10, 25, 50),
             memory=(10_000, 100_000), settle=200, monitor_vms=50, monitor_interval=10.0,
             monitor_rounds=3, monitor_window=10.0, resolution=20,
             monitor_steps=((1, 5.0), (1, 2.5), (1, 1.5), (2, 2.5), (2, 2.0), (2, 1.5),
                            (3, 1.5)))
QUICK = Sizes(original=2, latency=20, load_seconds=1.0, mesh=(10,), memory=(1_000,), settle=20,
              monitor_vms=10, monitor_interval=2.0, monitor_rounds=1, monitor_window=2.0,
              resolution=5,
              monitor_steps=((1, 1.5), (2, 1.5)))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ping_rtts(output: str) -> list[float]:
    return [float(ms) for ms in re.findall(r'time=([\d.]+) ms', output)]


def outcomes(results: list[dict]) -> str:
    """Probe results counted by verdict, and those with none by their error (its dpids,
    addresses and numbers as #, so that errors of one cause count together), most
    common first: '1940 reachable, 510 error: switch did not confirm the catch flow'."""
    counts = collections.Counter(r['verdict'] or 'error: ' + re.sub(
        r'\b[0-9a-f]{16}\b|\d+(\.\d+)*', '#', r['error'] or r['state']) for r in results)
    return ', '.join('%d %s' % (n, what) for what, n in counts.most_common())


class Bench:
    def __init__(self, app, network: Network, sizes: Sizes):
        self.app, self.network, self.sizes = app, network, sizes
        self.vms = sorted(network.vms().values(), key=lambda vm: (vm.host, vm.name))
        hosts = sorted({vm.host for vm in self.vms})
        self.shape = '%d hypervisors x %d VMs' % (len(hosts), len(self.vms) // len(hosts))
        # The measured pair crosses the fabric: its first VM on the first two hypervisors.
        self.a = self.vms[0]
        self.b = next(vm for vm in self.vms if vm.host != self.a.host)
        self.notes: dict[str, str] = {}

    def body(self, src: VmInfo, dst: VmInfo, **extra) -> dict:
        return dict(dpid='%016x' % src.dpid, in_port=src.port_no, src_mac=src.mac,
                    src_ip=src.ip, dst_mac=dst.mac, dst_ip=dst.ip, **extra)

    def batch(self, bodies: list[dict], wait: bool = True) -> list[dict]:
        status, answer = self.app.request('POST', '/probe/batch',
                                          {'probes': bodies, 'wait': wait}, timeout=600)
        if status not in (200, 201):
            raise RuntimeError('batch: %s %s' % (status, answer))
        return answer['probes']

    def stats(self) -> dict:
        return self.app.get('/probe/stats')['counters']

    def since(self, before: dict) -> dict:
        """Counters gained since `before` (a `stats()`), 0 for those that did not move."""
        after = self.stats()
        return collections.defaultdict(int, {k: v - before.get(k, 0) for k, v in after.items()})

    def ovs_cpu(self) -> float:
        """CPU seconds of every ovs-vswitchd of the topology."""
        return sum(self.proc('cpu', self.network.ovs(host).pids['ovs-vswitchd'])
                   for host in self.network.state['hosts'])

    def proc(self, field: str, pid: int | None = None) -> float:
        """CPU seconds ('cpu') or resident memory in MB ('rss') of the app (or `pid`)."""
        pid = pid or self.app.proc.pid
        if field == 'cpu':
            with open('/proc/%d/stat' % pid) as f:
                utime, stime = f.read().rsplit(')', 1)[1].split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf('SC_CLK_TCK')
        with open('/proc/%d/status' % pid) as f:
            return int(re.search(r'VmRSS:\s+(\d+)', f.read()).group(1)) / 1024

    def run_all(self) -> list[tuple]:
        rows = []
        for step in (self.original, self.latency, self.cold_latency, self.throughput,
                     self.mesh, self.memory, self.tenant, self.monitors, self.resolution):
            print('measuring: %s ...' % step.__name__, flush=True)
            done = step()
            for row in done:
                print('  %s | %s | %s' % row[1:], flush=True)
            rows += done
        return rows

    # 1 -------------------------------------------------------------------------------
    def original(self) -> list[tuple]:
        """The seed's way: tcpdump on the VM's port, 100 ms, ovs-ofctl packet-out."""
        a, b, rows = self.a, self.b, []
        frame = packet.echo_request(packet.mac_bytes(a.mac), packet.mac_bytes(b.mac),
                                    bytes(map(int, a.ip.split('.'))),
                                    bytes(map(int, b.ip.split('.'))), 111, 1, b'seed').hex()
        for label, extra in (('tcpdump as in the seed', []),
                             ('tcpdump --immediate-mode', ['--immediate-mode'])):
            times, ok = [], 0
            for _ in range(self.sizes.original):
                start = time.perf_counter()
                dump = subprocess.Popen(
                    ['ip', 'netns', 'exec', self.network.netns(a.host), 'tcpdump', '-n', '-c',
                     '1', '-i', a.port_name, *extra, SEED_FILTER % (b.ip, a.ip)],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                time.sleep(0.1)
                self.network.run(a.host, ['ovs-ofctl', 'packet-out', a.bridge, str(a.port_no),
                                          'resubmit(%d)' % a.port_no, frame])
                out = dump.communicate(timeout=10)[0]
                times.append(time.perf_counter() - start)
                ok += b.ip in out
            median = statistics.median(times)
            self.notes.setdefault('original_median', median)
            rows += [('1. original method', '%s: median s/probe (%d/%d caught)'
                      % (label, ok, len(times)), '%.3f' % median, ''),
                     ('1. original method', '%s: probes/s' % label, '%.2f' % (1 / median), '')]
        return rows

    # 2, 7 ----------------------------------------------------------------------------
    def timed_probes(self, bodies: list[dict]) -> tuple[list[float], list[dict]]:
        """REST POST wait=true of each body, one after another: (wall ms, results)."""
        wall, results = [], []
        for body in bodies:
            start = time.perf_counter()
            results.append(self.app.probe(**body))
            wall.append((time.perf_counter() - start) * 1000)
        return wall, results

    def latency(self) -> list[tuple]:
        """REST POST wait=true count=1, one after another from one source: after the
        first, each finds the source's catch live (catch_linger); and the floor."""
        body = self.body(self.a, self.b, count=1)
        self.app.probe(**body)
        before = self.stats()
        wall, results = self.timed_probes([body] * self.sizes.latency)
        used = self.since(before)
        self.notes['probe_rtt'] = statistics.median(
            r['rtt_ms']['avg'] for r in results if r['rtt_ms'])
        p50 = self.notes['warm_p50'] = pct(wall, 50)
        speedup = self.notes['original_median'] * 1000 / p50
        return [('2. latency (REST, count=1, wait)',
                 'warm catch (same source): p50 / p95 / p99 ms over %d; FlowMods / flow '
                 'reads / retransmits per probe' % len(wall),
                 '%.2f / %.2f / %.2f; %s' % (p50, pct(wall, 95), pct(wall, 99),
                                             self.per_probe(used, results)), 'p50 <= 3 ms'),
                ('2. latency (REST, count=1, wait)', 'x faster than the original (seed tcpdump)',
                 '%.0fx' % speedup, '>= 300x')]

    def cold_latency(self) -> list[tuple]:
        """The first probe from a new source: its catch must be laid (FlowMod, barrier,
        catch_settle), on a bridge that has no catch yet (the flow table is read first)
        or one that has (its flow table is fresh). ARP is warmed first by a kernel ping."""
        pairs = [(s, d) for s, d in self.pairs() if s is not self.a]
        self.kernel_ping(pairs)
        idle, busy, seen = [], [], {self.a.host}
        for src, dst in pairs:
            (busy if src.host in seen else idle).append(self.body(src, dst, count=1))
            seen.add(src.host)
        rows = []
        for label, bodies in (('new source, idle bridge (read flows, FlowMod, barrier, '
                               'settle)', idle),
                              ('new source, bridge with live catches (FlowMod, barrier, '
                               'settle)', busy)):
            before = self.stats()
            wall, results = self.timed_probes(bodies)
            self.notes.setdefault('cold_p50', []).append(pct(wall, 50))
            rows.append(('2. latency (REST, count=1, wait)',
                         'cold catch, %s: p50 / p95 / p99 ms over %d; FlowMods / flow reads '
                         '/ retransmits per probe' % (label, len(wall)),
                         '%.2f / %.2f / %.2f; %s' % (pct(wall, 50), pct(wall, 95), pct(wall, 99),
                                                     self.per_probe(self.since(before), results)),
                         ''))
        return rows

    def per_probe(self, used: dict, results: list[dict]) -> str:
        n = len(results)
        return '%.2f / %.2f / %.2f' % (used['flow_mods'] / n, used['flow_reads'] / n,
                                       sum(r['retransmits'] for r in results) / n)

    def kernel_ping(self, pairs) -> None:
        """One kernel ping per pair, all at once: the VMs' ARP caches are warm after."""
        pings = [subprocess.Popen(['ip', 'netns', 'exec', self.network.netns(s.name), 'ping',
                                   '-n', '-q', '-c', '1', '-W', '1', d.ip],
                                  stdout=subprocess.DEVNULL) for s, d in pairs]
        for ping in pings:
            ping.wait()

    # 3 -------------------------------------------------------------------------------
    def pairs(self, exclude=()) -> list[tuple[VmInfo, VmInfo]]:
        """Each VM with the VM at the same place on the next hypervisor."""
        vms = [vm for vm in self.vms if vm not in exclude]
        hosts = sorted({vm.host for vm in vms})
        by_host = {h: [vm for vm in vms if vm.host == h] for h in hosts}
        pairs = []
        for h, host in enumerate(hosts):
            peers = by_host[hosts[(h + 1) % len(hosts)]]
            pairs += [(vm, peers[i % len(peers)]) for i, vm in enumerate(by_host[host])]
        return pairs

    def load(self, pairs, seconds: float, interval: float) -> list[dict]:
        count = max(1, int(seconds / interval))
        return self.batch([self.body(src, dst, count=count, interval=interval, timeout=1.0)
                           for src, dst in pairs], wait=False)

    def throughput(self) -> list[tuple]:
        pairs, seconds = self.pairs(), self.sizes.load_seconds
        bridges = len({src.dpid for src, _ in pairs})
        rows = []
        for interval in (0.02, 0.01):
            before, cpu0, ovs0, t0 = self.stats(), self.proc('cpu'), self.ovs_cpu(), time.monotonic()
            probes = self.load(pairs, seconds, interval)
            self.wait(probes)
            delta, cpu1, ovs1, t1 = self.since(before), self.proc('cpu'), self.ovs_cpu(), time.monotonic()
            span = t1 - t0
            offered = len(pairs) / interval
            self.notes['throughput'] = (delta['replies'] / span, 100 * (cpu1 - cpu0) / span,
                                        100 * (ovs1 - ovs0) / span,
                                        1e6 * (cpu1 - cpu0) / max(1, delta['packet_outs']))
            rows += [
                ('3. throughput', '%d pairs on %d bridges, offered %d echoes/s: replies/s (loss)'
                 % (len(pairs), bridges, offered),
                 '%d (%.1f%%)' % (delta['replies'] / span,
                                  100 * (1 - delta['replies'] / max(1, delta['packet_outs']))),
                 '>= 5000'),
                ('3. throughput', '  CPU (of one core): app / all ovs-vswitchd; PacketOut/s / PacketIn/s',
                 '%.0f%% / %.0f%%; %d / %d' % (100 * (cpu1 - cpu0) / span, 100 * (ovs1 - ovs0) / span,
                                             delta['packet_outs'] / span, delta['packet_ins'] / span),
                 ''),
                ('3. throughput', '  app CPU µs per echo; PacketIns per echo (per PacketOut / '
                 'per reply); per probe: FlowMods / flow reads',
                 '%.0f; %s; %s' % (1e6 * (cpu1 - cpu0) / max(1, delta['packet_outs']),
                                   self.packet_ins(delta), self.flows_per_probe(delta)), '')]
        return rows

    def packet_ins(self, delta: dict) -> str:
        return '%.3f / %.3f' % (delta['packet_ins'] / max(1, delta['packet_outs']),
                                delta['packet_ins'] / max(1, delta['replies']))

    def flows_per_probe(self, delta: dict) -> str:
        probes = max(1, delta['probes_started'])
        return '%.3f / %.3f' % (delta['flow_mods'] / probes, delta['flow_reads'] / probes)

    def wait(self, probes: list[dict]) -> None:
        for probe in probes:
            while self.app.get('/probe/probes/' + probe['id'])['state'] == 'running':
                time.sleep(0.1)

    # 4 -------------------------------------------------------------------------------
    def mesh(self) -> list[tuple]:
        """The largest mesh once cold (every VM must ARP for every other at once, and no
        catch is left from earlier steps), then each size with warm ARP caches and the
        catches of the runs before still lingering."""
        self.wait_no_catches()
        rows, per_pair = [], []
        for n in (self.sizes.mesh[-1],) + self.sizes.mesh:
            vms = self.vms[:n]
            bodies = [self.body(s, d, count=1) for s in vms for d in vms if s is not d]
            before, cpu0 = self.stats(), self.proc('cpu')
            start = time.perf_counter()
            results = self.batch(bodies)
            seconds = time.perf_counter() - start
            cpu = self.proc('cpu') - cpu0
            reachable = sum(r['verdict'] == 'reachable' for r in results)
            delta = self.since(before)
            cold = not rows
            if not cold:
                per_pair.append(seconds / len(bodies) * 1000)
            if len(bodies) == 2450:
                self.notes['cold_mesh' if cold else 'mesh'] = (seconds, 100 * cpu / seconds)
            rows.append(('4. full mesh (count=1)', '%d VMs, %d pairs%s: seconds (reachable; '
                         'app CPU of one core; FlowMods / flow reads per probe; PacketIns per '
                         'PacketOut / per reply)'
                         % (n, len(bodies), ', cold ARP caches, no catch yet' if cold else ''),
                         '%.2f (%d; %.0f%%; %s; %s)' % (
                             seconds, reachable, 100 * cpu / seconds,
                             self.flows_per_probe(delta), self.packet_ins(delta)),
                         '<= 2 s' if len(bodies) == 2450 and not cold else ''))
        rows.append(('4. full mesh (count=1)', 'ms per pair, by mesh size',
                     ' / '.join('%.2f' % x for x in per_pair), 'linear (flat)'))
        return rows

    def wait_no_catches(self, timeout: float = 30.0) -> None:
        """Until every catch of earlier steps has lingered its catch_linger and gone."""
        deadline = time.monotonic() + timeout
        while self.app.get('/probe/stats')['catch_flows']:
            if time.monotonic() > deadline:
                raise RuntimeError('catch flows still there after %.0f s' % timeout)
            time.sleep(0.2)

    # 5 -------------------------------------------------------------------------------
    def memory(self) -> list[tuple]:
        rows = [('5. memory', 'app RSS MB at start of this step', '%.0f' % self.proc('rss'), '')]
        pairs = [(s, d) for s in self.vms[:50] for d in self.vms[:50] if s is not d]
        done, i = 0, 0
        for target in self.sizes.memory:
            while done < target:
                chunk = [self.body(*pairs[(i + k) % len(pairs)], count=1, timeout=0.5)
                         for k in range(min(1000, target - done))]
                i += len(chunk)
                done += len(self.batch(chunk))
            rows.append(('5. memory', 'app RSS MB after %d finished probes' % done,
                         '%.0f' % self.proc('rss'), '<= 150' if target >= 100_000 else ''))
        return rows

    # 6, 7, 9 -------------------------------------------------------------------------
    def start_ping(self, seconds: float) -> subprocess.Popen:
        """The tenant's ping -i 0.01 from a to b, for `seconds`."""
        return subprocess.Popen(
            ['ip', 'netns', 'exec', self.network.netns(self.a.name), 'ping', '-n', '-i', '0.01',
             '-c', str(int(seconds / 0.01)), self.b.ip], stdout=subprocess.PIPE, text=True)

    def tenant_ping(self, seconds: float) -> tuple[float, float, int, int]:
        """The tenant's ping for `seconds`, as in tenant(): RTT p50, p99 (ms), lost, DUP."""
        out = self.start_ping(seconds).communicate(timeout=seconds * 3 + 10)[0]
        rtts, dups = ping_rtts(out), out.count('DUP!')
        return pct(rtts, 50), pct(rtts, 99), int(seconds / 0.01) - (len(rtts) - dups), dups

    def tenant(self) -> list[tuple]:
        a, b, seconds = self.a, self.b, self.sizes.load_seconds
        rows, idle = [], None
        for label, load in (
                ('no probing', None),
                ('app probing this pair at 1000 echoes/s', lambda: self.load([(a, b)], seconds, 0.001)),
                ('app probing other pairs at 1000 echoes/s',
                 lambda: self.load(self.pairs(exclude=(a, b)), seconds, 0.1)),
                ('app probing other pairs at full rate',
                 lambda: self.load(self.pairs(exclude=(a, b)), seconds, 0.01))):
            ping = self.start_ping(seconds)
            before = self.stats()
            probes = load() if load else []
            out = ping.communicate(timeout=seconds * 3 + 10)[0]
            self.wait(probes)
            tenant_ins = self.since(before)['tenant_packet_ins']
            rtts = ping_rtts(out)
            sent = int(seconds / 0.01)
            p99 = pct(rtts, 99)
            idle = idle or p99
            dups = out.count('DUP!')
            rows.append(('6. tenant ping (-i 0.01)',
                         '%s: RTT p50 / p99 ms, lost, DUP, p99 vs no probing; tenant '
                         'PacketIns' % label,
                         '%.3f / %.3f, %d, %d, %+.0f%%; %d' % (
                             pct(rtts, 50), p99, sent - (len(rtts) - dups), dups,
                             100 * (p99 / idle - 1), tenant_ins),
                         '0, 0, <= +10%; 0' if load else '; 0'))
            if not load:
                self.notes['kernel_rtt'] = pct(rtts, 50)
                self.notes['idle_p99'] = p99
        rows.append(('7. the floor', 'kernel ping RTT p50 / probe RTT p50 (ms)',
                     '%.3f / %.3f' % (self.notes['kernel_rtt'], self.notes['probe_rtt']), ''))
        return rows

    # 9 -------------------------------------------------------------------------------
    def monitors(self) -> list[tuple]:
        from bench import monitor
        return monitor.measure(self)

    # 10 ------------------------------------------------------------------------------
    def resolution(self) -> list[tuple]:
        """MACs left out (resolve.py): REST latency of count=1 probes, one after another,
        with the MACs given, then left out with the answers not cached yet (a lookup of
        the source's own MAC, then of the destination's), then left out again (cached);
        the same pairs in that order, after a first round that makes their catches live
        (catch_linger), so each row differs by the lookups alone. Then the other kinds
        (kinds()), and the full mesh in one batch with no MAC (one lookup per source and
        per pair)."""
        section, rows = '10. addresses found by the app', []
        pairs = self.pairs()[:self.sizes.resolution]
        bodies = [self.body(src, dst, count=1) for src, dst in pairs]
        bare = [{k: v for k, v in b.items() if k not in ('src_mac', 'dst_mac')}
                for b in bodies]
        self.timed_probes(bodies)        # their catches live, as in every row below
        for label, batch in (('MACs given', bodies), ('no MAC, not cached', bare),
                             ('no MAC, cached', bare)):
            wall, results = self.timed_probes(batch)
            reachable = sum(r['verdict'] == 'reachable' for r in results)
            rows.append((section, '%s: REST p50 / p95 ms over %d probes (reachable)'
                         % (label, len(batch)), '%.2f / %.2f (%d)' % (
                             pct(wall, 50), pct(wall, 95), reachable), ''))
        rows += self.kinds(section, pairs)
        self.wait_no_catches()
        vms = self.vms[:max(self.sizes.mesh)]
        mesh = [{k: v for k, v in self.body(s, d, count=1).items()
                 if k not in ('src_mac', 'dst_mac')} for s in vms for d in vms if s is not d]
        before, cpu0, start = self.stats(), self.proc('cpu'), time.monotonic()
        results = self.batch(mesh)
        seconds, used = time.monotonic() - start, self.since(before)
        cpu = (self.proc('cpu') - cpu0) / seconds * 100
        rows.append((section, '%d VMs, %d pairs in one batch, no MAC: seconds (verdicts, and '
                     'errors by their text; app CPU of one core; lookups resolved / from the '
                     'cache / unresolved; FlowMods per probe)' % (len(vms), len(mesh)),
                     '%.2f (%s; %.0f%%; %d / %d / %d; %.2f)' % (
                         seconds, outcomes(results), cpu, used['resolved'],
                         used['resolved_cached'], used['unresolved'],
                         used['flow_mods'] / len(mesh)), ''))
        return rows

    def kinds(self, section: str, pairs) -> list[tuple]:
        """tcp, udp and arp probes, their MACs given, one after another as in the 'MACs
        given' row (tcp to an open port: from each pair's source to one VM, where a socat
        listens; engine.down stops it). No catch of theirs lingers (tcp and udp take their
        own source port's answers, arp copies): each probe lays its own."""
        listener = self.b
        pidfile = os.path.join(self.network.dir, 'bench-socat.pid')
        engine.spawn(pidfile, ['socat', 'TCP-LISTEN:%d,fork,reuseaddr' % OPEN_PORT,
                               'SYSTEM:true'], self.network.netns(listener.name),
                     pidfile[:-4] + '.log')
        deadline = time.monotonic() + 10
        while ':%d ' % OPEN_PORT not in self.network.run(listener.name, ['ss', '-ltn']):
            if time.monotonic() > deadline:
                raise RuntimeError('socat does not listen in %s' % listener.name)
            time.sleep(0.05)
        sources = [src for src, _ in self.pairs(exclude=(listener,))[:len(pairs)]]
        rows = []
        for label, kind_pairs, extra in (
                ('tcp to an open port', [(src, listener) for src in sources],
                 dict(kind='tcp', dst_port=OPEN_PORT)),
                ('tcp to a closed port', pairs, dict(kind='tcp', dst_port=CLOSED_PORT)),
                ('udp to a closed port', pairs, dict(kind='udp', dst_port=CLOSED_PORT)),
                ('arp to a live VM', pairs, dict(kind='arp'))):
            bodies = [self.body(src, dst, count=1, **extra) for src, dst in kind_pairs]
            if extra['kind'] == 'arp':      # it asks for the MAC: it takes none
                bodies = [{k: v for k, v in b.items() if k != 'dst_mac'} for b in bodies]
            before = self.stats()
            wall, results = self.timed_probes(bodies)
            rows.append((section, '%s, MACs given: REST p50 / p95 ms over %d probes '
                         '(verdicts; FlowMods per probe)' % (label, len(wall)),
                         '%.2f / %.2f (%s; %.2f)' % (
                             pct(wall, 50), pct(wall, 95), outcomes(results),
                             self.since(before)['flow_mods'] / len(wall)), ''))
        return rows


def table(rows: list[tuple]) -> str:
    lines = ['| section | measurement | value | target |', '|---|---|---|---|']
    lines += ['| %s | %s | %s | %s |' % row for row in rows]
    return '\n'.join(lines)


READING = """
## Reading the numbers

* **1 vs 2: the original method** is bounded by tcpdump: without `--immediate-mode`
  libpcap hands the capture over only when its 1 s buffer timeout fires, so every probe
  costs about a second; with it, starting tcpdump and the seed's 100 ms sleep still cost
  over 100 ms. One probe at a time, ok/fail only.
* **2: single-probe latency, warm** (the normal case with the default `catch_linger` of
  10 s: the source's catch is live) costs no FlowMod, no flow table read and no
  retransmission (the row's per-probe counts). Its p50 (%(warm_p50).2f ms) is the probe's
  own round trip through three userspace bridges each way (%(probe_rtt).2f ms, row 7) plus
  REST (a new HTTP connection per call, eventlet's WSGI, JSON both ways) and Ryu's
  message handling in one Python process; p95/p99 are the machine's CPU noise. So it is
  bounded by the userspace datapath and the Python REST path, not by OpenFlow.
* **2: cold catch** (the first probe from a source): laying the catch costs %(cold_idle).1f ms
  (p50) on a bridge the app has not read lately (one flow table read, then the shadow
  FlowMod, the barrier) and %(cold_busy).1f ms where the bridge's table was read in the last
  `resync_interval` (a table this small reads in well under a millisecond). Most of it
  is `catch_settle` (%(settle_ms)g ms); see section 8 for what it buys.
* **3: throughput** is bounded by the two cores, which the app (%(app_cpu).0f%% of one core at
  the higher rate, %(us_per_echo).0f µs of CPU per echo) shares with the 21 userspace
  ovs-vswitchd (%(ovs_cpu).0f%%), which forward every PacketOut, every reply and every tenant
  packet here (on a kernel datapath only PacketOuts and PacketIns would reach them).
  Replies/s are counted over the whole window (the batch POST, the last echoes' replies
  and the polling), so they read a little under the offered rate. One PacketIn per
  reply (within 1%%), none for tenant packets: the shadows take marked replies only.
  The FlowMods per probe are timeouts, not catches (every source's catch lingers from
  the steps before): a probe that outlives its
  shadows' `hard_timeout` re-adds them when it starts, and again when it ends, for the
  linger. The flow table reads are time, not probes: each bridge with a live catch
  re-reads its table every `resync_interval` (20 reads/s here).
* **4: the mesh** is one `POST /probe/batch` of 2,450 probes. The app is busy for
  %(mesh_cpu).0f%% of the warm 50-VM mesh's %(mesh_s).2f s (parsing and validating the batch,
  the probes and their PacketOuts, the PacketIns, 2,450 results as JSON); the rest is
  the datapath and the echo pacing. With no catch yet (the cold row, %(cold_mesh_s).2f s) each
  of the 50 sources lays one catch (2 FlowMods: the shadow, and its timeout extended for
  the linger when the source's last probe ends) and each bridge reads its flow table
  once; the lab's cold ARP caches (every VM ARPs for 49 others at once, flooding 21
  userspace switches) cost far more than that. Later meshes find the catches lingering.
* **5: memory** plateaus: finished probes are kept in a store capped at `max_results`, and
  a stored probe drops its packet template and catch reference.
* **6: tenant impact**: zero loss and zero duplicates at every load, and no tenant packet
  reaches the app (`tenant_packet_ins` 0: the tenant's replies are unmarked, and the
  shadows match our DSCP mark only). The p99 RTT grows with the probing load because
  the tenant's packets are forwarded by the same userspace ovs-vswitchd threads, on the
  same two cores, that process our PacketOuts and PacketIns, and the idle lab's own p99
  (21 OVS instances, 100 namespaces, and other engineers' tests on 2 cores) is already
  several times its p50.
* **8: the settle time.** A reply that beat a new shadow into the datapath would take
  the cached flow and be delivered to the tenant; the tcpdump in the source VM counts
  those: %(missed)s of %(settle_n)d probes at catch_settle = %(settles)s ms.
  Retransmissions at small settles are mostly not misses: the first marked reply after
  a new shadow is handled in ovs-vswitchd's slow path (an upcall) and can take longer
  than a 0-2 ms retransmission delay; its late twin finds the catch gone (echoes sent > PacketIns
  taken). From 5 ms on there is hardly a retransmission, and every ms of settle is a ms
  of cold latency. Where no reply was missed even at 0 ms, the barrier alone was enough
  on this switch, and 10 ms is a margin for a loaded one, paid once per new source.
"""


def report(header: str, table_text: str, bench: Bench, settles: list[dict]) -> str:
    notes = bench.notes
    cold = notes['cold_p50']
    numbers = dict(
        warm_p50=notes['warm_p50'], probe_rtt=notes['probe_rtt'], cold_idle=cold[0],
        cold_busy=cold[-1], settle_ms=1000 * Settings().catch_settle,
        app_cpu=notes['throughput'][1], ovs_cpu=notes['throughput'][2],
        us_per_echo=notes['throughput'][3], mesh_s=notes.get('mesh', (0, 0))[0],
        mesh_cpu=notes.get('mesh', (0, 0))[1], cold_mesh_s=notes.get('cold_mesh', (0, 0))[0],
        missed=' / '.join(str(r['missed']) for r in settles), settle_n=settles[0]['probes'],
        settles=' / '.join('%g' % (1000 * r['settle']) for r in settles))
    from bench import monitor
    monitors = monitor.reading(notes['monitors'], notes['throughput'][3], notes['idle_p99'])
    return '# Benchmarks\n\n%s\n\n%s\n%s%s\nReproduce: `make bench` (as root).\n' % (
        header, table_text, READING % numbers, monitors)
