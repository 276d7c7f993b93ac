import json

import pytest
from ryu.app.wsgi import WSGIApplication
from webob import Request

from helpers import Switch
from ryu_apps.probe_app import ProbeApp

GOOD = {'dpid': '0000000000000001', 'in_port': 'tap1', 'src_mac': '02:00:00:00:00:01',
        'src_ip': '10.0.0.1', 'dst_mac': '02:00:00:00:00:02', 'dst_ip': '10.0.0.2'}


@pytest.fixture
def api():
    wsgi = WSGIApplication()
    app = ProbeApp(wsgi=wsgi)
    switch = Switch(app.prober)

    def call(method, path, body=None, raw=None):
        req = Request.blank(path, method=method)
        if body is not None or raw is not None:
            req.body = raw if raw is not None else json.dumps(body).encode()
        res = req.get_response(wsgi)
        assert res.content_type == 'application/json'
        return res.status_int, json.loads(res.body), res
    call.app, call.switch, call.app_wsgi = app, switch, wsgi
    return call


def test_switches_lists_dpid_as_16_hex_digits_and_ports(api):
    status, body, _ = api('GET', '/probe/switches')
    assert status == 200
    assert body == [{'dpid': '0000000000000001', 'ports': [
        {'port_no': 1, 'name': 'tap1', 'hw_addr': '02:00:00:00:01:01'},
        {'port_no': 2, 'name': 'tap2', 'hw_addr': '02:00:00:00:01:02'}]}]


def test_post_starts_a_probe_with_a_normalised_request_and_defaults(api):
    status, body, res = api('POST', '/probe/probes', dict(GOOD, dpid=1, src_mac='02:00:00:00:00:0A'))
    assert status == 201 and res.location.endswith('/probe/probes/' + body['id'])
    assert body['state'] == 'running' and body['verdict'] is None
    assert body['observed_at'] == 'source-port' and body['path'] == [] and body['broken_at'] is None
    assert body['request'] == dict(GOOD, in_port=1, src_mac='02:00:00:00:00:0a',
                                   count=3, interval=0.2, timeout=1.0, gateway=None,
                                   kind='icmp')
    assert api('GET', '/probe/probes/' + body['id'])[1]['id'] == body['id']
    assert [p['id'] for p in api('GET', '/probe/probes')[1]] == [body['id']]


def test_delete_cancels_a_running_probe(api):
    probe_id = api('POST', '/probe/probes', GOOD)[1]['id']
    status, body, _ = api('DELETE', '/probe/probes/' + probe_id)
    assert status == 200 and body['state'] == 'cancelled'
    assert api('DELETE', '/probe/probes/' + probe_id)[1]['state'] == 'cancelled'


@pytest.mark.parametrize('raw, field', [
    (b'not json', 'body'), (b'[1, 2]', 'body'), (b'"x"', 'body'), (b'', 'body'),
    (b'\xff\xfe', 'body'),
])
def test_a_body_that_is_not_a_json_object_is_400(api, raw, field):
    status, body, _ = api('POST', '/probe/probes', raw=raw)
    assert status == 400 and body['error'].startswith(field)


@pytest.mark.parametrize('change, field', [
    ({'dpid': None}, 'dpid'), ({'dpid': 'xyz'}, 'dpid'), ({'dpid': True}, 'dpid'),
    ({'dpid': -1}, 'dpid'), ({'dpid': '1' * 17}, 'dpid'),
    ({'in_port': 0}, 'in_port'), ({'in_port': 1.5}, 'in_port'), ({'in_port': ''}, 'in_port'),
    ({'in_port': [1]}, 'in_port'),
    ({'src_mac': '02:00:00:00:00'}, 'src_mac'), ({'dst_mac': 'ff:ff:ff:ff:ff:ff'}, 'dst_mac'),
    ({'src_mac': 5}, 'src_mac'),
    ({'src_ip': '10.0.0.256'}, 'src_ip'), ({'dst_ip': '224.0.0.1'}, 'dst_ip'),
    ({'dst_ip': '::1'}, 'dst_ip'), ({'src_ip': None}, 'src_ip'),
    ({'count': 0}, 'count'), ({'count': 1001}, 'count'), ({'count': '3'}, 'count'),
    ({'count': True}, 'count'), ({'count': 2.0}, 'count'),
    ({'interval': 0}, 'interval'), ({'interval': 1e9}, 'interval'), ({'interval': None}, 'interval'),
    ({'timeout': -1}, 'timeout'), ({'timeout': 31}, 'timeout'), ({'timeout': 'soon'}, 'timeout'),
    ({'wait': 'yes'}, 'wait'), ({'wait': 1}, 'wait'),
    ({'cuont': 3}, 'cuont'),
])
def test_each_malformed_or_out_of_range_field_is_400_naming_it(api, change, field):
    status, body, _ = api('POST', '/probe/probes', dict(GOOD, **change))
    assert status == 400 and body['error'].startswith(field + ':'), body


@pytest.mark.parametrize('change, field', [
    ({'kind': 'ping'}, 'kind'), ({'kind': None}, 'kind'), ({'kind': 'TCP'}, 'kind'),
    ({'kind': 'tcp'}, 'dst_port'), ({'kind': 'tcp', 'dst_port': 0}, 'dst_port'),
    ({'kind': 'udp', 'dst_port': 65536}, 'dst_port'), ({'kind': 'tcp', 'dst_port': '80'}, 'dst_port'),
    ({'kind': 'tcp', 'dst_port': True}, 'dst_port'), ({'dst_port': 80}, 'dst_port'),
    ({'kind': 'arp', 'dst_port': 80}, 'dst_port'),
    ({'kind': 'udp', 'dst_port': 53, 'payload': 'xyz0'}, 'payload'),
    ({'kind': 'udp', 'dst_port': 53, 'payload': 'abc'}, 'payload'),
    ({'kind': 'udp', 'dst_port': 53, 'payload': 7}, 'payload'),
    ({'kind': 'udp', 'dst_port': 53, 'payload': '00' * 1025}, 'payload'),
    ({'kind': 'tcp', 'dst_port': 80, 'payload': '00'}, 'payload'),
    ({'kind': 'dhcp'}, 'dst_ip'), ({'kind': 'arp'}, 'dst_mac'),
    ({'kind': 'arp', 'dst_mac': None, 'gateway': '10.0.0.254'}, 'gateway'),
    ({'kind': 'dhcp', 'dst_ip': None, 'dst_mac': None, 'src_ip': 'fd00::1'}, 'src_ip'),
    ({'dst_ip': 'fd00::2'}, 'dst_ip'), ({'gateway': 'fd00::1'}, 'gateway'),
    ({'kind': 'tcp', 'dst_port': 80, 'dst_ip': 'fd00::2'}, 'dst_ip'),
])
def test_each_bad_kind_field_is_400_naming_it(api, change, field):
    status, body, _ = api('POST', '/probe/probes', dict(GOOD, **change))
    assert status == 400 and body['error'].startswith(field + ':'), body


@pytest.mark.parametrize('extra, request_has', [
    ({'kind': 'tcp', 'dst_port': 443}, {'kind': 'tcp', 'dst_port': 443}),
    ({'kind': 'udp', 'dst_port': 53, 'payload': 'ABCD'}, {'kind': 'udp', 'payload': 'abcd'}),
    ({'kind': 'arp', 'dst_mac': None}, {'kind': 'arp', 'dst_mac': None}),
    ({'kind': 'dhcp', 'dst_mac': None, 'dst_ip': None, 'src_ip': None},
     {'kind': 'dhcp', 'dst_ip': None, 'src_mac': '02:00:00:00:00:01'}),
])
def test_every_kind_starts_with_its_fields_normalised(api, extra, request_has):
    body = {k: v for k, v in dict(GOOD, **extra).items() if v is not None}
    status, result, _ = api('POST', '/probe/probes', body)
    assert status == 201, result
    assert result['request'].items() >= request_has.items()


def test_a_monitor_takes_a_kind_for_all_its_pairs_and_keeps_it_in_its_definition(api):
    pair = {k: GOOD[k] for k in ('dpid', 'in_port', 'src_ip', 'dst_ip')}
    monitor = {'name': 'web', 'interval': 5, 'kind': 'tcp', 'dst_port': 443, 'probes': [pair]}
    status, body, _ = api('POST', '/probe/monitors', monitor)
    assert status == 201, body
    assert (body['kind'], body['dst_port']) == ('tcp', 443) and 'kind' not in body['probes'][0]
    status, body, _ = api('POST', '/probe/monitors', dict(monitor, name='w2', dst_port=None))
    assert status == 400 and body['error'].startswith('dst_port:')
    mesh = [{'dpid': GOOD['dpid'], 'in_port': 'tap1', 'ip': '10.0.0.1'},
            {'dpid': GOOD['dpid'], 'in_port': 'tap2', 'ip': '10.0.0.2'}]
    status, body, _ = api('POST', '/probe/monitors', {'name': 'd', 'interval': 5,
                                                       'kind': 'dhcp', 'mesh': mesh})
    assert status == 400 and body['error'].startswith('kind:')
    status, body, _ = api('POST', '/probe/monitors', {'name': 'a', 'interval': 5,
                                                       'kind': 'arp', 'mesh': mesh})
    assert status == 201 and body['kind'] == 'arp', body


@pytest.mark.parametrize('missing', sorted(set(GOOD) - {'src_mac', 'dst_mac'}))
def test_each_missing_field_is_400_naming_it(api, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    status, error, _ = api('POST', '/probe/probes', body)
    assert status == 400 and error['error'] == missing + ': missing'


@pytest.mark.parametrize('change, field', [
    ({'dpid': '00000000000000ff'}, 'dpid'), ({'in_port': 9}, 'in_port'),
    ({'in_port': 'nope'}, 'in_port')])
def test_unknown_switch_or_port_is_404(api, change, field):
    status, body, _ = api('POST', '/probe/probes', dict(GOOD, **change))
    assert status == 404 and body['error'].startswith(field + ':')


def test_unknown_probe_is_404_and_a_wrong_method_is_405(api):
    assert api('GET', '/probe/probes/nope')[0] == 404
    assert api('DELETE', '/probe/probes/nope')[0] == 404
    status, _, res = api('PUT', '/probe/probes')
    assert status == 405 and res.headers['Allow'] == 'GET, POST'
    assert api('DELETE', '/probe/switches')[0] == 405


def test_too_many_running_probes_is_429(api):
    api.app.prober.settings = api.app.settings = type(api.app.settings)(max_active_probes=1)
    assert api('POST', '/probe/probes', GOOD)[0] == 201
    status, body, _ = api('POST', '/probe/probes', GOOD)
    assert status == 429 and 'max_active_probes' in body['error']


def test_an_internal_failure_is_a_json_500_and_the_app_keeps_serving(api, monkeypatch):
    def broken(request):
        raise RuntimeError('boom')
    monkeypatch.setattr(api.app, 'start_probe', broken)
    status, body, _ = api('POST', '/probe/probes', GOOD)
    assert status == 500 and 'boom' in body['error']
    assert api('GET', '/probe/switches')[0] == 200


def test_batch_starts_many_probes_and_names_the_bad_element(api):
    status, body, _ = api('POST', '/probe/batch', {'probes': [GOOD, dict(GOOD, dst_ip='10.0.0.3')]})
    assert status == 201 and [p['state'] for p in body['probes']] == ['running'] * 2
    status, body, _ = api('POST', '/probe/batch', {'probes': [GOOD, dict(GOOD, count=0)]})
    assert status == 400 and body['error'].startswith('probes[1].count:')
    status, body, _ = api('POST', '/probe/batch', {'probes': [GOOD, dict(GOOD, in_port=9)]})
    assert status == 404 and body['error'].startswith('probes[1].in_port:')
    for bad in ({'probes': []}, {'probes': GOOD}, {}, {'probes': [GOOD], 'x': 1}):
        status, body, _ = api('POST', '/probe/batch', bad)
        assert status == 400, bad
    assert api('GET', '/probe/stats')[1]['running'] == 2   # the failed batches started none


def test_stats_count_probes_and_messages(api):
    api('POST', '/probe/probes', GOOD)
    status, body, _ = api('GET', '/probe/stats')
    assert status == 200 and body['running'] == 1 and body['catches'] == 1
    assert body['switches'] == 1 and body['counters']['probes_started'] == 1
    assert body['counters']['flow_reads'] == 1 and body['catch_flows'] == 0
    api.switch.confirm_all(0.0)      # the switch sends its flows: one delivers to the port
    body = api('GET', '/probe/stats')[1]
    assert body['catch_flows'] == 1 and body['counters']['flow_mods'] == 1


def test_post_switches_dials_a_passive_listener_once_and_validates_the_address(api):
    dialled = []
    api.app.dial = lambda host, port: (host, port) not in dialled and not dialled.append((host, port))
    status, body, _ = api('POST', '/probe/switches', {'address': '127.0.0.1:6654'})
    assert (status, body) == (202, {'address': '127.0.0.1:6654', 'dialled': True})
    assert api('POST', '/probe/switches', {'address': '127.0.0.1:6654'})[1]['dialled'] is False
    for bad in ({'address': 'localhost:1'}, {'address': '127.0.0.1:0'}, {'address': 5}, {},
                {'address': '127.0.0.1:1', 'x': 1}):
        status, body, _ = api('POST', '/probe/switches', bad)
        assert status == 400 and body['error'].split(':')[0] in ('address', 'x'), body


MESH = {'name': 'tenant-a', 'interval': 10, 'count': 2, 'mesh': [
    {'dpid': '0000000000000001', 'in_port': 'tap1', 'mac': '02:00:00:00:00:01',
     'ip': '10.0.0.1', 'name': 'vm1'},
    {'dpid': '0000000000000001', 'in_port': 2, 'mac': '02:00:00:00:00:02',
     'ip': '10.0.0.2', 'name': 'vm2'}]}


def test_monitors_are_created_listed_replaced_and_deleted(api):
    status, body, res = api('POST', '/probe/monitors', MESH)
    assert status == 201 and res.headers['Location'].endswith('/probe/monitors/tenant-a')
    assert [(p['src'], p['dst'], p['status']) for p in body['pairs']] == [
        ('vm1', 'vm2', 'waiting'), ('vm2', 'vm1', 'waiting')]
    assert body['mesh'][0]['in_port'] == 'tap1' and body['echo_interval'] == 0.2
    assert api('POST', '/probe/monitors', MESH)[:2] == (
        409, {'error': 'name: a monitor named tenant-a exists'})
    status, listed, _ = api('GET', '/probe/monitors')
    assert status == 200 and [m['name'] for m in listed] == ['tenant-a']
    assert 'history' not in listed[0]['pairs'][0]
    assert api('GET', '/probe/monitors/tenant-a')[1]['pairs'][0]['history'] == []
    status, body, _ = api('PUT', '/probe/monitors/tenant-a', {k: v for k, v in MESH.items()
                                                          if k != 'name'})
    assert status == 200 and body['name'] == 'tenant-a'
    assert api('PUT', '/probe/monitors/other', MESH)[:2] == (
        400, {'error': 'name: must be other, as in the URL'})
    assert api('PUT', '/probe/monitors/other', dict(MESH, name='other'))[0] == 201
    assert api('DELETE', '/probe/monitors/tenant-a')[0] == 200
    assert api('DELETE', '/probe/monitors/tenant-a')[:2] == (
        404, {'error': 'monitor tenant-a not found'})
    assert [m['name'] for m in api('GET', '/probe/monitors')[1]] == ['other']


def test_a_monitor_on_an_unknown_switch_or_port_is_404_naming_the_endpoint(api):
    bad = dict(MESH, mesh=[MESH['mesh'][0], dict(MESH['mesh'][1], in_port=9)])
    assert api('POST', '/probe/monitors', bad)[:2] == (
        404, {'error': "mesh[1].in_port: switch 0000000000000001 has no port 9"})
    bad = dict(MESH, mesh=[dict(MESH['mesh'][0], dpid=7), MESH['mesh'][1]])
    assert api('POST', '/probe/monitors', bad)[:2] == (
        404, {'error': 'mesh[0].dpid: no connected switch 0000000000000007'})


def test_metrics_are_the_prometheus_text_format(api):
    from prometheus_client.parser import text_string_to_metric_families
    api('POST', '/probe/monitors', MESH)
    res = Request.blank('/metrics').get_response(api.app_wsgi)
    assert res.status_int == 200 and res.content_type == 'text/plain'
    names = {f.name for f in text_string_to_metric_families(res.text)}
    assert {'ryu_probe_switch_up', 'ryu_probe_packet_outs', 'ryu_probe_probes',
            'ryu_probe_rtt_seconds', 'ryu_probe_echoes_sent'} <= names


def test_the_status_page_is_served_from_the_package(api):
    res = Request.blank('/probe/ui').get_response(api.app_wsgi)
    assert res.status_int == 301 and res.location.endswith('/probe/ui/')
    res = Request.blank('/probe/ui/nothing.js').get_response(api.app_wsgi)
    assert res.status_int == 404
    for name, kind in [('', 'text/html'), ('app.js', 'text/javascript'),
                       ('style.css', 'text/css')]:
        res = Request.blank('/probe/ui/' + name).get_response(api.app_wsgi)
        assert (res.status_int, res.content_type) == (200, kind) and res.body


def test_a_waited_batch_has_one_deadline_for_all_its_probes(api, monkeypatch):
    """Three probes that never end: the batch answers after WAIT_LIMIT, not 3 x that."""
    import types
    from ryu_apps import probe_app
    from ryu_apps.probes import Probe, ProbeRequest
    clock, waits = [0.0], []

    class Event:
        def wait(self, timeout):
            waits.append(timeout)
            clock[0] += timeout

    monkeypatch.setattr(probe_app, 'time', types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(probe_app, 'hub', types.SimpleNamespace(Event=Event))
    request = ProbeRequest(dpid=1, in_port=1, src_mac=None, src_ip='10.0.0.1', dst_mac=None,
                           dst_ip='10.0.0.2')
    api.app.wait_probes([Probe(str(n), request, 0.0) for n in range(3)])
    assert waits == [probe_app.WAIT_LIMIT] and clock[0] == probe_app.WAIT_LIMIT
