"""`make bench`: every measurement in one run, on one `scale` topology; a table, and
BENCHMARKS.md with the numbers, the machine, the date and the commit.

    sudo .venv/bin/python -m bench [--quick]

--quick runs every measurement with smaller counts (a smoke test of the script).
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

from bench import measure
from topologies import engine
from topologies.controller import ROOT, ProbeController

# Room for the whole mesh in one batch and a long tenant-impact probe; the echo rate
# limit raised so that throughput measures the app and the switches, not the limit.
CONFIG = ('[probe]\nmax_active_probes = 5000\nmax_count = 10000\nmax_results = 10000\n'
          'max_echo_rate = 20000\n')


def machine() -> str:
    model = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                  if line.startswith('model name')), platform.processor())
    return '%d cores, %s, Linux %s' % (os.cpu_count(), model, platform.release())


def commit() -> str:
    return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or 'unknown'


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m bench')
    parser.add_argument('--quick', action='store_true', help='small counts, for a smoke test')
    parser.add_argument('--out', default=os.path.join(ROOT, 'BENCHMARKS.md'))
    args = parser.parse_args()
    sizes = measure.QUICK if args.quick else measure.FULL
    started = time.monotonic()
    app = ProbeController(config=CONFIG)
    app.start()
    try:
        print('bringing up the scale topology ...', flush=True)
        t0 = time.monotonic()
        network = engine.up(engine.load('scale'), controller=app.target, instance='bench')
        app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=60)
        up_seconds = time.monotonic() - t0
        bench = measure.Bench(app, network, sizes)
        rows = bench.run_all()
    finally:
        engine.down('bench')
        app.close()
    header = ('Measured by `make bench` on %s, %s UTC, commit %s: `scale` topology '
              '(%s, up in %.1f s), whole run %.0f s. The app runs with its defaults but '
              'max_active_probes = 5000, max_count = 10000, max_echo_rate = 20000 (and '
              'catch_linger = 1 for the last row).' % (
                  machine(), datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M'), commit(),
                  bench.shape, up_seconds, time.monotonic() - started))
    table = measure.table(rows)
    print('\n' + header + '\n\n' + table)
    if not args.quick:
        with open(args.out, 'w') as out:
            out.write(measure.report(header, table, bench))
        print('\nwritten to %s' % args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
