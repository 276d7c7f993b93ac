"""The OpenAPI 3.1 document of the REST API (the list at the top of rest.py), served at
GET /probe/openapi.json.

It is built from the limits the validation itself uses (rest.py, kinds.py and the app's
settings), so a client generated from it asks for what the app accepts.
tests/unit/test_openapi.py keeps its paths and methods equal to the routes registered.
"""
from ryu_apps import rest
from ryu_apps.kinds import KINDS, MAX_PAYLOAD
from ryu_apps.options import Settings

JSON = 'application/json'
UNRESOLVED = ('source-not-answering', 'next-hop-unresolved')   # nothing was sent


def _ref(name: str) -> dict:
    return {'$ref': '#/components/schemas/' + name}


def _nullable(schema: dict) -> dict:
    return {'anyOf': [schema, {'type': 'null'}]}


def _object(required=(), closed: bool = False, **properties) -> dict:
    """An object with these properties; `closed`: no other may be given (as rest.py's
    requests are: an unknown field is 400)."""
    schema = {'type': 'object', 'properties': properties}
    if required:
        schema['required'] = list(required)
    if closed:
        schema['additionalProperties'] = False
    return schema


def _array(items: dict, low: int | None = None, high: int | None = None) -> dict:
    schema = {'type': 'array', 'items': items}
    if low is not None:
        schema['minItems'] = low
    if high is not None:
        schema['maxItems'] = high
    return schema


def _integer(low: int, high: int, default: int | None = None) -> dict:
    schema = {'type': 'integer', 'minimum': low, 'maximum': high}
    return schema if default is None else dict(schema, default=default)


def _seconds(high: float, default: float) -> dict:
    return {'type': 'number', 'minimum': 0.001, 'maximum': high, 'default': default}


STRING, INTEGER, NUMBER, BOOLEAN = ({'type': t} for t in ('string', 'integer', 'number',
                                                            'boolean'))
DPID = {'oneOf': [{'type': 'string', 'pattern': '^(0[xX])?[0-9a-fA-F]{1,16}$'},
                  _integer(0, (1 << 64) - 1)],
        'description': 'up to 16 hex digits, or an integer'}
IN_PORT = {'oneOf': [_integer(1, rest.OFPP_LOCAL), {'type': 'string', 'minLength': 1}],
           'description': 'a port number, or a port name'}
MAC = {'type': 'string', 'pattern': '^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$',
       'description': 'a unicast MAC address'}
IPV4 = {'type': 'string', 'format': 'ipv4'}
IP = {'anyOf': [IPV4, {'type': 'string', 'format': 'ipv6'}],
      'description': 'a unicast IPv4 or IPv6 address; all of a probe\'s of one version'}
NULL = {'type': 'null'}
PORT_KINDS, PAYLOAD_KINDS = ('tcp', 'udp'), ('udp',)     # as rest._kind has them


def _kind_fields(name: str) -> tuple[dict, set]:
    """kind, dst_port and payload as kind `name` takes them (a probe's, or a monitor's for
    all its pairs), and those of them it needs."""
    fields, needed = {'kind': {'const': name}}, set() if name == 'icmp' else {'kind'}
    if name in PORT_KINDS:
        fields['dst_port'] = _integer(1, 65535)
        needed.add('dst_port')
    if name in PAYLOAD_KINDS:
        fields['payload'] = {'type': 'string', 'pattern': '^([0-9a-fA-F]{2})*$',
                             'maxLength': 2 * MAX_PAYLOAD, 'description': 'hex'}
    return fields, needed


def _address_fields(name: str) -> tuple[dict, set]:
    """A probe's addresses as kind `name` takes them, and those it needs. A MAC that is
    null or left out is found by the app."""
    kind = KINDS[name]
    fields = dict(dpid=DPID, in_port=IN_PORT, src_mac=_nullable(MAC), src_ip=IP,
                  dst_mac=_nullable(MAC), dst_ip=IP,
                  gateway=dict(_nullable(IP), description='the next hop of an off-subnet '
                                                           'destination'))
    needed = set(rest.REQUIRED) | {'src_ip', 'dst_ip'}
    if not kind.wants_dst_ip:       # dhcp: src_ip only to find src_mac
        fields.update(src_ip=_nullable(IPV4), dst_ip=NULL)
        needed -= {'src_ip', 'dst_ip'}
    if not kind.wants_dst_mac:      # broadcast: arp, dhcp
        fields.update(dst_mac=NULL, gateway=NULL)
    return fields, needed


def _probe_request(s: Settings, name: str, wait: bool) -> dict:
    (addresses, needed), (kind, needs) = _address_fields(name), _kind_fields(name)
    schema = _object(sorted(needed | needs), closed=True, **addresses, **kind,
                     count=_integer(1, s.max_count, rest.DEFAULTS['count']),
                     interval=_seconds(s.max_timeout, rest.DEFAULTS['interval']),
                     timeout=_seconds(s.max_timeout, rest.DEFAULTS['timeout']),
                     **({'wait': BOOLEAN} if wait else {}))
    if not KINDS[name].wants_dst_ip:
        schema['anyOf'] = [{'required': ['src_mac'], 'properties': {'src_mac': MAC}},
                           {'required': ['src_ip'], 'properties': {'src_ip': IPV4}}]
    return schema


def _monitor_request(s: Settings, name: str, named: bool) -> dict:
    """A monitor of kind `name`; `named`: its name is in the body (POST), not only in the
    URL (PUT)."""
    label = {'type': 'string', 'pattern': rest.LABEL.pattern}
    addresses, needed = _address_fields(name)
    kind, needs = _kind_fields(name)
    listed = _object(sorted(needed), closed=True, **addresses, name=label)
    endpoint = _object(('dpid', 'in_port', 'ip'), closed=True, dpid=DPID, in_port=IN_PORT,
                       mac=_nullable(MAC), ip=IP, name=label)
    pairs = {'probes': _array(listed, 1, rest.MAX_PAIRS)}
    if KINDS[name].wants_dst_ip:    # a mesh's pairs need a destination
        pairs['mesh'] = dict(_array(endpoint, 2, rest.MAX_MESH),
                             description='every ordered pair of its endpoints')
    schema = _object(
        sorted({'interval'} | needs | ({'name'} if named else set())), closed=True,
        name={'type': 'string', 'pattern': rest.MONITOR_NAME.pattern},
        interval={'type': 'number', 'minimum': rest.MIN_MONITOR_INTERVAL,
                  'maximum': rest.MAX_MONITOR_INTERVAL},
        count=_integer(1, s.max_count, rest.MONITOR_DEFAULTS['count']),
        timeout=_seconds(s.max_timeout, rest.MONITOR_DEFAULTS['timeout']),
        echo_interval=_seconds(s.max_timeout, rest.MONITOR_DEFAULTS['echo_interval']),
        **kind, **pairs)
    schema['oneOf'] = [{'required': [key]} for key in pairs]
    return schema


def _requests(s: Settings) -> dict:
    """The request bodies: one variant per probe kind, each with the fields it takes."""
    each = lambda build, *args: {'oneOf': [build(s, name, *args) for name in KINDS]}
    return {
        'ProbeRequest': each(_probe_request, True),
        'BatchRequest': _object(('probes',), closed=True, wait=BOOLEAN, probes=_array(
            each(_probe_request, False), 1, s.max_active_probes)),
        'MonitorRequest': each(_monitor_request, True),
        'MonitorPut': each(_monitor_request, False),
        'DialRequest': _object(('address',), closed=True, address=dict(
            STRING, description="IPv4:PORT of a bridge's passive listener")),
    }


VERDICT = {'enum': sorted({v for kind in KINDS.values() for v in kind.verdicts}
                          | set(UNRESOLVED)) + [None]}
LOSS = _nullable({'type': 'number', 'minimum': 0, 'maximum': 1})
RTT = _nullable(_object(('min', 'avg', 'max'), min=NUMBER, avg=NUMBER, max=NUMBER))
FLOW = _nullable(_object(('table', 'priority', 'cookie', 'match'), table=INTEGER,
                         priority=INTEGER, cookie=STRING, match=STRING))
WHERE = dict(direction={'enum': ['request', 'reply', None]}, dpid=_nullable(STRING),
             table=_nullable(INTEGER), flow=FLOW)
BROKEN_AT = _nullable(_object(('direction', 'dpid', 'table', 'flow', 'reason', 'detail'),
                              **WHERE, reason=_nullable(STRING), detail=_nullable(STRING)))


def _probe() -> dict:
    step = _object(('direction', 'dpid', 'table', 'flow', 'in_port', 'action', 'time_us'),
                   **WHERE, in_port=_nullable(INTEGER), action=STRING, time_us=INTEGER)
    return _object(
        ('id', 'state', 'verdict', 'sent', 'received', 'loss', 'rtt_ms', 'replies',
         'duplicates', 'retransmits', 'flows_reinstalled', 'observed_at', 'mark', 'covers',
         'path', 'broken_at', 'error', 'request'),
        id=STRING, state={'enum': ['running', 'done', 'cancelled', 'error']},
        verdict=VERDICT, sent=INTEGER, received=INTEGER, loss=LOSS, rtt_ms=RTT,
        replies=_array(_object(('seq', 'rtt_ms'), seq=INTEGER, rtt_ms=NUMBER,
                               answer={'enum': ['open', 'closed', 'filtered']})),
        duplicates=INTEGER, retransmits=INTEGER, flows_reinstalled=INTEGER,
        observed_at={'const': 'source-port'}, mark={'enum': ['kept', 'lost', None]},
        covers=STRING, path=_array(step), broken_at=BROKEN_AT, error=_nullable(STRING),
        request=_object(('dpid', 'in_port', 'kind', 'count', 'interval', 'timeout'),
                        dpid=STRING, in_port=INTEGER, kind={'enum': list(KINDS)},
                        count=INTEGER, interval=NUMBER, timeout=NUMBER),
        # what some kinds add: tcp and udp, arp, dhcp
        src_port=_nullable(INTEGER), mac=_nullable(STRING),
        offer=_nullable({'type': 'object'}))


def _pair() -> dict:
    history = _object(('at', 'verdict', 'loss', 'rtt_ms', 'error'), at=NUMBER,
                      verdict=VERDICT, loss=LOSS, rtt_ms=_nullable(NUMBER),
                      error=_nullable(STRING))
    return _object(
        ('name', 'src', 'dst', 'dpid', 'status', 'verdict', 'loss', 'rtt_ms', 'broken_at',
         'error', 'last_at', 'changed_at', 'probe_id', 'rounds', 'late_rounds',
         'last_failure'),
        name=STRING, src=STRING, dst=STRING, dpid=STRING,
        status={'enum': ['ok', 'waiting', 'switch-not-connected']}, verdict=VERDICT,
        loss=LOSS, rtt_ms=RTT, broken_at=BROKEN_AT, error=_nullable(STRING),
        last_at=_nullable(NUMBER), changed_at=_nullable(NUMBER), probe_id=_nullable(STRING),
        rounds=INTEGER, late_rounds=INTEGER,
        last_failure=_nullable(_object(('at', 'verdict', 'broken_at', 'probe_id'))),
        history=_array(history, high=30))


def _answers() -> dict:
    monitor = _object(('name', 'interval', 'count', 'timeout', 'echo_interval', 'created_at',
                       'pairs'),
                      name=STRING, interval=NUMBER, count=INTEGER, timeout=NUMBER,
                      echo_interval=NUMBER, kind={'enum': list(KINDS)},
                      dst_port=INTEGER, payload=STRING,
                      probes=_array({'type': 'object'}), mesh=_array({'type': 'object'}),
                      created_at=NUMBER, pairs=_array(_ref('Pair')))
    port = _object(('port_no', 'name', 'hw_addr'), port_no=INTEGER, name=STRING,
                   hw_addr=STRING)
    stats = _object(('running', 'stored', 'switches', 'catches', 'catch_flows', 'counters'),
                    running=INTEGER, stored=INTEGER, switches=INTEGER, catches=INTEGER,
                    catch_flows=INTEGER,
                    counters={'type': 'object', 'additionalProperties': INTEGER})
    return {
        'Error': _object(('error',), error=dict(STRING, description='"<field>: <what is '
                                                                    'wrong>"')),
        'Probe': _probe(), 'Probes': _object(('probes',), probes=_array(_ref('Probe'))),
        'Pair': _pair(), 'Monitor': monitor, 'Stats': stats,
        'Switch': _object(('dpid', 'ports'), dpid=STRING, ports=_array(port)),
        'Dialled': _object(('address', 'dialled'), address=STRING, dialled=BOOLEAN),
    }


WAITED = ('"wait": true: ended, or as it is after 120 s (traces run one at a time: an '
          "unanswered probe's may wait for other probes')")
ERRORS = {400: 'a bad body or field', 401: 'no valid token (api_token_file)',
          403: 'a read-only token', 404: 'no such switch, port, probe or monitor',
          409: 'a monitor name taken, or an arp probe of the same source and target running',
          413: 'a body larger than max_body_bytes',
          429: 'max_active_probes running, monitors past half of max_echo_rate, or this '
               'client past api_rate (Retry-After)',
          503: 'a switch connecting: its ports are not known yet (try again)'}


def _json(schema: dict) -> dict:
    return {JSON: {'schema': schema}}


def _operation(summary: str, ok: dict, errors=(), body: str | None = None,
               public: bool = False) -> dict:
    """`ok`: {status: (description, content or None)}; `errors`: statuses of ERRORS,
    besides 401 and 429 (any request not `public`) and 403 and 413 (any with a body).
    `public`: the status page's own files, which anyone may read."""
    responses = {str(status): dict({'description': description},
                                   **({'content': content} if content else {}))
                 for status, (description, content) in ok.items()}
    checked = set() if public else {401, 429} | ({403, 413} if body else set())
    for status in sorted(checked | set(errors)):
        responses[str(status)] = {'description': ERRORS[status],
                                  'content': _json(_ref('Error'))}
    operation = {'summary': summary, 'responses': responses}
    if public:
        operation['security'] = []
    if body:
        operation['requestBody'] = {'required': True, 'content': _json(_ref(body))}
    return operation


def _path_parameter(name: str, schema: dict) -> list:
    return [{'name': name, 'in': 'path', 'required': True, 'schema': schema}]


def _paths() -> dict:
    probe, monitor = _json(_ref('Probe')), _json(_ref('Monitor'))
    text = lambda *media: {m: {'schema': STRING} for m in media}
    by_name = lambda name: _path_parameter(name, {'type': 'string', 'pattern': '^[^/]+$'})
    return {
        '/probe/switches': {
            'get': _operation('the connected switches and their ports',
                              {200: ('by dpid', _json(_array(_ref('Switch'))))}),
            'post': _operation("dial a bridge's passive listener, and redial it whenever "
                               'it drops',
                               {202: ('dialled (false: already)', _json(_ref('Dialled')))},
                               [400], 'DialRequest')},
        '/probe/probes': {
            'get': _operation('every probe, newest first',
                              {200: ('', _json(_array(_ref('Probe'))))}),
            'post': _operation('start a probe', {201: ('started', probe),
                                                 200: (WAITED, probe)},
                               [400, 404, 409, 503], 'ProbeRequest')},
        '/probe/batch': {
            'post': _operation('start many probes at once, all or none',
                               {201: ('started', _json(_ref('Probes'))),
                                200: (WAITED, _json(_ref('Probes')))},
                               [400, 404, 409, 503], 'BatchRequest')},
        '/probe/probes/{probe_id}': {
            'parameters': by_name('probe_id'),
            'get': _operation('a probe', {200: ('', probe)}, [404]),
            'delete': _operation('cancel a probe if it runs', {200: ('', probe)}, [404])},
        '/probe/monitors': {
            'get': _operation('every monitor by name, its pairs without history',
                              {200: ('', _json(_array(_ref('Monitor'))))}),
            'post': _operation('add a monitor', {201: ('added', monitor)},
                               [400, 404, 409, 503], 'MonitorRequest')},
        '/probe/monitors/{name}': {
            'parameters': by_name('name'),
            'get': _operation('a monitor', {200: ('', monitor)}, [404]),
            'put': _operation('replace a monitor, or add it',
                              {200: ('replaced', monitor), 201: ('added', monitor)},
                              [400, 404, 503], 'MonitorPut'),
            'delete': _operation('remove a monitor: its rounds cancelled, its series gone',
                                 {200: ('', monitor)}, [404])},
        '/probe/stats': {
            'get': _operation('what the app holds, and its counters',
                              {200: ('', _json(_ref('Stats')))})},
        '/probe/openapi.json': {
            'get': _operation('this document', {200: ('OpenAPI 3.1', _json({'type': 'object'}))})},
        '/metrics': {
            'get': _operation('Prometheus metrics (open with metrics_without_token)',
                              {200: ('the text format', text('text/plain'))})},
        '/probe/ui': {
            'get': _operation('the status page', {301: ('to /probe/ui/', None)}, public=True)},
        '/probe/ui/': {
            'get': _operation('the status page', {200: ('', text('text/html'))}, public=True)},
        '/probe/ui/{file}': {
            'parameters': _path_parameter('file', {'type': 'string',
                                                   'pattern': '^[a-z0-9_-]+\\.[a-z]+$'}),
            'get': _operation('a file of the status page', {200: ('', text(
                'text/html', 'text/css', 'text/javascript', 'application/javascript',
                'image/svg+xml', 'image/png'))}, [404], public=True)},
    }


def document(settings: Settings) -> dict:
    """The whole API, with the limits of these settings."""
    return {
        'openapi': '3.1.0',
        'info': {'title': 'ryu-probe', 'version': '1',
                 'description': 'Reachability probes injected as a tenant VM into Open '
                                'vSwitch, and monitors of them. Errors are JSON: {"error": '
                                '"<field>: <what is wrong>"}.'},
        'paths': _paths(),
        'components': {
            'schemas': dict(_requests(settings), **_answers()),
            'securitySchemes': {'bearer': {'type': 'http', 'scheme': 'bearer',
                                           'description': 'when api_token_file is set'}}},
        'security': [{}, {'bearer': []}],
    }
