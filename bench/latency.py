"""REST latency of one probe: POST /probe/probes with count=1, wait=true, one after another.

    sudo .venv/bin/python -m bench.latency [N]     (default 100)

The `flat` topology (two VMs on one bridge of a private userspace OVS in its own
namespace), as lab instance `blatency`, and the app with its defaults: every probe but
the first finds the source's catch live (catch_linger). Prints p50/p95/p99 of the wall
time of each REST call and the probe's own RTT, in milliseconds.
"""
import statistics
import sys
import time

from bench.measure import pct
from topologies import engine
from topologies.controller import ProbeController


def flat(app: ProbeController, instance: str) -> tuple:
    """`flat` up as `instance`, its bridge controlled by `app` (which must be started);
    (network, vm1, vm2, a count=1 probe body from vm1 to vm2)."""
    network = engine.up(engine.load('flat'), controller=app.target, instance=instance)
    vms = network.vms()
    vm1, vm2 = vms['vm1'], vms['vm2']
    app.wait_for_switches(vm1.dpid, timeout=30)
    return network, vm1, vm2, dict(dpid=vm1.dpid, in_port=vm1.port_no, src_mac=vm1.mac,
                                   src_ip=vm1.ip, dst_mac=vm2.mac, dst_ip=vm2.ip, count=1,
                                   timeout=1.0)


def main(n: int = 100) -> None:
    app = ProbeController()
    try:
        app.start()
        _, _, _, body = flat(app, 'blatency')
        app.probe(**body)   # warm up ARP caches and MAC learning
        wall, rtt, verdicts = [], [], []
        for _ in range(n):
            start = time.perf_counter()
            result = app.probe(**body)
            wall.append((time.perf_counter() - start) * 1000)
            verdicts.append(result['verdict'])
            if result['rtt_ms']:
                rtt.append(result['rtt_ms']['avg'])
    finally:
        engine.down('blatency')
        app.close()
    print('probes: %d, reachable: %d' % (n, verdicts.count('reachable')))
    print('%-22s %8s %8s %8s %8s' % ('ms', 'p50', 'p95', 'p99', 'mean'))
    for name, values in (('REST call (wait=true)', wall), ('probe RTT', rtt)):
        print('%-22s %8.2f %8.2f %8.2f %8.2f' % (
            name, pct(values, 50), pct(values, 95), pct(values, 99), statistics.mean(values)))


if __name__ == '__main__':
    main(*map(int, sys.argv[1:]))
