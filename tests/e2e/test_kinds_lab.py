"""Every probe kind on real OVS, in flat, vlan, neutron and routed, with no MAC given:
TCP to an open, a closed and a filtered port, UDP open and closed, ARP to a VM alive and
down, DHCP with the server running and stopped. Each verdict is checked against the
tenant's own tool run inside the source VM: nc, a UDP socket, arping, nmap's DHCP
discover."""
import os
import time
import urllib.request

import pytest

from test_topologies import app, bring_up  # noqa: F401 (fixture)
from topologies import engine
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
PROBE = dict(count=2, interval=0.1, timeout=1.0)
OPEN, CLOSED, FILTERED, UDP_OPEN, UDP_CLOSED = 8080, 8082, 8081, 9999, 9998
# (source, destination, gateway, DHCP server: None for a dnsmasq we start in the destination)
PAIRS = {'flat': ('vm1', 'vm2', None, None), 'vlan': ('vm1', 'vm3', None, None),
         'neutron': ('vm1', 'vm3', None, 'qdhcp'), 'routed': ('vm1', 'vm3', '10.1.0.1', None)}
DNSMASQ = ['dnsmasq', '--keep-in-foreground', '--log-facility=-', '--conf-file=/dev/null',
           '--pid-file=', '--leasefile-ro', '--port=0', '--no-hosts', '--no-resolv',
           '--bind-interfaces', '--interface=eth0']
UDP_CHECK = '''
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
verdict = "open|filtered"
for _ in range(2):
    try:
        s.send(b"probe")
        s.recv(100)
        verdict = "open"
        break
    except ConnectionRefusedError:
        verdict = "closed"
        break
    except socket.timeout:
        pass
print(verdict)
'''


def body(network, src, dst_ip, kind, **extra):
    vm = network.vms()[src]
    return dict(dpid='%016x' % vm.dpid, in_port=vm.port_no, src_ip=vm.ip, kind=kind,
                **({'dst_ip': dst_ip} if dst_ip else {}), **PROBE, **extra)


def nc(network, src, ip, port) -> str:
    """What the tenant's nc says of a TCP port: open, closed or filtered."""
    out = network.run(src, ['sh', '-c', 'nc -v -z -n -w 2 %s %d 2>&1; echo rc=$?' % (ip, port)],
                      check=False)
    if out.strip().endswith('rc=0'):
        return 'open'
    return 'closed' if 'refused' in out else 'filtered'


def udp(network, src, ip, port) -> str:
    return network.run(src, ['python3', '-c', UDP_CHECK, ip, str(port)], check=False).strip()


def arping(network, src, ip) -> str:
    out = network.run(src, ['sh', '-c', 'arping -c 2 -w 3 -I eth0 %s >/dev/null 2>&1; echo $?'
                            % ip], check=False)
    return 'reachable' if out.strip() == '0' else 'unreachable'


def dhcp_discover(network, src) -> str | None:
    """The address nmap's DHCP discover (with the VM's own MAC; it never requests) is
    offered, or None."""
    mac = network.vms()[src].mac
    out = network.run(src, ['nmap', '-n', '-e', 'eth0', '--script', 'broadcast-dhcp-discover',
                            '--script-args', 'broadcast-dhcp-discover.mac=%s,'
                            'broadcast-dhcp-discover.timeout=3' % mac], check=False, timeout=60)
    offered = [line.split(':', 1)[1].strip() for line in out.splitlines()
               if 'IP Offered' in line]
    return offered[0] if offered else None


def dhclient(network, src) -> str:
    """What the tenant's dhclient says of one DHCP exchange (DISCOVER to ACK); its script
    is /bin/true, so the VM's address and routes stay as they are."""
    f = os.path.join(network.dir, '%s-dhclient-test' % src)
    script = ('dhclient -d -1 -v -sf /bin/true -pf {f}.pid -lf {f}.leases eth0 >{f}.out 2>&1 & '
              'for i in $(seq 100); do grep -q "bound to" {f}.out && break; sleep 0.1; done; '
              'kill $!; cat {f}.out').format(f=f)
    return network.run(src, ['sh', '-c', script], check=False, timeout=30)


def daemon(network, where, name, argv) -> str:
    """A process of the test's in a node's namespace; engine.down stops it (its pidfile)."""
    pidfile = os.path.join(network.dir, '%s-%s.pid' % (where, name))
    engine.spawn(pidfile, argv, network.netns(where), pidfile[:-4] + '.log')
    return pidfile


def out_rsts(network, where) -> int:
    """The RSTs a namespace's kernel has sent (Tcp: OutRsts)."""
    lines = [line.split() for line in network.run(where, ['cat', '/proc/net/snmp']).splitlines()
             if line.startswith('Tcp:')]
    return int(lines[1][lines[0].index('OutRsts')])


def rule_packets(network, where, rule) -> int:
    """The packets an iptables rule (as iptables-save prints it) has counted."""
    for line in network.run(where, ['iptables-save', '-c']).splitlines():
        if line.endswith(rule):
            return int(line[1:].split(':')[0])
    raise AssertionError('no rule %r in %s' % (rule, where))


def wait_listening(network, where, port, proto='tcp'):
    flag = '-ltn' if proto == 'tcp' else '-lun'
    deadline = time.monotonic() + 10
    while ':%d ' % port not in network.run(where, ['ss', flag]):
        assert time.monotonic() < deadline, 'nothing listens on %s %d' % (proto, port)
        time.sleep(0.05)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_every_kind_agrees_with_the_tenants_own_tools(request, app, name):
    network = bring_up(request, app, name, prefix='k')
    src, dst, gateway, server = PAIRS[name]
    vms = network.vms()
    dst_ip, via = vms[dst].ip, {'gateway': gateway} if gateway else {}
    daemon(network, dst, 'tcp', ['socat', 'TCP6-LISTEN:%d,ipv6only=0,fork,reuseaddr' % OPEN,
                                 'SYSTEM:true'])
    daemon(network, dst, 'tcp-dropped',
           ['socat', 'TCP-LISTEN:%d,fork,reuseaddr' % FILTERED, 'SYSTEM:true'])
    daemon(network, dst, 'udp', ['socat', 'UDP-RECVFROM:%d,fork' % UDP_OPEN, 'SYSTEM:echo pong'])
    network.run(dst, ['iptables', '-I', 'INPUT', '-p', 'tcp', '--dport', str(FILTERED),
                      '-j', 'DROP'])
    wait_listening(network, dst, OPEN)
    wait_listening(network, dst, FILTERED)
    wait_listening(network, dst, UDP_OPEN, 'udp')

    results = {}
    for port, truth in ((OPEN, 'open'), (CLOSED, 'closed'), (FILTERED, 'filtered')):
        result = app.probe(**body(network, src, dst_ip, 'tcp', dst_port=port, **via))
        results[('tcp', port)] = result
        assert (result['verdict'], nc(network, src, dst_ip, port)) == (truth, truth), result
    assert results[('tcp', OPEN)]['rtt_ms'] is not None
    assert results[('tcp', OPEN)]['request']['dst_mac']      # found by the app
    # After a SYN-ACK the app sends the RST the VM's kernel would: the server counts it,
    # from our source ports, and the VM's kernel never saw the SYN-ACK (with our RST
    # turned off, it sent one itself at the SYN-ACK a half-open server sends again 1 s on).
    rule = ('-A INPUT -p tcp -m tcp --sport 61000:65535 --dport %d --tcp-flags RST RST '
            '-j ACCEPT' % OPEN)
    network.run(dst, ['iptables', '-I'] + rule.split()[1:])
    rsts = out_rsts(network, src)
    result = app.probe(**body(network, src, dst_ip, 'tcp', dst_port=OPEN, **via))
    time.sleep(1.5)
    assert (result['verdict'], out_rsts(network, src)) == ('open', rsts), result
    assert rule_packets(network, dst, rule) >= result['received'] >= 1
    for port, truth in ((UDP_OPEN, 'open'), (UDP_CLOSED, 'closed')):
        result = app.probe(**body(network, src, dst_ip, 'udp', dst_port=port,
                                  payload='70726f6265', **via))
        assert (result['verdict'], udp(network, src, dst_ip, port)) == (truth, truth), result
    icmp = app.probe(**body(network, src, dst_ip, 'icmp', **via))
    assert icmp['verdict'] == network.ping(src, dst_ip) == 'reachable', icmp
    if vms[src].ip6 and not gateway:     # the same over IPv6 (neighbour discovery for MACs)
        v6 = dict(body(network, src, vms[dst].ip6, 'tcp', dst_port=OPEN), src_ip=vms[src].ip6)
        result = app.probe(**v6)
        assert result['verdict'] == nc(network, src, vms[dst].ip6, OPEN) == 'open', result
        result = app.probe(**dict(v6, kind='udp', dst_port=UDP_CLOSED))
        assert result['verdict'] == udp(network, src, vms[dst].ip6, UDP_CLOSED) == 'closed'

    # ARP: on the source's own segment (routed: vm2, the same subnet as vm1)
    neighbour = 'vm2' if name == 'routed' else dst
    result = app.probe(**body(network, src, vms[neighbour].ip, 'arp'))
    assert result['verdict'] == arping(network, src, vms[neighbour].ip) == 'reachable', result
    assert result['mac'] == vms[neighbour].mac
    network.run(neighbour, ['ip', 'link', 'set', 'eth0', 'down'])
    try:
        result = app.probe(**body(network, src, vms[neighbour].ip, 'arp'))
        assert result['verdict'] == arping(network, src, vms[neighbour].ip) == 'unreachable'
    finally:
        network.run(neighbour, ['ip', 'link', 'set', 'eth0', 'up'])

    # DHCP: Neutron's dnsmasq, or one we start on the source's segment
    if server is None:
        server = neighbour
        pidfile = daemon(network, server, 'dnsmasq', DNSMASQ + [
            '--dhcp-range=%s.0,static,255.255.255.0,600s' % vms[src].ip.rsplit('.', 1)[0],
            '--dhcp-host=%s,%s' % (vms[src].mac, vms[src].ip)])
    else:
        pidfile = os.path.join(network.dir, '%s-daemon0.pid' % server)
    wait_listening(network, server, 67, 'udp')
    lease_before = network.run(src, ['ip', '-4', 'addr', 'show', 'eth0'])
    result = app.probe(**body(network, src, None, 'dhcp'))
    offered = dhcp_discover(network, src)
    assert result['verdict'] == 'reachable' and offered == vms[src].ip, (result, offered)
    assert result['offer']['offered'] == vms[src].ip and result['offer']['server']
    # the tenant's own DHCP exchange during a probe: its OFFER and ACK (to the VM's MAC)
    # meet our catch, which hands them on to the VM: nothing the tenant is sent is lost
    handed_on = app.get('/probe/stats')['counters']['handed_on']
    status, running = app.request('POST', '/probe/probes', dict(
        body(network, src, None, 'dhcp'), count=40, interval=0.2))
    assert status == 201, running
    bound = dhclient(network, src)
    assert app.get('/probe/probes/' + running['id'])['state'] == 'running', bound
    assert 'bound to %s' % vms[src].ip in bound, bound
    assert app.get('/probe/stats')['counters']['handed_on'] >= handed_on + 2
    assert app.request('DELETE', '/probe/probes/' + running['id'])[0] == 200
    engine.kill_pidfile(pidfile)
    result = app.probe(**body(network, src, None, 'dhcp'))
    assert (result['verdict'], dhcp_discover(network, src)) == ('unreachable', None), result
    assert network.run(src, ['ip', '-4', 'addr', 'show', 'eth0']) == lease_before

    # nothing of ours is left once the probes are done; the tenant saw nothing of ours
    counters = app.get('/probe/stats')['counters']
    assert app.get('/probe/stats')['running'] == 0, counters


def test_a_tcp_monitor_reads_open_in_its_pairs_and_in_metrics_with_its_kind(request, app):
    network = bring_up(request, app, 'flat', prefix='k')
    vms = network.vms()
    daemon(network, 'vm2', 'tcp', ['socat', 'TCP-LISTEN:%d,fork,reuseaddr' % OPEN, 'SYSTEM:true'])
    wait_listening(network, 'vm2', OPEN)
    probes = [{'dpid': '%016x' % vms['vm1'].dpid, 'in_port': vms['vm1'].port_name,
               'src_ip': vms['vm1'].ip, 'dst_ip': vms['vm2'].ip, 'name': 'web'}]
    status, body = app.request('POST', '/probe/monitors', {
        'name': 'web', 'interval': 2, 'count': 1, 'kind': 'tcp', 'dst_port': OPEN,
        'probes': probes})
    assert status == 201, body
    deadline = time.monotonic() + 30
    while not app.get('/probe/monitors/web')['pairs'][0]['rounds'] >= 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    pair = app.get('/probe/monitors/web')['pairs'][0]
    assert pair['verdict'] == nc(network, 'vm1', vms['vm2'].ip, OPEN) == 'open', pair
    metrics = urllib.request.urlopen(app.url + '/metrics', timeout=30).read().decode()
    line = 'ryu_probe_success{dst="%s",kind="tcp",monitor="web",src="%s"} 1.0' % (
        vms['vm2'].ip, vms['vm1'].ip)
    assert line in metrics, [m for m in metrics.splitlines() if 'success{' in m]
    assert app.request('DELETE', '/probe/monitors/web')[0] == 200
