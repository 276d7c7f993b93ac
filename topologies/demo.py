"""`make demo`: one reachable and one unreachable probe on a small private OVS network.

    vm1 10.0.0.1 (VLAN 10) --+
    vm2 10.0.0.2 (VLAN 10) --+-- bridge (userspace OVS, NORMAL) -- probe app (127.0.0.1)
    vm3 10.0.0.3 (VLAN 11) --+

Everything (OVS daemons, namespaces, veths, the app) is removed on exit, even on error.
"""
import json
import sys

from topologies.controller import ProbeController
from topologies.lab import Lab, missing_requirements

DPID = 0xd0


def curl(app: ProbeController, method: str, path: str, body: dict | None = None) -> str:
    line = 'curl -s'
    if method != 'GET':
        line += ' -X %s' % method
    if body is not None:
        line += " -d '%s'" % json.dumps(body)
    return '%s %s%s' % (line, app.url, path)


def show_probe(result: dict) -> None:
    request = result['request']
    print('  %s -> %s: %s, %d/%d replies, loss %.0f%%' % (
        request['src_ip'], request['dst_ip'], result['verdict'].upper(), result['received'],
        result['sent'], 100 * result['loss']))
    if result['rtt_ms']:
        print('  rtt min/avg/max = %(min).3f/%(avg).3f/%(max).3f ms' % result['rtt_ms'])
    for step in result['path']:
        print('  %-7s table %-3s %s' % (step['direction'], step['table'], step['action']))
    broken = result['broken_at']
    if broken:
        print('  broken at: %(direction)s, table %(table)s, %(reason)s (%(detail)s)' % broken)


def main() -> int:
    reason = missing_requirements()
    if reason:
        print('make demo ' + reason, file=sys.stderr)
        return 1
    with Lab() as lab:
        print('== A private Open vSwitch (userspace datapath) with three VMs')
        ovs = lab.ovs('demo')
        app = ProbeController()
        lab.callback(app.close)
        app.start()
        bridge = lab.prefix + 'br'
        ovs.add_bridge(bridge, dpid=DPID, controller=app.target)
        vms = [lab.vm(ovs, bridge, 'vm%d' % i, '10.0.0.%d' % i, tag=tag)
               for i, tag in ((1, 10), (2, 10), (3, 11))]
        for vm, tag in zip(vms, (10, 10, 11)):
            print('  %s  %-9s %s  port %d (%s)  VLAN %d' % (
                vm.name, vm.ip, vm.mac, vm.port_no, vm.host_if, tag))
        print('  app: ryu-manager ryu_apps/probe_app.py, REST on %s' % app.url)
        app.wait_for_switches(DPID)

        print('\n== The switches the app controls')
        print('$ ' + curl(app, 'GET', '/probe/switches'))
        for switch in app.get('/probe/switches'):
            print('  dpid %s: %s' % (switch['dpid'], ', '.join(
                '%d=%s' % (p['port_no'], p['name']) for p in switch['ports'])))

        vm1, vm2, vm3 = vms
        for title, dst in (('same VLAN: expect reachable', vm2),
                           ('across VLANs: expect unreachable', vm3)):
            body = {'dpid': '%016x' % DPID, 'in_port': vm1.host_if, 'src_mac': vm1.mac,
                    'src_ip': vm1.ip, 'dst_mac': dst.mac, 'dst_ip': dst.ip,
                    'count': 3, 'interval': 0.2, 'timeout': 1.0, 'wait': True}
            print('\n== Probe vm1 -> %s (%s)' % (dst.name, title))
            print('$ ' + curl(app, 'POST', '/probe/probes', body))
            result = app.probe(**body)
            if dst is vm2:
                print(json.dumps(result))
            show_probe(result)

        ours = [f for f in ovs.dump_flows(bridge) if 'cookie=0x0,' not in f]
        print('\n== Our flows after the probes (they match marked replies only, and go after '
              'catch_linger = 10 s idle):')
        print('\n'.join('  ' + flow for flow in ours))
        print('\n== Tearing down')
    print('done: no namespaces, bridges or processes left')
    return 0


if __name__ == '__main__':
    sys.exit(main())
