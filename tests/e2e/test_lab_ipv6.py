"""IPv6 in the lab topologies (issue 9): every topology with IPv6 probes (`Probe.family`
6) comes up with its VMs' IPv6 addresses, and the tenant's own kernel ping, `ping -6`
from inside the source VM, agrees with each of those probes' expected verdict: the
reachable ones answer, the unreachable ones do not. That is the truth the app's IPv6
probes will be checked against once it speaks IPv6.

No app is attached (controller=None): the probed bridges have no controller and switch
with their own flows (NORMAL unless the topology has its own, another controller's in
`beside`, OVN's in `ovn`). Instances are named 'v' + the topology, so they never collide
with other runs' ('t', 'm', 'c', 'u', 'p'...), and each is taken down, and checked gone,
even when its test fails.
"""
import concurrent.futures
import ipaddress
import os
import shutil
import subprocess

import pytest

from topologies import engine
from topologies.lab import missing_requirements
from topologies.model import Probe

PREFIX = 'v'
ULA = ipaddress.ip_network('fd00::/8')
IPV6 = [name for name in engine.names() if any(p.family == 6 for p in engine.load(name).probes)]
# what a topology needs beyond the lab's own tools
NEEDS = {'ovn': ['ovn-northd', 'ovn-controller'], 'neutron': ['dnsmasq', 'dhclient'],
         'routed': ['iptables', 'ip6tables']}
lab_only = pytest.mark.skipif(missing_requirements() is not None,
                              reason=missing_requirements() or '')


def assert_gone(instance: str) -> None:
    engine.down(instance)
    namespaces = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True).stdout
    assert not [line for line in namespaces.splitlines() if line.startswith(instance + '-')]
    assert not os.path.exists(os.path.join(engine.RUN_ROOT, instance))
    processes = subprocess.run(['ps', '-eo', 'stat=,args='], capture_output=True, text=True).stdout
    assert not [line for line in processes.splitlines()
                if '/%s/' % instance in line and not line.startswith('Z')]


@pytest.fixture
def network(request) -> engine.Network:
    name = request.param
    missing = [tool for tool in NEEDS.get(name, []) if not shutil.which(tool)]
    if missing:
        pytest.skip('%s needs %s' % (name, ', '.join(missing)))
    instance = PREFIX + name[:11]
    request.addfinalizer(lambda: assert_gone(instance))
    return engine.up(engine.load(name), controller=None, instance=instance)


def ping6(network: engine.Network, probe: Probe) -> str:
    """What `ping -6` from the probe's source to its destination's IPv6 address says."""
    return network.ping(probe.src, network.vms()[probe.dst].ip6, count=2)


def iface_addresses(topology) -> dict[str, str | None]:
    """Each VM's IPv6 address (no prefix, canonical) as the topology gives it to its first
    interface."""
    return {node.name: node.ifaces[0].ip6 and str(ipaddress.ip_interface(node.ifaces[0].ip6).ip)
            for node in topology.nodes if node.vm}


def ipv6_on(network: engine.Network, where: str, ifname: str) -> bool:
    return network.run(where, ['cat', '/proc/sys/net/ipv6/conf/%s/disable_ipv6' % ifname]
                       ).strip() == '0'


@lab_only
@pytest.mark.parametrize('network', IPV6, indirect=True)
def test_ipv6_probes_expect_what_the_tenants_ping6_finds(network):
    topology = network.topology
    vms = network.vms()
    probes = [p for p in topology.probes if p.family == 6]

    # every address the topology gives is in the state, in fd00::/8, and on the VM's eth0;
    # an interface without one has IPv6 off
    wanted = iface_addresses(topology)
    assert {name: vm.ip6 for name, vm in vms.items()} == wanted
    for name, address in wanted.items():
        if address is None:
            assert not ipv6_on(network, name, 'eth0'), name
            continue
        assert ipaddress.ip_address(address) in ULA
        assert address + '/' in network.run(name, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0'])
    # none of them in the root namespace, nor in a hypervisor's
    ours = {str(ipaddress.ip_interface(iface.ip6).ip) for node in topology.nodes
            for iface in node.ifaces if iface.ip6}
    for netns in [None, *[network.netns(host.name) for host in topology.hosts]]:
        out = subprocess.run(['ip', *(['-n', netns] if netns else []), '-6', '-o', 'addr', 'show'],
                             capture_output=True, text=True, check=True).stdout
        found = {word.split('/')[0] for word in out.split() if '/' in word and ':' in word}
        assert not found & ours, (netns, found & ours)

    # each IPv6 body: the VMs' IPv6 addresses, and the same next hop as its IPv4 twin
    # (a router's interface carries both of its subnets)
    for probe in probes:
        body, body4 = network.body(probe, family=6), network.body(probe, family=4)
        assert (body['src_ip'], body['dst_ip']) == (vms[probe.src].ip6, vms[probe.dst].ip6)
        assert {k: v for k, v in body.items() if k not in ('src_ip', 'dst_ip')} == {
            k: v for k, v in body4.items() if k not in ('src_ip', 'dst_ip')}

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pinged = [p for p in probes if p.ping]
        truth = list(pool.map(lambda p: ping6(network, p), pinged))
    got = [('%s -> %s%s' % (p.src, p.dst, ' via ' + p.via if p.via else ''), t)
           for p, t in zip(pinged, truth)]
    assert got == [('%s -> %s%s' % (p.src, p.dst, ' via ' + p.via if p.via else ''), p.expect)
                   for p in pinged]


@lab_only
@pytest.mark.parametrize('network', ['routed'], indirect=True)
def test_routed_forwards_ipv6_where_it_forwards_ipv4_and_routes_are_ipv6(network):
    for router in ('r1', 'nat'):
        assert network.run(router, ['sysctl', '-n', 'net.ipv6.conf.all.forwarding']).strip() == '1'
    assert 'default via fd00:0:0:10::1 dev eth0' in network.run('vm1', ['ip', '-6', 'route'])
    assert 'fd00:0:0:20::/64 via fd00:0:0:10::1 dev eth0' in network.run('nat', ['ip', '-6', 'route'])
    # vm1 -> ext is routed back out of r1's eth0 toward nat: r1 sends vm1 no redirect
    # (IPv6 redirects only name link-local targets), so vm1 still goes through r1
    network.run('vm1', ['ping', '-6', '-n', '-q', '-c', '2', '-i', '0.2', 'fd00:0:0:30::10'])
    assert ' via fd00:0:0:10::1 dev eth0 ' in network.run(
        'vm1', ['ip', '-6', 'route', 'get', 'fd00:0:0:30::10'])


def test_ipv6_bodies_need_ipv6_addresses():
    """body(family=6) names the VM that has no IPv6 address; routes are told apart."""
    vm = dict(name='vm1', host='hv1', bridge='br0', dpid=1, port_no=1, port_name='vm1',
              mac='02:00:0a:64:00:01', ip='10.100.0.1', ip6=None)
    network = engine.Network('x', {'topology': 'faucet', 'next_hops': {},
                                   'vms': {'vm1': vm, 'vm2': dict(vm, name='vm2')}})
    assert network.body(Probe('vm1', 'vm2'))['src_ip'] == '10.100.0.1'
    with pytest.raises(engine.TopologyError, match='vm1 has no IPv6 address in faucet'):
        network.body(Probe('vm1', 'vm2', family=6), family=6)
    with pytest.raises(ValueError):
        network.body(Probe('vm1', 'vm2'), family=5)
    assert [engine._ipv6_route(r) for r in ('default via 10.1.0.1', '10.2.0.0/24 via 10.1.0.1',
                                            'default via fd00:0:0:10::1',
                                            'fd00:0:0:20::/64 via fd00:0:0:10::1')] == [
        False, False, True, True]
