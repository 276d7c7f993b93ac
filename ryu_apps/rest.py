"""The REST API. It listens on 127.0.0.1:8080 unless `--wsapi-host/--wsapi-port` say otherwise.

GET    /probe/switches         200 [{"dpid": "<16 hex>", "ports": [{"port_no", "name", "hw_addr"}]}]
POST   /probe/switches         dial a bridge's passive listener (ovs-vsctl set-controller BR
                               ptcp:PORT:IP), and redial whenever it drops: {"address": "IP:PORT"}
                               202 {"address", "dialled": true | false (already dialled)}
POST   /probe/probes           start a probe; body:
                                 {"dpid": "<16 hex>" | int, "in_port": int | "<port name>",
                                  "src_mac"?, "src_ip", "dst_mac"?, "dst_ip", "gateway"?,
                                  "kind": "icmp"|"tcp"|"udp"|"arp"|"dhcp",
                                  "dst_port" (tcp, udp: 1..65535),
                                  "payload"? (udp: hex, up to 1024 bytes),
                                  "count": 3, "interval": 0.2, "timeout": 1.0, "wait": false}
                               IPv4 or IPv6 (all addresses of one version); a MAC left out
                               is found by the app (resolve.py); "gateway": the next hop of
                               an off-subnet destination, whose MAC is asked for. What each
                               kind sends and catches: kinds.py. arp asks for dst_ip (no
                               dst_mac, no gateway); dhcp takes no dst_ip, dst_mac or
                               gateway, and src_ip only to find src_mac (IPv4 only)
                               201 {probe} (Location: /probe/probes/<id>), or with
                               "wait": true, 200 {probe} once the probe has ended, or
                               as it is after 120 s (traces run one at a time: an
                               unanswered probe's may wait for other probes')
POST   /probe/batch            start many probes at once, all or none; body:
                                 {"probes": [<probe request without "wait">, ...], "wait": false}
                               201 {"probes": [{probe}, ...]}, or 200 once all have ended
                               (or as they are after 120 s)
GET    /probe/probes           200 [{probe}, ...], newest first
GET    /probe/probes/<id>      200 {probe} | 404
DELETE /probe/probes/<id>      200 {probe}; a running probe is cancelled | 404
POST   /probe/monitors         add a monitor: pairs probed again and again, each in its own
                               slot of the interval; body:
                                 {"name": "[a-z0-9_.-]{1,64}", "interval": 1..3600 s,
                                  "count": 3, "timeout": 1.0, "echo_interval": 0.2,
                                  "kind"?, "dst_port"?, "payload"? (as a probe's, for
                                  every pair; a mesh cannot be dhcp),
                                  "probes": [{"dpid", "in_port", "src_mac"?, "src_ip",
                                              "dst_mac"?, "dst_ip", "gateway"?, "name"?}, ...]
                                  | "mesh": [{"dpid", "in_port", "mac"?, "ip", "name"?}, ...]}
                                 (MACs left out are found on each round, as for a probe)
                                 (a mesh: every ordered pair of its endpoints)
                               201 {monitor} (Location: /probe/monitors/<name>); 409 if the
                               name is taken; 429 if the monitors' echoes would pass half of
                               max_echo_rate
GET    /probe/monitors         200 [{monitor, its pairs without "history"}, ...] by name
GET    /probe/monitors/<name>  200 {monitor} | 404
PUT    /probe/monitors/<name>  replace it (body as POST, "name" optional): 200 {monitor}, or
                               201 if it is new
DELETE /probe/monitors/<name>  200 {monitor}: its rounds cancelled, its series gone | 404
GET    /metrics                Prometheus text format (metrics.py)
GET    /probe/ui/              the status page (ryu_apps/ui/)
GET    /probe/openapi.json     200 this API as an OpenAPI 3.1 document (openapi.py)
GET    /probe/stats            200 {"running", "stored", "switches", "catches", "catch_flows",
                                    "counters": {"probes_started", "probes_done", ...,
                                    "flow_mods", "flow_reads", "flows_lost", "packet_outs",
                                    "packet_ins", "replies", "late_replies",
                                    "tenant_packet_ins", "trace_packet_ins",
                                    "handed_on" (a tenant's packet that a catch took:
                                    one with our mark, or of tcp, udp or dhcp; sent on
                                    to its VM as the pipeline would have),
                                    "unmarked_rounds", "second_rounds", "traces", "resolved", ...}}

probe = {"id", "state": "running"|"done"|"cancelled"|"error",
         "verdict": icmp: "reachable"|"partial"|"unreachable";
                    tcp: "open"|"closed"|"filtered";
                    udp: "open"|"closed"|"filtered"|"open|filtered";
                    arp, dhcp: "reachable"|"unreachable";
                    any: "source-not-answering"|"next-hop-unresolved" (nothing sent) | null,
         "sent", "received", "loss": 0..1 | null, "rtt_ms": {"min", "avg", "max"} | null,
         "replies": [{"seq", "rtt_ms", "answer"? ("open"|"closed"|"filtered"),
                      "icmp"? (the ICMP unreachable that said so), "reply_bytes"? (udp),
                      "mac"? (arp), DHCP offer fields? (dhcp)}],
         "src_port" (tcp, udp: ours), "mac" (arp: the answer's), "offer" (dhcp:
         {"server", "server_mac", "offered", "router", "lease_seconds"} | null),
         "duplicates", "retransmits", "flows_reinstalled",
         "observed_at": "source-port", "mark": "kept"|"lost"|null, "covers": "<words>",
         "path": [step, ...], "broken_at": null | {"direction", "dpid", "table", "flow",
                                                    "reason", "detail"},
         "error": null | "...", "request": {the normalised request}}
step  = {"direction": "request"|"reply", "dpid", "table", "flow": {"table", "priority",
         "cookie", "match"} | null, "in_port", "action", "time_us"}

monitor = {"name", "interval", "count", "timeout", "echo_interval", "probes" | "mesh",
           "created_at": <unix s>, "pairs": [pair, ...]}
pair = {"name", "src", "dst" (mesh: endpoint names; probes: src_ip, dst_ip), "dpid",
        "status": "ok"|"waiting"|"switch-not-connected", "verdict", "loss", "rtt_ms",
        "broken_at", "error" (of the last round), "last_at", "changed_at" (verdict),
        "probe_id" (GET /probe/probes/<id>), "rounds", "late_rounds",
        "last_failure": null | {"at", "verdict", "broken_at", "probe_id"},
        "history": [{"at", "verdict", "loss", "rtt_ms" (avg), "error"}, ...] (last 30)}

broken_at.reason, why a probe that is not reachable broke (see trace.py):
  dropped        dropped by a flow (`flow` names it)
  no-flow        no flow matched in the table
  left-on-port   left on a port and was never seen again on a bridge the app controls
  no-answer      the request left the last bridge that saw it toward a unicast MAC (the
                 next hop, or the destination), and no answer came
  next-hop-unresolved  no ARP or neighbour advertisement for the next hop; `dpid`,
                 `table` and `flow` say where the request was last seen (trace.ArpWalk,
                 trace.NdWalk)
  not-delivered  the reply reached the source bridge and was not delivered to the source
                 VM's port
  to-controller  handed to another controller
  null           the walk could not finish (`detail` says why)

Errors are JSON, {"error": "<field>: <what is wrong>"} (in a batch, "probes[<i>].<field>: ..."):
400 for a bad body or field, 404
for an unknown switch, port, probe or monitor, 405 for a wrong method, 409 for a monitor
name taken (or an arp probe of the same source and target already running: its answers
name no probe), 429 when max_active_probes probes are already running, 503 for a switch
that is connecting (its ports not known yet: try again).
"""
import dataclasses
import ipaddress
import mimetypes
import os
import json
import logging
import re
import time

from ryu.app.wsgi import ControllerBase, route
from ryu.lib import hub
from webob import Response

from ryu_apps.access import audit
from ryu_apps.kinds import KINDS, MAX_PAYLOAD
from ryu_apps.options import Settings
from ryu_apps import metrics
from ryu_apps.monitors import MonitorSpec, Target
from ryu_apps.probes import ProbeError, ProbeRequest, format_dpid, port_of

APP = 'probe_app'
LOG = logging.getLogger(__name__)
DEFAULTS = {'count': 3, 'interval': 0.2, 'timeout': 1.0, 'wait': False}
PAIR_FIELDS = {'dpid', 'in_port', 'src_mac', 'src_ip', 'dst_mac', 'dst_ip'}
KIND_FIELDS = {'kind', 'dst_port', 'payload'}
# A probe may leave the MACs out: the app asks the network (resolve.py); a dhcp probe
# needs no destination, and its source IP only to find the VM's MAC.
REQUIRED = {'dpid', 'in_port'}
FIELDS = PAIR_FIELDS | {'gateway'} | KIND_FIELDS | set(DEFAULTS)
MAC = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')
HEX = re.compile(r'^[0-9a-fA-F]*$')
HEX_DPID = re.compile(r'^(0x)?[0-9a-f]{1,16}$')
OFPP_LOCAL = 0xfffffffe
MONITOR_DEFAULTS = {'count': 3, 'timeout': 1.0, 'echo_interval': 0.2}
MONITOR_FIELDS = {'name', 'interval', 'probes', 'mesh'} | set(MONITOR_DEFAULTS)
MONITOR_NAME = re.compile(r'^[a-z0-9_.-]{1,64}$')
ENDPOINT_FIELDS = {'dpid', 'in_port', 'mac', 'ip', 'name'}
LABEL = re.compile(r'^[\x21-\x7e]{1,64}$')
MIN_MONITOR_INTERVAL, MAX_MONITOR_INTERVAL = 1, 3600
MAX_PAIRS, MAX_MESH = 10000, 100
UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ui')
UI_FILE = re.compile(r'^[a-z0-9_-]+\.(html|js|css|svg|png)$')


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


def _mac(body: dict, name: str) -> str | None:
    value = body[name]
    if value is None:
        return None             # the app finds it (resolve.py)
    if not isinstance(value, str) or not MAC.fullmatch(value.lower()):
        raise _bad('%s: must be a MAC address like 02:00:00:00:00:01' % name)
    if int(value[:2], 16) & 1:
        raise _bad('%s: must be a unicast MAC address' % name)
    return value.lower()


def _ip(body: dict, name: str) -> str:
    """A unicast IPv4 or IPv6 address, normalised."""
    value = body[name]
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or getattr(address, 'scope_id', None):     # fe80::1%eth0
        raise _bad('%s: must be an IP address like 10.0.0.1 or fd00::1' % name)
    if address.is_multicast or address.is_unspecified or address == ipaddress.IPv4Address(
            '255.255.255.255'):
        raise _bad('%s: must be a unicast IP address' % name)
    return str(address)


def _same_version(fields: dict, *names: str) -> None:
    """Every address named has the first one's IP version."""
    first, version = names[0], ipaddress.ip_address(fields[names[0]]).version
    for name in names[1:]:
        if fields[name] is not None and ipaddress.ip_address(fields[name]).version != version:
            raise _bad('%s: must be IPv%d, as %s is' % (name, version, first))


def parse_dpid(value) -> int:
    """A dpid given as an integer or as up to 16 hex digits."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64:
        return value
    if isinstance(value, str) and HEX_DPID.fullmatch(value.lower()):
        return int(value, 16)
    raise _bad('dpid: must be 16 hex digits or an integer')


def _object(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b'null')
    except (ValueError, UnicodeDecodeError, RecursionError):     # too deeply nested
        body = None
    if not isinstance(body, dict):
        raise _bad('body: must be a JSON object')
    return body


def _wait(body: dict) -> bool:
    wait = body.pop('wait', False)
    if not isinstance(wait, bool):
        raise _bad('wait: must be true or false')
    return wait


def _in_port(body: dict) -> int | str:
    in_port = body['in_port']
    if isinstance(in_port, str):
        if not in_port:
            raise _bad('in_port: must be a port number or a port name')
        return in_port
    return _int(body, 'in_port', 1, OFPP_LOCAL)


def _fields(body, allowed: set, required: set) -> dict:
    if not isinstance(body, dict):
        raise _bad('must be a JSON object')
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _bad('%s: unknown field' % ', '.join(unknown))
    missing = sorted(required - set(body))
    if missing:
        raise _bad('%s: missing' % ', '.join(missing))
    return body


def _kind(body: dict) -> dict:
    """What a probe sends (kinds.py): its kind, and the port and payload of tcp and udp."""
    kind = body.get('kind', 'icmp')
    if not isinstance(kind, str) or kind not in KINDS:     # a list or an object is unhashable
        raise _bad('kind: must be one of %s' % ', '.join(KINDS))
    fields = dict(kind=kind, dst_port=None, payload=None)
    if kind in ('tcp', 'udp'):
        if 'dst_port' not in body:
            raise _bad('dst_port: missing (a %s probe needs the port)' % kind)
        fields['dst_port'] = _int(body, 'dst_port', 1, 65535)
    elif 'dst_port' in body:
        raise _bad('dst_port: only for kind tcp or udp')
    if 'payload' in body:
        payload = body['payload']
        if kind != 'udp':
            raise _bad('payload: only for kind udp')
        if not isinstance(payload, str) or not HEX.fullmatch(payload) or len(payload) % 2:
            raise _bad('payload: must be hex digits, two per byte')
        if len(payload) > 2 * MAX_PAYLOAD:
            raise _bad('payload: must be at most %d bytes' % MAX_PAYLOAD)
        fields['payload'] = payload.lower()
    return fields


def _pair(body: dict) -> dict:
    """The addresses of a probe and its kind: dpid, in_port (number or name), both IPs
    (of one version), and the MACs and gateway if given (the app finds the MACs left
    out); what the kind does not use must not be given."""
    kind = _kind(body)
    rules = KINDS[kind['kind']]
    body = dict({'src_mac': None, 'dst_mac': None, 'gateway': None, 'src_ip': None,
                 'dst_ip': None}, **body)
    unused = [name for name, used in (('dst_ip', rules.wants_dst_ip),
                                      ('dst_mac', rules.wants_dst_mac),
                                      ('gateway', rules.wants_dst_mac)) if body[name] is not None
              and not used]
    if unused:
        raise _bad('%s: not used by a %s probe' % (unused[0], kind['kind']))
    needed = ['dst_ip'] if rules.wants_dst_ip else []
    needed += ['src_ip'] if rules.wants_dst_ip or body['src_mac'] is None else []
    missing = [name for name in needed if body[name] is None]
    if missing:
        raise _bad('%s: missing' % ', '.join(missing))
    optional_ip = lambda name: None if body[name] is None else _ip(body, name)
    pair = dict(dpid=parse_dpid(body['dpid']), in_port=_in_port(body),
                src_mac=_mac(body, 'src_mac'), src_ip=optional_ip('src_ip'),
                dst_mac=_mac(body, 'dst_mac'), dst_ip=optional_ip('dst_ip'),
                gateway=optional_ip('gateway'), **kind)
    if kind['kind'] == 'dhcp' and pair['src_ip'] and ':' in pair['src_ip']:
        raise _bad('src_ip: a dhcp probe is IPv4 (DHCPv6 is not supported)')
    if pair['src_ip'] is not None:
        _same_version(pair, 'src_ip', 'dst_ip', 'gateway')
    return pair


def _request(body: dict, bridges: dict, settings: Settings) -> ProbeRequest:
    """One probe's fields, validated and normalised, its port resolved (400, 404 or 503)."""
    body = dict(DEFAULTS, **_fields(body, FIELDS, REQUIRED))
    fields = dict(_pair(body), count=_int(body, 'count', 1, settings.max_count),
                  interval=_seconds(body, 'interval', settings.max_timeout),
                  timeout=_seconds(body, 'timeout', settings.max_timeout))
    fields['in_port'] = port_of(bridges, fields['dpid'], fields['in_port']).port_no
    return ProbeRequest(**fields)


def parse_probe_request(raw: bytes, bridges: dict, settings: Settings) -> tuple[ProbeRequest, bool]:
    """A validated request and its `wait` flag; ProbeError (400, 404 or 503) otherwise."""
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


def _each(items: list, name: str, parse) -> list:
    """parse(item) for each item, an error naming its place ("probes[3].dpid: ...")."""
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(parse(item))
        except ProbeError as error:
            raise ProbeError(error.status, '%s[%d].%s' % (name, i, error)) from None
    return parsed


def _label(body: dict, name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not LABEL.fullmatch(value):
        raise _bad('%s: must be 1 to 64 printable characters' % name)
    return value


def _listed(body: dict, kind: dict) -> Target:
    """One of a monitor's probes; `kind`: the monitor's kind fields."""
    pair = _pair(dict(_fields(body, PAIR_FIELDS | {'gateway', 'name'}, REQUIRED), **kind))
    src, dst = pair['src_ip'] or pair['src_mac'], pair['dst_ip'] or pair['kind']
    return Target(name=_label(body, 'name', '%s->%s' % (src, dst)), src=src, dst=dst, **pair)


def _endpoint(body: dict) -> dict:
    body = dict({'mac': None},
                **_fields(body, ENDPOINT_FIELDS, ENDPOINT_FIELDS - {'name', 'mac'}))
    return dict(dpid=parse_dpid(body['dpid']), in_port=_in_port(body),
                mac=_mac(body, 'mac'),
                ip=_ip(body, 'ip'), name=_label(body, 'name', body['ip']))


def _mesh(endpoints: list[dict], kind: dict) -> list[Target]:
    wants_mac = KINDS[kind['kind']].wants_dst_mac
    return [Target(name='%s->%s' % (a['name'], b['name']), src=a['name'], dst=b['name'],
                   dpid=a['dpid'], in_port=a['in_port'], src_mac=a['mac'], src_ip=a['ip'],
                   dst_mac=b['mac'] if wants_mac else None, dst_ip=b['ip'], **kind)
            for a in endpoints for b in endpoints if a is not b]


def parse_monitor(body, settings: Settings, bridges: dict | None,
                  name: str | None = None) -> MonitorSpec:
    """A monitor definition (POST or PUT /probe/monitors, or one kept in the file).
    With `bridges`, every switch and port must be there now (404); a kept monitor waits
    for them. `name`: the one in the URL of a PUT."""
    if not isinstance(body, dict):
        raise _bad('body: must be a JSON object')
    body = dict(MONITOR_DEFAULTS, **body)
    if name is not None:
        body.setdefault('name', name)
        if body['name'] != name:
            raise _bad('name: must be %s, as in the URL' % name)
    _fields(body, MONITOR_FIELDS | KIND_FIELDS, {'name', 'interval'})
    if not isinstance(body['name'], str) or not MONITOR_NAME.fullmatch(body['name']):
        raise _bad('name: must be 1 to 64 of a-z, 0-9, "_", "." and "-"')
    interval = body['interval']
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (
            MIN_MONITOR_INTERVAL <= interval <= MAX_MONITOR_INTERVAL):
        raise _bad('interval: must be %g to %g seconds' % (MIN_MONITOR_INTERVAL,
                                                            MAX_MONITOR_INTERVAL))
    count = _int(body, 'count', 1, settings.max_count)
    timeout = _seconds(body, 'timeout', settings.max_timeout)
    echo_interval = _seconds(body, 'echo_interval', settings.max_timeout)
    length = (count - 1) * echo_interval + timeout
    if length >= interval:
        raise _bad('interval: must be longer than a round, (count - 1) * echo_interval + '
                   'timeout = %g s' % length)
    probe_kind = _kind(body)
    given = {k: v for k, v in probe_kind.items() if v is not None}
    kinds = [kind for kind in ('probes', 'mesh') if kind in body]
    if len(kinds) != 1:
        raise _bad('probes: give either probes or mesh')
    kind, items = kinds[0], body[kinds[0]]
    if kind == 'mesh' and not KINDS[probe_kind['kind']].wants_dst_ip:
        raise _bad('kind: a mesh cannot be of kind %s (it has no destination)'
                   % probe_kind['kind'])
    low, high = (1, MAX_PAIRS) if kind == 'probes' else (2, MAX_MESH)
    if not isinstance(items, list) or not low <= len(items) <= high:
        raise _bad('%s: must be a list of %d to %d' % (kind, low, high))
    if kind == 'probes':
        targets = _each(items, kind, lambda item: _listed(item, given))
        normalised = [dict(dataclasses.asdict(t), dpid=format_dpid(t.dpid)) for t in targets]
        for entry in normalised:
            for name in ['src', 'dst'] + sorted(KIND_FIELDS):
                del entry[name]
    else:
        endpoints = _each(items, kind, _endpoint)
        version = ipaddress.ip_address(endpoints[0]['ip']).version
        for i, endpoint in enumerate(endpoints):
            if ipaddress.ip_address(endpoint['ip']).version != version:
                raise _bad('mesh[%d].ip: must be IPv%d, as mesh[0].ip is' % (i, version))
        names = [e['name'] for e in endpoints]
        if len(set(names)) != len(names):
            raise _bad('mesh: endpoint names must be unique')
        targets = _mesh(endpoints, probe_kind)
        normalised = [dict(e, dpid=format_dpid(e['dpid'])) for e in endpoints]
    seen = set()
    for i, target in enumerate(targets):
        if (target.src, target.dst) in seen:
            raise _bad('%s[%d]: the pair %s->%s is given twice' % (kind, i, target.src,
                                                                   target.dst))
        seen.add((target.src, target.dst))
    if bridges is not None:
        checked = set()
        for i, target in enumerate(targets):
            if (target.dpid, target.in_port) not in checked:
                checked.add((target.dpid, target.in_port))
                try:
                    port_of(bridges, target.dpid, target.in_port)
                except ProbeError as error:
                    where = i if kind == 'probes' else names.index(target.src)
                    raise ProbeError(error.status, '%s[%d].%s' % (kind, where, error)) from None
    definition = {'name': body['name'], 'interval': interval, 'count': count,
                  'timeout': timeout, 'echo_interval': echo_interval, **given,
                  kind: normalised}
    return MonitorSpec(name=body['name'], interval=float(interval), count=count,
                       timeout=timeout, echo_interval=echo_interval, targets=tuple(targets),
                       definition=definition)


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


def _described(probe) -> str:
    """A probe in one line of the audit log."""
    r = probe.request
    return '%s %s%s from %s port %d %s -> %s, count %d' % (
        probe.id, r.kind, '/%d' % r.dst_port if r.dst_port else '', format_dpid(r.dpid),
        r.in_port, r.src_ip or r.src_mac, r.dst_ip or '-', r.count)


def _monitor_described(spec: MonitorSpec) -> str:
    return '%s: %d pairs, %s every %g s' % (spec.name, len(spec.targets),
                                            spec.definition.get('kind', 'icmp'), spec.interval)


def _json(body, status: int = 200, **headers) -> Response:
    response = Response(status=status, content_type='application/json', charset='utf-8',
                        body=json.dumps(body).encode())
    response.headers.update(headers)
    return response


def _error(status: int, message: str, **headers) -> Response:
    return _json({'error': message}, status, **headers)


def _methods(*allowed: str, open_: bool = False):
    """Answer 405 (with Allow) for any other method; ProbeError becomes its JSON error.
    Before the handler, access.py decides whether the caller may (`open_`: the status
    page's own files, which hold no data: anyone); `req.who` is the caller then."""
    def decorate(handler):
        def wrapper(self, req, **kwargs):
            if not open_:
                refused = _refused(self.app.access, req)
                if refused is not None:
                    return refused
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
        wrapper.methods = allowed       # for the OpenAPI document's test
        return wrapper
    return decorate


def _refused(access, req) -> Response | None:
    """The refusal of a request (401, 403, 413, 429), or None; sets `req.who`."""
    length = req.content_length
    if length is None and req.method in ('POST', 'PUT'):    # chunked: read at most the cap
        req.body = req.body_file.read(access.max_body + 1)
        length = len(req.body)
    req.who, refusal = access.check(req.method, req.path, req.headers.get('Authorization'),
                                    req.remote_addr or '-', length, time.monotonic())
    return None if refusal is None else _error(refusal[0], refusal[1], **refusal[2])


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
            audit(req.who, 'dial', '%s:%d' % (host, port))
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
        audit(req.who, 'probe', _described(probe))
        if wait:
            self.app.wait_probes([probe])
            return _json(probe.to_json())
        return _json(probe.to_json(), 201, Location='/probe/probes/' + probe.id)

    @route('probe', '/probe/batch')
    @_methods('POST')
    def batch(self, req):
        requests, wait = parse_batch(req.body, self.app.prober.bridges, self.app.settings)
        probes = self.app.start_probes(requests)
        audit(req.who, 'batch', '%d probes: %s' % (len(probes), ', '.join(
            _described(p) for p in probes[:5]) + (', ...' if len(probes) > 5 else '')))
        if wait:
            self.app.wait_probes(probes)
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
                      'counters': dict(sorted({**dict.fromkeys(metrics.COUNTERS, 0),
                                               **prober.counters}.items()))})

    @route('probe', '/probe/probes/{probe_id}')
    @_methods('GET', 'DELETE')
    def probe(self, req, probe_id):
        if req.method == 'DELETE':
            probe = self.app.cancel_probe(probe_id)
            if probe is not None:
                audit(req.who, 'cancel', 'probe %s' % probe_id)
        else:
            probe = self.app.prober.get(probe_id) or self.app.monitors.probe(probe_id)
        if probe is None:
            return _error(404, 'probe %s not found' % probe_id)
        return _json(probe.to_json())

    @route('probe', '/probe/monitors')
    @_methods('GET', 'POST')
    def monitors(self, req):
        monitors = self.app.monitors
        if req.method == 'GET':
            return _json([monitors.to_json(m, history=False)
                          for _, m in sorted(monitors.monitors.items())])
        spec = parse_monitor(_object(req.body), self.app.settings, self.app.prober.bridges)
        monitor = self.app.add_monitor(spec)
        audit(req.who, 'monitor add', _monitor_described(spec))
        return _json(monitors.to_json(monitor), 201, Location='/probe/monitors/' + spec.name)

    @route('probe', '/probe/monitors/{name}')
    @_methods('GET', 'PUT', 'DELETE')
    def monitor(self, req, name):
        monitors = self.app.monitors
        if req.method == 'PUT':
            spec = parse_monitor(_object(req.body), self.app.settings, self.app.prober.bridges,
                                 name)
            new = name not in monitors.monitors
            monitor = self.app.add_monitor(spec, replace=True)
            audit(req.who, 'monitor put', _monitor_described(spec))
            return _json(monitors.to_json(monitor), 201 if new else 200)
        if req.method == 'DELETE':
            monitor = self.app.remove_monitor(name)
            if monitor is not None:
                audit(req.who, 'monitor delete', name)
        else:
            monitor = monitors.get(name)
        if monitor is None:
            return _error(404, 'monitor %s not found' % name)
        return _json(monitors.to_json(monitor))

    @route('probe', '/probe/openapi.json')
    @_methods('GET')
    def openapi(self, req):
        from ryu_apps import openapi    # here: it reads this module's limits
        return _json(openapi.document(self.app.settings))

    @route('metrics', '/metrics')
    @_methods('GET')
    def metrics(self, req):
        return Response(status=200, content_type=metrics.CONTENT_TYPE, charset='utf-8',
                        body=metrics.exposition(self.app.prober, self.app.monitors,
                                                pause=lambda: hub.sleep(0)))

    @route('ui', '/probe/ui')
    @_methods('GET', open_=True)
    def ui_root(self, req):
        return Response(status=301, location='/probe/ui/')

    @route('ui', '/probe/ui/')
    @_methods('GET', open_=True)
    def ui_index(self, req):
        return self._ui_file('index.html')

    # Routes wraps the requirement in its own anchors: this one must have none.
    @route('ui', '/probe/ui/{file}', requirements={'file': r'[a-z0-9_-]+\.[a-z]+'})
    @_methods('GET', open_=True)
    def ui(self, req, file):
        return self._ui_file(file)

    @staticmethod
    def _ui_file(name: str) -> Response:
        path = os.path.join(UI_DIR, name)
        if not UI_FILE.match(name) or not os.path.isfile(path):
            return _error(404, 'no such file %s' % name)
        with open(path, 'rb') as f:
            body = f.read()
        kind = mimetypes.guess_type(name)[0] or 'application/octet-stream'
        return Response(status=200, content_type=kind, body=body,
                        charset='utf-8' if kind.startswith('text/') or kind.endswith(
                            'javascript') else None, cache_control='no-cache')
