"""ICMPv6 echo probes on real OVS: with the MACs given and with none (neighbour discovery,
as the VM would), a security group dropping ICMPv6 echo, each verdict the tenant's own
`ping -6`'s; no neighbour entry in any VM takes a wrong value."""

import pytest

from test_topologies import app, bring_up  # noqa: F401 (fixture)
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
PROBE = dict(count=2, interval=0.1, timeout=1.0)
V6 = {'vm1': 'fd00:0:0:1::1', 'vm2': 'fd00:0:0:1::2'}


def with_ipv6(network) -> None:
    for name, ip in V6.items():
        network.run(name, ['ip', '-6', 'addr', 'replace', ip + '/64', 'dev', 'eth0', 'nodad'])


def body(network, src: str, dst: str, macs: bool = True) -> dict:
    vms = network.vms()
    extra = dict(src_mac=vms[src].mac, dst_mac=vms[dst].mac) if macs else {}
    return dict(dpid='%016x' % vms[src].dpid, in_port=vms[src].port_no, src_ip=V6[src],
                dst_ip=V6[dst], **PROBE, **extra)


def ping6(network, src: str, dst: str) -> str:
    return network.ping(src, V6[dst])


def wrong_neighbours(network) -> list[tuple]:
    vms = network.vms()
    truth = {V6[name]: vms[name].mac for name in V6}
    wrong = []
    for name in V6:
        for line in network.run(name, ['ip', '-6', 'neigh', 'show']).splitlines():
            fields = line.split()
            if 'lladdr' in fields and fields[0] in truth:
                mac = fields[fields.index('lladdr') + 1]
                if mac != truth[fields[0]]:
                    wrong.append((name, fields[0], mac))
    return wrong


def test_icmpv6_probes_with_and_without_macs_agree_with_ping6(request, app):
    network = bring_up(request, app, 'flat', prefix='s')
    with_ipv6(network)
    vms = network.vms()
    result = app.probe(**body(network, 'vm1', 'vm2'))
    assert result['verdict'] == 'reachable', result
    assert result['mark'] == 'kept'
    resolved = app.probe(**body(network, 'vm2', 'vm1', macs=False))
    assert resolved['verdict'] == 'reachable', resolved
    assert (resolved['request']['src_mac'], resolved['request']['dst_mac']) == (
        vms['vm2'].mac, vms['vm1'].mac)
    assert ping6(network, 'vm1', 'vm2') == ping6(network, 'vm2', 'vm1') == 'reachable'
    assert wrong_neighbours(network) == []
    missing = app.probe(**dict(body(network, 'vm1', 'vm2', macs=False),
                               dst_ip='fd00:0:0:1::99'))
    assert missing['verdict'] == 'next-hop-unresolved', missing


def test_an_icmpv6_drop_is_unreachable_where_it_drops(request, app):
    network = bring_up(request, app, 'flat', prefix='s')
    with_ipv6(network)
    network.run('hv1', ['ovs-ofctl', 'add-flow', 'br0',
                        'priority=100,icmp6,icmp_type=128,ipv6_dst=%s,actions=drop' % V6['vm2']])
    result = app.probe(**body(network, 'vm1', 'vm2'))
    assert result['verdict'] == 'unreachable', result
    assert (result['broken_at']['direction'], result['broken_at']['table'],
            result['broken_at']['reason']) == ('request', 0, 'dropped'), result['broken_at']
    assert ping6(network, 'vm1', 'vm2') == 'unreachable'
    assert app.probe(**body(network, 'vm2', 'vm1'))['verdict'] == 'reachable'
