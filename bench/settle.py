"""How long a new catch needs before it catches: first replies missed against catch_settle.

A tenant ping keeps the datapath's cached flow for the reply direction warm. A marked
reply that reaches the datapath before the new shadow flow is live takes that cached
flow: it is delivered to the source VM (the tenant) and the app misses it, so the app
sends the echo again (see README, "The settle time"). With catch_linger = 0 every probe
lays a new catch. For each catch_settle, N count=1 probes; counted are the probes whose
reply reached the tenant (tcpdump in the source VM, ICMP id = the dye), the probes that
retransmitted, those that read unreachable, and echoes sent against PacketIns taken (a
reply to a retransmitted echo that comes after its probe ended finds no catch).

    sudo .venv/bin/python -m bench.settle [N]
"""
import re
import signal
import statistics
import subprocess
import sys
import time

from bench.latency import flat
from topologies import engine
from topologies.controller import ProbeController

INSTANCE = 'bsettle'
SETTLES = (0.0, 0.002, 0.005, 0.01, 0.02)
DEFAULT = 0.01
# Echo replies with the probe's ICMP identifier (the dye), as the source VM gets them.
DELIVERED = 'icmp[0] = 0 and icmp[4:2] = 111'


def capture(netns: str) -> subprocess.Popen:
    """tcpdump on the VM's eth0 for replies to probes, once it is listening."""
    dump = subprocess.Popen(['ip', 'netns', 'exec', netns, 'tcpdump', '-l', '-n', '-i', 'eth0',
                             '--immediate-mode', DELIVERED],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in dump.stderr:
        if 'listening on' in line:
            return dump
    raise RuntimeError('tcpdump in %s did not start' % netns)


def one(app: ProbeController, network, settle: float, n: int) -> dict:
    """N probes, each from a new catch, from `app` restarted with catch_settle = `settle`."""
    app.stop()
    app.config = '[probe]\ncatch_settle = %s\ncatch_linger = 0\n' % settle
    app.start()
    vms = network.vms()
    vm1, vm2 = vms['vm1'], vms['vm2']
    app.wait_for_switches(vm1.dpid, timeout=30)
    body = dict(dpid=vm1.dpid, in_port=vm1.port_no, src_mac=vm1.mac, src_ip=vm1.ip,
                dst_mac=vm2.mac, dst_ip=vm2.ip, count=1, timeout=0.3)
    ping = subprocess.Popen(['ip', 'netns', 'exec', network.netns('vm1'), 'ping', '-q', '-i',
                             '0.002', vm2.ip], stdout=subprocess.DEVNULL)
    dump = None
    try:
        time.sleep(0.5)
        dump = capture(network.netns('vm1'))
        before = app.get('/probe/stats')['counters']
        resent, unreachable, times = 0, 0, []
        for _ in range(n):
            start = time.perf_counter()
            result = app.probe(**body)
            times.append((time.perf_counter() - start) * 1000)
            unreachable += result['verdict'] != 'reachable'
            resent += result['retransmits'] > 0
        time.sleep(0.1)
        after = app.get('/probe/stats')['counters']
        dump.send_signal(signal.SIGINT)
        delivered = re.findall(r'echo reply, id 111, seq (\d+)', dump.communicate()[0])
    finally:
        for proc in filter(None, (ping, dump)):
            proc.kill()
            proc.wait()
    # An echo and its retransmissions share a sequence number: one per missed first reply.
    return {'settle': settle, 'probes': n, 'missed': len(set(delivered)),
            'delivered': len(delivered), 'retransmitted': resent, 'unreachable': unreachable,
            'median_ms': statistics.median(times),
            'sent': after['packet_outs'] - before.get('packet_outs', 0),
            'caught': after.get('packet_ins', 0) - before.get('packet_ins', 0)}


def measure(n: int = 200) -> list[dict]:
    """`one` for every catch_settle of SETTLES, on the `flat` topology (lab instance
    `bsettle`), each from an app on the same OpenFlow port."""
    app = ProbeController()
    try:
        app.start()
        network = flat(app, INSTANCE)[0]
        return [one(app, network, settle, n) for settle in SETTLES]
    finally:
        engine.down(INSTANCE)
        app.close()


def rows(results: list[dict]) -> list[tuple]:
    """Table rows for `python -m bench`."""
    return [('8. settle time (new catch each probe, tenant ping -i 0.002)',
             'catch_settle = %g ms%s, %d count=1 probes: first replies missed (delivered to '
             'the tenant) / probes retransmitted / unreachable; echoes sent / PacketIns taken; '
             'REST median ms' % (r['settle'] * 1000, ' (default)' if r['settle'] == DEFAULT
                                 else '', r['probes']),
             '%d / %d / %d; %d / %d; %.2f' % (r['missed'], r['retransmitted'], r['unreachable'],
                                             r['sent'], r['caught'], r['median_ms']),
             '0 unreachable')
            for r in results]


def main(n: int = 200) -> None:
    print('catch_settle  probes  missed  delivered  retransmitted  unreachable  sent  caught'
          '  median_ms')
    for r in measure(n):
        print('%12g  %6d  %6d  %9d  %13d  %11d  %4d  %6d  %9.2f' % (
            r['settle'], r['probes'], r['missed'], r['delivered'], r['retransmitted'],
            r['unreachable'], r['sent'], r['caught'], r['median_ms']))


if __name__ == '__main__':
    main(*map(int, sys.argv[1:]))
