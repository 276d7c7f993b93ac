"""The production setup on real OVS: the REST API over HTTPS with tokens (an admin one and
a read-only one), OpenFlow over TLS with client certificates both ways. The probe's
verdict is checked against the tenant's ping; what the API refuses, and the audit log,
against the app's own log."""
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from test_topologies import assert_gone
from topologies import engine
from topologies.controller import ProbeController
from topologies.lab import missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or '')
ADMIN, READER = 'admin-4f1c9e0b7d2a', 'reader-9a8b7c6d5e4f'


def certificates(tmp) -> dict:
    """A CA, and a certificate it signed for the app (REST and OpenFlow, 127.0.0.1) and one
    for the switches."""
    def openssl(*args):
        subprocess.run(['openssl', *args], check=True, capture_output=True, cwd=tmp)
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out',
            'ca.pem', '-days', '2', '-subj', '/CN=ryu-probe test CA')
    with open(os.path.join(tmp, 'san.cnf'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1\n')
    for name in ('app', 'switch'):
        openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', name + '.key', '-out',
                name + '.csr', '-subj', '/CN=' + name)
        openssl('x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
                '-CAcreateserial', '-out', name + '.pem', '-days', '2', '-extfile', 'san.cnf')
    return {n: os.path.join(tmp, n) for n in ('ca.pem', 'app.key', 'app.pem', 'switch.key',
                                               'switch.pem')}


@pytest.fixture
def secure(tmp_path):
    files = certificates(str(tmp_path))
    tokens, readers = tmp_path / 'tokens', tmp_path / 'readers'
    tokens.write_text('ops %s\n' % ADMIN)
    readers.write_text('dashboard %s\n' % READER)
    config = ('[probe]\napi_token_file = %s\napi_readonly_token_file = %s\n'
              'api_cert = %s\napi_key = %s\n' % (tokens, readers, files['app.pem'],
                                                  files['app.key']))
    app = ProbeController(config=config, token=ADMIN, cafile=files['ca.pem'],
                          of_tls=(files['app.key'], files['app.pem'], files['ca.pem']))
    app.start()
    yield app, files
    app.close()


def status_of(app, method, path, token=None, body=None, https=True) -> int:
    url = (app.url if https else app.url.replace('https:', 'http:')) + path
    req = urllib.request.Request(url, method=method, data=body)
    if token:
        req.add_header('Authorization', 'Bearer ' + token)
    context = ssl.create_default_context(cafile=app.cafile) if https else None
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as res:
            return res.status
    except urllib.error.HTTPError as error:
        return error.code


def test_https_tokens_and_openflow_tls_with_client_certificates(request, secure):
    app, files = secure
    instance = 'zflat'
    request.addfinalizer(lambda: assert_gone(instance))
    # Up with the switches pointed nowhere; then each OVS gets its key, certificate and
    # the CA, and dials the app over TLS: from its namespace's 127.0.0.1:6653, relayed
    # byte for byte (socat, through a unix socket) to the app's OpenFlow TLS port.
    network = engine.up(engine.load('flat'), controller='tcp:127.0.0.1:9', instance=instance)
    for host, bridges in network.state['hosts'].items():
        sock = os.path.join(network.dir, host + '-tls.sock')
        engine.spawn(sock + '.out.pid', ['socat', 'UNIX-LISTEN:%s,fork' % sock,
                                         'TCP:127.0.0.1:%d' % app.of_port])
        network.run(host, ['ip', 'link', 'set', 'lo', 'up'])
        engine.spawn(sock + '.in.pid', ['socat', 'TCP-LISTEN:6653,bind=127.0.0.1,fork,reuseaddr',
                                        'UNIX-CONNECT:' + sock], network.netns(host))
        network.run(host, ['ovs-vsctl', 'set-ssl', files['switch.key'], files['switch.pem'],
                           files['ca.pem']])
        for bridge in bridges:
            network.ovs(host).set_controller(bridge, 'ssl:127.0.0.1:6653')
    app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=30)
    vms = network.vms()
    result = app.probe(**network.body(engine.load('flat').probes[0]))
    assert result['verdict'] == network.ping('vm1', vms['vm2'].ip) == 'reachable', result

    # REST: HTTPS only; a token, of the right kind, for everything but the page's files
    assert status_of(app, 'GET', '/probe/switches') == 401
    assert status_of(app, 'GET', '/probe/switches', token=READER) == 200
    assert status_of(app, 'POST', '/probe/probes', token=READER, body=b'{}') == 403
    assert status_of(app, 'GET', '/probe/ui/') == 200
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        status_of(app, 'GET', '/probe/switches', token=ADMIN, https=False)

    # OpenFlow: a "switch" without a certificate from the CA does not get in
    context = ssl.create_default_context(cafile=files['ca.pem'])
    with socket.create_connection(('127.0.0.1', app.of_port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with context.wrap_socket(raw, server_hostname='127.0.0.1') as tls:
                tls.sendall(b'\x04\x00\x00\x08\x00\x00\x00\x01')     # OFPT_HELLO
                assert tls.recv(8) == b''
    lines = app.log().splitlines()
    assert any(' probe by ops@127.0.0.1: %s icmp from' % result['id'] in l for l in lines)
