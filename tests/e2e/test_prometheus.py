"""Prometheus scraping the app's GET /metrics, with examples/prometheus/rules.yml (its
`for:` shortened), on real OVS.

One app on `flat`: a monitor's pairs read 1; a security group dropping ICMP to vm2 turns
them 0 and fires RyuProbePairUnreachable, as the tenant's own ping agrees; a deleted
monitor's series leave /metrics. Two apps, one per shard of `scale`'s bridges, under one
Prometheus: each instance's pairs and switches, told apart by `shard`.
"""
import importlib
import os
import re
import time
import urllib.request

import pytest

from topologies import engine
from topologies.controller import ProbeController
from topologies.lab import missing_requirements
from topologies.model import Probe
from topologies.prometheus import PROMETHEUS, Prometheus

# The module as the environment sizes it, before a test resizes its own copy.
importlib.import_module('topologies.nets.scale')
SCALE = os.path.join(os.path.dirname(engine.nets.__file__), 'scale.py')
WAIT = 120.0        # a bound on waits, not a claim on speed

if os.environ.get('CI') and not os.path.exists(PROMETHEUS):
    raise pytest.UsageError('e2e Prometheus tests cannot run: %s is missing' % PROMETHEUS)
pytestmark = [
    pytest.mark.skipif(missing_requirements() is not None, reason=missing_requirements() or ''),
    pytest.mark.skipif(not os.path.exists(PROMETHEUS),
                       reason='%s missing (make setup installs it)' % PROMETHEUS)]


def until(check, what: str, detail=None, timeout: float = WAIT):
    """Poll `check` until it returns something true, and return that; on giving up, say
    what `detail()` says too."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError('gave up waiting for %s; last: %r\n%s' % (
        what, last, detail() if detail else ''))


def explain(prom: Prometheus, *apps: ProbeController):
    """What the targets and the apps' monitors say, for a wait that gave up."""
    def detail() -> str:
        lines = ['targets: %r' % [(t['scrapeUrl'], t['health'], t['lastError'])
                                  for t in prom.targets()]]
        for app in apps:
            lines.append('%s monitors: %r' % (app.url, app.get('/probe/monitors')))
            lines.append(app.log()[-3000:])
        return '\n'.join(lines)
    return detail


def app_process(request) -> ProbeController:
    app = ProbeController()
    request.addfinalizer(app.close)
    return app.start()


def prometheus(request, targets) -> Prometheus:
    prom = Prometheus(targets, rule_for='2s')
    request.addfinalizer(prom.close)
    return prom.start()


def address(app: ProbeController) -> str:
    return app.url.removeprefix('http://')


def metrics_text(app: ProbeController) -> str:
    with urllib.request.urlopen(app.url + '/metrics', timeout=10) as res:
        return res.read().decode()


def bring_up(request, topology, controller: str, instance: str) -> engine.Network:
    request.addfinalizer(lambda: engine.down(instance))
    return engine.up(topology, controller=controller, instance=instance)


def values(prom: Prometheus, expr: str, *keys: str) -> dict:
    """An instant query as {(label values...): float}."""
    return {tuple(r['metric'].get(k) for k in keys): float(r['value'][1])
            for r in prom.query(expr)}


def firing(prom: Prometheus, alertname: str) -> list[dict]:
    return [a['labels'] for a in prom.alerts()
            if a['labels']['alertname'] == alertname and a['state'] == 'firing']


def kernel_success(network: engine.Network, src: str, dst: str) -> int:
    """What ping's exit status says from src's namespace: 1 if any echo was answered."""
    output = network.run(src, ['ping', '-n', '-q', '-c', '3', '-W', '1',
                               network.vms()[dst].ip], check=False)
    return int(int(re.search(r'(\d+) received', output).group(1)) > 0)


def test_a_dropped_pair_reads_0_and_alerts_as_ping_fails_then_goes_with_its_monitor(request):
    app = app_process(request)
    network = bring_up(request, engine.load('flat'), app.target, 'pflat')
    vms = network.vms()
    app.wait_for_switches(*{vm.dpid for vm in vms.values()}, timeout=30)
    mesh = [{'dpid': '%016x' % vm.dpid, 'in_port': vm.port_no, 'mac': vm.mac, 'ip': vm.ip,
             'name': name} for name, vm in sorted(vms.items())]
    status, body = app.request('POST', '/probe/monitors',
                               {'name': 'flat', 'interval': 2, 'count': 2, 'mesh': mesh})
    assert status == 201, body
    prom = prometheus(request, [address(app)])
    pairs = {('vm1', 'vm2'), ('vm2', 'vm1')}
    success = 'ryu_probe_success{monitor="flat"}'

    def all_read(value):
        got = values(prom, success, 'src', 'dst')
        return got if got == {pair: value for pair in pairs} else None
    detail = explain(prom, app)
    until(lambda: all_read(1.0), 'both pairs reachable in Prometheus', detail)
    assert {pair: kernel_success(network, *pair) for pair in pairs} == {pair: 1 for pair in pairs}
    assert firing(prom, 'RyuProbePairUnreachable') == []

    # ICMP to vm2 dropped on br0 (a security group): vm1's requests to it, and the
    # replies to vm2's own requests, so both directions break.
    for command in network.topology.faults['sg-drop'].commands:
        network.run(command.where, command.argv)
    until(lambda: all_read(0.0), 'both pairs unreachable in Prometheus', detail)

    def unreachable_alerts():
        alerts = firing(prom, 'RyuProbePairUnreachable')
        return alerts if {(a['src'], a['dst']) for a in alerts} == pairs else None
    alerts = until(unreachable_alerts, 'RyuProbePairUnreachable firing for both pairs', detail)
    for labels in alerts:
        assert labels['monitor'] == 'flat' and labels['severity'] == 'critical'
        assert labels['job'] == 'ryu-probe' and labels['instance'] == address(app)
    assert {pair: kernel_success(network, *pair) for pair in pairs} == {pair: 0 for pair in pairs}
    assert values(prom, 'ryu_probe_consecutive_failures{monitor="flat"} >= 2', 'src', 'dst')
    up = values(prom, 'ryu_probe_switch_up', 'dpid')
    assert up == {('%016x' % vms['vm1'].dpid,): 1.0}

    status, body = app.request('DELETE', '/probe/monitors/flat')
    assert status == 200 and body['name'] == 'flat'
    text = metrics_text(app)
    assert 'monitor="flat"' not in text and 'ryu_probe_switch_up{' in text
    until(lambda: prom.query(success) == [], 'the deleted pairs to go stale in Prometheus')
    until(lambda: not firing(prom, 'RyuProbePairUnreachable'), 'the alerts to resolve')


def scale_topology(monkeypatch, hosts: int, vms: int):
    """scale.py sized hosts x vms, loaded afresh (the package's module keeps its size)."""
    monkeypatch.setenv('RYU_PROBE_SCALE_HOSTS', str(hosts))
    monkeypatch.setenv('RYU_PROBE_SCALE_VMS', str(vms))
    return engine.load(SCALE)


def move_to(network: engine.Network, host: str, bridge: str, app: ProbeController) -> None:
    """Point the bridge at `app` instead, through a relay of our own (in the instance's
    dir, so `down` stops it); active to active, so OVS keeps the bridge's flows."""
    ovs = network.ovs(host)
    sock = ovs.path('probe-%d.sock' % app.of_port)
    engine.spawn(os.path.join(network.dir, 'relay-%s-probe-%d.pid' % (host, app.of_port)),
                 ['socat', 'UNIX-LISTEN:%s,fork,unlink-early' % sock,
                  'TCP:127.0.0.1:%d' % app.of_port])
    engine.wait_for(lambda: os.path.exists(sock), 'the relay socket ' + sock)
    ovs.set_controller(bridge, 'unix:' + sock)


def test_two_instances_one_per_shard_of_bridges_report_their_own_pairs_and_switches(
        request, monkeypatch):
    topology = scale_topology(monkeypatch, hosts=4, vms=2)
    apps = {'a': app_process(request), 'b': app_process(request)}
    network = bring_up(request, topology, apps['a'].target, 'pscale')
    bridges = {host: dpid for host, _, dpid in network.probed_bridges()}
    hosts = sorted(bridges)
    shards = {'a': hosts[:len(hosts) // 2], 'b': hosts[len(hosts) // 2:]}
    for host in shards['b']:
        move_to(network, host, 'br-int', apps['b'])
    own = {shard: {'%016x' % bridges[h] for h in shards[shard]} for shard in shards}
    for shard, app in apps.items():
        app.wait_for_switches(*[bridges[h] for h in shards[shard]], timeout=30)
    until(lambda: not own['b'] & {s['dpid'] for s in apps['a'].get('/probe/switches')},
          "shard b's bridges to leave app a")

    vms = network.vms()
    for shard, app in apps.items():
        probes = [dict(network.body(Probe(src, dst)), name='%s->%s' % (src, dst))
                  for src in sorted(vms) if vms[src].host in shards[shard]
                  for dst in sorted(vms) if dst != src]
        status, body = app.request('POST', '/probe/monitors', {
            'name': 'shard-' + shard, 'interval': 4, 'count': 2, 'probes': probes})
        assert status == 201, body
    per_shard = len(vms) // 2 * (len(vms) - 1)

    prom = prometheus(request, [(address(app), {'shard': shard}) for shard, app in apps.items()])
    keys = ('shard', 'instance', 'monitor', 'src', 'dst')

    def all_reachable():
        got = values(prom, 'ryu_probe_success', *keys)
        return got if len(got) == 2 * per_shard and set(got.values()) == {1.0} else None
    success = until(all_reachable, 'every pair of both shards reachable in Prometheus',
                    explain(prom, *apps.values()))
    for shard, app in apps.items():
        mine = [k for k in success if k[0] == shard]
        assert len(mine) == per_shard
        assert {k[1] for k in mine} == {address(app)} and {k[2] for k in mine} == {'shard-' + shard}
        # every source on the shard's own hypervisors, destinations anywhere
        sources = {vm.ip for vm in vms.values() if vm.host in shards[shard]}
        assert {k[3] for k in mine} == sources
        assert {k[4] for k in mine} == {vm.ip for vm in vms.values()}

    up = values(prom, 'ryu_probe_switch_up == 1', 'shard', 'dpid')
    assert {shard: {d for s, d in up if s == shard} for shard in shards} == own
    assert values(prom, 'sum by (instance) (ryu_probe_success)', 'instance') == {
        (address(app),): float(per_shard) for app in apps.values()}
    assert values(prom, 'sum by (shard) (ryu_probe_switch_up)', 'shard') == {
        (shard,): float(len(own[shard])) for shard in shards}
    # App a still lists the bridges it handed over, as down: no instance has them down.
    assert values(prom, 'ryu_probe_switch_up == 0 unless on (job, dpid) ryu_probe_switch_up == 1',
                  'dpid') == {}
    assert firing(prom, 'RyuProbeSwitchDown') == [] and firing(prom, 'RyuProbeAppDown') == []
    assert {t['labels']['shard']: t['health'] for t in prom.targets()} == {'a': 'up', 'b': 'up'}
