"""The probe app on real Open vSwitch: a private OVS, VMs as namespaces, ryu-manager.

Network: one netdev bridge, vm1 and vm2 on VLAN 10, vm3 on VLAN 11.
"""
import concurrent.futures
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from topologies.controller import ProbeController, free_port
from topologies.netns import Vm
from topologies.ovs import OvsInstance

DPID = 0x0000_0000_0000_00a1
OURS = re.compile(r'cookie=0x72797570[0-9a-f]{4}7270')   # any catch index of ours
SCAPY_FORGER = r'''
import sys
from scapy.all import ICMP, IP, Ether, sendp, sniff
mac = sys.argv[1]
def forge(p):
    sendp(Ether(src=mac, dst=p[Ether].src) / IP(src=p[IP].dst, dst=p[IP].src)
          / ICMP(type=0, id=p[ICMP].id, seq=p[ICMP].seq) / b'forged, no token', iface='eth0',
          verbose=False)
print('ready', flush=True)
sniff(iface='eth0', lfilter=lambda p: ICMP in p and p[ICMP].type == 8, prn=forge,
      timeout=float(sys.argv[2]))
'''


@dataclass
class Net:
    ovs: OvsInstance
    bridge: str
    vm1: Vm
    vm2: Vm
    vm3: Vm

    def flows(self) -> list[str]:
        return self.ovs.dump_flows(self.bridge)

    def our_flows(self) -> list[str]:
        return [f for f in self.flows() if OURS.search(f)]

    def their_flows(self) -> list[str]:
        return [f for f in self.flows() if not OURS.search(f)]


def body(src: Vm, dst: Vm, **extra) -> dict:
    return dict(dict(dpid='%016x' % DPID, in_port=src.port_no, src_mac=src.mac,
                     src_ip=src.ip, dst_mac=dst.mac, dst_ip=dst.ip), **extra)


def start_app(lab, **kwargs) -> ProbeController:
    app = ProbeController(**kwargs)
    lab.callback(app.close)
    lab.on_failure.append(lambda: '--- ryu-manager log\n' + app.log()[-20000:])
    return app.start()


def build_net(lab, controller: str | None) -> Net:
    ovs = lab.ovs('hv')
    bridge = lab.prefix + 'br'   # a tap device in this namespace: unique on the machine
    ovs.add_bridge(bridge, dpid=DPID, controller=controller)
    vms = [lab.vm(ovs, bridge, 'vm%d' % i, '10.0.0.%d' % i, tag=tag)
           for i, tag in ((1, 10), (2, 10), (3, 11))]
    return Net(ovs, bridge, *vms)


@pytest.fixture
def app(lab):
    """The app, its catch flows going as soon as their last probe ends."""
    return start_app(lab, config='[probe]\ncatch_linger = 0\n')


@pytest.fixture
def net(lab, app) -> Net:
    net = build_net(lab, app.target)
    app.wait_for_switches(DPID)
    return net


def test_reachable_pair_with_in_port_by_name(app, net):
    result = app.probe(**body(net.vm1, net.vm2, in_port=net.vm1.host_if, count=3))
    assert (result['state'], result['verdict']) == ('done', 'reachable')
    assert (result['sent'], result['received'], result['loss']) == (3, 3, 0.0)
    assert result['request']['in_port'] == net.vm1.port_no
    assert 0 < result['rtt_ms']['min'] <= result['rtt_ms']['max'] < 1000
    assert result['observed_at'] == 'source-port' and result['mark'] == 'kept'


def test_pair_split_by_vlan_tag_is_unreachable(app, net):
    result = app.probe(**body(net.vm1, net.vm3, count=2, interval=0.1, timeout=0.5))
    assert (result['verdict'], result['sent'], result['received']) == ('unreachable', 2, 0)


def test_icmp_dropped_by_an_operator_flow_is_unreachable_and_the_flow_is_left_alone(app, net):
    net.ovs.ofctl('add-flow', net.bridge,
                  'cookie=0x42,priority=100,icmp,nw_dst=%s,actions=drop' % net.vm2.ip)
    before = net.flows()
    result = app.probe(**body(net.vm1, net.vm2, count=2, interval=0.1, timeout=0.5))
    assert result['verdict'] == 'unreachable' and result['mark'] is None
    assert net.flows() == before
    assert any('cookie=0x42' in f and 'actions=drop' in f for f in net.flows())


def test_flow_table_is_back_to_its_baseline_once_probes_end(app, net):
    before = net.flows()
    app.probe(**body(net.vm1, net.vm2, count=1))
    app.probe(**body(net.vm1, net.vm3, count=1, timeout=0.3))
    assert net.flows() == before and not net.our_flows()


def test_catch_flow_is_ours_while_running_and_gone_when_cancelled(app, net):
    status, probe = app.request('POST', '/probe/probes',
                                body(net.vm1, net.vm2, count=100, interval=0.05))
    assert status == 201
    deadline = time.monotonic() + 5
    while not net.our_flows() and time.monotonic() < deadline:
        time.sleep(0.02)
    while app.get('/probe/probes/' + probe['id'])['received'] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    (flow,) = net.our_flows()
    assert 'priority=1,' in flow and 'hard_timeout=' in flow   # over NORMAL at 0
    assert 'nw_tos=12' in flow and 'send_flow_rem' in flow   # DSCP 3, the default mark
    assert 'icmp_type=0' in flow and 'nw_dst=%s' % net.vm1.ip in flow and 'nw_src' not in flow
    status, cancelled = app.request('DELETE', '/probe/probes/' + probe['id'])
    assert status == 200 and cancelled['state'] == 'cancelled' and cancelled['received'] > 0
    deadline = time.monotonic() + 5
    while net.our_flows() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not net.our_flows()


def test_tenant_ping_sees_no_loss_or_duplicates_while_probed(app, net):
    ping = subprocess.Popen(
        ['ip', 'netns', 'exec', net.vm1.netns, 'ping', '-n', '-i', '0.05', '-c', '100',
         net.vm2.ip], stdout=subprocess.PIPE, text=True)
    try:
        results = [app.probe(**body(net.vm1, net.vm2, count=1)) for _ in range(20)]
        output, _ = ping.communicate(timeout=30)
    finally:
        ping.kill()
    print(output.strip().splitlines()[-2:])   # the figures for the closing note
    assert [r['verdict'] for r in results] == ['reachable'] * 20
    assert ' 0% packet loss' in output and '100 received' in output
    assert 'DUP!' not in output


def test_forged_echo_replies_without_the_token_are_not_counted(app, net):
    # vm2 ignores pings but answers every echo request it sees with a forged reply that
    # carries the right identifier and sequence number, and no token.
    net.vm2.exec('sysctl', '-qw', 'net.ipv4.icmp_echo_ignore_all=1')
    forger = net.vm2.popen(sys.executable, '-c', SCAPY_FORGER, net.vm2.mac, '10',
                           stdout=subprocess.PIPE, text=True)
    try:
        assert forger.stdout.readline().strip() == 'ready'
        time.sleep(0.3)
        result = app.probe(**body(net.vm1, net.vm2, count=3, interval=0.1, timeout=0.5))
        snmp = net.vm1.exec('cat', '/proc/net/snmp').splitlines()
    finally:
        forger.kill()
        forger.wait()
    names, values = [line.split() for line in snmp if line.startswith('Icmp:')][:2]
    assert int(dict(zip(names, values))['InEchoReps']) >= 3   # the forgeries reached vm1
    assert (result['verdict'], result['received']) == ('unreachable', 0)


def test_ten_concurrent_probes_all_get_their_own_verdicts(app, net):
    pairs = [(net.vm1, net.vm2), (net.vm2, net.vm1), (net.vm1, net.vm3)] * 3 + [
        (net.vm1, net.vm2)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(
            lambda pair: app.probe(**body(*pair, count=3, interval=0.05, timeout=0.5)), pairs))
    expected = ['unreachable' if dst is net.vm3 else 'reachable' for _, dst in pairs]
    assert [r['verdict'] for r in results] == expected
    assert len({r['id'] for r in results}) == 10
    assert not net.our_flows()


def test_wait_false_returns_201_and_the_probe_finishes_in_the_background(app, net):
    status, probe = app.request('POST', '/probe/probes', body(net.vm1, net.vm2, count=2))
    assert status == 201 and probe['state'] == 'running'
    deadline = time.monotonic() + 10
    while probe['state'] == 'running' and time.monotonic() < deadline:
        time.sleep(0.05)
        probe = app.get('/probe/probes/' + probe['id'])
    assert probe['verdict'] == 'reachable'
    assert app.get('/probe/probes')[0]['id'] == probe['id']


BAD = [
    (b'not json', 400, 'body'), (b'[]', 400, 'body'), (b'{}', 400, 'dpid'),
    (None, 400, 'count', {'count': 0}), (None, 400, 'count', {'count': 10**6}),
    (None, 400, 'timeout', {'timeout': 0}), (None, 400, 'interval', {'interval': 'x'}),
    (None, 400, 'src_ip', {'src_ip': '10.0.0.300'}), (None, 400, 'dst_mac', {'dst_mac': 'x'}),
    (None, 400, 'wait', {'wait': 'no'}), (None, 400, 'colour', {'colour': 'red'}),
    (None, 404, 'dpid', {'dpid': 'ffff'}), (None, 404, 'in_port', {'in_port': 999}),
    (None, 404, 'in_port', {'in_port': 'no-such-port'}),
]


def test_every_bad_input_gets_a_json_error_and_the_app_keeps_working(app, net):
    for case in BAD:
        raw, status, field = case[:3]
        if raw is None:
            got, error = app.request('POST', '/probe/probes',
                                     dict(body(net.vm1, net.vm2), **case[3]))
        else:
            got, error = app.request('POST', '/probe/probes', raw=raw)
        assert got == status and error['error'].startswith(field), (case, error)
    assert app.request('GET', '/probe/probes/nope')[0] == 404
    assert app.request('PATCH', '/probe/probes')[0] == 405
    assert app.probe(**body(net.vm1, net.vm2, count=1))['verdict'] == 'reachable'


def test_rest_api_listens_on_loopback_only(app):
    listening = open('/proc/net/tcp').read()
    port = '%04X' % app.rest_port
    assert re.search(r': 0100007F:%s 00000000:0000 0A' % port, listening)
    assert not re.search(r': 00000000:%s ' % port, listening)


def test_killed_app_leaves_a_catch_flow_that_expires_and_a_restart_sweeps_it(lab, app, net):
    status, probe = app.request('POST', '/probe/probes', body(net.vm1, net.vm2, count=1000,
                                                              interval=0.01, timeout=0.2))
    time.sleep(0.3)
    app.kill()
    (flow,) = net.our_flows()
    hard_timeout = int(re.search(r'hard_timeout=(\d+)', flow).group(1))
    assert hard_timeout <= 5 + 10 + 0.2 + 3
    # A restarted app (same OpenFlow port) sweeps what the dead one left, at once.
    again = start_app(lab, of_port=app.of_port)
    again.wait_for_switches(DPID)
    deadline = time.monotonic() + 5
    while net.our_flows() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not net.our_flows()
    assert again.probe(**body(net.vm1, net.vm2, count=1))['verdict'] == 'reachable'


def test_killed_app_catch_flow_outlives_it_by_no_more_than_its_hard_timeout(app, net):
    app.request('POST', '/probe/probes', body(net.vm1, net.vm2, count=3, interval=0.1,
                                              timeout=0.2))
    time.sleep(0.1)
    app.kill()
    (flow,) = net.our_flows()
    hard_timeout = int(re.search(r'hard_timeout=(\d+)', flow).group(1))
    time.sleep(hard_timeout + 1)
    assert not net.our_flows()


def test_switch_that_drops_out_ends_its_probes_in_error(app, net):
    status, probe = app.request('POST', '/probe/probes', body(net.vm1, net.vm2, count=100,
                                                              interval=0.05))
    time.sleep(0.3)
    net.ovs.vsctl('del-controller', net.bridge)
    deadline = time.monotonic() + 5
    while probe['state'] == 'running' and time.monotonic() < deadline:
        time.sleep(0.05)
        probe = app.get('/probe/probes/' + probe['id'])
    assert probe['state'] == 'error' and 'disconnected' in probe['error']
    assert probe['verdict'] is None


def test_app_dialing_a_passive_listener_leaves_operator_flows_untouched(lab):
    # A bridge with the operator's own flows and no controller. Giving it its first
    # active controller would flush them all; a passive listener flushes nothing.
    net = build_net(lab, controller=None)
    net.ovs.ofctl('add-flow', net.bridge, 'cookie=0x99,priority=10,arp,actions=NORMAL')
    net.ovs.ofctl('add-flow', net.bridge, 'cookie=0x98,priority=5,ip,actions=NORMAL')
    before = net.flows()
    listen = free_port()
    net.ovs.set_controller(net.bridge, 'ptcp:%d:127.0.0.1' % listen)
    app = start_app(lab, args=('--ofp-switch-address-list', '127.0.0.1:%d' % listen),
                    listen=False)
    app.wait_for_switches(DPID)
    assert net.flows() == before
    assert app.probe(**body(net.vm1, net.vm2, count=2))['verdict'] == 'reachable'
    assert [f for f in net.our_flows() if 'priority=6,' in f]   # over the ip NORMAL flow
    assert app.probe(**body(net.vm1, net.vm3, count=1, timeout=0.3))['verdict'] == 'unreachable'
    assert net.their_flows() == before


def test_app_composes_with_other_ryu_apps_in_one_process(lab):
    app = start_app(lab, apps=('ryu.app.ofctl_rest',))
    net = build_net(lab, app.target)
    app.wait_for_switches(DPID)
    assert app.get('/stats/switches') == [DPID]
    assert app.probe(**body(net.vm1, net.vm2, count=1))['verdict'] == 'reachable'


def test_probe_options_come_from_the_config_file(lab):
    app = start_app(lab, config='[probe]\ndye = 4242\nmark = 11\nmax_count = 5\n')
    net = build_net(lab, app.target)
    app.wait_for_switches(DPID)
    assert app.request('POST', '/probe/probes', body(net.vm1, net.vm2, count=6))[0] == 400
    capture = net.vm2.popen('tcpdump', '-n', '-l', '-c', '1', '-i', 'eth0',
                            'icmp[0] = 8 and icmp[4:2] = 4242 and ip[1] = 44',
                            stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1)
        result = app.probe(**body(net.vm1, net.vm2, count=1))
        line = capture.communicate(timeout=5)[0]
    finally:
        capture.kill()
    assert result['verdict'] == 'reachable' and 'echo request' in line
