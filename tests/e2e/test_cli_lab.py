"""The `ryu-probe` console script against the real app on the `flat` lab (real OVS): ping
prints what ping prints and agrees with the tenant's kernel ping, with the MACs given or
found by the app, a dropping flow makes it exit 1 saying where the path broke, so does an
address nobody has, bad input exits 2 with the API's words, and switches, mesh, monitors
and watch show what the API says. `ping --tcp` says open and closed as the tenant's nc
does, `ping --arp` finds the MAC, and a tcp monitor shows its kind and verdicts."""
import json
import os
import re
import subprocess
import sys
import time

import pytest

import test_topologies
from test_kinds_lab import daemon, nc, wait_listening
from test_topologies import assert_gone
from topologies import engine
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
app = test_topologies.app      # the fixture: one app for the module
RYU_PROBE = os.path.join(os.path.dirname(sys.executable), 'ryu-probe')
INSTANCE = 'cflat'
DROP = 'priority=100,icmp,nw_dst=10.0.0.2'
OPEN, CLOSED = 8080, 8082       # vm2's TCP ports: socat listens on OPEN, nothing on CLOSED


@pytest.fixture(scope='module')
def flat(request, app):
    request.addfinalizer(lambda: assert_gone(INSTANCE))
    network = engine.up(engine.load('flat'), controller=app.target, instance=INSTANCE)
    app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=30)
    return network


def ryu_probe(app, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([RYU_PROBE, '--url', app.url, *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def ping_args(network, src: str = 'vm1', dst: str = 'vm2', port: str | None = None) -> list:
    a, b = network.vms()[src], network.vms()[dst]
    return ['ping', '--dpid', '%016x' % a.dpid, '--port', port or str(a.port_no),
            '--src-ip', a.ip, '--src-mac', a.mac, '--dst-ip', b.ip, '--dst-mac', b.mac]


def bare_ping_args(network, src: str = 'vm1', dst_ip: str = '10.0.0.2') -> list:
    """Only where the source is and the two IPs: the app finds the MACs."""
    a = network.vms()[src]
    return ['ping', '--dpid', '%016x' % a.dpid, '--port', str(a.port_no), '--src-ip', a.ip,
            '--dst-ip', dst_ip]


def kernel_ping(network, src: str, dst: str) -> str:
    """The tenant's own ping's statistics line."""
    output = network.run(src, ['ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '1',
                               network.vms()[dst].ip], check=False, timeout=30)
    return re.search(r'.* received.*', output).group(0)


def endpoints(network, names=('vm1', 'vm2')) -> list[dict]:
    vms = network.vms()
    return [{'dpid': '%016x' % vms[n].dpid, 'in_port': vms[n].port_no, 'mac': vms[n].mac,
             'ip': vms[n].ip, 'name': n} for n in names]


@pytest.mark.parametrize('port', ['number', 'name'])
def test_ping_of_a_reachable_pair_prints_pings_lines_exits_0_and_the_tenant_agrees(
        app, flat, port):
    vm1 = flat.vms()['vm1']
    run = ryu_probe(app, *ping_args(flat, port=vm1.port_name if port == 'name' else None))
    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] == 'PING 10.0.0.2 from 10.0.0.1 port %d on %016x' % (vm1.port_no, vm1.dpid)
    assert [re.sub(r'time=\d+(\.\d+)? ms', 'time=T ms', line) for line in lines[1:4]] == [
        'from 10.0.0.2: seq=%d time=T ms' % seq for seq in (1, 2, 3)]
    assert lines[4:7] == ['', '--- 10.0.0.2 ryu-probe statistics ---',
                          '3 transmitted, 3 received, 0% loss']
    assert re.fullmatch(r'rtt min/avg/max = [\d.]+/[\d.]+/[\d.]+ ms', lines[7]), lines
    assert len(lines) == 8 and run.stderr == ''
    assert kernel_ping(flat, 'vm1', 'vm2').startswith('3 packets transmitted, 3 received, 0%')


def test_ping_through_a_dropping_flow_exits_1_saying_where_the_path_broke(app, flat):
    flat.run('hv1', ['ovs-ofctl', 'add-flow', 'br0', DROP + ',actions=drop'])
    try:
        run = ryu_probe(app, *ping_args(flat))
        tenant = kernel_ping(flat, 'vm1', 'vm2')
    finally:
        flat.run('hv1', ['ovs-ofctl', 'del-flows', '--strict', 'br0', DROP])
    assert run.returncode == 1, run
    lines = run.stdout.splitlines()
    assert lines[1:] == [
        '', '--- 10.0.0.2 ryu-probe statistics ---', '3 transmitted, 0 received, 100% loss',
        'verdict: unreachable',
        'broken at: request on %016x table 0: dropped' % flat.vms()['vm1'].dpid,
        '  flow:   table=0 priority=100 cookie=0x0 eth_type=0x800,ip_proto=1,ipv4_dst=10.0.0.2']
    assert tenant.startswith('3 packets transmitted, 0 received, 100%')
    assert ryu_probe(app, *ping_args(flat)).returncode == 0     # the flow is gone again


def test_ping_with_no_mac_shows_the_macs_the_app_found_and_the_tenant_agrees(app, flat):
    vm1, vm2 = flat.vms()['vm1'], flat.vms()['vm2']
    run = ryu_probe(app, *bare_ping_args(flat))
    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] == 'PING 10.0.0.2 (%s) from 10.0.0.1 (%s) port %d on %016x' % (
        vm2.mac, vm1.mac, vm1.port_no, vm1.dpid)
    assert lines[4:7] == ['', '--- 10.0.0.2 ryu-probe statistics ---',
                          '3 transmitted, 3 received, 0% loss']
    assert len(lines) == 8 and run.stderr == ''
    probe = json.loads(ryu_probe(app, *bare_ping_args(flat), '--json').stdout)
    assert (probe['request']['src_mac'], probe['request']['dst_mac']) == (vm1.mac, vm2.mac)
    assert kernel_ping(flat, 'vm1', 'vm2').startswith('3 packets transmitted, 3 received, 0%')


def test_ping_of_an_address_nobody_has_is_next_hop_unresolved_and_exits_1(app, flat):
    vm1 = flat.vms()['vm1']
    run = ryu_probe(app, *bare_ping_args(flat, dst_ip='10.0.0.99'))
    assert run.returncode == 1, run
    assert run.stdout.splitlines() == [     # the ARP request's walk: flooded by NORMAL
        'PING 10.0.0.99 from 10.0.0.1 (%s) port %d on %016x' % (vm1.mac, vm1.port_no,
                                                                vm1.dpid),
        '', '--- 10.0.0.99 ryu-probe statistics ---', '0 transmitted, 0 received, - loss',
        'verdict: next-hop-unresolved, no echo sent',
        'broken at: request on %016x table 0: next-hop-unresolved' % vm1.dpid,
        '  detail: no ARP reply for 10.0.0.99 to 10.0.0.1, asked as the source VM from port %d'
        '; the request was last seen: NORMAL (to ff:ff:ff:ff:ff:ff)' % vm1.port_no,
        '  flow:   table=0 priority=0 cookie=0x0 (any)']
    assert run.stderr == ''
    output = flat.run('vm1', ['ping', '-n', '-q', '-c', '2', '-i', '0.2', '-W', '1',
                              '10.0.0.99'], check=False, timeout=30)
    assert ' 0 received' in output, output


def timeless(lines: list[str]) -> list[str]:
    return [re.sub(r'in \d+(\.\d+)? ms', 'in T ms', line) for line in lines]


def test_ping_tcp_says_open_and_closed_as_nc_does_and_exits_0_and_1(app, flat):
    vm1, vm2 = flat.vms()['vm1'], flat.vms()['vm2']
    daemon(flat, 'vm2', 'tcp', ['socat', 'TCP-LISTEN:%d,fork,reuseaddr' % OPEN, 'SYSTEM:true'])
    wait_listening(flat, 'vm2', OPEN)
    run = ryu_probe(app, *bare_ping_args(flat), '--tcp', str(OPEN))
    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] == 'TCP 10.0.0.2:%d (%s) from 10.0.0.1 (%s) port %d on %016x' % (
        OPEN, vm2.mac, vm1.mac, vm1.port_no, vm1.dpid)
    assert timeless(lines[1:-1]) == ['tcp 10.0.0.2:%d open: SYN-ACK in T ms' % OPEN] * 3 + ['']
    assert re.fullmatch(r'verdict: open, 3 SYNs sent, 3 answered, rtt min/avg/max = '
                        r'[\d.]+/[\d.]+/[\d.]+ ms', lines[-1]), lines
    assert run.stderr == '' and nc(flat, 'vm1', vm2.ip, OPEN) == 'open'

    run = ryu_probe(app, *ping_args(flat), '--tcp', str(CLOSED), '-c', '2')
    assert run.returncode == 1, run
    assert timeless(run.stdout.splitlines()[1:4]) == [
        'tcp 10.0.0.2:%d closed: RST in T ms' % CLOSED] * 2 + ['']
    assert run.stdout.splitlines()[4].startswith('verdict: closed, 2 SYNs sent, 2 answered, ')
    assert nc(flat, 'vm1', vm2.ip, CLOSED) == 'closed'


def test_ping_arp_finds_the_mac_and_exits_1_for_an_address_nobody_has(app, flat):
    vm1, vm2 = flat.vms()['vm1'], flat.vms()['vm2']
    run = ryu_probe(app, *bare_ping_args(flat), '--arp', '-4')
    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] == 'ARP 10.0.0.2 from 10.0.0.1 (%s) port %d on %016x' % (
        vm1.mac, vm1.port_no, vm1.dpid)
    assert timeless(lines[1:-1]) == ['arp reply from 10.0.0.2 at %s in T ms' % vm2.mac] * 3 + ['']
    assert lines[-1].startswith('verdict: reachable, 3 requests sent, 3 answered, rtt ')
    run = ryu_probe(app, *bare_ping_args(flat, dst_ip='10.0.0.99'), '--arp', '-c', '1')
    assert run.returncode == 1, run
    assert run.stdout.splitlines()[1:] == ['', 'verdict: unreachable, 1 request sent, 0 answered']
    run = ryu_probe(app, *bare_ping_args(flat), '--arp', '-6')
    assert (run.returncode, run.stdout) == (2, ''), run
    assert run.stderr == 'ryu-probe: --src-ip 10.0.0.1: not an IPv6 address (-6)\n'


def test_a_tcp_monitor_shows_its_kind_and_port_and_reads_open(app, flat):
    daemon(flat, 'vm2', 'tcp-monitor', ['socat', 'TCP-LISTEN:%d,fork,reuseaddr' % (OPEN + 1),
                                        'SYSTEM:true'])
    wait_listening(flat, 'vm2', OPEN + 1)
    body = json.dumps({'name': 'cli-web', 'interval': 2, 'count': 1, 'kind': 'tcp',
                       'dst_port': OPEN + 1, 'mesh': endpoints(flat)})
    run = ryu_probe(app, 'monitors', 'add', '-', stdin=body)
    assert run.returncode == 0, run
    try:
        wait_rounds(app, 'cli-web')
        run = ryu_probe(app, 'monitors')
        assert ['cli-web', 'tcp/%d' % (OPEN + 1), '2', '2s', '1', '1', '0', '0', '0'] in [
            line.split() for line in run.stdout.splitlines()], run.stdout
        run = ryu_probe(app, 'watch', 'cli-web', '--once')
        assert run.returncode == 0, run
        lines = run.stdout.splitlines()
        assert lines[0] == ('monitor cli-web (tcp/%d): 2 pairs, every 2s, 1 SYN 0.2s apart, '
                            'timeout 1s' % (OPEN + 1))
        assert lines[2:8] == ['    vm1 vm2', 'vm1      ok', 'vm2  cl', '',
                              'ok open  cl closed  -- filtered  ! error', 'vm2->vm1: closed']
        assert lines[-1] == '2 pairs, 1 open, 1 closed'
    finally:
        assert ryu_probe(app, 'monitors', 'rm', 'cli-web').returncode == 0


@pytest.mark.parametrize('option, value, message', [
    ('--src-mac', '02:00:0a:00:00', 'src_mac: must be a MAC address like 02:00:00:00:00:01'),
    ('--dpid', 'fedcba9876543210', 'dpid: no connected switch fedcba9876543210'),   # 404
    ('--port', 'nosuchport', "in_port: switch %(dpid)s has no port 'nosuchport'"),  # 404
])
def test_ping_with_a_bad_field_or_an_unknown_switch_exits_2_with_the_apis_message(
        app, flat, option, value, message):
    args = ping_args(flat)
    args[args.index(option) + 1] = value
    run = ryu_probe(app, *args)
    assert (run.returncode, run.stdout) == (2, '')
    assert run.stderr == 'ryu-probe: %s\n' % (message % {'dpid': args[args.index('--dpid') + 1]})


def test_switches_lists_the_bridge_with_its_vms_ports(app, flat):
    run = ryu_probe(app, 'switches')
    assert run.returncode == 0, run
    vms = flat.vms()
    rows = [line.split() for line in run.stdout.splitlines()]
    assert rows[0] == ['DPID', 'PORT', 'NAME', 'HW_ADDR']
    dpid = '%016x' % vms['vm1'].dpid
    start = [row[0] for row in rows].index(dpid)
    ports = [rows[start][1:3]] + [row[:2] for row in rows[start + 1:start + 3]]
    assert ports == [[str(vms[n].port_no), vms[n].port_name] for n in ('vm1', 'vm2')] + [
        ['LOCAL', 'br0']]
    listed = json.loads(ryu_probe(app, 'switches', '--json').stdout)
    assert dpid in [s['dpid'] for s in listed]


def test_mesh_of_flats_vms_is_all_ok_and_a_vm_that_is_not_there_is_not(app, flat, tmp_path):
    path = tmp_path / 'mesh.json'
    path.write_text(json.dumps({'endpoints': endpoints(flat), 'count': 2, 'interval': 0.1}))
    run = ryu_probe(app, 'mesh', str(path), '--progress')
    assert run.returncode == 0, run
    assert run.stdout.splitlines()[:-1] == [
        '    vm1 vm2', 'vm1      ok', 'vm2  ok', '',
        'ok reachable  -- unreachable  ~ partial  ! error']
    assert re.fullmatch(r'2 pairs, 2 reachable, 0 unreachable, [\d.]+ s',
                        run.stdout.splitlines()[-1])
    assert '] 2/2 pairs' in run.stderr
    ghost = dict(endpoints(flat)[1], mac='02:00:0a:00:00:63', ip='10.0.0.99', name='ghost')
    run = ryu_probe(app, 'mesh', '-', '-c', '1', stdin=json.dumps(endpoints(flat) + [ghost]))
    assert run.returncode == 1, run
    assert run.stdout.splitlines()[:4] == ['        vm1   vm2 ghost', 'vm1            ok    --',
                                           'vm2      ok          --', 'ghost    --    --']
    assert run.stderr == ''


def test_mesh_of_endpoints_with_no_mac_finds_them(app, flat):
    bare = [{k: v for k, v in e.items() if k != 'mac'} for e in endpoints(flat)]
    # Nobody has 10.0.0.99: as a source it does not answer (x), as a destination nobody
    # answers for it (?). It sits on the bridge's own port, not on a VM's: two source
    # lookups out of one port at once share one answer flow in the app (resolve.py), and
    # the VM's own would be lost.
    ghost = dict(bare[1], in_port='br0', ip='10.0.0.99', name='ghost')
    run = ryu_probe(app, 'mesh', '-', '-c', '1', stdin=json.dumps(bare + [ghost]))
    assert run.returncode == 1, run
    assert run.stdout.splitlines()[:6] == [
        '        vm1   vm2 ghost', 'vm1            ok     ?', 'vm2      ok           ?',
        'ghost     x     x', '',
        'ok reachable  -- unreachable  ~ partial  x source-not-answering  '
        '? next-hop-unresolved  ! error']


def test_mesh_with_an_unknown_port_exits_2_naming_the_endpoint(app, flat):
    bad = endpoints(flat)
    bad[1]['in_port'] = 'nosuchport'
    run = ryu_probe(app, 'mesh', '-', stdin=json.dumps(bad))
    assert (run.returncode, run.stdout) == (2, '')
    assert run.stderr == "ryu-probe: endpoints[1].in_port: switch %s has no port 'nosuchport'\n" % (
        bad[1]['dpid'])


def wait_rounds(app, name: str, timeout: float = 60.0) -> dict:
    """The monitor (as `monitors show --json` prints it) once every pair has had a round."""
    deadline = time.monotonic() + timeout
    while True:
        run = ryu_probe(app, 'monitors', 'show', name, '--json')
        assert run.returncode == 0, run
        monitor = json.loads(run.stdout)
        if all(p['rounds'] for p in monitor['pairs']):
            return monitor
        if time.monotonic() > deadline:
            raise AssertionError('monitor %s had no round: %s' % (name, monitor))
        time.sleep(0.5)


def test_monitors_add_show_watch_and_rm(app, flat, tmp_path):
    body = json.dumps({'name': 'cli-flat', 'interval': 2, 'count': 2, 'timeout': 0.5,
                       'echo_interval': 0.1, 'mesh': endpoints(flat)})
    run = ryu_probe(app, 'monitors', 'add', '-', stdin=body)
    assert (run.returncode, run.stdout) == (0, 'monitor cli-flat added: 2 pairs, every 2s\n'), run
    try:
        run = ryu_probe(app, 'monitors', 'add', '-', stdin=body)
        assert run.returncode == 2
        assert run.stderr.startswith('ryu-probe: monitor cli-flat exists already (')
        assert 'ryu-probe monitors rm cli-flat' in run.stderr
        wait_rounds(app, 'cli-flat')
        run = ryu_probe(app, 'monitors')
        assert run.returncode == 0, run
        assert ['cli-flat', 'icmp', '2', '2s', '2', '0', '0', '0', '0'] in [
            line.split() for line in run.stdout.splitlines()]
        run = ryu_probe(app, 'monitors', 'show', 'cli-flat')
        assert run.returncode == 0, run
        lines = run.stdout.splitlines()
        assert lines[0] == 'monitor cli-flat: 2 pairs, every 2s, 2 echoes 0.1s apart, timeout 0.5s'
        assert lines[2].split() == ['SRC', 'DST', 'STATUS', 'VERDICT', 'LOSS', 'RTT', 'AVG',
                                    'CHANGED', 'BROKEN', 'AT']
        assert [line.split()[:5] for line in lines[3:]] == [
            ['vm1', 'vm2', 'ok', 'reachable', '0%'], ['vm2', 'vm1', 'ok', 'reachable', '0%']]
        run = ryu_probe(app, 'watch', 'cli-flat', '--once')
        assert run.returncode == 0, run
        assert run.stdout.splitlines()[2:5] == ['    vm1 vm2', 'vm1      ok', 'vm2  ok']
        assert run.stdout.splitlines()[-1] == '2 pairs, 2 reachable, 0 unreachable'
        assert '\033' not in run.stdout      # not a terminal: no colours, no clearing
    finally:
        run = ryu_probe(app, 'monitors', 'rm', 'cli-flat')
    assert (run.returncode, run.stdout) == (0, 'monitor cli-flat removed\n'), run
    run = ryu_probe(app, 'monitors', 'show', 'cli-flat')
    assert run.returncode == 2 and run.stderr.startswith('ryu-probe: '), run
    assert 'cli-flat' in run.stderr
