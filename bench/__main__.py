"""`make bench`: every measurement in one run, on one `scale` topology; a table, and
BENCHMARKS.md with the numbers, the machine, the date and the commit.

    sudo .venv/bin/python -m bench [--quick]

--quick runs every measurement with smaller counts (a smoke test of the script); it writes
no BENCHMARKS.md unless --out says where. The soak (bench/soak.py) is not run here; the
block it wrote at the end of BENCHMARKS.md is kept as it was.
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import ryu_apps  # noqa: E402  (the venv's .pth has imported it already, at start-up)

if os.path.dirname(ryu_apps.__path__[0]) != ROOT:
    # That import followed the venv's editable install, i.e. another checkout: measure
    # this tree's code, in this process as in the app's (controller.py sets PYTHONPATH).
    os.execve(sys.executable, [sys.executable, '-m', 'bench'] + sys.argv[1:], dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))))

from bench import measure, settle, soak  # noqa: E402
from ryu_apps.options import Settings  # noqa: E402
from topologies import engine  # noqa: E402
from topologies.controller import RYU_MANAGER, ProbeController  # noqa: E402

OVERRIDES, CONFIG = measure.OVERRIDES, measure.CONFIG


def machine() -> str:
    model = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                  if line.startswith('model name')), platform.processor())
    return '%d cores, %s, Linux %s' % (os.cpu_count(), model, platform.release())


def commit() -> str:
    def git(*args) -> str:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    head = git('rev-parse', '--short', 'HEAD') or 'unknown'
    # BENCHMARKS.md itself is what a run rewrites.
    changed = git('status', '--porcelain', '--', '.', ':!BENCHMARKS.md')
    return head + (' plus uncommitted changes' if changed else '')


def app_tree(app: ProbeController) -> str:
    """Where the running app imports `ryu_apps` from: asked again of its interpreter with
    its environment and working directory."""
    pid = app.proc.pid
    with open('/proc/%d/environ' % pid) as f:
        env = dict(kv.split('=', 1) for kv in f.read().split('\0') if '=' in kv)
    python = os.path.join(os.path.dirname(RYU_MANAGER), 'python')
    return subprocess.run([python, '-c', 'import ryu_apps; print(ryu_apps.__path__[0])'],
                          env=env, cwd=os.readlink('/proc/%d/cwd' % pid), capture_output=True,
                          text=True, check=True).stdout.strip()


def settings() -> str:
    """The header's words for the app's settings: the defaults that matter, our overrides."""
    default = Settings()
    return ('its defaults (catch_linger = %g s, catch_settle = %g ms, resync_interval = %g s, '
            'packet_in_rate = %d/s) but %s' % (
                default.catch_linger, default.catch_settle * 1000, default.resync_interval,
                default.packet_in_rate, ', '.join('%s = %s (default %s)' % (
                    name, value, getattr(default, name)) for name, value in OVERRIDES.items())))


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m bench')
    parser.add_argument('--quick', action='store_true', help='small counts, for a smoke test')
    parser.add_argument('--out', help='default: BENCHMARKS.md, and none with --quick')
    args = parser.parse_args()
    out = args.out or (None if args.quick else os.path.join(ROOT, 'BENCHMARKS.md'))
    load_before = os.getloadavg()[0]
    sizes = measure.QUICK if args.quick else measure.FULL
    started = time.monotonic()
    app = ProbeController(config=CONFIG)
    app.start()
    try:
        tree = app_tree(app)
        print('the app imports ryu_apps from %s' % tree, flush=True)
        if tree != os.path.join(ROOT, 'ryu_apps'):
            raise RuntimeError('the app runs %s, not this tree\'s code' % tree)
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
    print('measuring: settle (the flat topology) ...', flush=True)
    settles = settle.measure(sizes.settle)
    rows += settle.rows(settles)
    # section 9 ran on the scale topology, before section 8's flat one: in order of sections
    rows.sort(key=lambda row: int(row[0].split('.')[0]))
    header = ('Measured by `make bench` on %s, %s UTC, commit %s (the app ran this tree\'s '
              '`ryu_apps/`, checked at start): `scale` topology (%s, up in %.1f s), whole run %.0f s. Sections 1-7 and 9: the app runs with '
              '%s. Section 8: the `flat` topology, the app with catch_linger = 0 and the '
              'catch_settle shown, everything else default. Other engineers ran e2e tests '
              'on this machine at the same time (load average %.1f at the start, %.1f at the '
              'end): compare rows of one run only.' % (
                  machine(), datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M'), commit(),
                  bench.shape, up_seconds, time.monotonic() - started, settings(), load_before,
                  os.getloadavg()[0]))
    table = measure.table(rows)
    print('\n' + header + '\n\n' + table)
    if out:
        # the soak's block (python -m bench.soak, not run here) stays as it was
        previous = open(out).read() if os.path.exists(out) else ''
        with open(out, 'w') as f:
            f.write(soak.carry(previous, measure.report(header, table, bench, settles)))
        print('\nwritten to %s' % out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
