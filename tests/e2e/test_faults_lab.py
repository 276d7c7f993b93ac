"""Faults the app survives, on real OVS (lab prefix x):

* ovs-vswitchd restarted (as `ovs-ctl restart` does, flows saved and put back) or crashed
  (SIGKILL; the operator's agent puts its flows back), and ovsdb-server restarted, while a
  probe and a monitor run: a probe the restart cut ends in `error` saying so, never
  `unreachable`; the app reconnects, the monitor's rounds read reachable again, our flows
  are laid anew (the ones the restart put back are swept), and once the monitor is gone
  none of ours is left;
* the switch flaps (its controller pointed away and back 10 times in a minute): the app's
  running probes, catches, catch flows and RSS are what they were before;
* a bridge that comes back with renumbered ports (renumbered while connected, while
  away, or re-created under the same dpid): the app's ports are the switch's, a probe by
  port name works, the old number is refused, and the switch never refused a PacketOut;
* two instances with different controller ids on one bridge: each gets its own replies
  only, each deletes only its own flows, killing one leaves the other probing; both are
  role EQUAL, and stay so beside a controller that takes the MASTER role;
* a second connection claiming a connected dpid (a fake switch) is refused while the real
  one answers, with a warning naming both peers.

The app killed mid-monitor (its monitors come back from their file, its flows swept) is
tests/e2e/test_monitors_lab.py::test_monitors_come_back_after_the_app_is_killed_and_its_flows_are_swept.
"""
import dataclasses
import os
import re
import socket
import struct
import time

import pytest

from test_monitors_lab import mesh, our_flows, rounds_after, wait_pairs
from test_topologies import all_flows, assert_gone, bring_up
from topologies import engine
from topologies.controller import ProbeController
from topologies.ofpeer import (OFPCR_ROLE_MASTER, OFPT_MULTIPART_REQUEST, OFPT_ROLE_REPLY,
                              OFPT_ROLE_REQUEST, Peer)
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
PREFIX = 'x'
PAIRS = ['vm1', 'vm2']


def until(check, what: str, timeout: float = 30.0, every: float = 0.1):
    """check()'s first true value, polled every `every` s."""
    return engine.wait_for(check, what, timeout, every)


def start_app(request, tmp_path, name: str = 'app', config: str = '') -> ProbeController:
    app = ProbeController(config='[probe]\nmonitors_file = %s\n%s' % (
        tmp_path / ('%s-monitors.json' % name), config))
    app.start()

    def close():
        lines = [line for line in app.log().splitlines()
                 if ' HTTP/1.1" ' not in line and ') accepted (' not in line]
        print('--- %s log, less its access lines (tail)\n%s' % (name, '\n'.join(lines[-80:])))
        app.close()
    request.addfinalizer(close)
    return app


def switch_ports(app, dpid: int) -> dict[str, int] | None:
    """The app's view of a switch's ports, name -> number; None if not connected."""
    for switch in app.get('/probe/switches'):
        if switch['dpid'] == '%016x' % dpid:
            return {p['name']: p['port_no'] for p in switch['ports']}
    return None


def start_long_probe(app, network, src='vm1', dst='vm2', count: int = 200) -> str:
    """A probe of `count` echoes 0.1 s apart (20 s by default); its id."""
    vms = network.vms()
    status, body = app.request('POST', '/probe/probes', {
        'dpid': '%016x' % vms[src].dpid, 'in_port': vms[src].port_name, 'src_mac': vms[src].mac,
        'src_ip': vms[src].ip, 'dst_mac': vms[dst].mac, 'dst_ip': vms[dst].ip,
        'count': count, 'interval': 0.1, 'timeout': 1.0})
    assert status == 201, body
    return body['id']


def ended(app, probe_id: str, timeout: float = 30.0) -> dict:
    return until(lambda: (lambda p: p if p['state'] != 'running' else None)(
        app.get('/probe/probes/' + probe_id)), 'probe %s to end' % probe_id, timeout)


def probe_by_name(app, network, src='vm1', dst='vm2', **extra) -> dict:
    vms = network.vms()
    return app.probe(dpid='%016x' % vms[src].dpid, in_port=vms[src].port_name,
                     src_mac=vms[src].mac, src_ip=vms[src].ip, dst_mac=vms[dst].mac,
                     dst_ip=vms[dst].ip, count=2, interval=0.1, **extra)


def cookies(flows: list[str]) -> set[str]:
    return {re.search(r'cookie=(0x[0-9a-f]+)', f).group(1) for f in flows}


def add_monitor(app, network, name='pairs', interval=2):
    body = {'name': name, 'interval': interval, 'count': 2, 'mesh': mesh(network, PAIRS)}
    status, answer = app.request('POST', '/probe/monitors', body)
    assert status == 201, answer
    return wait_pairs(app, name, lambda p: all(x['verdict'] == 'reachable' for x in p.values()))


def remove_monitor_and_check_nothing_left(app, network, name='pairs'):
    assert app.request('DELETE', '/probe/monitors/' + name)[0] == 200
    until(lambda: not our_flows(network, 'hv1', 'br0'), 'our flows to go after the monitor')
    stats = app.get('/probe/stats')
    assert (stats['running'], stats['catches'], stats['catch_flows']) == (0, 0, 0), stats


def remove_monitor_and_check_nothing_left_of(app, network, name='pairs'):
    """As above, when another instance's flows may stay: the app holds no catch."""
    assert app.request('DELETE', '/probe/monitors/' + name)[0] == 200
    until(lambda: (lambda s: (s['running'], s['catches']) == (0, 0))(app.get('/probe/stats')),
          'the catches of %s to go' % name)


# --- OVS restarted -----------------------------------------------------------------

def bring_up_passive(request, app, name: str = 'flat') -> engine.Network:
    """The topology with its probed bridges attached the non-disruptive way: a passive
    listener that the app dials (README, "Attaching a bridge")."""
    topology = engine.load(name)
    topology = dataclasses.replace(topology, hosts=[dataclasses.replace(host, bridges=[
        dataclasses.replace(bridge, passive=bridge.probed) for bridge in host.bridges])
        for host in topology.hosts])
    instance = PREFIX + name[:10] + 'p'
    request.addfinalizer(lambda: assert_gone(instance))
    network = engine.up(topology, controller=app.target, instance=instance)
    for address in network.switch_addresses():
        assert app.request('POST', '/probe/switches', {'address': address})[0] == 202
    app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=30)
    return network


# (daemon, how, attached): `restart` as ovs-ctl does (flows saved and put back), `crash`
# (SIGKILL: vswitchd's flows are gone, and the operator's agent puts its own back).
# ovs-ctl's restart of a bridge with an *active* controller ends with no flows at all:
# vswitchd flushes them when it adds the controller after flow-restore-wait (OVS 3.1),
# so the flows that come back, ours among them, are a passive bridge's.
RESTARTS = [pytest.param('ovs-vswitchd', 'restart', 'passive', id='vswitchd-restart'),
            pytest.param('ovs-vswitchd', 'crash', 'active', id='vswitchd-crash'),
            pytest.param('ovsdb-server', 'restart', 'active', id='ovsdb-restart')]


@pytest.mark.parametrize('daemon, how, attached', RESTARTS)
def test_ovs_restart_mid_probe_ends_it_in_error_and_monitors_and_flows_come_back(
        request, tmp_path, daemon, how, attached):
    app = start_app(request, tmp_path)
    if attached == 'passive':
        network = bring_up_passive(request, app)
    else:
        network = bring_up(request, app, 'flat', prefix=PREFIX)
    dpid = network.vms()['vm1'].dpid
    baseline = all_flows(network)
    add_monitor(app, network)
    before = our_flows(network, 'hv1', 'br0')
    assert before
    # a cut probe ends at once; one that is not cut runs its 8 s
    probe_id = start_long_probe(app, network, count=80)
    until(lambda: app.get('/probe/probes/' + probe_id)['received'] >= 3, 'the probe to get replies')
    ovs = network.ovs('hv1')
    ovs.restart(daemon, crash=how == 'crash', keep_flows=how == 'restart')
    restarted = time.time()
    if how == 'crash':      # the operator's agent puts its flows back (the lab's: NORMAL)
        assert all_flows(network, ours=True) == {('hv1', 'br0'): []}
        ovs.ofctl('add-flow', 'br0', 'priority=0,actions=NORMAL')
    # ovs-ctl put every flow back, ours too (none has a meter instruction, which would
    # have failed the whole restore: bridge.py)
    assert all_flows(network) == baseline

    probe = ended(app, probe_id)
    if daemon == 'ovs-vswitchd':
        assert (probe['state'], probe['verdict']) == ('error', None), probe
        assert 'disconnected' in probe['error'], probe
    else:   # vswitchd kept its controller connection: nothing happened to the probe
        assert (probe['state'], probe['verdict']) == ('done', 'reachable'), probe
    until(lambda: switch_ports(app, dpid), 'the switch to reconnect')
    wait_pairs(app, 'pairs', lambda p: rounds_after(p, restarted) and all(
        x['verdict'] == 'reachable' and x['status'] == 'ok' for x in p.values()))
    assert network.ping('vm1', network.vms()['vm2'].ip) == 'reachable'
    after = until(lambda: our_flows(network, 'hv1', 'br0'), 'our catch flows to be laid again')
    if daemon == 'ovs-vswitchd':
        # the flows ovs-ctl put back (ours of the old session among them) were swept at
        # connect: every flow of ours now is the new session's
        assert not cookies(before) & cookies(after), (before, after)
    assert all_flows(network) == baseline
    remove_monitor_and_check_nothing_left(app, network)
    assert all_flows(network) == baseline


# --- the switch flaps ---------------------------------------------------------------

FLAPS = 10
FLAP_EVERY = 2.0       # s: ten in 20 s
RSS_TOLERANCE_KB = 6 * 1024


def rss_kb(pid: int) -> int:
    with open('/proc/%d/status' % pid) as status:
        return next(int(line.split()[1]) for line in status if line.startswith('VmRSS:'))


def leak_view(app, network) -> dict:
    """What must not grow: running probes, catches and their flows in the app, our
    flows on the switch, switches."""
    stats = app.get('/probe/stats')
    return {'running': stats['running'], 'catches': stats['catches'],
            'catch_flows': stats['catch_flows'], 'switches': stats['switches'],
            'our flows on the switch': len(our_flows(network, 'hv1', 'br0'))}


def settled(app, network) -> dict:
    """leak_view at a moment when no monitor round runs and the switch holds exactly the
    app's catch flows (a delete may be on its way)."""
    def quiet():
        view = leak_view(app, network)
        return view if view['running'] == 0 and view['our flows on the switch'] == view[
            'catch_flows'] == leak_view(app, network)['catch_flows'] else None
    return until(quiet, 'a quiet moment', timeout=20, every=0.02)


def flap(app, ovs, bridge: str, dpid: int, target: str) -> None:
    """The controller connection cut (the bridge pointed at a port nobody listens on;
    not deleted: a bridge left with no controller flushes its flows) and restored."""
    ovs.vsctl('set-controller', bridge, 'tcp:127.0.0.1:9')
    until(lambda: switch_ports(app, dpid) is None, 'the app to see the switch go', every=0.02)
    ovs.vsctl('set-controller', bridge, target)
    until(lambda: switch_ports(app, dpid), 'the switch to come back', every=0.02)


def test_a_switch_flapping_ten_times_in_a_minute_leaks_no_probe_catch_flow_or_memory(
        request, tmp_path):
    app = start_app(request, tmp_path)
    network = bring_up(request, app, 'flat', prefix=PREFIX)
    dpid = network.vms()['vm1'].dpid
    ovs = network.ovs('hv1')
    target = ovs.vsctl('get-controller', 'br0').strip()
    baseline = all_flows(network)
    add_monitor(app, network, interval=1.5)
    flap(app, ovs, 'br0', dpid, target)     # a first one: whatever a first time allocates
    flapped_at = time.time()
    wait_pairs(app, 'pairs', lambda p: rounds_after(p, flapped_at) and all(
        x['verdict'] == 'reachable' for x in p.values()))
    for _ in range(3):
        assert probe_by_name(app, network)['verdict'] == 'reachable'
    before, rss_before = settled(app, network), rss_kb(app.proc.pid)

    started, cut = time.monotonic(), []
    for i in range(FLAPS):      # one every FLAP_EVERY s, monitor rounds in between
        probe_id = start_long_probe(app, network)
        until(lambda: app.get('/probe/probes/' + probe_id)['received'] >= 1,
              'the probe to get a reply', every=0.02)
        flap(app, ovs, 'br0', dpid, target)
        cut.append(probe_id)
        time.sleep(max(0.0, started + (i + 1) * FLAP_EVERY - time.monotonic()))
    took = time.monotonic() - started
    assert took < 60, took

    results = [ended(app, probe_id) for probe_id in cut]
    assert [(p['state'], p['verdict']) for p in results] == [('error', None)] * FLAPS, results
    assert all('disconnected' in p['error'] for p in results)
    flapped_at = time.time()
    pairs = wait_pairs(app, 'pairs', lambda p: rounds_after(p, flapped_at) and all(
        x['verdict'] == 'reachable' for x in p.values()))
    # a round the flaps cut is an error with no verdict, never "unreachable"
    assert [h for p in pairs.values() for h in p['history']
            if h['verdict'] not in ('reachable', None)] == []
    assert probe_by_name(app, network)['verdict'] == 'reachable'
    after, rss_after = settled(app, network), rss_kb(app.proc.pid)
    print('\n%d flaps in %.1f s: before %s, RSS %d kB; after %s, RSS %d kB (%+d kB)' % (
        FLAPS, took, before, rss_before, after, rss_after, rss_after - rss_before))
    assert after == before
    assert rss_after - rss_before < RSS_TOLERANCE_KB
    assert all_flows(network) == baseline
    remove_monitor_and_check_nothing_left(app, network)
    assert refusals(app) == []


def refusals(app) -> list[str]:
    """The switch's OpenFlow errors in the app's log (the meter's METER_EXISTS at each
    connect, our meter still there from the last session, is not logged)."""
    return [line for line in app.log().splitlines() if 'OpenFlow error' in line]


# --- renumbered ports ----------------------------------------------------------------

def switch_view(ovs, bridge: str) -> dict[str, int]:
    """The switch's own port numbers, name -> number (the bridge's local port too)."""
    names = ovs.vsctl('list-ports', bridge).split() + [bridge]
    numbers = {name: int(ovs.vsctl('get', 'interface', name, 'ofport')) for name in names}
    return dict(numbers, **{bridge: 0xfffffffe})    # OFPP_LOCAL in OpenFlow 1.3 (65534 in OVSDB)


def check_ports_follow(app, network, ovs, dpid: int) -> None:
    """The app's ports are the switch's; a probe by name works both ways, and one on a
    number the bridge no longer has is refused."""
    want = switch_view(ovs, 'br0')
    until(lambda: switch_ports(app, dpid) == want, 'the app to see ports %s (it has %s)'
          % (want, switch_ports(app, dpid)), timeout=10)
    for src, dst in (('vm1', 'vm2'), ('vm2', 'vm1')):
        result = probe_by_name(app, network, src, dst)
        assert result['verdict'] == 'reachable', result
        assert result['request']['in_port'] == want[src]
    vms = network.vms()
    stale = next(n for n in range(1, 100) if n not in want.values())
    status, body = app.request('POST', '/probe/probes', {
        'dpid': '%016x' % dpid, 'in_port': stale, 'src_mac': vms['vm1'].mac,
        'src_ip': vms['vm1'].ip, 'dst_mac': vms['vm2'].mac, 'dst_ip': vms['vm2'].ip})
    assert status == 404, body


def test_a_port_renumbered_while_probed_ends_its_probe_and_no_stale_number_is_used(
        request, tmp_path):
    app = start_app(request, tmp_path)
    network = bring_up(request, app, 'flat', prefix=PREFIX)
    ovs, dpid = network.ovs('hv1'), network.vms()['vm1'].dpid
    vm1 = network.vms()['vm1'].port_no
    probe_id = start_long_probe(app, network)
    until(lambda: app.get('/probe/probes/' + probe_id)['received'] >= 2, 'replies')
    # vm1 unplugged mid-probe; vm2 re-plugged under vm1's old number; vm1 back elsewhere:
    # a probe that went on injecting on the old number would speak as vm2
    ovs.vsctl('del-port', 'br0', 'vm1')
    probe = ended(app, probe_id, timeout=10)
    assert (probe['state'], probe['verdict']) == ('error', None), probe
    assert 'port %d' % vm1 in probe['error'], probe
    ovs.replug('br0', 'vm2', vm1)
    ovs.vsctl('add-port', 'br0', 'vm1', '--', 'set', 'interface', 'vm1', 'ofport_request=12')
    check_ports_follow(app, network, ovs, dpid)
    assert refusals(app) == []


def test_a_bridge_back_with_renumbered_ports_or_recreated_under_its_dpid_is_seen_anew(
        request, tmp_path):
    app = start_app(request, tmp_path)
    network = bring_up(request, app, 'flat', prefix=PREFIX)
    ovs, dpid = network.ovs('hv1'), network.vms()['vm1'].dpid
    target = ovs.vsctl('get-controller', 'br0').strip()
    baseline = all_flows(network)
    vms = network.vms()
    # a monitor that names its ports: it follows them to their new numbers
    assert app.request('POST', '/probe/monitors', {
        'name': 'pairs', 'interval': 1.5, 'count': 2, 'mesh': [
            {'dpid': '%016x' % vms[n].dpid, 'in_port': vms[n].port_name, 'mac': vms[n].mac,
             'ip': vms[n].ip, 'name': n} for n in PAIRS]})[0] == 201

    # 1. renumbered while the bridge was away
    ovs.vsctl('set-controller', 'br0', 'tcp:127.0.0.1:9')
    until(lambda: switch_ports(app, dpid) is None, 'the app to see the switch go')
    ovs.replug('br0', 'vm1', 21)
    ovs.replug('br0', 'vm2', 22)
    ovs.vsctl('set-controller', 'br0', target)
    check_ports_follow(app, network, ovs, dpid)
    back = time.time()
    wait_pairs(app, 'pairs', lambda p: rounds_after(p, back) and all(
        x['verdict'] == 'reachable' for x in p.values()))

    # 2. the bridge deleted and made again under the same dpid, mid-probe, the VMs'
    # numbers swapped
    probe_id = start_long_probe(app, network)
    until(lambda: app.get('/probe/probes/' + probe_id)['received'] >= 2, 'replies')
    ovs.vsctl('del-br', 'br0')
    probe = ended(app, probe_id, timeout=10)
    assert (probe['state'], probe['verdict']) == ('error', None), probe
    ovs.add_bridge('br0', dpid=dpid, controller=target)
    ovs.add_port('br0', 'vm2', ofport=1)
    ovs.add_port('br0', 'vm1', ofport=2)
    check_ports_follow(app, network, ovs, dpid)
    back = time.time()
    pairs = wait_pairs(app, 'pairs', lambda p: rounds_after(p, back) and all(
        x['verdict'] == 'reachable' for x in p.values()))
    assert [h for p in pairs.values() for h in p['history']
            if h['verdict'] not in ('reachable', None)] == []
    assert all_flows(network) == baseline
    remove_monitor_and_check_nothing_left(app, network)
    assert refusals(app) == []


# --- a second connection claiming a connected dpid -------------------------------------

def test_a_fake_switch_claiming_a_connected_dpid_is_refused_and_the_real_ones_probe_goes_on(
        request, tmp_path):
    app = start_app(request, tmp_path)
    network = bring_up(request, app, 'flat', prefix=PREFIX)
    dpid = network.vms()['vm1'].dpid
    probe_id = start_long_probe(app, network, count=60)
    until(lambda: app.get('/probe/probes/' + probe_id)['received'] >= 2, 'replies')
    fake = Peer(socket.create_connection(('127.0.0.1', app.of_port)), dpid=dpid)
    request.addfinalizer(fake.close)
    here = '127.0.0.1:%d' % fake.sock.getsockname()[1]
    assert fake.closed.wait(10), 'the app kept the fake connection'
    # it got as far as claiming the dpid (the app asked for its ports), and was refused
    assert OFPT_MULTIPART_REQUEST in [kind for kind, _, _ in fake.got]
    warnings = [line for line in app.log().splitlines() if 'claims it' in line]
    assert len(warnings) == 1 and here in warnings[0], warnings
    holder = re.search(r'while (\S+) holds it', warnings[0]).group(1)
    assert holder != here and holder.startswith('127.0.0.1:')
    assert re.search(r'%s answered: it keeps the dpid, %s is refused' % (holder, here),
                     app.log())
    assert app.get('/probe/probes/' + probe_id)['state'] == 'running'
    probe = ended(app, probe_id)
    assert (probe['state'], probe['verdict'], probe['received']) == ('done', 'reachable', 60)
    assert switch_ports(app, dpid) == switch_view(network.ovs('hv1'), 'br0')


# --- two instances on one bridge ------------------------------------------------------

SECOND_ID = 0x7271


def roles(ovs) -> dict[str, str]:
    """Each controller target of the switch: its role (OVS says "other" for EQUAL)."""
    out = ovs.vsctl('--format=csv', '--data=bare', '--no-headings', '--columns=target,role',
                    'list', 'controller')
    return dict(line.split(',') for line in out.splitlines() if line)


def of_instance(ovs, app_id: int) -> set[str]:
    """The cookies of the flows of the instance with that controller id."""
    return cookies([f for f in ovs.dump_flows('br0')
                    if re.search(r'cookie=0x72797570[0-9a-f]{4}%04x,' % app_id, f)])


def of_no_instance(ovs) -> list[str]:
    return [f for f in ovs.dump_flows('br0') if 'cookie=0x72797570' not in f]


def test_two_instances_each_get_their_own_replies_clean_their_own_flows_and_outlive_the_other(
        request, tmp_path):
    a = start_app(request, tmp_path, 'a')
    network = bring_up(request, a, 'flat', prefix=PREFIX)
    b = start_app(request, tmp_path, 'b', 'controller_id = %d\n' % SECOND_ID)
    ovs, dpid = network.ovs('hv1'), network.vms()['vm1'].dpid
    target_a = ovs.vsctl('get-controller', 'br0').strip()
    sock_b = ovs.path('probe-b.sock')
    engine.spawn(os.path.join(network.dir, 'relay-hv1-b.pid'),   # engine.down stops it
                 ['socat', 'UNIX-LISTEN:%s,fork,unlink-early' % sock_b,
                  'TCP:127.0.0.1:%d' % b.of_port])
    until(lambda: os.path.exists(sock_b), 'the relay of b')
    target_b = 'unix:' + sock_b
    baseline = of_no_instance(ovs)
    # a second active target beside one: no flush (README)
    ovs.vsctl('set-controller', 'br0', target_a, target_b)
    b.wait_for_switches(dpid)
    assert of_no_instance(ovs) == baseline
    # both EQUAL, as they ask nothing (OVS writes a connection's role into its
    # Controller row a few seconds late)
    until(lambda: roles(ovs) == {target_a: 'other', target_b: 'other'},
          'the roles to be EQUAL: %s' % roles(ovs), timeout=15)

    def counters(app) -> dict:
        return app.get('/probe/stats')['counters']

    # each probes the same pair at once, and gets its own replies, none of the other's
    before = {app: counters(app) for app in (a, b)}
    ids = {app: start_long_probe(app, network, count=60) for app in (a, b)}
    results = {app: ended(app, probe_id) for app, probe_id in ids.items()}
    for app, result in results.items():
        assert (result['verdict'], result['received'], result['duplicates']) == (
            'reachable', 60, 0), result
        got = {k: counters(app).get(k, 0) - before[app].get(k, 0)
               for k in ('replies', 'late_replies', 'tenant_packet_ins')}
        assert got['replies'] == 60 and got['late_replies'] == got['tenant_packet_ins'] == 0, got
    assert of_instance(ovs, 0x7270) and of_instance(ovs, SECOND_ID)

    # beside a controller that takes the MASTER role, both stay EQUAL and keep probing
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(ovs.path('master.sock'))
    listener.listen(1)
    request.addfinalizer(listener.close)
    ovs.vsctl('set-controller', 'br0', target_a, target_b, 'unix:' + ovs.path('master.sock'))
    listener.settimeout(10)
    master = Peer(listener.accept()[0])
    request.addfinalizer(master.close)
    master.send(OFPT_ROLE_REQUEST, struct.pack('!I4xQ', OFPCR_ROLE_MASTER, 1), xid=9)
    reply = until(lambda: next((body for kind, xid, body in master.got
                                if kind == OFPT_ROLE_REPLY), None), 'the role reply')
    assert struct.unpack_from('!I', reply)[0] == OFPCR_ROLE_MASTER
    want = {target_a: 'other', target_b: 'other', 'unix:' + ovs.path('master.sock'): 'master'}
    until(lambda: roles(ovs) == want, 'the roles %s (now %s)' % (want, roles(ovs)), timeout=15)
    for app in (a, b):
        assert probe_by_name(app, network)['verdict'] == 'reachable'
    ovs.vsctl('set-controller', 'br0', target_a, target_b)
    master.close()

    # each deletes only its own flows
    for app in (a, b):
        add_monitor(app, network)
    flows_a, flows_b = of_instance(ovs, 0x7270), of_instance(ovs, SECOND_ID)
    assert a.request('DELETE', '/probe/monitors/pairs')[0] == 200
    until(lambda: not of_instance(ovs, 0x7270), "a's flows to go")
    assert of_instance(ovs, SECOND_ID) == flows_b

    # b killed: a goes on; b's flows stay (their hard timeout) until b is back and
    # sweeps them, and a's are left alone
    add_monitor(a, network)
    flows_a = of_instance(ovs, 0x7270)
    b.kill()
    assert probe_by_name(a, network)['verdict'] == 'reachable'
    assert of_instance(ovs, SECOND_ID) == flows_b and of_instance(ovs, 0x7270) == flows_a
    again = ProbeController(config=b.config, of_port=b.of_port, rest_port=b.rest_port)
    request.addfinalizer(again.close)
    again.start()
    again.wait_for_switches(dpid, timeout=30)
    # its monitor is back from its file, with flows of the new session only
    wait_pairs(again, 'pairs', lambda p: all(x['verdict'] == 'reachable' for x in p.values()))
    assert not of_instance(ovs, SECOND_ID) & flows_b
    assert of_instance(ovs, 0x7270) == flows_a
    assert probe_by_name(a, network)['verdict'] == 'reachable'
    for app in (a, again):
        remove_monitor_and_check_nothing_left_of(app, network)
    assert not of_instance(ovs, 0x7270) and not of_instance(ovs, SECOND_ID)
    assert of_no_instance(ovs) == baseline
    assert refusals(a) == [] and refusals(again) == []
