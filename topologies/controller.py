"""The probe app as a real `ryu-manager` process, and a small client for its REST API."""
import json
import os
import signal
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request

from topologies.process import Daemon

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, 'ryu_apps', 'probe_app.py')
RYU_MANAGER = os.path.join(os.path.dirname(sys.executable), 'ryu-manager')


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def listening(port: int, host: str = '127.0.0.1') -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


class ProbeController(Daemon):
    """`ryu-manager ryu_apps/probe_app.py` on 127.0.0.1 with its own ports and log file.

    `apps` are more Ryu apps to run in the same process, `args` more ryu-manager options
    (`--ofp-switch-address-list`, ...), `config` the text of a config file (e.g. a
    `[probe]` section). With `listen=False` nobody is expected to dial the OpenFlow port.
    `token` goes with every request (the app's api_token_file); `cafile`: the app serves
    HTTPS (api_cert), and this CA vouches for it."""

    name = 'ryu-manager'

    def __init__(self, apps: tuple[str, ...] = (), args: tuple[str, ...] = (),
                 config: str | None = None, of_port: int | None = None,
                 rest_port: int | None = None, listen: bool = True,
                 token: str | None = None, cafile: str | None = None,
                 of_tls: tuple[str, str, str] | None = None):
        super().__init__('ryu-probe-app.', 'ryu-manager.log')
        self.token, self.cafile = token, cafile
        self.of_tls = of_tls        # OpenFlow over TLS: (key, cert, CA of the switches)
        self.of_port = of_port or free_port()
        self.rest_port = rest_port or free_port()
        self.apps, self.args, self.config, self.listen = list(apps), list(args), config, listen

    @property
    def target(self) -> str:
        """What a bridge's set-controller takes to reach the app."""
        return '%s:127.0.0.1:%d' % ('ssl' if self.of_tls else 'tcp', self.of_port)

    @property
    def url(self) -> str:
        return '%s://127.0.0.1:%d' % ('https' if self.cafile else 'http', self.rest_port)

    def start(self, timeout: float = 20.0) -> 'ProbeController':
        args = [RYU_MANAGER, '--ofp-listen-host', '127.0.0.1',
                '--ofp-tcp-listen-port', str(self.of_port), '--wsapi-port', str(self.rest_port)]
        if self.of_tls:     # then Ryu listens for TLS only, on its SSL port
            key, cert, ca = self.of_tls
            args += ['--ofp-ssl-listen-port', str(self.of_port), '--ctl-privkey', key,
                     '--ctl-cert', cert, '--ca-certs', ca]
        if self.config:
            path = os.path.join(self.dir, 'probe.conf')
            with open(path, 'w') as conf:
                conf.write(self.config)
            args += ['--config-file', path]
        # oslo's parser wants every app together, after the options.
        # APP's own imports (ryu_apps.*) from the same tree as APP, not from whichever
        # checkout the venv has installed in editable mode.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
        self._spawn(args + self.args + [APP] + self.apps, timeout, cwd=ROOT, env=env)
        return self

    def _ready(self) -> bool:
        try:
            self.get('/probe/switches')
        except OSError:
            return False
        # OVS backs off for long if it finds no listener.
        return not self.listen or listening(self.of_port)

    def kill(self) -> None:
        """Die the hard way, as a crashed app would: no cleanup of any kind."""
        self.stop(signal.SIGKILL)

    # --- REST ---------------------------------------------------------------------

    def request(self, method: str, path: str, body=None, raw: bytes | None = None,
                timeout: float = 60.0) -> tuple[int, object]:
        """(status, decoded JSON body), for any status."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if self.token:
            req.add_header('Authorization', 'Bearer ' + self.token)
        context = self.cafile and ssl.create_default_context(cafile=self.cafile)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b'null')

    def get(self, path: str):
        status, body = self.request('GET', path)
        if status != 200:
            raise RuntimeError('GET %s: %s %s' % (path, status, body))
        return body

    def probe(self, **request) -> dict:
        """Run one probe to its end (wait=true) and return it."""
        status, body = self.request('POST', '/probe/probes', dict(request, wait=True))
        if status != 200:
            raise RuntimeError('probe %s: %s %s' % (request, status, body))
        return body

    def wait_for_switches(self, *dpids: int, timeout: float = 15.0) -> None:
        """Until every dpid is connected and has reported its ports."""
        want = {'%016x' % d for d in dpids}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            have = {s['dpid'] for s in self.get('/probe/switches') if s['ports']}
            if want <= have:
                return
            time.sleep(0.05)
        raise RuntimeError('switches %s did not connect; connected: %s' % (sorted(want), have))
