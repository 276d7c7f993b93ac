"""TLS: HTTPS for the REST API (`api_cert`, `api_key`), and a fix for Ryu's OpenFlow TLS.

Ryu 4.34 cannot pass TLS through to its WSGI server: `hub.WSGIServer` inherits
`StreamServer`'s ssl arguments, but they replace its `handle` with a function that wraps
each socket, and `serve_forever` hands `handle` to `eventlet.wsgi.server` as the WSGI
application, so every request would call that function instead of the app. ryu-manager
starts that server with `ryu.app.wsgi.start_service` after it has created the apps, so
the app puts in its place one that wraps the server's listening socket in TLS, as
eventlet serves HTTPS (`eventlet.wrap_ssl(..., server_side=True)`): the port then speaks
HTTPS only.
"""
import logging
import ssl

import eventlet
from ryu.app import wsgi
from ryu.lib import hub

LOG = logging.getLogger(__name__)


def serve_rest_over_tls(certfile: str, keyfile: str) -> None:
    """Make the REST server ryu-manager is about to start speak HTTPS only. The pair is
    loaded now, so a wrong file stops the app at start, not at the first request."""
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    start_plain = wsgi.start_service

    def start_service(app_mgr):
        server = start_plain(app_mgr)
        if server is not None:
            server.server = eventlet.wrap_ssl(server.server, certfile=certfile,
                                              keyfile=keyfile, server_side=True)
        return server

    wsgi.start_service = start_service


def fix_openflow_tls() -> None:
    """Make Ryu 4.34's OpenFlow TLS listener (--ctl-privkey, --ctl-cert, --ca-certs) serve
    more than one connection.

    Its `hub.StreamServer` pops the context, certificate and key out of its ssl arguments
    on the first connection, so every later one is wrapped with none (measured: every
    switch after the first was refused with NO_SHARED_CIPHER, and a port check that
    connects and closes used the first one up). Here the context is built once, and each
    connection wrapped with it; a failed handshake (a peer without a certificate the CA
    signed, say) is logged with the peer's address instead of an uncaught traceback."""
    plain = hub.StreamServer.__init__

    def __init__(self, listen_info, handle=None, backlog=None, spawn='default', **ssl_args):
        plain(self, listen_info, handle, backlog, spawn)
        if not ssl_args:
            return
        context = ssl_args.pop('ssl_ctx')
        context.load_cert_chain(ssl_args.pop('certfile'), ssl_args.pop('keyfile'))
        if 'cert_reqs' in ssl_args:
            context.verify_mode = ssl_args.pop('cert_reqs')
        if 'ca_certs' in ssl_args:
            context.load_verify_locations(ssl_args.pop('ca_certs'))

        def wrap_and_handle(sock, addr):
            try:
                wrapped = context.wrap_socket(sock, server_side=True, **ssl_args)
            except (ssl.SSLError, OSError) as error:
                LOG.warning('OpenFlow TLS handshake with %s:%s failed: %s', addr[0], addr[1],
                            error)
                sock.close()
                return
            handle(wrapped, addr)
        self.handle = wrap_and_handle

    hub.StreamServer.__init__ = __init__
