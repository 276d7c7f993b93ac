"""Lab networks on one machine, on real Open vSwitch (run as root).

    python -m topologies list
    python -m topologies up NAME [--controller tcp:127.0.0.1:6653] [--fault FAULT ...]
    python -m topologies show NAME
    python -m topologies down NAME

NAME is a built-in topology (see `list`) or the path of a .py file defining TOPOLOGY.
Each hypervisor gets its own OVS in its own namespace; probed bridges reach the
controller through a unix socket relayed to --controller, which should be where
`ryu-manager ryu_apps/probe_app.py` listens (default tcp:127.0.0.1:6653).
"""
import argparse
import json
import sys
import time

from topologies import engine


def _instance(name: str) -> str:
    return engine.load(name).name if name.endswith('.py') else name


def cmd_list(args) -> None:
    for name in engine.names():
        topology = engine.load(name)
        print('%-8s %s' % (name, topology.description))


def cmd_up(args) -> None:
    topology = engine.load(args.name)
    start = time.monotonic()
    network = engine.up(topology, controller=args.controller, faults=tuple(args.fault))
    hosts = len(topology.hosts)
    print('%s is up (%.1fs): %d hypervisor%s, %d VMs%s. Next: python -m topologies show %s'
          % (network.instance, time.monotonic() - start, hosts, 's'[:hosts != 1],
             len(network.vms()), ', faults: ' + ', '.join(args.fault) if args.fault else '',
             args.name))


def cmd_down(args) -> None:
    engine.down(_instance(args.name))
    print('%s is down' % args.name)


def cmd_show(args) -> None:
    topology = engine.load(args.name)
    print('%s: %s\n%s' % (topology.name, topology.description, topology.diagram))
    network = engine.Network.load(_instance(args.name))
    print('controller: %s   faults: %s\n' % (network.state['controller'],
                                               ', '.join(network.state['faults']) or 'none'))
    if network.switch_addresses():
        print('passive bridges; the app dials them: ryu-manager --ofp-switch-address-list %s '
              'ryu_apps/probe_app.py\n' % ','.join(network.switch_addresses()))
    print('%-8s %-6s %-8s %-16s %-9s %-17s %s' % (
        'vm', 'host', 'bridge', 'dpid', 'port', 'mac', 'ip'))
    for vm in network.vms().values():
        print('%-8s %-6s %-8s %016x %-9s %-17s %s' % (
            vm.name, vm.host, vm.bridge, vm.dpid, '%d %s' % (vm.port_no, vm.port_name),
            vm.mac, vm.ip))
    print('\nprobes to try (POST /probe/probes), with the verdict each must get:')
    for probe in topology.probes:
        print('  %s -> %s: %s' % (probe.src, probe.dst, probe.expect))
        print('    ' + json.dumps(network.body(probe, count=3, wait=True)))
    if topology.faults:
        print('\nfaults (up --fault NAME), each turning its probe unreachable:')
        for name, fault in sorted(topology.faults.items()):
            print('  %-14s %s: %s -> %s' % (name, fault.description, fault.probe.src,
                                            fault.probe.dst))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m topologies', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='the built-in topologies').set_defaults(func=cmd_list)
    up = sub.add_parser('up', help='bring a topology up (idempotent)')
    up.add_argument('name')
    up.add_argument('--controller', default=engine.DEFAULT_CONTROLLER,
                    help='tcp:IP:PORT of the probe app (default %(default)s)')
    up.add_argument('--fault', action='append', default=[], help='break something on purpose')
    up.set_defaults(func=cmd_up)
    for name, func, text in (('down', cmd_down, 'remove everything of a topology'),
                             ('show', cmd_show, 'VMs, probes and expected verdicts')):
        command = sub.add_parser(name, help=text)
        command.add_argument('name')
        command.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except engine.TopologyError as error:
        print('error: %s' % error, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
