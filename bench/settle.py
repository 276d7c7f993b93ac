"""How long a new catch flow needs before it catches: first-echo loss against catch_settle.

A tenant ping keeps the datapath's cached flows for the reply direction warm, which is
when a fresh catch flow can miss a reply (see README, "The settle time"). Prints, for
each catch_settle, how many of N count=1 probes came back unreachable.

    sudo .venv/bin/python -m bench.settle [N]
"""
import subprocess
import sys
import time

from topologies.controller import ProbeController
from topologies.lab import Lab

SETTLES = (0.0, 0.001, 0.002, 0.005)


def main(n: int = 200) -> None:
    with Lab() as lab:
        ovs = lab.ovs('hv')
        bridge = lab.prefix + 'br'
        print('catch_settle  probes  unreachable  retransmits  median_ms')
        for settle in SETTLES:
            app = ProbeController(config='[probe]\ncatch_settle = %s\n' % settle)
            lab.callback(app.close)
            app.start()
            ovs.add_bridge(bridge, dpid=1, controller=app.target)
            vm1 = lab.vm(ovs, bridge, 'vm1-%d' % (settle * 1e4), '10.0.0.1')
            vm2 = lab.vm(ovs, bridge, 'vm2-%d' % (settle * 1e4), '10.0.0.2')
            app.wait_for_switches(1)
            ping = vm1.popen('ping', '-q', '-i', '0.002', vm2.ip, stdout=subprocess.DEVNULL)
            time.sleep(0.5)
            missed, resent, times = 0, 0, []
            for _ in range(n):
                start = time.perf_counter()
                result = app.probe(dpid=1, in_port=vm1.port_no, src_mac=vm1.mac, src_ip=vm1.ip,
                                   dst_mac=vm2.mac, dst_ip=vm2.ip, count=1, timeout=0.3)
                times.append(time.perf_counter() - start)
                missed += result['verdict'] != 'reachable'
                resent += result['retransmits']
            ping.kill()
            ping.wait()
            times.sort()
            print('%12g  %6d  %11d  %11d  %9.2f' % (settle, n, missed, resent, times[n // 2] * 1000))
            app.close()
            ovs.vsctl('del-br', bridge)


if __name__ == '__main__':
    main(*map(int, sys.argv[1:]))
