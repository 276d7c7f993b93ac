"""Probes that give only dpid, in_port, src_ip and dst_ip (and a gateway off the subnet),
on real OVS: the app finds the MACs as the VM would, every verdict agrees with the
tenant's own ping, no neighbour entry in any VM takes a wrong value, and a tenant's ping
running meanwhile loses nothing."""
import subprocess
import time

import pytest

from test_topologies import app, bring_up  # noqa: F401 (fixture)
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
PROBE = dict(count=2, interval=0.1, timeout=1.0)


def bare(network, src: str, dst_ip: str, **extra) -> dict:
    """A probe body with no MAC at all."""
    vm = network.vms()[src]
    return dict(dpid='%016x' % vm.dpid, in_port=vm.port_no, src_ip=vm.ip, dst_ip=dst_ip,
                **PROBE, **extra)


def wrong_neighbours(network) -> list[tuple]:
    """Neighbour entries of the VMs whose MAC is not the address's true one."""
    vms = network.vms()
    truth = {ip: vm.mac for vm in vms.values() for ip in (vm.ip, vm.ip6) if ip}
    wrong = []
    for name in vms:
        for line in network.run(name, ['ip', 'neigh', 'show']).splitlines():
            fields = line.split()
            if 'lladdr' in fields:
                ip, mac = fields[0], fields[fields.index('lladdr') + 1]
                if ip in truth and truth[ip] != mac:
                    wrong.append((name, ip, mac, truth[ip]))
    return wrong


def test_a_probe_with_no_mac_finds_both_and_agrees_with_the_tenants_ping(request, app):
    network = bring_up(request, app, 'flat', prefix='r')
    vms = network.vms()
    tenant = subprocess.Popen(
        ['ip', 'netns', 'exec', network.netns('vm2'), 'ping', '-n', '-i', '0.02', '-c', '100',
         vms['vm1'].ip], stdout=subprocess.PIPE, text=True)
    try:
        result = app.probe(**bare(network, 'vm1', vms['vm2'].ip))
        again = app.probe(**bare(network, 'vm1', vms['vm2'].ip))     # from the cache
        output = tenant.communicate(timeout=60)[0]
    finally:
        tenant.kill()
    assert result['verdict'] == 'reachable', result
    assert (result['request']['src_mac'], result['request']['dst_mac']) == (
        vms['vm1'].mac, vms['vm2'].mac)
    assert again['verdict'] == 'reachable' and again['request'] == result['request']
    assert network.ping('vm1', vms['vm2'].ip) == 'reachable'
    assert '100 packets transmitted, 100 received, 0% packet loss' in output, output
    assert wrong_neighbours(network) == []
    counters = app.get('/probe/stats')['counters']
    assert counters['resolved'] == 2 and counters['resolved_cached'] == 2


def test_a_silent_source_and_an_unresolved_next_hop_are_their_own_verdicts(request, app):
    network = bring_up(request, app, 'flat', prefix='r')
    vms = network.vms()
    result = app.probe(**bare(network, 'vm1', '10.0.0.99'))        # nobody has it
    assert result['verdict'] == 'next-hop-unresolved', result
    assert result['broken_at']['reason'] == 'next-hop-unresolved'
    assert result['sent'] == 0
    # where the ARP request went: walked table by table, as a trace walks an echo
    assert result['path'] and {s['direction'] for s in result['path']} == {'request'}
    assert result['broken_at']['table'] is not None, result['broken_at']
    assert network.ping('vm1', '10.0.0.99') == 'unreachable'
    # the same over IPv6: the neighbour solicitation is walked, marked in its class
    nobody6 = vms['vm1'].ip6.rsplit(':', 1)[0] + ':99'
    result = app.probe(**dict(bare(network, 'vm1', nobody6), src_ip=vms['vm1'].ip6))
    assert result['verdict'] == 'next-hop-unresolved', result
    assert result['path'] and {s['direction'] for s in result['path']} == {'request'}
    assert result['broken_at']['table'] is not None, result['broken_at']
    assert 'no neighbour advertisement for %s' % nobody6 in result['broken_at']['detail']
    assert network.ping('vm1', nobody6) == 'unreachable'
    network.run('vm2', ['ip', 'link', 'set', 'eth0', 'down'])
    result = app.probe(**bare(network, 'vm2', vms['vm1'].ip))
    assert result['verdict'] == 'source-not-answering', result
    assert network.ping('vm2', vms['vm1'].ip) == 'unreachable'
    assert wrong_neighbours(network) == []


def test_an_off_subnet_destination_goes_through_the_gateways_mac(request, app):
    network = bring_up(request, app, 'routed', prefix='r')
    vms = network.vms()
    result = app.probe(**bare(network, 'vm1', vms['vm3'].ip, gateway='10.1.0.1'))
    assert result['verdict'] == 'reachable', result
    router = network.state['next_hops']['r1']['10.1.0.0/24']
    assert result['request']['dst_mac'] == router
    assert result['request']['gateway'] == '10.1.0.1'
    assert network.ping('vm1', vms['vm3'].ip) == 'reachable'
    assert wrong_neighbours(network) == []


def test_a_monitor_whose_endpoints_give_no_mac_finds_them_each_round(request, app):
    network = bring_up(request, app, 'flat', prefix='r')
    vms = network.vms()
    mesh = [{'dpid': '%016x' % vms[n].dpid, 'in_port': vms[n].port_no, 'ip': vms[n].ip,
             'name': n} for n in ('vm1', 'vm2')]
    status, body = app.request('POST', '/probe/monitors', {
        'name': 'nomac', 'interval': 2, 'count': 2, 'mesh': mesh})
    assert status == 201, body
    deadline = time.monotonic() + 30
    while True:
        pairs = app.get('/probe/monitors/nomac')['pairs']
        if all(p['rounds'] >= 2 for p in pairs):
            break
        assert time.monotonic() < deadline, pairs
        time.sleep(0.2)
    assert [p['verdict'] for p in pairs] == ['reachable', 'reachable']
    assert network.ping('vm1', vms['vm2'].ip) == 'reachable'
    # A pair keeps its last round only: the one named may be replaced by the next one
    # (every 2 s) between the two GETs, so read them again until they agree.
    for _ in range(5):
        probe_id = app.get('/probe/monitors/nomac')['pairs'][0]['probe_id']
        status, probe = app.request('GET', '/probe/probes/' + probe_id)
        if status == 200:
            break
    assert status == 200, probe
    assert probe['request']['dst_mac'] == vms['vm2'].mac
    assert wrong_neighbours(network) == []
