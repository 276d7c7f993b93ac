"""REST latency of one probe: POST /probe/probes with count=1, wait=true, one after another.

    sudo .venv/bin/python -m bench.latency [N]     (default 100)

Two VMs on one bridge of a private userspace OVS. Prints p50/p95/p99 of the wall time
of each REST call and the probe's own RTT, in milliseconds.
"""
import statistics
import sys
import time

from bench.measure import pct
from topologies.controller import ProbeController
from topologies.lab import Lab


def two_vms(lab: Lab, ovs, app: ProbeController, suffix: str = '') -> tuple:
    """A bridge of `ovs` controlled by `app` with two VMs; (vm1, vm2, a count=1 probe body)."""
    bridge = lab.prefix + 'br'
    ovs.add_bridge(bridge, dpid=1, controller=app.target)
    vm1, vm2 = (lab.vm(ovs, bridge, 'vm%d%s' % (i, suffix), '10.0.0.%d' % i) for i in (1, 2))
    app.wait_for_switches(1)
    return vm1, vm2, dict(dpid=1, in_port=vm1.port_no, src_mac=vm1.mac, src_ip=vm1.ip,
                          dst_mac=vm2.mac, dst_ip=vm2.ip, count=1, timeout=1.0)


def main(n: int = 100) -> None:
    with Lab() as lab:
        ovs = lab.ovs('hv')
        app = ProbeController()
        lab.callback(app.close)
        app.start()
        _, _, body = two_vms(lab, ovs, app)
        app.probe(**body)   # warm up ARP caches and MAC learning
        wall, rtt, verdicts = [], [], []
        for _ in range(n):
            start = time.perf_counter()
            result = app.probe(**body)
            wall.append((time.perf_counter() - start) * 1000)
            verdicts.append(result['verdict'])
            if result['rtt_ms']:
                rtt.append(result['rtt_ms']['avg'])
        print('probes: %d, reachable: %d' % (n, verdicts.count('reachable')))
        print('%-22s %8s %8s %8s %8s' % ('ms', 'p50', 'p95', 'p99', 'mean'))
        for name, values in (('REST call (wait=true)', wall), ('probe RTT', rtt)):
            print('%-22s %8.2f %8.2f %8.2f %8.2f' % (
                name, pct(values, 50), pct(values, 95), pct(values, 99),
                statistics.mean(values)))


if __name__ == '__main__':
    main(*map(int, sys.argv[1:]))
