"""The REST API. It listens on 127.0.0.1:8080 unless `--wsapi-host/--wsapi-port` say otherwise.

GET    /probe/switches         200 [{"dpid": "<16 hex>", "ports": [{"port_no", "name", "hw_addr"}]}]
POST   /probe/switches         dial a bridge's passive listener (ovs-vsctl set-controller BR
                               ptcp:PORT:IP), and redial whenever it drops: {"address": "IP:PORT"}
                               202 {"address", "dialled": true | false (already dialled)}
POST   /probe/probes           start a probe; body:
                                 {"dpid": "<16 hex>" | int, "in_port": int | "<port name>",
                                  "src_mac", "src_ip", "dst_mac", "dst_ip",
                                  "count": 3, "interval": 0.2, "timeout": 1.0, "wait": false}
                               201 {probe} (Location: /probe/probes/<id>), or with
                               "wait": true, 200 {probe} once the probe has ended
POST   /probe/batch            start many probes at once, all or none; body:
                                 {"probes": [<probe request without "wait">, ...], "wait": false}
                               201 {"probes": [{probe}, ...]}, or 200 once all have ended
GET    /probe/probes           200 [{probe}, ...], newest first
GET    /probe/probes/<id>      200 {probe} | 404
DELETE /probe/probes/<id>      200 {probe}; a running probe is cancelled | 404
GET    /probe/stats            200 {"running", "stored", "switches", "catches", "catch_flows",
                                    "counters": {"probes_started", "probes_done", ...,
                                    "flow_mods", "flow_reads", "flows_lost", "packet_outs",
                                    "packet_ins", "replies", "late_replies",
                                    "tenant_packet_ins", "trace_packet_ins",
                                    "unmarked_rounds", "traces"}}

probe = {"id", "state": "running"|"done"|"cancelled"|"error",
         "verdict": "reachable"|"unreachable"|"partial"|null,
         "sent", "received", "loss": 0..1 | null, "rtt_ms": {"min", "avg", "max"} | null,
         "replies": [{"seq", "rtt_ms"}], "duplicates", "retransmits", "flows_reinstalled",
         "observed_at": "source-port", "mark": "kept"|"lost"|null, "covers": "<words>",
         "path": [step, ...], "broken_at": null | {"direction", "dpid", "table", "flow",
                                                    "reason", "detail"},
         "error": null | "...", "request": {the normalised request}}
step  = {"direction": "request"|"reply", "dpid", "table", "flow": {"table", "priority",
         "cookie", "match"} | null, "in_port", "action", "time_us"}

broken_at.reason, why a probe that is not reachable broke (see trace.py):
  dropped        dropped by a flow (`flow` names it)
  no-flow        no flow matched in the table
  left-on-port   left on a port and was never seen again on a bridge the app controls
  no-answer      the request left the last bridge that saw it toward a unicast MAC (the
                 next hop, or the destination), and no answer came
  not-delivered  the reply reached the source bridge and was not delivered to the source
                 VM's port
  to-controller  handed to another controller
  null           the walk could not finish (`detail` says why)

Errors are JSON, {"error": "<field>: <what is wrong>"} (in a batch, "probes[<i>].<field>: ..."):
400 for a bad body or field, 404
for an unknown switch, port or probe, 405 for a wrong method, 429 when max_active_probes
probes are already running.
"""
import ipaddress
import json
import logging
import re

from ryu.app.wsgi import ControllerBase, route
from webob import Response

from ryu_apps.options import Settings
from ryu_apps.probes import ProbeError, ProbeRequest, format_dpid

APP = 'probe_app'
LOG = logging.getLogger(__name__)
DEFAULTS = {'count': 3, 'interval': 0.2, 'timeout': 1.0, 'wait': False}
FIELDS = {'dpid', 'in_port', 'src_mac', 'src_ip', 'dst_mac', 'dst_ip'} | set(DEFAULTS)
MAC = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')
HEX_DPID = re.compile(r'^(0x)?[0-9a-f]{1,16}$')
OFPP_LOCAL = 0xfffffffe


def _bad(message: str) -> ProbeError:
    return ProbeError(400, message)


def _int(body: dict, name: str, low: int, high: int) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad('%s: must be an integer' % name)
    if not low <= value <= high:
        raise _bad('%s: must be between %d and %d' % (name, low, high))
    return value


def _seconds(body: dict, name: str, high: float) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad('%s: must be a number of seconds' % name)
    if not 0.001 <= value <= high:
        raise _bad('%s: must be between 0.001 and %g seconds' % (name, high))
    return float(value)


def _mac(body: dict, name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not MAC.match(value.lower()):
        raise _bad('%s: must be a MAC address like 02:00:00:00:00:01' % name)
    if int(value[:2], 16) & 1:
        raise _bad('%s: must be a unicast MAC address' % name)
    return value.lower()


def _ipv4(body: dict, name: str) -> str:
    value = body[name]
    try:
        address = ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None:
        raise _bad('%s: must be an IPv4 address like 10.0.0.1' % name)
    if address.is_multicast or address.is_unspecified or address == ipaddress.IPv4Address(
            '255.255.255.255'):
        raise _bad('%s: must be a unicast IPv4 address' % name)
    return str(address)


def parse_dpid(value) -> int:
    """A dpid given as an integer or as up to 16 hex digits."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64:
        return value
    if isinstance(value, str) and HEX_DPID.match(value.lower()):
        return int(value, 16)
    raise _bad('dpid: must be 16 hex digits or an integer')


def _object(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b'null')
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise _bad('body: must be a JSON object')
    return body


def _wait(body: dict) -> bool:
    wait = body.pop('wait', False)
    if not isinstance(wait, bool):
        raise _bad('wait: must be true or false')
    return wait


def _request(body: dict, bridges: dict, settings: Settings) -> ProbeRequest:
    """One probe's fields, validated and normalised, its port resolved (400 or 404)."""
    if not isinstance(body, dict):
        raise _bad('must be a JSON object')
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise _bad('%s: unknown field' % ', '.join(unknown))
    missing = sorted(FIELDS - set(DEFAULTS) - set(body))
    if missing:
        raise _bad('%s: missing' % ', '.join(missing))
    body = dict(DEFAULTS, **body)
    dpid = parse_dpid(body['dpid'])
    in_port = body['in_port']
    if isinstance(in_port, str):
        if not in_port:
            raise _bad('in_port: must be a port number or a port name')
    else:
        in_port = _int(body, 'in_port', 1, OFPP_LOCAL)
    fields = dict(
        src_mac=_mac(body, 'src_mac'), src_ip=_ipv4(body, 'src_ip'),
        dst_mac=_mac(body, 'dst_mac'), dst_ip=_ipv4(body, 'dst_ip'),
        count=_int(body, 'count', 1, settings.max_count),
        interval=_seconds(body, 'interval', settings.max_timeout),
        timeout=_seconds(body, 'timeout', settings.max_timeout))
    bridge = bridges.get(dpid)
    if bridge is None:
        raise ProbeError(404, 'dpid: no connected switch %s' % format_dpid(dpid))
    port = bridge.find_port(in_port)
    if port is None:
        raise ProbeError(404, 'in_port: switch %s has no port %r' % (format_dpid(dpid), in_port))
    return ProbeRequest(dpid=dpid, in_port=port.port_no, **fields)


def parse_probe_request(raw: bytes, bridges: dict, settings: Settings) -> tuple[ProbeRequest, bool]:
    """A validated request and its `wait` flag; ProbeError (400 or 404) otherwise."""
    body = _object(raw)
    wait = _wait(body)
    return _request(body, bridges, settings), wait


def parse_batch(raw: bytes, bridges: dict, settings: Settings) -> tuple[list[ProbeRequest], bool]:
    """{"probes": [request, ...], "wait": bool}, every request validated."""
    body = _object(raw)
    wait = _wait(body)
    unknown = sorted(set(body) - {'probes'})
    if unknown:
        raise _bad('%s: unknown field' % ', '.join(unknown))
    probes = body.get('probes')
    if not isinstance(probes, list) or not 1 <= len(probes) <= settings.max_active_probes:
        raise _bad('probes: must be a list of 1 to %d probe requests'
                   % settings.max_active_probes)
    requests = []
    for i, item in enumerate(probes):
        try:
            requests.append(_request(item, bridges, settings))
        except ProbeError as error:
            raise ProbeError(error.status, 'probes[%d].%s' % (i, error)) from None
    return requests, wait


def parse_address(raw: bytes) -> tuple[str, int]:
    """{"address": "IP:PORT"} -> (IP, PORT)."""
    body = _object(raw)
    unknown = sorted(set(body) - {'address'})
    if unknown:
        raise _bad('%s: unknown field' % ', '.join(unknown))
    value = body.get('address')
    host, _, port = value.rpartition(':') if isinstance(value, str) else ('', '', '')
    try:
        ipaddress.IPv4Address(host)
        port = int(port)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise _bad('address: must be IPv4:PORT, like 127.0.0.1:6654')
    return host, port


def _json(body, status: int = 200, **headers) -> Response:
    response = Response(status=status, content_type='application/json', charset='utf-8',
                        body=json.dumps(body).encode())
    response.headers.update(headers)
    return response


def _error(status: int, message: str, **headers) -> Response:
    return _json({'error': message}, status, **headers)


def _methods(*allowed: str):
    """Answer 405 (with Allow) for any other method; ProbeError becomes its JSON error."""
    def decorate(handler):
        def wrapper(self, req, **kwargs):
            if req.method not in allowed:
                return _error(405, 'method %s not allowed' % req.method,
                              Allow=', '.join(allowed))
            try:
                return handler(self, req, **kwargs)
            except ProbeError as error:
                return _error(error.status, str(error))
            except Exception as error:  # answer in JSON, keep serving, keep the trace
                LOG.exception('%s %s failed', req.method, req.path)
                return _error(500, 'internal error: %s' % error)
        wrapper.__name__ = handler.__name__
        return wrapper
    return decorate


class ProbeController(ControllerBase):
    """Routes requests to the app (passed in as data[APP])."""

    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP]

    @route('probe', '/probe/switches')
    @_methods('GET', 'POST')
    def switches(self, req):
        if req.method == 'POST':
            host, port = parse_address(req.body)
            dialled = self.app.dial(host, port)
            return _json({'address': '%s:%d' % (host, port), 'dialled': dialled}, 202)
        return _json([{'dpid': format_dpid(dpid),
                       'ports': [p.to_json() for p in sorted(
                           bridge.ports.values(), key=lambda p: p.port_no)]}
                      for dpid, bridge in sorted(self.app.prober.bridges.items())])

    @route('probe', '/probe/probes')
    @_methods('GET', 'POST')
    def probes(self, req):
        if req.method == 'GET':
            return _json([p.to_json() for p in self.app.prober.probes()])
        request, wait = parse_probe_request(req.body, self.app.prober.bridges,
                                            self.app.settings)
        probe = self.app.start_probe(request)
        if wait:
            self.app.wait_probe(probe)
            return _json(probe.to_json())
        return _json(probe.to_json(), 201, Location='/probe/probes/' + probe.id)

    @route('probe', '/probe/batch')
    @_methods('POST')
    def batch(self, req):
        requests, wait = parse_batch(req.body, self.app.prober.bridges, self.app.settings)
        probes = self.app.start_probes(requests)
        if wait:
            for probe in probes:
                self.app.wait_probe(probe)
        return _json({'probes': [p.to_json() for p in probes]}, 200 if wait else 201)

    @route('probe', '/probe/stats')
    @_methods('GET')
    def stats(self, req):
        prober = self.app.prober
        return _json({'running': len(prober.running), 'stored': len(prober.finished),
                      'switches': len(prober.bridges),
                      'catches': sum(len(b.catches) for b in prober.bridges.values()),
                      'catch_flows': sum(len(c.shadows) for b in prober.bridges.values()
                                         for c in b.catches.values()),
                      'counters': dict(sorted(prober.counters.items()))})

    @route('probe', '/probe/probes/{probe_id}')
    @_methods('GET', 'DELETE')
    def probe(self, req, probe_id):
        if req.method == 'DELETE':
            probe = self.app.cancel_probe(probe_id)
        else:
            probe = self.app.prober.get(probe_id)
        if probe is None:
            return _error(404, 'probe %s not found' % probe_id)
        return _json(probe.to_json())
