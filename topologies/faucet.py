"""FAUCET (PyPI `faucet` 1.10, on os-ken, in its own virtualenv `.venv-faucet`) as the
controller of a lab bridge (`Bridge.faucet`), with the probe app as a second controller.

One FAUCET process per bridge, in the root namespace, listening on 127.0.0.1 only: its
OpenFlow and Prometheus ports are free ports there, and the bridge reaches it through a
socat relay like any other controller. Its files (faucet.yaml, written as JSON, which is
YAML, and its logs) live in RUN_DIR/INSTANCE/HOST/faucet-BRIDGE/ and its pidfile is
RUN_DIR/INSTANCE/faucet-HOST-BRIDGE.pid, so `down` kills it and removes them.

* `reload` rewrites faucet.yaml and sends SIGHUP. FAUCET applies a port or ACL change
  warm (it rewrites only the flows concerned) and a dp-level change (routers, VIPs) with
  a cold start;
* `restart` kills it and starts it again with the same config: a cold start too.
A cold start deletes every flow of the bridge in every table, other controllers' too.
"""
import json
import os
import signal
import time
import urllib.request
from dataclasses import dataclass

from topologies.controller import ROOT, free_port, listening
# engine imports this module only inside a method, so the cycle is harmless
from topologies.engine import TopologyError, kill_pidfile, spawn, wait_for

VENV = os.path.join(ROOT, '.venv-faucet')
MANAGER = os.path.join(VENV, 'bin', 'osken-manager')


@dataclass
class Faucet:
    """A FAUCET process of one bridge; what state.json keeps of it."""
    place: str              # HOST/BRIDGE
    dir: str
    pidfile: str
    dpid: int
    of_port: int
    prometheus_port: int

    @classmethod
    def create(cls, run_dir: str, place: str, dpid: int) -> 'Faucet':
        host, bridge = place.split('/')
        path = os.path.join(run_dir, host, 'faucet-' + bridge)
        os.makedirs(path)
        return cls(place, path, os.path.join(run_dir, 'faucet-%s-%s.pid' % (host, bridge)),
                   dpid, free_port(), free_port())

    @property
    def config_path(self) -> str:
        return os.path.join(self.dir, 'faucet.yaml')

    def write(self, config: dict) -> None:
        with open(self.config_path + '.new', 'w') as f:
            json.dump(config, f, indent=1)
        os.replace(self.config_path + '.new', self.config_path)

    def start(self, timeout: float = 30) -> None:
        if not os.path.exists(MANAGER):
            raise TopologyError('FAUCET is not installed (%s): run `make setup`' % MANAGER)
        env = dict(os.environ, FAUCET_CONFIG=self.config_path,
                   FAUCET_LOG=os.path.join(self.dir, 'faucet.log'),
                   FAUCET_EXCEPTION_LOG=os.path.join(self.dir, 'faucet_exception.log'),
                   FAUCET_PROMETHEUS_ADDR='127.0.0.1',
                   FAUCET_PROMETHEUS_PORT=str(self.prometheus_port))
        spawn(self.pidfile, [MANAGER, '--ofp-listen-host', '127.0.0.1',
                             '--ofp-tcp-listen-port', str(self.of_port), 'faucet.faucet'],
              log=os.path.join(self.dir, 'osken-manager.log'), env=env)
        wait_for(lambda: listening(self.of_port) and listening(self.prometheus_port),
                 'FAUCET to listen on %d and %d' % (self.of_port, self.prometheus_port), timeout)

    def stop(self) -> None:
        kill_pidfile(self.pidfile)

    def restart(self, timeout: float = 30) -> None:
        """A cold start: kill it, start it again with the same config, and wait until it
        has programmed the bridge again (it has learned no host yet)."""
        self.stop()
        self.start()
        self.wait_running(timeout)

    def reload(self, config: dict, timeout: float = 30) -> str:
        """Apply a new config with SIGHUP, as an operator would, and wait until it is in
        place; 'warm' or 'cold'. On a cold reload FAUCET drops its OpenFlow connection, and
        reprograms the bridge from scratch when OVS dials back (after a second or two)."""
        before, connections = self.reloads(), self.metric('of_dp_connections_total')
        self.write(config)
        with open(self.pidfile) as f:
            os.kill(int(f.read().split()[0]), signal.SIGHUP)
        wait_for(lambda: self.reloads() != before, 'FAUCET to reload its config', timeout)
        kind = 'warm' if self.reloads()['warm'] > before['warm'] else 'cold'
        if kind == 'cold':
            wait_for(lambda: self.metric('of_dp_connections_total') > connections,
                     'the bridge to reconnect to FAUCET', timeout)
        self.wait_running(timeout)
        return kind

    def reloads(self) -> dict[str, float]:
        return {kind: self.metric('faucet_config_reload_%s_total' % kind)
                for kind in ('warm', 'cold')}

    def wait_running(self, timeout: float = 30) -> None:
        """Until FAUCET says the datapath is up, plus a moment for its FlowMods to land
        (they are sent on FAUCET's own connection, which we cannot barrier)."""
        wait_for(lambda: self.metric('dp_status') == 1, 'FAUCET to program %s' % self.place,
                 timeout)
        time.sleep(0.5)

    def metrics(self) -> dict[str, float]:
        """Every sample FAUCET's Prometheus port shows, summed over its labels."""
        url = 'http://127.0.0.1:%d/metrics' % self.prometheus_port
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith('#'):
                name, value = line.split('{')[0].split()[0], line.rsplit(None, 1)[1]
                samples[name] = samples.get(name, 0.0) + float(value)
        return samples

    def metric(self, name: str) -> float:
        try:
            return self.metrics().get(name, 0.0)
        except OSError:
            return 0.0


def of(network, place: str) -> Faucet:
    """The FAUCET of a bridge (`HOST/BRIDGE`) of a network that is up."""
    return Faucet(**network.state['faucets'][place])
