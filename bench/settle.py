"""How long a new catch flow needs before it catches: first-echo loss against catch_settle.

A tenant ping keeps the datapath's cached flows for the reply direction warm, which is
when a fresh catch flow can miss a reply (see README, "The settle time"). Prints, for
each catch_settle, how many of N count=1 probes came back unreachable.

    sudo .venv/bin/python -m bench.settle [N]
"""
import subprocess
import sys
import time

from bench.latency import two_vms
from topologies.controller import ProbeController
from topologies.lab import Lab

SETTLES = (0.0, 0.001, 0.002, 0.005)


def main(n: int = 200) -> None:
    with Lab() as lab:
        ovs = lab.ovs('hv')
        print('catch_settle  probes  unreachable  retransmits  median_ms')
        for settle in SETTLES:
            app = ProbeController(config='[probe]\ncatch_settle = %s\n' % settle)
            lab.callback(app.close)
            app.start()
            vm1, vm2, body = two_vms(lab, ovs, app, suffix='-%d' % (settle * 1e4))
            ping = vm1.popen('ping', '-q', '-i', '0.002', vm2.ip, stdout=subprocess.DEVNULL)
            time.sleep(0.5)
            missed, resent, times = 0, 0, []
            for _ in range(n):
                start = time.perf_counter()
                result = app.probe(**dict(body, timeout=0.3))
                times.append(time.perf_counter() - start)
                missed += result['verdict'] != 'reachable'
                resent += result['retransmits']
            ping.kill()
            ping.wait()
            times.sort()
            print('%12g  %6d  %11d  %11d  %9.2f' % (settle, n, missed, resent, times[n // 2] * 1000))
            app.close()
            ovs.vsctl('del-br', lab.prefix + 'br')


if __name__ == '__main__':
    main(*map(int, sys.argv[1:]))
