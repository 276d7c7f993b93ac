"""`ryu-probe`, the command line of the probe app.

It talks to the app's REST API (see ryu_apps/rest.py) and to nothing else: each command
makes a few calls through `http` and prints their JSON through a formatter. The
formatters (`format_*`) are pure functions of the JSON, so tests feed them JSON.
Exit status as ping's: 0 on success (reachable; a tcp or udp port open), 1 not, 2 on
error (KINDS says which verdicts are a success).
"""
import argparse
import concurrent.futures
import ipaddress
import json
import os
import re
import shutil
import sys
import time
import typing
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = 'http://127.0.0.1:8080'
GET_TIMEOUT = 30.0
# Sent with every request: the Authorization header of --token-file or $RYU_PROBE_TOKEN.
HEADERS = {'Content-Type': 'application/json'}
WAIT_SLACK = 60.0       # beyond a probe's own length, for its trace and a busy app
CHUNK = 50              # pairs per POST /probe/batch
WORKERS = 8             # batches in flight: at most CHUNK * WORKERS probes of ours at once
BUSY_RETRY = 0.5        # seconds between tries when the app answers 429
BUSY_GIVE_UP = 60.0


class Kind(typing.NamedTuple):
    """What the CLI knows of a probe kind (ryu_apps/kinds.py)."""
    verdicts: tuple[str, ...]   # the best first, then in the order tables show them
    success: tuple[str, ...]    # ping exits 0 on these, 1 on any other (a monitor's pair is up)
    attempt: tuple[str, ...]    # what one packet sent is called (and its plural, if not +s)


KINDS = {
    'icmp': Kind(('reachable', 'unreachable', 'partial'), ('reachable', 'partial'),
                 ('echo', 'echoes')),
    'tcp': Kind(('open', 'closed', 'filtered'), ('open',), ('SYN',)),
    'udp': Kind(('open', 'closed', 'filtered', 'open|filtered'), ('open',), ('datagram',)),
    'arp': Kind(('reachable', 'unreachable'), ('reachable',), ('request',)),
    'dhcp': Kind(('reachable', 'unreachable'), ('reachable',), ('DISCOVER',)),
}
# Verdicts of a probe that sent nothing: an address the app was to find (resolve.py) got
# no answer (ARP, or neighbour discovery), from the source VM itself or from the next hop.
UNRESOLVED = ('source-not-answering', 'next-hop-unresolved')
OUTCOMES = tuple(dict.fromkeys(v for k in KINDS.values() for v in k.verdicts)) + UNRESOLVED + (
    'error', 'waiting')
SOMETIMES = UNRESOLVED + ('waiting',)   # in legends and tables only when there are some
CELLS = {'reachable': 'ok', 'unreachable': '--', 'partial': '~', 'open': 'ok', 'closed': 'cl',
         'filtered': '--', 'open|filtered': 'o?', 'error': '!', 'waiting': '..',
         'source-not-answering': 'x', 'next-hop-unresolved': '?'}
COLOURS = {'reachable': '32', 'unreachable': '31', 'partial': '33', 'open': '32', 'closed': '31',
           'filtered': '31', 'open|filtered': '33', 'error': '1;35', 'waiting': '2',
           'source-not-answering': '31', 'next-hop-unresolved': '31'}
# ICMP(v6) destination unreachable codes (RFC 792, RFC 4443), as the app names the message
# that answered a tcp or udp probe ("icmp unreachable code 3 from 10.0.0.2").
UNREACHABLE_CODES = {('icmp', 0): 'net unreachable', ('icmp', 1): 'host unreachable',
                     ('icmp', 3): 'port unreachable', ('icmp', 13): 'administratively prohibited',
                     ('icmpv6', 0): 'no route', ('icmpv6', 1): 'administratively prohibited',
                     ('icmpv6', 3): 'address unreachable', ('icmpv6', 4): 'port unreachable'}
CLEAR = '\033[H\033[2J'
OFPP_LOCAL = 0xfffffffe


class CliError(Exception):
    """A failure to report on stderr (exit status 2); `status` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


# --- HTTP ---------------------------------------------------------------------------

def http(url: str, method: str, path: str, body=None,
         timeout: float = GET_TIMEOUT) -> tuple[int, object]:
    """(status, decoded JSON) of a 2xx answer; otherwise CliError with the API's message."""
    data = None if body is None else json.dumps(body).encode()
    try:
        request = urllib.request.Request(url + path, data=data, method=method,
                                         headers=HEADERS)
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        decoded = _decoded(error.read())
        message = decoded.get('error') if isinstance(decoded, dict) else None
        raise CliError(message or 'HTTP %d %s from %s %s' % (error.code, error.reason,
                                                              method, path), error.code) from None
    except urllib.error.URLError as error:
        reason = error.reason
        words = 'connection refused' if isinstance(reason, ConnectionRefusedError) else (
            getattr(reason, 'strerror', None) or str(reason))
        raise CliError('cannot reach the ryu-probe API at %s: %s; is ryu-manager '
                       'ryu_apps/probe_app.py running?' % (url, words)) from None
    except TimeoutError:
        raise CliError('the ryu-probe API at %s did not answer %s %s in %g s'
                       % (url, method, path, timeout)) from None
    except OSError as error:
        raise CliError('the ryu-probe API at %s: %s' % (url, error)) from None
    except ValueError as error:     # a URL urllib cannot use
        raise CliError('--url %s: %s' % (url, error)) from None
    decoded = _decoded(raw)
    if decoded is None:
        raise CliError('%s %s at %s: the answer is not JSON' % (method, path, url))
    return status, decoded


def _decoded(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return None


def wait_for(count, interval, timeout) -> float:
    """Seconds to wait for the answer to a POST with wait: the probe's echoes, and slack.
    (Values that are not numbers are the API's to refuse.)"""
    try:
        return (count - 1) * interval + timeout + WAIT_SLACK
    except TypeError:
        return WAIT_SLACK


def finished(url: str, probe: dict, timeout: float) -> dict:
    """The probe once it has ended: GET /probe/probes/<id> while it still runs."""
    deadline = time.monotonic() + timeout
    while probe['state'] == 'running':
        if time.monotonic() > deadline:
            raise CliError('probe %s still running after %g s' % (probe['id'], timeout))
        time.sleep(0.1)
        probe = http(url, 'GET', '/probe/probes/' + probe['id'])[1]
    return probe


def load_json(path: str):
    """A JSON file, or stdin for `-`."""
    try:
        if path == '-':
            return json.load(sys.stdin)
        with open(path) as f:
            return json.load(f)
    except OSError as error:
        raise CliError('%s: %s' % (path, error.strerror or error)) from None
    except ValueError as error:
        raise CliError('%s: not JSON: %s' % (path, error)) from None


# --- formatters (pure) --------------------------------------------------------------

def ms(value: float) -> str:
    """Milliseconds with ping's precision: 0.412, 1.32, 12.3, 123."""
    for limit, form in ((100, '%.0f'), (10, '%.1f'), (1, '%.2f')):
        if value >= limit:
            return form % value
    return '%.3f' % value


def plural(n: int, word: str, words: str | None = None) -> str:
    return '%d %s' % (n, word if n == 1 else words or word + 's')


def percent(loss: float | None) -> str:
    return '-' if loss is None else '%g%%' % round(loss * 100, 1)


def probe_outcome(probe: dict) -> str:
    """One of OUTCOMES for a probe."""
    if probe['state'] in ('error', 'cancelled'):
        return 'error'
    return probe['verdict'] or 'waiting'


def pair_outcome(pair: dict) -> str:
    """One of OUTCOMES for a monitor's pair."""
    if pair['status'] == 'switch-not-connected' or pair.get('error'):
        return 'error'
    if pair['status'] == 'waiting' or pair['verdict'] is None:
        return 'waiting'
    return pair['verdict']


def kind_of(spec: dict) -> str:
    """The kind of a probe request or of a monitor (icmp if it names none)."""
    return spec.get('kind') or 'icmp'


def kind_label(monitor: dict) -> str:
    """A monitor's kind, with its port: icmp, tcp/443."""
    port = monitor.get('dst_port')
    return '%s/%d' % (kind_of(monitor), port) if port else kind_of(monitor)


def ping_status(probe: dict) -> int:
    """ping's exit status: 0 for a verdict its kind counts as success (KINDS; icmp: any
    reply came), 1 for another (an unresolved address too: nothing went out), 2 if the
    probe did not end done."""
    if probe['state'] != 'done':
        return 2
    return 0 if probe['verdict'] in KINDS[kind_of(probe['request'])].success else 1


def format_broken(broken: dict | None) -> list[str]:
    """Where a probe's path broke, in a few lines."""
    if not broken:
        return []
    if broken.get('reason') is None and broken.get('dpid') is None:
        return ['broken at: unknown: %s' % broken.get('detail')]
    lines = ['broken at: %s on %s%s: %s' % (broken['direction'], broken['dpid'],
                                           _table(broken, ' table %s'), broken['reason'])]
    if broken.get('detail') and broken['detail'] != broken['reason']:
        lines.append('  detail: %s' % broken['detail'])
    flow = broken.get('flow')
    if flow:
        lines.append('  flow:   table=%s priority=%s cookie=%s %s' % (
            flow['table'], flow['priority'], flow['cookie'], flow['match']))
    return lines


def _table(broken: dict, form: str) -> str:
    """The table a path broke in, in `form`; nothing when it broke in none (an address
    that did not resolve: no packet went through a table)."""
    return '' if broken.get('table') is None else form % broken['table']


def broken_summary(broken: dict | None) -> str:
    """Where a path broke, in one short phrase."""
    if not broken:
        return '-'
    if broken.get('dpid') is None:
        return 'unknown'
    return '%s %s%s %s' % (broken['direction'], broken['dpid'], _table(broken, ' t%s'),
                           broken['reason'])


def target(request: dict) -> str:
    """What a probe asks about: its destination, with the port of tcp and udp."""
    ip, port = request['dst_ip'], request.get('dst_port')
    if not port:
        return ip
    return '[%s]:%d' % (ip, port) if ':' in ip else '%s:%d' % (ip, port)


def ping_header(request: dict, found=()) -> str:
    """PING's line (TCP's, ARP's... for the other kinds): destination (via the gateway,
    if one was asked for its MAC; dhcp has none), source, port and switch; each MAC the
    app found (`found`: the request's fields the CLI left out) in parentheses after its
    IP, as ping shows a name's address."""
    def mac(name):
        return ' (%s)' % request[name] if name in found and request.get(name) else ''
    kind = kind_of(request)
    words = ['PING' if kind == 'icmp' else kind.upper()]
    if request.get('dst_ip'):
        via = ''
        if 'dst_mac' in found and request.get('gateway'):
            via = ' via %s' % request['gateway']
        words.append(target(request) + (via + mac('dst_mac') if via else mac('dst_mac')))
    src = request['src_ip'] + mac('src_mac') if request.get('src_ip') else request['src_mac']
    return '%s from %s port %s on %s' % (' '.join(words), src, request['in_port'],
                                         request['dpid'])


def rtt_text(rtt: dict) -> str:
    return 'rtt min/avg/max = %.3f/%.3f/%.3f ms' % (rtt['min'], rtt['avg'], rtt['max'])


def state_line(probe: dict) -> str:
    """How a probe that did not end done ended."""
    return 'state: %s%s' % (probe['state'], ': %s' % probe['error'] if probe.get('error') else '')


def icmp_text(text: str) -> str:
    """The app's words for an ICMP unreachable, its code named if known: "icmp
    unreachable code 3 from 10.0.0.2" is "ICMP port unreachable from 10.0.0.2"."""
    match = re.fullmatch(r'(icmp|icmpv6) unreachable code (\d+) from (\S+)', text)
    name = match and UNREACHABLE_CODES.get((match[1], int(match[2])))
    if not name:
        return text
    return '%s %s from %s' % ('ICMPv6' if match[1] == 'icmpv6' else 'ICMP', name, match[3])


def format_answer(request: dict, reply: dict) -> str:
    """One answer to a probe of a kind other than icmp, and how long it took."""
    kind, took = kind_of(request), 'in %s ms' % ms(reply['rtt_ms'])
    if kind == 'arp':
        return 'arp reply from %s at %s %s' % (request['dst_ip'], reply['mac'], took)
    if kind == 'dhcp':
        terms = [form % reply[name] for name, form in (('router', ', router %s'),
                                                        ('lease_seconds', ', lease %d s'))
                 if reply.get(name) is not None]
        return 'dhcp offer of %s from %s (%s) %s%s' % (reply['offered'], reply['server'],
                                                       reply['server_mac'], took, ''.join(terms))
    if 'icmp' in reply:
        why = icmp_text(reply['icmp'])
    elif kind == 'tcp':
        why = 'SYN-ACK' if reply['answer'] == 'open' else 'RST'
    else:
        why = '%d-byte reply' % reply['reply_bytes']
    return '%s %s %s: %s %s' % (kind, target(request), reply['answer'], why, took)


def format_answers(probe: dict, found=()) -> list[str]:
    """A finished probe of a kind other than icmp: its header, a line per answer, and one
    with the verdict and the counts."""
    request = probe['request']
    kind = KINDS[kind_of(request)]
    counts = '%s sent, %d answered' % (plural(probe['sent'], *kind.attempt), probe['received'])
    if probe['rtt_ms']:
        counts += ', ' + rtt_text(probe['rtt_ms'])
    if probe['state'] != 'done':
        summary = [counts, state_line(probe)]
    elif probe['verdict'] in UNRESOLVED:
        summary = ['verdict: %s, no %s sent' % (probe['verdict'], kind.attempt[0])]
    else:
        summary = ['verdict: %s, %s' % (probe['verdict'], counts)]
    return ([ping_header(request, found)] + [format_answer(request, r) for r in probe['replies']]
            + [''] + summary + format_broken(probe.get('broken_at')))


def format_ping(probe: dict, found=()) -> list[str]:
    """A finished probe as Linux ping prints its run (format_answers for the other
    kinds). `found`: the MAC fields the request left out, for the app to find; the
    header shows what it found."""
    if kind_of(probe['request']) != 'icmp':
        return format_answers(probe, found)
    request, dst = probe['request'], probe['request']['dst_ip']
    lines = [ping_header(request, found)]
    lines += ['from %s: seq=%d time=%s ms' % (dst, seq, ms(reply['rtt_ms']))
              for seq, reply in enumerate(probe['replies'], 1)]
    loss = probe['loss']
    if loss is None and probe['sent']:
        loss = 1 - probe['received'] / probe['sent']
    lines += ['', '--- %s ryu-probe statistics ---' % dst,
              '%d transmitted, %d received, %s loss' % (probe['sent'], probe['received'],
                                                        percent(loss))]
    if probe['rtt_ms']:
        lines.append(rtt_text(probe['rtt_ms']))
    if probe['state'] != 'done':
        lines.append(state_line(probe))
    elif probe['verdict'] in UNRESOLVED:
        lines.append('verdict: %s, no echo sent' % probe['verdict'])
    elif probe['verdict'] != 'reachable':
        lines.append('verdict: %s' % probe['verdict'])
    return lines + format_broken(probe.get('broken_at'))


def format_table(headers: list[str], rows: list[list]) -> list[str]:
    """Columns two spaces apart; numbers right-aligned."""
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(x) for x in column) for column in zip(headers, *cells)]

    def line(values, raw):
        return '  '.join(v.rjust(w) if isinstance(r, (int, float)) else v.ljust(w)
                         for v, w, r in zip(values, widths, raw)).rstrip()
    return [line(headers, headers)] + [line(c, r) for c, r in zip(cells, rows)]


def format_switches(switches: list[dict]) -> list[str]:
    if not switches:
        return ['no switch is connected']
    rows = []
    for switch in sorted(switches, key=lambda s: s['dpid']):
        ports = sorted(switch['ports'], key=lambda p: p['port_no']) or [
            {'port_no': '-', 'name': '(no ports)', 'hw_addr': ''}]
        rows += [[switch['dpid'] if i == 0 else '',
                  'LOCAL' if p['port_no'] == OFPP_LOCAL else p['port_no'], p['name'], p['hw_addr']]
                 for i, p in enumerate(ports)]
    return format_table(['DPID', 'PORT', 'NAME', 'HW_ADDR'], rows)


def count_outcomes(outcomes) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome in outcomes:
        counts[outcome] += 1
    return counts


def format_monitors(monitors: list[dict]) -> list[str]:
    """A row per monitor, a column per outcome: the verdicts of the monitors' kinds, error
    and waiting; another (an unresolved address) only if a pair has it."""
    if not monitors:
        return ['no monitors']
    counts = [count_outcomes(pair_outcome(p) for p in m['pairs']) for m in monitors]
    always = {v for m in monitors for v in KINDS[kind_of(m)].verdicts} | {'error', 'waiting'}
    columns = [o for o in OUTCOMES if o in always or any(c[o] for c in counts)]
    rows = [[m['name'], kind_label(m), len(m['pairs']), '%gs' % m['interval']] +
            [c[o] for o in columns] for m, c in zip(monitors, counts)]
    return format_table(['NAME', 'KIND', 'PAIRS', 'INTERVAL'] + [o.upper() for o in columns],
                        rows)


def ago(when: float | None, now: float) -> str:
    if when is None:
        return '-'
    seconds = max(0, now - when)
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size:
            return '%d%s ago' % (seconds // size, unit)
    return '%ds ago' % seconds


def monitor_title(monitor: dict) -> str:
    """Its name (and its kind, but icmp's), pairs and timing."""
    kind = kind_of(monitor)
    return 'monitor %s%s: %s, every %gs, %s %gs apart, timeout %gs' % (
        monitor['name'], '' if kind == 'icmp' else ' (%s)' % kind_label(monitor),
        plural(len(monitor['pairs']), 'pair'), monitor['interval'],
        plural(monitor['count'], *KINDS[kind].attempt), monitor['echo_interval'],
        monitor['timeout'])


def paint(text: str, outcome: str, colour: bool) -> str:
    return '\033[%sm%s\033[0m' % (COLOURS[outcome], text) if colour else text


def format_pairs(pairs: list[dict], now: float, colour: bool = False) -> list[str]:
    """A monitor's pairs, a row each, coloured by outcome if asked."""
    rows = [[p['src'], p['dst'], p['status'], p['verdict'] or '-', percent(p['loss']),
             '%s ms' % ms(p['rtt_ms']['avg']) if p['rtt_ms'] else '-', ago(p['changed_at'], now),
             'error: %s' % p['error'] if p.get('error') else broken_summary(p['broken_at'])]
            for p in pairs]
    header, *lines = format_table(['SRC', 'DST', 'STATUS', 'VERDICT', 'LOSS', 'RTT AVG',
                                   'CHANGED', 'BROKEN AT'], rows)
    return [header] + [paint(line, pair_outcome(p), colour) for line, p in zip(lines, pairs)]


def format_monitor(monitor: dict, now: float) -> list[str]:
    return [monitor_title(monitor), ''] + format_pairs(monitor['pairs'], now)


def format_matrix(names: list[str], cells: dict[tuple[str, str], str], width: int = 80,
                  colour: bool = False) -> list[str]:
    """Rows are sources, columns destinations; `cells` maps (src, dst) to an outcome
    (missing: not probed). Columns are numbered when the names do not fit in `width`."""
    row_width = max(len(n) for n in names)
    labels = names
    if row_width + 1 + len(names) * (max(2, row_width) + 1) > width:
        labels = [str(i) for i in range(1, len(names) + 1)]
        rows = ['%*d %s' % (len(labels[-1]), i, n) for i, n in enumerate(names, 1)]
    else:
        rows = list(names)
    row_width = max(len(r) for r in rows)
    cell_width = max(2, max(len(label) for label in labels))
    lines = [' ' * row_width + ''.join(' ' + label.rjust(cell_width) for label in labels)]
    for src, row in zip(names, rows):
        line = row.ljust(row_width)
        for dst in names:
            outcome = cells.get((src, dst))
            text = CELLS[outcome].rjust(cell_width) if outcome else ' ' * cell_width
            line += ' ' + (paint(text, outcome, colour) if outcome else text)
        lines.append(line.rstrip())
    return lines


def kind_outcomes(kind: str) -> tuple[str, ...]:
    """The outcomes a probe of the kind can have, in the order legends list them."""
    return KINDS[kind].verdicts + UNRESOLVED + ('error', 'waiting')


def format_legend(outcomes, colour: bool = False, kind: str = 'icmp') -> str:
    shown = [o for o in kind_outcomes(kind) if o not in SOMETIMES or o in set(outcomes)]
    return '  '.join('%s %s' % (paint(CELLS[o], o, colour), o) for o in shown)


def format_summary(outcomes: list[str], elapsed: float | None = None,
                   kind: str = 'icmp') -> str:
    """The pairs, how many had the kind's first two verdicts, and each other outcome's."""
    counts, first = count_outcomes(outcomes), KINDS[kind].verdicts[:2]
    words = [plural(len(outcomes), 'pair')] + ['%d %s' % (counts[o], o) for o in first]
    words += ['%d %s' % (counts[o], o) for o in OUTCOMES if counts[o] and o not in first]
    if elapsed is not None:
        words.append('%.1f s' % elapsed)
    return ', '.join(words)


def format_mesh(names: list[str], cells: dict, elapsed: float, width: int = 80,
                kind: str = 'icmp') -> list[str]:
    outcomes = list(cells.values())
    return format_matrix(names, cells, width) + [
        '', format_legend(outcomes, kind=kind), format_summary(outcomes, elapsed, kind)]


def format_watch(monitor: dict, now: float, width: int = 80, colour: bool = False) -> list[str]:
    """What `watch` draws: a mesh monitor as a matrix and its failing pairs, another as its
    pair table."""
    pairs, kind = monitor['pairs'], kind_of(monitor)
    lines = [monitor_title(monitor), '']
    if 'mesh' in monitor:
        cells = {(p['src'], p['dst']): pair_outcome(p) for p in pairs}
        lines += format_matrix([e['name'] for e in monitor['mesh']], cells, width, colour)
        lines += ['', format_legend(cells.values(), colour, kind)]
        lines += ['%s: %s' % (p['name'], paint(
            'error: %s' % p['error'] if p.get('error') else (p['verdict'] or p['status']) + (
                ', ' + broken_summary(p['broken_at']) if p['broken_at'] else ''),
            pair_outcome(p), colour))
            for p in pairs if pair_outcome(p) not in (KINDS[kind].verdicts[0], 'waiting')]
    else:
        lines += format_pairs(pairs, now, colour)
    return lines + ['', format_summary([pair_outcome(p) for p in pairs], kind=kind)]


# --- mesh ---------------------------------------------------------------------------

# A batch's request field, as the endpoint and field of the mesh file it came from.
ENDPOINT_FIELD = {'dpid': ('src', 'dpid'), 'in_port': ('src', 'in_port'),
                  'src_mac': ('src', 'mac'), 'src_ip': ('src', 'ip'),
                  'dst_mac': ('dst', 'mac'), 'dst_ip': ('dst', 'ip')}


def mesh_plan(data, count: int | None, interval: float | None,
              timeout: float | None) -> tuple[list[dict], dict]:
    """The endpoints of a mesh file (named: `name`, else the ip) and the probes' timing.
    An endpoint may leave out its `mac`: the app finds it (POST /probe/batch allows it)."""
    spec = data if isinstance(data, dict) else {'endpoints': data}
    endpoints = spec.get('endpoints')
    if not isinstance(endpoints, list) or len(endpoints) < 2:
        raise CliError('endpoints: must be a list of at least 2 endpoints')
    named = []
    for i, endpoint in enumerate(endpoints):
        missing = sorted({'dpid', 'in_port', 'ip'} - set(endpoint)) if isinstance(
            endpoint, dict) else ['dpid, in_port, ip']
        if missing:
            raise CliError('endpoints[%d].%s: missing' % (i, ', '.join(missing)))
        named.append(dict(endpoint, name=str(endpoint.get('name') or endpoint['ip']), index=i))
    names = [e['name'] for e in named]
    if len(set(names)) != len(names):
        raise CliError('endpoints: names must be unique')
    timing = {'count': 3, 'interval': 0.2, 'timeout': 1.0}
    timing.update({k: spec[k] for k in timing if k in spec})
    timing.update({k: v for k, v in (('count', count), ('interval', interval),
                                     ('timeout', timeout)) if v is not None})
    return named, timing


def mesh_pairs(endpoints: list[dict], timing: dict,
               kind: dict | None = None) -> list[tuple[dict, dict, dict]]:
    """(src, dst, probe request) for every ordered pair, with the `kind` fields
    (kind_fields); an endpoint's MAC only if its entry has one (else the app finds it:
    the source's, and the destination's as the source asks for it; arp takes none of
    the destination's)."""
    kind = kind or {}
    sides = ('src_mac',) if kind.get('kind') == 'arp' else ('src_mac', 'dst_mac')

    def request(a, b):
        macs = {name: e['mac'] for name, e in zip(sides, (a, b)) if e.get('mac') is not None}
        return dict(timing, dpid=a['dpid'], in_port=a['in_port'], src_ip=a['ip'],
                    dst_ip=b['ip'], **macs, **kind)
    return [(a, b, request(a, b)) for a in endpoints for b in endpoints if a is not b]


def mesh_error(message: str, chunk: list[tuple[dict, dict, dict]]) -> str:
    """A batch's error ("probes[3].dst_mac: ...") as the mesh file's ("endpoints[1].mac: ...")."""
    match = re.match(r'probes\[(\d+)\]\.(\w+)(.*)$', message, re.S)
    if not match or int(match.group(1)) >= len(chunk):
        return message
    src, dst, _ = chunk[int(match.group(1))]
    field = match.group(2)
    if field not in ENDPOINT_FIELD:
        return field + match.group(3)
    side, name = ENDPOINT_FIELD[field]
    endpoint = src if side == 'src' else dst
    return 'endpoints[%d].%s%s' % (endpoint['index'], name, match.group(3))


def run_batch(url: str, chunk: list[tuple[dict, dict, dict]], timing: dict) -> list[dict]:
    """One POST /probe/batch with wait, tried again while the app is busy (429)."""
    length = wait_for(**timing)
    body = {'probes': [request for _, _, request in chunk], 'wait': True}
    give_up = time.monotonic() + BUSY_GIVE_UP
    while True:
        try:
            probes = http(url, 'POST', '/probe/batch', body, length)[1]['probes']
            break
        except CliError as error:
            if error.status != 429 or time.monotonic() > give_up:
                raise CliError(mesh_error(str(error), chunk), error.status) from None
            time.sleep(BUSY_RETRY)
    return [finished(url, probe, length) for probe in probes]


def run_mesh(url: str, pairs: list, timing: dict, progress=None) -> list[dict]:
    """Every pair's finished probe, in order; `progress(done, total)` after each batch."""
    chunks = [pairs[i:i + CHUNK] for i in range(0, len(pairs), CHUNK)]
    results: list[list[dict] | None] = [None] * len(chunks)
    done = 0
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(run_batch, url, chunk, timing): i for i, chunk in enumerate(chunks)}
        try:
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                done += len(chunks[futures[future]])
                if progress:
                    progress(done, len(pairs))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [probe for chunk in results for probe in chunk]


def mesh_status(outcomes: list[str], kind: str = 'icmp') -> int:
    """0 if every pair has the kind's best verdict (reachable, open), 2 if a probe ended
    in error, else 1."""
    if 'error' in outcomes:
        return 2
    return 0 if set(outcomes) == {KINDS[kind].verdicts[0]} else 1


def format_progress(done: int, total: int, elapsed: float, width: int = 80) -> str:
    text = ' %d/%d pairs %.1f s' % (done, total, elapsed)
    bar = max(10, min(50, width - len(text) - 3))
    filled = bar * done // total
    return '[%s%s]%s' % ('#' * filled, '.' * (bar - filled), text)


# --- commands -----------------------------------------------------------------------

def show(args, data, lines: list[str]) -> None:
    """The API's JSON with --json, else the formatted lines."""
    print(json.dumps(data, indent=2) if args.json else '\n'.join(lines))


def port_arg(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def port_number(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError('must be a port number, 1 to 65535')
    return int(value)


class KindPort(argparse.Action):
    """--tcp PORT and --udp PORT: the kind (the option's `const`) and its port."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.kind, namespace.dst_port = self.const, value


def kind_fields(args) -> dict:
    """A request's kind, port and payload, as given (none for icmp, the default)."""
    if args.payload is not None and args.kind != 'udp':
        raise CliError('--payload: only with --udp')
    fields = dict(kind=args.kind, dst_port=args.dst_port, payload=args.payload)
    return {k: v for k, v in fields.items() if v is not None}


def ip_version(value: str) -> int | None:
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return None


def check_ping(args) -> None:
    """What argparse cannot check: the IPs a kind needs (dhcp takes no --dst-ip, and
    --src-ip only to find --src-mac), a gateway or a MAC, and -4 or -6."""
    if args.kind == 'dhcp':
        if args.dst_ip is not None:
            raise CliError('--dst-ip: not with --dhcp (its DISCOVER is broadcast)')
        if args.src_ip is None and args.src_mac is None:
            raise CliError('--dhcp: needs --src-mac, or --src-ip for the app to find it')
        if args.version == 6:
            raise CliError('-6: not with --dhcp (DHCPv6 is not supported)')
    else:
        missing = [option for option, value in (('--src-ip', args.src_ip),
                                                ('--dst-ip', args.dst_ip)) if value is None]
        if missing:
            raise CliError('%s: required' % ' and '.join(missing))
    if args.gateway and args.dst_mac:
        raise CliError('--gateway: only without --dst-mac (the app asks the gateway for the '
                       'MAC that --dst-mac gives)')
    for option, value in (('--src-ip', args.src_ip), ('--dst-ip', args.dst_ip),
                          ('--gateway', args.gateway)):
        if args.version and value is not None and ip_version(value) != args.version:
            raise CliError('%s %s: not an IPv%d address (-%d)' % (option, value, args.version,
                                                                 args.version))


def ping_body(args) -> dict:
    """The POST /probe/probes body: a MAC left out is not sent (the app finds it), nor a
    gateway, an IP or a kind not given."""
    body = dict(dpid=args.dpid, in_port=args.port, src_mac=args.src_mac, src_ip=args.src_ip,
                dst_mac=args.dst_mac, dst_ip=args.dst_ip, gateway=args.gateway,
                count=args.count, interval=args.interval, timeout=args.timeout, wait=True,
                **kind_fields(args))
    return {k: v for k, v in body.items() if v is not None}


def cmd_ping(args) -> int:
    check_ping(args)
    body = ping_body(args)
    length = wait_for(args.count, args.interval, args.timeout)
    probe = finished(args.url, http(args.url, 'POST', '/probe/probes', body, length)[1], length)
    show(args, probe, format_ping(probe, [m for m in ('src_mac', 'dst_mac') if m not in body]))
    if probe['state'] != 'done':
        print('ryu-probe: probe %s ended %s: %s' % (probe['id'], probe['state'], probe['error']),
              file=sys.stderr)
    return ping_status(probe)


def cmd_switches(args) -> int:
    switches = http(args.url, 'GET', '/probe/switches')[1]
    show(args, switches, format_switches(switches))
    return 0


def monitor_path(name: str) -> str:
    return '/probe/monitors/' + urllib.parse.quote(name, safe='')


def cmd_monitors(args) -> int:
    monitors = http(args.url, 'GET', '/probe/monitors')[1]
    show(args, monitors, format_monitors(monitors))
    return 0


def cmd_monitors_show(args) -> int:
    monitor = http(args.url, 'GET', monitor_path(args.name))[1]
    show(args, monitor, format_monitor(monitor, time.time()))
    return 0


def cmd_monitors_add(args) -> int:
    body = load_json(args.file)
    try:
        monitor = http(args.url, 'POST', '/probe/monitors', body)[1]
    except CliError as error:
        if error.status == 409:
            name = body.get('name') if isinstance(body, dict) else None
            raise CliError('monitor %s exists already (%s); remove it first with '
                           '`ryu-probe monitors rm %s`' % (name, error, name), 409) from None
        raise
    show(args, monitor, ['monitor %s added: %s, every %gs' % (
        monitor['name'], plural(len(monitor['pairs']), 'pair'), monitor['interval'])])
    return 0


def cmd_monitors_rm(args) -> int:
    monitor = http(args.url, 'DELETE', monitor_path(args.name))[1]
    show(args, monitor, ['monitor %s removed' % monitor['name']])
    return 0


def cmd_mesh(args) -> int:
    kind = kind_fields(args)
    endpoints, timing = mesh_plan(load_json(args.file), args.count, args.interval, args.timeout)
    pairs = mesh_pairs(endpoints, timing, kind)
    started = time.monotonic()
    draw = args.progress or (args.progress is None and sys.stderr.isatty())

    def progress(done, total):
        width = shutil.get_terminal_size().columns
        sys.stderr.write('\r' + format_progress(done, total, time.monotonic() - started, width))
        sys.stderr.flush()
    try:
        probes = run_mesh(args.url, pairs, timing, progress if draw else None)
    finally:
        if draw:
            sys.stderr.write('\n')
    elapsed = time.monotonic() - started
    outcomes = [probe_outcome(p) for p in probes]
    cells = {(src['name'], dst['name']): outcome for (src, dst, _), outcome in zip(pairs, outcomes)}
    show(args, {'probes': probes}, format_mesh([e['name'] for e in endpoints], cells, elapsed,
                                               shutil.get_terminal_size().columns,
                                               kind_of(kind)))
    return mesh_status(outcomes, kind_of(kind))


def cmd_watch(args) -> int:
    tty = sys.stdout.isatty()
    colour = tty and not os.environ.get('NO_COLOR')
    while True:
        monitor = http(args.url, 'GET', monitor_path(args.name))[1]
        if args.json:
            print(json.dumps(monitor))
        else:
            lines = format_watch(monitor, time.time(), shutil.get_terminal_size().columns, colour)
            sys.stdout.write((CLEAR if tty else '') + '\n'.join(lines) + '\n')
        sys.stdout.flush()
        if args.once:
            return 0
        time.sleep(args.seconds)
        if not tty and not args.json:
            print()


# --- arguments ----------------------------------------------------------------------

EXAMPLES = '''examples:
  ryu-probe switches
  ryu-probe ping --dpid 0000000000000001 --port 1 --src-ip 10.0.0.1 --dst-ip 10.0.0.2
  ryu-probe ping --dpid 0000000000000001 --port 1 --src-ip 10.0.0.1 --dst-ip 10.0.0.2 --tcp 443
  ryu-probe mesh vms.json --progress
  ryu-probe monitors add tenant-a.json
  ryu-probe monitors show tenant-a
  ryu-probe watch tenant-a -n 5

The API is at --url, else $RYU_PROBE_URL, else %s. With tokens (the app's
api_token_file): --token-file FILE, else $RYU_PROBE_TOKEN. For HTTPS with a private CA,
point $SSL_CERT_FILE at its certificate.
Exit status: 0 reachable (a tcp or udp port open), 1 not (or not all), 2 on error.''' % DEFAULT_URL

PING_EXAMPLES = '''Without --src-mac or --dst-mac the app finds the MAC left out by ARP, as the VM would:
the source VM's with an RFC 5227 probe (it claims no address), the next hop's (the
destination's, or with --gateway the router's) with a request from the VM's port. The
PING line shows each MAC it found after its IP. A source VM that does not answer is
source-not-answering, a next hop that does not answer next-hop-unresolved: then no
echo is sent, and the exit status is 1.

A probe is an ICMP echo unless --tcp, --udp, --arp or --dhcp says otherwise: a SYN (open,
closed or filtered), a datagram (open, closed, filtered or open|filtered), an ARP request
or neighbour solicitation for --dst-ip (reachable if it answers), a DHCPDISCOVER with
the source VM's MAC and no --dst-ip (reachable if a server offers; no REQUEST follows).

examples:
  ryu-probe ping --dpid 0000000000000001 --port 1 --src-ip 10.0.0.1 --dst-ip 10.0.0.2
  ryu-probe ping --dpid 1 --port tap1 --src-ip 10.1.0.11 --dst-ip 10.2.0.13 --gateway 10.1.0.1
  ryu-probe ping --dpid 0000000000000001 --port 1 --src-ip 10.0.0.1 \\
      --src-mac 02:00:0a:00:00:01 --dst-ip 10.0.0.2 --dst-mac 02:00:0a:00:00:02
  ryu-probe ping --dpid 1 --port tap1 ... -c 10 -i 0.1 -W 2
  ryu-probe ping --dpid 1 --port tap1 --src-ip 10.0.0.1 --dst-ip 10.0.0.2 --tcp 443
  ryu-probe ping --dpid 1 --port tap1 --src-ip 10.0.0.1 --dst-ip 10.0.0.2 --udp 9999 \\
      --payload 70726f6265
  ryu-probe ping --dpid 1 --port tap1 --src-ip fd00::1 --dst-ip fd00::2 --arp -6
  ryu-probe ping --dpid 1 --port tap1 --src-ip 10.0.0.1 --dhcp

Exit status as ping's: 0 on success (icmp: any reply came; tcp, udp: open; arp, dhcp:
reachable), 1 otherwise, 2 on error.'''

MESH_EXAMPLES = '''FILE is JSON, or - for stdin:
  {"endpoints": [{"dpid": "0000000000000001", "in_port": 1, "mac": "02:00:0a:00:00:01",
                  "ip": "10.0.0.1", "name": "vm1"}, ...],
   "count": 3, "interval": 0.2, "timeout": 1.0}
or just the list of endpoints. Every ordered pair is probed, %d pairs per batch.
An endpoint may leave out "mac" (and "name"): the app finds the MAC by ARP, as a VM on
the same subnet would; a pair it cannot resolve is "x" (source-not-answering) or "?"
(next-hop-unresolved).

examples:
  ryu-probe mesh vms.json
  ryu-probe mesh - -c 1 < vms.json

With --tcp PORT, --udp PORT or --arp every pair is probed so (see ryu-probe ping --help).

Exit status: 0 if every pair is reachable (open with --tcp, --udp), 1 if not, 2 on error.''' % CHUNK

MONITORS_EXAMPLES = '''examples:
  ryu-probe monitors                    list them
  ryu-probe monitors add tenant-a.json  FILE is the POST /probe/monitors body:
      {"name": "tenant-a", "interval": 10, "count": 3, "timeout": 1.0,
       "mesh": [{"dpid", "in_port", "mac", "ip", "name"}, ...]}   (or "probes": [...])
  ryu-probe monitors show tenant-a
  ryu-probe monitors rm tenant-a'''

WATCH_EXAMPLES = '''examples:
  ryu-probe watch tenant-a          redraw every 2 s until ^C
  ryu-probe watch tenant-a -n 10
  ryu-probe watch tenant-a --once   draw once and exit'''


def add_common(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    """--url and --json, before the command or after it. After it, their default is
    SUPPRESS, so that a command does not overwrite a value given before it."""
    url = os.environ.get('RYU_PROBE_URL', DEFAULT_URL) if default is None else default
    parser.add_argument('--url', default=url,
                        help='the app\'s REST API (default: $RYU_PROBE_URL or %s)' % DEFAULT_URL)
    parser.add_argument('--json', action='store_true',
                        default=False if default is None else default,
                        help='print the API\'s JSON instead')
    parser.add_argument('--token-file', metavar='FILE', default=default, help='the API token: the last word of the file\'s '
                        'first line (default: $RYU_PROBE_TOKEN)')


def add_kinds(parser: argparse.ArgumentParser, dhcp: bool = True) -> None:
    """--tcp PORT, --udp PORT (and --payload), --arp and, with `dhcp`, --dhcp: one of
    them, else the probe is icmp."""
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument('--tcp', action=KindPort, const='tcp', dest='dst_port', type=port_number,
                       metavar='PORT', help='a SYN to PORT: open, closed or filtered')
    kinds.add_argument('--udp', action=KindPort, const='udp', dest='dst_port', type=port_number,
                       metavar='PORT', help='a datagram to PORT: open, closed, filtered or '
                       'open|filtered')
    kinds.add_argument('--arp', action='store_const', const='arp', dest='kind',
                       help='an ARP request (IPv6: neighbour solicitation) for the destination')
    if dhcp:
        kinds.add_argument('--dhcp', action='store_const', const='dhcp', dest='kind',
                           help='a DHCPDISCOVER with the source VM\'s MAC (no --dst-ip)')
    parser.add_argument('--payload', metavar='HEX', help='the --udp datagram\'s payload')
    parser.set_defaults(kind=None)


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog='ryu-probe', formatter_class=raw, epilog=EXAMPLES,
        description='Probe reachability between tenant VMs through the ryu-probe app.')
    add_common(parser, default=None)
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    def command(parent, name, run, help_text, epilog=None):
        sub = parent.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                                formatter_class=raw)
        add_common(sub)
        sub.set_defaults(run=run)
        return sub

    ping = command(commands, 'ping', cmd_ping, 'probe one pair, as ping would', PING_EXAMPLES)
    ping.add_argument('--dpid', required=True, help='the source VM\'s switch, in hex')
    ping.add_argument('--port', required=True, type=port_arg,
                      help='the source VM\'s port: a number or a port name')
    ping.add_argument('--src-ip', help='the source VM\'s IP (--dhcp: only to find its MAC)')
    ping.add_argument('--src-mac', help='the source VM\'s MAC (default: the app asks the VM)')
    ping.add_argument('--dst-ip', help='the destination (not with --dhcp)')
    ping.add_argument('--dst-mac', help='the next hop\'s MAC (the destination VM\'s on the '
                      'same subnet, else the router\'s; default: the app asks for it, as the '
                      'source VM)')
    ping.add_argument('--gateway', metavar='IP', help='the router for an off-subnet '
                      'destination, whose MAC the app finds (instead of --dst-mac)')
    ping.add_argument('-c', dest='count', type=int, default=3,
                      help='echoes (SYNs, datagrams...) to send (default 3)')
    ping.add_argument('-i', dest='interval', type=float, default=0.2,
                      help='seconds between them (default 0.2)')
    ping.add_argument('-W', dest='timeout', type=float, default=1.0,
                      help='seconds to wait for each answer (default 1)')
    add_kinds(ping)
    versions = ping.add_mutually_exclusive_group()
    for version in (4, 6):
        versions.add_argument('-%d' % version, action='store_const', const=version,
                              dest='version', help='the IPs given must be IPv%d' % version)

    command(commands, 'switches', cmd_switches, 'list the connected switches and their ports')

    mesh = command(commands, 'mesh', cmd_mesh, 'probe every ordered pair of endpoints',
                   MESH_EXAMPLES)
    mesh.add_argument('file', metavar='FILE')
    mesh.add_argument('-c', dest='count', type=int,
                      help='echoes per pair (default: the file\'s, else 3)')
    mesh.add_argument('-i', dest='interval', type=float, help='seconds between echoes')
    mesh.add_argument('-W', dest='timeout', type=float, help='seconds to wait for each reply')
    mesh.add_argument('--progress', action='store_true', default=None,
                      help='a progress bar on stderr even when it is not a terminal')
    add_kinds(mesh, dhcp=False)

    monitors = command(commands, 'monitors', cmd_monitors, 'list, show, add and remove monitors',
                       MONITORS_EXAMPLES)
    actions = monitors.add_subparsers(dest='action', metavar='ACTION')
    command(actions, 'list', cmd_monitors, 'list the monitors')
    show_monitor = command(actions, 'show', cmd_monitors_show, 'a monitor\'s pairs')
    show_monitor.add_argument('name', metavar='NAME')
    add = command(actions, 'add', cmd_monitors_add, 'add a monitor from a JSON file (- for stdin)',
                  MONITORS_EXAMPLES)
    add.add_argument('file', metavar='FILE')
    command(actions, 'rm', cmd_monitors_rm, 'remove a monitor').add_argument('name',
                                                                             metavar='NAME')

    watch = command(commands, 'watch', cmd_watch, 'a live view of a monitor', WATCH_EXAMPLES)
    watch.add_argument('name', metavar='NAME')
    watch.add_argument('-n', dest='seconds', type=float, default=2.0,
                       help='seconds between redraws (default 2)')
    watch.add_argument('--once', action='store_true', help='draw once and exit')
    return parser


def read_token(path: str) -> str:
    """The token of a file of the app's format (`TOKEN` or `NAME TOKEN`): its first."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = [l.split('#', 1)[0].split() for l in f]
    except OSError as error:
        raise CliError('--token-file %s: %s' % (path, error.strerror)) from None
    words = next((l for l in lines if l), None)
    if words is None:
        raise CliError('--token-file %s: no token in it' % path)
    return words[-1]


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:     # --help (0) or bad arguments (2)
        return exit.code
    args.url = args.url.rstrip('/')
    if '://' not in args.url:
        args.url = 'http://' + args.url
    try:
        token = read_token(args.token_file) if args.token_file else os.environ.get(
            'RYU_PROBE_TOKEN')
        if token:
            HEADERS['Authorization'] = 'Bearer ' + token
        return args.run(args)
    except CliError as error:
        print('ryu-probe: %s' % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
