"""Dozens of hypervisors on one machine (seed 004): HOSTS hypervisors with VMS VMs each,
every hypervisor its own OVS in its own namespace, joined by an L2 fabric.

Change the size with RYU_PROBE_SCALE_HOSTS / RYU_PROBE_SCALE_VMS (read at import; VM
vmH-V is 10.0.H.V/16, so at most 255 x 254, and fd00::H:V/64). The probes are a
sweep: the first VM to every other VM, all reachable, on IPv4 and on IPv6.
"""
import os

from topologies.model import (Bridge, Host, Iface, Link, Node, Probe, Topology, ipv6, link_down,
                              no_answer, sg_drop)

HOSTS = int(os.environ.get('RYU_PROBE_SCALE_HOSTS', 20))
VMS = int(os.environ.get('RYU_PROBE_SCALE_VMS', 5))


def vm(h: int, v: int) -> str:
    return 'vm%d-%d' % (h, v)


def ip(h: int, v: int) -> str:
    return '10.0.%d.%d' % (h, v)


def ip6(h: int, v: int) -> str:
    return 'fd00::%d:%d' % (h, v)


FIRST, LAST = vm(1, 1), vm(HOSTS, VMS)
SWEEP = [Probe(FIRST, vm(h, v)) for h in range(1, HOSTS + 1) for v in range(1, VMS + 1)
         if vm(h, v) != FIRST]

TOPOLOGY = Topology(
    name='scale',
    description='%d hypervisors x %d VMs, each hypervisor its own OVS, on one L2 fabric '
                '(seed 004).' % (HOSTS, VMS),
    diagram='''
                       fabric/spine  (NORMAL, not probed)
              trunk /        | trunk         \\ trunk
         hv1/br-int     hv2/br-int    ...    hv%(h)d/br-int     each hvN: its own OVS;
          /  ..  \\       /  ..  \\             /  ..  \\         br-int probed, NORMAL
    vm1-1 .. vm1-%(v)d   vm2-1 .. vm2-%(v)d       vm%(h)d-1 .. vm%(h)d-%(v)d    vmH-V: 10.0.H.V/16
                                                                 fd00::H:V/64
''' % {'h': HOSTS, 'v': VMS},
    hosts=[Host('hv%d' % h, [Bridge('br-int', dpid=h)]) for h in range(1, HOSTS + 1)]
          + [Host('fabric', [Bridge('spine', probed=False)])],
    links=[Link('hv%d/br-int' % h, 'fabric/spine') for h in range(1, HOSTS + 1)],
    nodes=[Node(vm(h, v), [Iface('hv%d/br-int' % h, ip(h, v) + '/16', ip6=ip6(h, v) + '/64')])
           for h in range(1, HOSTS + 1) for v in range(1, VMS + 1)],
    probes=SWEEP + ipv6(SWEEP),
    faults={
        'sg-drop': sg_drop(Probe(FIRST, LAST), 'hv%d' % HOSTS, 'br-int', ip(HOSTS, VMS)),
        # nobody has heard from LAST's MAC: the fabric floods the request to every hypervisor
        'link-down': link_down(Probe(FIRST, LAST), no_answer(None)),
    },
    tenant_ping=(vm(1, 2), LAST),
)
