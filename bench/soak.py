"""The soak: a 1,000-pair monitor every 5 s on the `scale` topology for ten minutes, with
the faults of tests/e2e/test_faults_lab.py injected one after another. Not a test, and
not part of `make bench` (bench/__main__.py does not run it; it only keeps its block in
BENCHMARKS.md when it rewrites that file).

    sudo .venv/bin/python -m bench.soak [--minutes 10] [--no-write]

Faults, each on a hypervisor of its own (FAULTS): the app killed mid-monitor and
restarted; ovs-vswitchd restarted as ovs-ctl does, then crashed; ovsdb-server
restarted; the switch flapping 10 times in a minute; a VM's port renumbered; a bridge
re-created under its dpid with its ports' numbers swapped; a second app instance on a
bridge, then killed; a fake switch claiming a connected dpid.

It ends printing, and writing to docs/soak.md and to the soak block of BENCHMARKS.md:
* tenant packets lost: a background ping (-i 0.05) between VMs of hv1 and hv20, which
  no fault touches (a fault that stops a hypervisor's datapath drops its own VMs'
  packets, and that is OVS's doing, not ours);
* leaked flows: ours (any instance's) left on any bridge once the monitor is deleted,
  and bridges whose other flows differ from before;
* the app's RSS: start, max and end (of the process started after the kill);
* the rounds' verdicts: each round seen, by verdict; a verdict other than reachable is
  correct only during a fault that stopped the datapath of the pair's own hypervisor
  (src or dst), and every other one is listed as wrong; errors by reason;
* each pair's verdict after recovery against a kernel ping (ping -c 2) of every pair.
"""
import argparse
import collections
import concurrent.futures
import datetime
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from topologies import engine
from topologies.controller import ProbeController
from topologies.ofpeer import Peer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INSTANCE = 'soak'
MONITOR = 'soak'
PAIRS, INTERVAL, COUNT = 1000, 5.0, 3
POLL = 2.0                    # s between reads of the monitor (and the RSS)
PING_EVERY = 0.05             # the tenant's ping
SECOND_ID = 0x7271            # the second instance's controller_id
OURS = re.compile(r'cookie=0x72797570')     # any instance's flows
BEGIN = '<!-- soak: begin (python -m bench.soak writes this block; make bench keeps it) -->'
END = '<!-- soak: end -->'
DOC = os.path.join(ROOT, 'docs', 'soak.md')
BENCHMARKS = os.path.join(ROOT, 'BENCHMARKS.md')


def carry(old: str, new: str) -> str:
    """`new` (a BENCHMARKS.md just generated) with the soak block of `old` appended, if
    `old` has one: make bench rewrites the file and keeps the soak's figures."""
    start, end = old.find(BEGIN), old.find(END)
    if start < 0 or end < start or BEGIN in new:
        return new
    return new.rstrip('\n') + '\n\n' + old[start:end + len(END)] + '\n'


def with_block(text: str, block: str) -> str:
    """`text` with its soak block replaced by `block` (appended if it has none)."""
    block = BEGIN + '\n' + block.strip('\n') + '\n' + END
    start, end = text.find(BEGIN), text.find(END)
    if start >= 0 and end > start:
        return text[:start] + block + text[end + len(END):]
    return text.rstrip('\n') + '\n\n' + block + '\n'


def rss_mb(pid: int) -> float:
    with open('/proc/%d/status' % pid) as f:
        return int(re.search(r'VmRSS:\s+(\d+)', f.read()).group(1)) / 1024


@dataclass
class Fault:
    name: str
    host: str                 # the hypervisor it is done to ('' for the app)
    outage: bool              # it stops that hypervisor's datapath (or one VM's port)
    at: float = 0.0           # s from the start, when it began
    until: float = 0.0        # and when it was undone
    notes: list[str] = field(default_factory=list)
    vm: str | None = None     # the one VM an outage is limited to


class Soak:
    def __init__(self, minutes: float):
        self.minutes = minutes
        self.scale = minutes / 10.0
        self.app: ProbeController | None = None
        self.network: engine.Network | None = None
        self.t0 = 0.0
        self.rounds: dict[tuple, tuple] = {}          # (pair, last_at) -> (verdict, error)
        self.rss: list[tuple[float, int, float]] = []  # (t, pid, MB)
        self.faults: list[Fault] = []
        self.pids: list[int] = []
        self._stop = threading.Event()

    # --- the lab ---------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def log(self, message: str) -> None:
        print('[%6.1f s] %s' % (self.now(), message), flush=True)

    def vms(self) -> list:
        return sorted(self.network.vms().values(), key=lambda v: (int(v.host[2:]), v.name))

    def pairs(self) -> list[dict]:
        """PAIRS pairs, ten from every VM, spread over the hypervisors; by port name."""
        vms, pairs = self.vms(), []
        for i, src in enumerate(vms):
            for k in range(PAIRS // len(vms)):
                dst = vms[(i + 1 + 9 * k) % len(vms)]
                pairs.append({'dpid': '%016x' % src.dpid, 'in_port': src.port_name,
                              'src_mac': src.mac, 'src_ip': src.ip, 'dst_mac': dst.mac,
                              'dst_ip': dst.ip, 'name': '%s->%s' % (src.name, dst.name)})
        return pairs

    def flows(self) -> dict:
        return {(host, bridge): self.network.ovs(host).dump_flows(bridge)
                for host, bridges in self.network.state['hosts'].items() for bridge in bridges}

    def start_app(self, of_port=None, rest_port=None) -> None:
        self.app = ProbeController(config='[probe]\nmonitors_file = %s\n' % os.path.join(
            self.monitors_dir, 'monitors.json'), of_port=of_port, rest_port=rest_port)
        self.app.start()
        self.pids.append(self.app.proc.pid)

    def until(self, check, what: str, timeout: float = 60.0):
        return engine.wait_for(check, what, timeout, every=0.1)

    def connected(self, dpid: int, app=None) -> bool:
        return any(s['dpid'] == '%016x' % dpid and s['ports']
                   for s in (app or self.app).get('/probe/switches'))

    # --- watching ------------------------------------------------------------------

    def watch(self) -> None:
        """Every POLL s: each pair's last round, and the app's RSS."""
        while not self._stop.wait(POLL):
            try:
                monitors = self.app.get('/probe/monitors')
                self.rss.append((self.now(), self.app.proc.pid, rss_mb(self.app.proc.pid)))
            except (OSError, RuntimeError):
                continue            # the app is being killed and started again
            for monitor in monitors:
                if monitor['name'] != MONITOR:
                    continue
                for pair in monitor['pairs']:
                    if pair['last_at'] is not None:
                        self.rounds[(pair['name'], pair['last_at'])] = (
                            pair['verdict'], pair['error'], pair['probe_id'])

    # --- faults --------------------------------------------------------------------

    def fault(self, name: str, host: str, outage: bool, vm: str | None = None) -> Fault:
        fault = Fault(name, host, outage, self.now(), vm=vm)
        self.faults.append(fault)
        self.log('fault: %s%s' % (name, ' on ' + host if host else ''))
        return fault

    def done(self, fault: Fault, *notes: str) -> None:
        fault.until = self.now()
        fault.notes += notes
        self.log('  done in %.1f s%s' % (fault.until - fault.at,
                                         ''.join('; ' + n for n in notes)))

    def dpid(self, host: str) -> int:
        return self.network.state['hosts'][host]['br-int'][0]

    def agent_readds(self, ovs) -> None:
        """What the operator's agent does when its bridge comes back empty."""
        if not [f for f in ovs.dump_flows('br-int') if not OURS.search(f)]:
            ovs.ofctl('add-flow', 'br-int', 'priority=0,actions=NORMAL')

    def kill_app(self) -> None:
        fault = self.fault('the app killed (SIGKILL) mid-monitor, and started again', '', False)
        of_port, rest_port = self.app.of_port, self.app.rest_port
        self.app.kill()
        self.start_app(of_port, rest_port)
        dpids = [d for _, _, d in self.network.probed_bridges()]
        self.until(lambda: all(self.connected(d) for d in dpids), 'every switch back', 90)
        back = self.app.get('/probe/monitors/' + MONITOR)
        self.done(fault, 'monitor back from its file with %d pairs' % len(back['pairs']))

    def restart_vswitchd(self, host: str, crash: bool) -> None:
        fault = self.fault('ovs-vswitchd %s' % ('crashed (SIGKILL)' if crash else
                                                'restarted as ovs-ctl does'), host, True)
        ovs = self.network.ovs(host)
        ovs.restart('ovs-vswitchd', crash=crash, keep_flows=not crash)
        self.agent_readds(ovs)
        self.until(lambda: self.connected(self.dpid(host)), 'the switch back')
        self.done(fault)

    def restart_ovsdb(self, host: str) -> None:
        fault = self.fault('ovsdb-server restarted', host, False)
        self.network.ovs(host).restart('ovsdb-server')
        self.done(fault, 'switch connected throughout: %s' % self.connected(self.dpid(host)))

    def flap(self, host: str, times: int = 10, within: float = 60.0) -> None:
        fault = self.fault('the controller connection cut and restored %d times in %g s'
                           % (times, within * self.scale), host, False)
        ovs, dpid = self.network.ovs(host), self.dpid(host)
        target = ovs.vsctl('get-controller', 'br-int').strip()
        start = time.monotonic()
        for i in range(times):
            ovs.vsctl('set-controller', 'br-int', 'tcp:127.0.0.1:9')
            self.until(lambda: not self.connected(dpid), 'the switch to go')
            ovs.vsctl('set-controller', 'br-int', target)
            self.until(lambda: self.connected(dpid), 'the switch back')
            time.sleep(max(0.0, start + (i + 1) * within * self.scale / times
                           - time.monotonic()))
        self.done(fault)

    def renumber(self, host: str) -> None:
        vm = next(v for v in self.vms() if v.host == host)
        fault = self.fault('port of %s renumbered %d -> 31' % (vm.name, vm.port_no), host,
                           True, vm=vm.name)
        self.network.ovs(host).replug('br-int', vm.port_name, 31)
        self.until(lambda: any(p['name'] == vm.port_name and p['port_no'] == 31
                               for s in self.app.get('/probe/switches')
                               for p in s['ports']), 'the app to see port 31')
        self.done(fault)

    def recreate(self, host: str) -> None:
        fault = self.fault('br-int deleted and made again under its dpid, its ports\' '
                           'numbers reversed', host, True)
        ovs, dpid = self.network.ovs(host), self.dpid(host)
        target = ovs.vsctl('get-controller', 'br-int').strip()
        ports = ovs.vsctl('list-ports', 'br-int').split()
        numbers = {p: int(ovs.vsctl('get', 'interface', p, 'ofport')) for p in ports}
        ovs.vsctl('del-br', 'br-int')
        ovs.add_bridge('br-int', dpid=dpid, controller=target)
        for port, number in zip(ports, sorted(numbers.values(), reverse=True)):
            ovs.add_port('br-int', port, ofport=number)
        self.until(lambda: self.connected(dpid), 'the switch back')
        self.done(fault)

    def second_instance(self, host: str) -> None:
        fault = self.fault('a second instance (controller_id %d) on br-int, probing, then '
                           'killed (SIGKILL)' % SECOND_ID, host, False)
        ovs, dpid = self.network.ovs(host), self.dpid(host)
        target = ovs.vsctl('get-controller', 'br-int').strip()
        other = ProbeController(config='[probe]\ncontroller_id = %d\n' % SECOND_ID)
        other.start()
        try:
            sock = ovs.path('probe-b.sock')
            engine.spawn(os.path.join(self.network.dir, 'relay-%s-b.pid' % host),
                         ['socat', 'UNIX-LISTEN:%s,fork,unlink-early' % sock,
                          'TCP:127.0.0.1:%d' % other.of_port])
            self.until(lambda: os.path.exists(sock), 'the relay')
            ovs.vsctl('set-controller', 'br-int', target, 'unix:' + sock)
            other.wait_for_switches(dpid, timeout=30)
            vms = [v for v in self.vms() if v.host == host]
            bodies = [{'dpid': '%016x' % a.dpid, 'in_port': a.port_name, 'src_mac': a.mac,
                       'src_ip': a.ip, 'dst_mac': b.mac, 'dst_ip': b.ip, 'count': 50,
                       'interval': 0.2} for a in vms for b in vms if a is not b]
            status, answer = other.request('POST', '/probe/batch',
                                           {'probes': bodies, 'wait': True}, timeout=120)
            verdicts = collections.Counter(p['verdict'] for p in answer['probes'])
            other.kill()
            ovs.vsctl('set-controller', 'br-int', target)
        finally:
            other.close()
        self.done(fault, 'its %d probes: %s' % (len(bodies), dict(verdicts)))

    def fake_switch(self, host: str) -> None:
        fault = self.fault('a fake switch claims the dpid of br-int', host, False)
        fake = Peer(socket.create_connection(('127.0.0.1', self.app.of_port)),
                    dpid=self.dpid(host))
        refused = fake.closed.wait(15)
        fake.close()
        self.done(fault, 'refused: %s, real switch still connected: %s' % (
            refused, self.connected(self.dpid(host))))

    def schedule(self) -> list[tuple[float, object]]:
        """(s from the start, what), for a ten-minute soak; shorter ones are scaled."""
        plan = [(45, self.kill_app),
                (100, lambda: self.restart_vswitchd('hv3', crash=False)),
                (160, lambda: self.restart_vswitchd('hv4', crash=True)),
                (220, lambda: self.restart_ovsdb('hv5')),
                (260, lambda: self.flap('hv6')),
                (340, lambda: self.renumber('hv7')),
                (380, lambda: self.recreate('hv8')),
                (420, lambda: self.second_instance('hv9')),
                (480, lambda: self.fake_switch('hv10'))]
        return [(at * self.scale, what) for at, what in plan]

    # --- the run -------------------------------------------------------------------

    def run(self) -> dict:
        self.monitors_dir = tempfile.mkdtemp(prefix='ryu-probe-soak.')
        self.start_app()
        try:
            return self._run()
        finally:
            self._stop.set()
            engine.down(INSTANCE)
            self.app.close()

    def _run(self) -> dict:
        print('bringing up the scale topology as %s ...' % INSTANCE, flush=True)
        self.network = engine.up(engine.load('scale'), controller=self.app.target,
                                 instance=INSTANCE)
        dpids = [d for _, _, d in self.network.probed_bridges()]
        self.app.wait_for_switches(*dpids, timeout=60)
        baseline = {k: [f for f in v if not OURS.search(f)] for k, v in self.flows().items()}
        pairs = self.pairs()
        status, body = self.app.request('POST', '/probe/monitors', {
            'name': MONITOR, 'interval': INTERVAL, 'count': COUNT, 'probes': pairs})
        if status != 201:
            raise RuntimeError('monitor: %s %s' % (status, body))
        src, dst = engine.load('scale').tenant_ping
        total = int(self.minutes * 60 / PING_EVERY)
        ping = subprocess.Popen(['ip', 'netns', 'exec', self.network.netns(src), 'ping', '-n',
                                 '-q', '-i', str(PING_EVERY), '-c', str(total),
                                 self.network.vms()[dst].ip], stdout=subprocess.PIPE, text=True)
        self.t0 = time.monotonic()
        self.load = os.getloadavg()[0]
        watcher = threading.Thread(target=self.watch, daemon=True)
        watcher.start()
        self.log('monitor of %d pairs every %g s, count %d; tenant ping %s -> %s every %g s'
                 % (len(pairs), INTERVAL, COUNT, src, dst, PING_EVERY))
        for at, what in self.schedule():
            time.sleep(max(0.0, at - self.now()))
            what()
        end = self.minutes * 60
        time.sleep(max(0.0, end - self.now()))
        self._stop.set()
        watcher.join(10)
        # after recovery: each pair's verdict, and the tenant's own ping of every pair
        last = {p['name']: p for p in self.app.get('/probe/monitors/' + MONITOR)['pairs']}
        stale = sorted(name for name, p in last.items()
                       if p['last_at'] is None or p['last_at'] < time.time() - 2 * INTERVAL)
        vms = self.network.vms()

        def kernel(pair):
            a, b = pair['name'].split('->')
            return pair['name'], self.network.ping(a, vms[b].ip, count=2)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            truth = dict(pool.map(kernel, pairs))
        disagree = sorted((name, last[name]['verdict'], truth[name]) for name in truth
                          if last[name]['verdict'] != truth[name])
        out = ping.communicate(timeout=end + 60)[0]
        sent, got = map(int, re.search(r'(\d+) packets transmitted, (\d+) received',
                                       out).groups())
        # leaks: the monitor deleted, nothing of any instance's may stay
        self.app.request('DELETE', '/probe/monitors/' + MONITOR)
        deadline = time.monotonic() + 30
        while True:
            flows = self.flows()
            left = sum(1 for fs in flows.values() for f in fs if OURS.search(f))
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        changed = sorted('%s/%s' % k for k, v in flows.items()
                         if [f for f in v if not OURS.search(f)] != baseline[k])
        stats = self.app.get('/probe/stats')
        self.verdicts, self.wrong, self.errors = self.judge()
        for wrong in self.wrong:        # what the app kept of them (a pair's last failure)
            status, probe = self.app.request('GET', '/probe/probes/' + wrong[3])
            wrong.append(probe if status == 200 else None)
        return self.summary(sent, got, left, changed, stats, disagree, stale)

    def judge(self) -> tuple[collections.Counter, list, collections.Counter]:
        """Rounds by verdict; the wrong ones; errors by reason."""
        verdicts, wrong, errors = collections.Counter(), [], collections.Counter()
        hosts = {v.name: v.host for v in self.network.vms().values()}
        wall0 = time.time() - self.now()
        for (name, at), (verdict, error, probe_id) in sorted(self.rounds.items(),
                                                             key=lambda i: i[0][1]):
            t = at - wall0
            if error:
                errors[re.sub(r'[0-9a-f]{16}|\d+', 'N', error)] += 1
                verdicts['error (no verdict)'] += 1
                continue
            verdicts[verdict] += 1
            if verdict == 'reachable':
                continue
            src, dst = name.split('->')
            excused = [f for f in self.faults if f.outage and f.at - 1 <= t <= f.until + 10
                       and (f.vm in (src, dst) if f.vm else f.host in (hosts[src],
                                                                        hosts[dst]))]
            if not excused:
                wrong.append([round(t, 1), name, verdict, probe_id])
        return verdicts, wrong, errors

    def summary(self, sent, got, left, changed, stats, disagree, stale) -> dict:
        verdicts, wrong, errors = self.verdicts, self.wrong, self.errors
        first = [mb for _, pid, mb in self.rss if pid == self.pids[0]]
        second = [(t, mb) for t, pid, mb in self.rss if pid == self.pids[-1]]
        warm = [mb for t, mb in second if t >= second[0][0] + 30] or [mb for _, mb in second]
        # the second process's RSS at the end of each minute of the soak
        minutes = [max(mb for t, mb in second if int(t // 60) == m)
                   for m in sorted({int(t // 60) for t, _ in second})]
        return dict(rss_minutes=minutes, load=(self.load, os.getloadavg()[0]),minutes=self.minutes, pairs=PAIRS, interval=INTERVAL, count=COUNT,
                    ping_sent=sent, ping_lost=sent - got, leaked=left, changed=changed,
                    rss_first=(first[0], max(first)) if first else None,
                    rss=(warm[0], max(mb for _, mb in second), second[-1][1]),
                    verdicts=verdicts, wrong=wrong, errors=errors, disagree=disagree,
                    stale=stale, rounds=len(self.rounds), faults=self.faults,
                    counters=stats['counters'])


def report(r: dict, started: str) -> str:
    faults = '\n'.join('| %.0f s | %s | %s | %.1f s | %s |' % (
        f.at, f.name, f.host or 'the app', f.until - f.at,
        '; '.join(f.notes) or '') for f in r['faults'])
    verdicts = ', '.join('%s %d' % item for item in r['verdicts'].most_common())
    errors = '\n'.join('  - %d x %s' % (n, e) for e, n in r['errors'].most_common()) or '  - none'
    wrong = ('none' if not r['wrong'] else '%d:\n%s' % (len(r['wrong']), '\n'.join(
        '  - %s at %s s: %s%s' % (name, t, v, '' if probe is None else
                                  ' (sent %s, received %s, retransmits %s, replies %s)' % (
                                      probe['sent'], probe['received'], probe['retransmits'],
                                      [x['seq'] for x in probe['replies']]))
        for t, name, v, _, probe in r['wrong'][:20])))
    first = ('first process: %.0f MB at start, %.0f MB max;' % r['rss_first']
             if r['rss_first'] else '')
    return '''## Soak (bench/soak.py)

Run %s UTC: `python -m bench.soak`, %g minutes, the `scale` topology (20 hypervisors x
5 VMs), one monitor of %d pairs every %g s (count %d), the app with its defaults; %d
cores, load average %.1f at the start and %.1f at the end (other engineers' tests ran on
this machine meanwhile). Not part of `make bench`: this block is written by the soak and
kept as it is when `make bench` rewrites the file (docs/soak.md has the same text).

| at | fault | where | took | what happened |
|---|---|---|---|---|
%s

- **Tenant packets lost**: %d of %d (a ping every %g s between hv1 and hv20, which no
  fault touches).
- **Leaked flows**: %d of any instance's left once the monitor was deleted; bridges whose
  other flows differ from before: %s.
- **App RSS**: %s after the kill, %.0f MB 30 s after its start, %.0f MB max, %.0f MB at the end;
  by minute of the soak (the highest reading in it): %s MB.
- **Rounds seen**: %d (read every %g s): %s.
- **Wrong verdicts** (not reachable, outside a fault that stopped the pair's own
  datapath): %s.
- **Errors** (rounds with no verdict), by reason:
%s
- **After recovery**: every pair's last verdict against a kernel ping (-c 2) of that pair:
  %d disagree%s; pairs with no round in the last two intervals: %d.
''' % (started, r['minutes'], r['pairs'], r['interval'], r['count'], os.cpu_count(),
       r['load'][0], r['load'][1], faults,
       r['ping_lost'], r['ping_sent'], PING_EVERY, r['leaked'], ', '.join(r['changed']) or 'none',
       first, r['rss'][0], r['rss'][1], r['rss'][2],
       ', '.join('%.0f' % mb for mb in r['rss_minutes']), r['rounds'], POLL, verdicts, wrong, errors,
       len(r['disagree']), (': ' + ', '.join('%s (%s, ping %s)' % d for d in r['disagree'][:10]))
       if r['disagree'] else '', len(r['stale']))


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.soak')
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--no-write', action='store_true',
                        help='print only: write neither docs/soak.md nor BENCHMARKS.md')
    args = parser.parse_args()
    started = datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M')
    result = Soak(args.minutes).run()
    text = report(result, started)
    print('\n' + text)
    if not args.no_write:
        with open(DOC, 'w') as f:
            f.write(text)
        with open(BENCHMARKS) as f:
            old = f.read()
        with open(BENCHMARKS, 'w') as f:
            f.write(with_block(old, text))
        print('written to %s and to the soak block of %s' % (DOC, BENCHMARKS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
