"""Verdicts that must hold when something else moves under the probe, on real OVS.

* FAUCET cold-starts (a restart, or a dp-level reload) in the middle of a probe: every
  flow of the bridge goes, ours too; the probe still ends `reachable` with every echo
  answered and its flows re-laid, or in `error` saying why, never `partial`/`unreachable`.
* Two instances of the app on one bridge with different controller ids (so different
  marks) probe the same source at once: each gets its own verdicts and its own
  PacketIns, and each keeps its own flows.
* Two instances whose ids give the same mark.
* A tenant that uses our mark: its marked replies are taken by our flows while its VM is
  probed, counted as tenant_packet_ins, and handed on to it; the meter caps the
  PacketIns they cause, and drops the rest.
* A reply that the source bridge drops after table 0 reads unreachable.

Each verdict is checked against the tenant's own kernel ping where there is one. Figures
worth a note are printed (`pytest -s`).
"""
import concurrent.futures
import re
import subprocess
import threading
import time

import pytest

from test_probe import DPID, body, build_net, start_app
from test_topologies import app, bring_up  # noqa: F401 (fixture)
from topologies import engine, faucet
from topologies.lab import missing_requirements
from topologies.nets.faucet import faucet_config

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
COOKIE = re.compile(r'cookie=0x72797570([0-9a-f]{4})([0-9a-f]{4})\b')   # index, controller id
DEFAULT_ID, OTHER_ID = 29296, 29297


def kernel_ping(netns: str, ip: str, count: int = 3, tos: int | None = None) -> int:
    """How many of the tenant's own echoes came back."""
    argv = ['ping', '-n', '-q', '-c', str(count), '-i', '0.2', '-W', '1', ip]
    if tos is not None:
        argv[1:1] = ['-Q', str(tos)]
    out = subprocess.run(['ip', 'netns', 'exec', netns, *argv], capture_output=True,
                         text=True, timeout=60).stdout
    return int(re.search(r'(\d+) received', out).group(1))


def verdict_of(received: int, count: int = 3) -> str:
    return {count: 'reachable', 0: 'unreachable'}.get(received, 'partial')


def counters(app) -> dict:
    return app.get('/probe/stats')['counters']


def delta(before: dict, after: dict) -> dict:
    keys = set(before) | set(after) | {'tenant_packet_ins', 'flows_lost', 'late_replies',
                                       'trace_packet_ins'}
    return {key: after.get(key, 0) - before.get(key, 0) for key in keys}


class FlowWatch:
    """Dumps a bridge's flows every few ms in the background: when our cookies were seen."""

    def __init__(self, ovs, bridge: str):
        self.ovs, self.bridge = ovs, bridge
        self.seen: list[tuple[float, frozenset]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                flows = self.ovs.dump_flows(self.bridge)
            except Exception:   # the bridge is being reprogrammed: try again
                continue
            cookies = tuple(sorted(m.groups() for m in map(COOKIE.search, flows) if m))
            self.seen.append((time.monotonic(), cookies))
            self._stop.wait(0.02)

    def __enter__(self) -> 'FlowWatch':
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def changes_after(self, when: float) -> list[tuple[float, int]]:
        """Each change of our flows after `when`: (seconds after it, how many flows)."""
        changes, last = [], None
        for at, cookies in self.seen:
            if at >= when and cookies != last:
                changes.append((round(at - when, 3), len(cookies)))
            last = cookies
        return changes

    def ids_together(self) -> set:
        """Controller ids whose flows were in the table in one and the same dump."""
        return max((frozenset(int(cid, 16) for _, cid in cookies) for _, cookies in self.seen),
                   key=len, default=frozenset())


# --- 1. FAUCET cold starts -------------------------------------------------------------

# Echoes of a probe across a disruption, 0.1 s apart: 8 s, so that a FAUCET restarted 1 s
# in has connected (and cold-started) well before the probe ends, even on a loaded
# machine (with 3 s, one loaded CI run's probe ended before FAUCET's flush).
ACROSS = 80


def probe_across(app, network, disrupt) -> tuple[dict, dict, tuple]:
    """vm1 -> vm2, ACROSS echoes 0.1 s apart; `disrupt()` runs 1 s in. The result, the
    counters' change, and how our flows changed after disrupt() began."""
    ovs, before = network.ovs('hv1'), counters(app)
    result = {}
    probe = engine.load('faucet').probes[0]
    assert (probe.src, probe.dst) == ('vm1', 'vm2')
    worker = threading.Thread(target=lambda: result.update(app.probe(**network.body(
        probe, count=ACROSS, interval=0.1, timeout=1.0))))
    with FlowWatch(ovs, 'br0') as watch:
        worker.start()
        time.sleep(1.0)
        at = time.monotonic()
        disrupt()
        worker.join(60)
    return result, delta(before, counters(app)), watch.changes_after(at)


def assert_reachable_or_error(result: dict, change: dict) -> None:
    if result['state'] == 'error':
        assert result['error'], result
        return
    assert (result['state'], result['verdict']) == ('done', 'reachable'), result
    assert (result['sent'], result['received']) == (ACROSS, ACROSS), result
    assert result['flows_reinstalled'] >= 1 and change['flows_lost'] >= 1, (result, change)


def relearn(network) -> None:
    """FAUCET forgot every host: let them talk once, as `setup` does."""
    for command in network.topology.setup:
        network.run(command.where, command.argv, check=False)


def test_faucet_restart_mid_probe_ends_reachable_with_flows_relaid_or_in_error(request, app):
    network = bring_up(request, app, 'faucet')
    controller = faucet.of(network, 'hv1/br0')
    result, change, changes = probe_across(app, network, controller.restart)
    print('\nFAUCET restart mid-probe: %s %s sent=%s received=%s reinstalled=%s error=%s; '
          'our flows (s after the kill, how many) %s; counters %s' % (
              result['state'], result['verdict'], result['sent'], result['received'],
              result['flows_reinstalled'], result['error'], changes,
              {k: v for k, v in change.items() if v}))
    assert_reachable_or_error(result, change)
    relearn(network)
    truth = kernel_ping(network.netns('vm1'), network.vms()['vm2'].ip)
    assert verdict_of(truth) == 'reachable'


def test_faucet_dp_level_reload_mid_probe_ends_reachable_with_flows_relaid_or_in_error(
        request, app):
    network = bring_up(request, app, 'faucet')
    controller = faucet.of(network, 'hv1/br0')
    ports = {vm.port_name: vm.port_no for vm in network.vms().values()}
    kinds = []
    result, change, changes = probe_across(app, network, lambda: kinds.append(
        controller.reload(faucet_config(controller.dpid, ports, frozenset({'router-off'})))))
    print('\nFAUCET router-off reload mid-probe (%s): %s %s sent=%s received=%s reinstalled=%s '
          'error=%s; our flows (s after SIGHUP, how many) %s; counters %s' % (
              kinds, result['state'], result['verdict'], result['sent'], result['received'],
              result['flows_reinstalled'], result['error'], changes,
              {k: v for k, v in change.items() if v}))
    assert kinds == ['cold']
    assert_reachable_or_error(result, change)
    relearn(network)
    assert verdict_of(kernel_ping(network.netns('vm1'), network.vms()['vm2'].ip)) == 'reachable'


# --- 2. two instances on one bridge ----------------------------------------------------

def two_apps(lab, *ids: int):
    """Apps with these controller ids, all controllers of one bridge (the lab's net)."""
    apps = [start_app(lab, config='[probe]\ncontroller_id = %d\n' % cid) for cid in ids]
    net = build_net(lab, [a.target for a in apps])
    for a in apps:
        a.wait_for_switches(DPID)
    return apps, net


def probe_together(apps, net, pairs, **probe) -> list[list[dict]]:
    """Every app probes every pair, all at once; each app's results, in order."""
    jobs = [(a, src, dst) for a in apps for src, dst in pairs]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: job[0].probe(**body(job[1], job[2], **probe)),
                                jobs))
    return [results[i * len(pairs):(i + 1) * len(pairs)] for i in range(len(apps))]


def test_two_instances_with_different_ids_get_their_own_verdicts_packet_ins_and_flows(lab):
    apps, net = two_apps(lab, DEFAULT_ID, OTHER_ID)
    pairs = [(net.vm1, net.vm2)] * 8 + [(net.vm1, net.vm3)] * 2    # vm3: another VLAN
    before = [counters(a) for a in apps]
    with FlowWatch(net.ovs, net.bridge) as watch:
        results = probe_together(apps, net, pairs, count=10, interval=0.05, timeout=0.5)
    for a, got, was in zip(apps, results, before):
        change = delta(was, counters(a))
        print('\n%s: %s; counters %s' % (a.config.split('\n')[1], [
            (r['verdict'], r['received'], r['loss'], r['error']) for r in got],
            {k: v for k, v in change.items() if v}))
        assert [(r['verdict'], r['loss']) for r in got] == [('reachable', 0.0)] * 8 + [
            ('unreachable', 1.0)] * 2
        assert change['tenant_packet_ins'] == 0
        assert change['packet_ins'] == (   # late: the twin of a retransmitted echo
            change['replies'] + change['late_replies'] + change['trace_packet_ins']
            + sum(r['duplicates'] for r in got))
        assert change['replies'] == 80
    assert watch.ids_together() == {DEFAULT_ID, OTHER_ID}
    assert verdict_of(kernel_ping(net.vm1.netns, net.vm2.ip)) == 'reachable'
    assert verdict_of(kernel_ping(net.vm1.netns, net.vm3.ip)) == 'unreachable'


def test_two_instances_whose_ids_give_one_mark_are_told_of_the_clash(lab):
    apps, net = two_apps(lab, 1, 17)        # (id % 16) << 2 | 3: both DSCP 7
    before = [counters(a) for a in apps]
    with FlowWatch(net.ovs, net.bridge) as watch:
        results = probe_together(apps, net, [(net.vm1, net.vm2)], count=30, interval=0.1,
                                 timeout=1.0)
    for a, (got,), was in zip(apps, results, before):
        change = delta(was, counters(a))
        print('\n%s: %s received=%s error=%s reinstalled=%s; counters %s' % (
            a.config.split('\n')[1], got['verdict'], got['received'], got['error'],
            got['flows_reinstalled'], {k: v for k, v in change.items() if v}))
    print('our flows over time: %s' % sorted({c for _, c in watch.seen}))
    assert verdict_of(kernel_ping(net.vm1.netns, net.vm2.ip)) == 'reachable'
    said = [got['error'] for (got,) in results if got['state'] == 'error']
    assert [got['verdict'] for (got,) in results if got['state'] != 'error'] == [
        'reachable'] * (2 - len(said))
    assert said and all('controller id' in error for error in said), results


# --- 3. a tenant that uses our mark ----------------------------------------------------



# --- 3. a tenant that uses our mark ----------------------------------------------------

OUR_TOS = 3 << 2    # the default mark (controller id 29296): DSCP 3, TOS byte 12
RATE = 50


def our_flows_live(net) -> None:
    deadline = time.monotonic() + 10
    while not [f for f in net.flows() if COOKIE.search(f)]:
        assert time.monotonic() < deadline, 'no catch flow of ours appeared'
        time.sleep(0.02)


def marked_ping_flood(net, count: int, pings: int = 4) -> tuple[int, int, float]:
    """vm1 pings vm2 with our mark, `pings` pings at once (one without replies sends about
    100 a second): (sent, received, seconds it took)."""
    argv = ['ping', '-n', '-q', '-Q', str(OUR_TOS), '-i', '0.002', '-c', str(count // pings),
            '-W', '1', net.vm2.ip]
    started = time.monotonic()
    procs = [net.vm1.popen(*argv, stdout=subprocess.PIPE, text=True) for _ in range(pings)]
    outs = [proc.communicate(timeout=60)[0] for proc in procs]
    took = time.monotonic() - started
    counts = [re.search(r'(\d+) packets transmitted, (\d+) received', out).groups()
              for out in outs]
    return sum(int(c[0]) for c in counts), sum(int(c[1]) for c in counts), took


def metered(lab):
    """An app with a low packet_in_rate whose catch of vm1 is live, and lingers (vm1
    counts as probed all along)."""
    app = start_app(lab, config='[probe]\npacket_in_rate = %d\ncatch_linger = 60\n' % RATE)
    net = build_net(lab, app.target)
    app.wait_for_switches(DPID)
    assert app.probe(**body(net.vm1, net.vm2, count=1))['verdict'] == 'reachable'
    our_flows_live(net)
    return app, net


def test_tenant_using_our_mark_gets_its_replies_through_us_up_to_the_meter_rate(lab):
    app, net = metered(lab)
    meter = net.ovs.ofctl('-O', 'OpenFlow13', 'dump-meters', net.bridge)
    assert 'meter=%d pktps burst bands=\ntype=drop rate=%d burst_size=%d' % (
        DEFAULT_ID, RATE, RATE // 10) in meter.replace(' \n', '\n'), meter
    before = counters(app)
    sent, received, took = marked_ping_flood(net, 2000)
    change = delta(before, counters(app))
    unmarked = kernel_ping(net.vm1.netns, net.vm2.ip)
    print('\ntenant ping with our mark: %d sent, %d received in %.2f s; app: %s; '
          'the same ping unmarked: %d of 3' % (sent, received, took,
                                              {k: v for k, v in change.items() if v}, unmarked))
    assert unmarked == 3                   # an unmarked tenant ping is not touched
    # our flow took every marked reply to vm1; each that the meter let through was
    # handed on to vm1 (a few may have come after their ping gave up on them)
    assert 0 < change['tenant_packet_ins'] == change['packet_ins'] == change['handed_on']
    assert 0 < received <= change['handed_on'] <= received + 20, (received, change)
    # the meter: about RATE a second (plus its burst), far fewer than the tenant sent
    assert change['packet_ins'] <= RATE * (took + 1) + RATE // 10 < sent / 2


def test_probe_while_a_tenant_floods_our_mark_is_reachable_or_says_why(lab):
    app, net = metered(lab)
    flood = threading.Thread(target=marked_ping_flood, args=(net, 1500))
    flood.start()
    time.sleep(0.5)
    result = app.probe(**body(net.vm1, net.vm2, count=10, interval=0.1, timeout=0.5))
    flood.join()
    print('\nprobe during a marked flood: %s received=%s error=%s' % (
        result['verdict'], result['received'], result['error']))
    assert verdict_of(kernel_ping(net.vm1.netns, net.vm2.ip)) == 'reachable'
    assert result['verdict'] == 'reachable' or result['state'] == 'error', result


# --- 4. a reply dropped after table 0 --------------------------------------------------

def test_reply_dropped_by_an_operator_flow_on_the_source_bridge_is_unreachable(lab):
    app = start_app(lab)
    net = build_net(lab, app.target)
    app.wait_for_switches(DPID)
    net.ovs.ofctl('add-flow', net.bridge,
                  'cookie=0x42,priority=100,icmp,nw_dst=%s,actions=drop' % net.vm1.ip)
    result = app.probe(**body(net.vm1, net.vm2, count=3, interval=0.1, timeout=0.5))
    assert (result['state'], result['verdict'], result['received']) == ('done', 'unreachable', 0)
    assert verdict_of(kernel_ping(net.vm1.netns, net.vm2.ip)) == 'unreachable'
    # vm2 did answer: its requests got through, only the replies to vm1 were dropped
    assert verdict_of(kernel_ping(net.vm2.netns, net.vm1.ip)) == 'unreachable'
