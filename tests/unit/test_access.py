"""Who may call the API (access.py): tokens, read-only tokens, body and rate limits, and
the audit log, through the real WSGI routes."""
import json
import logging
import re

import pytest
from ryu.app.wsgi import WSGIApplication
from webob import Request

from helpers import Switch
from ryu_apps.access import Access, Token, fingerprint, load_tokens
from ryu_apps.options import Settings
from ryu_apps.probe_app import ProbeApp

PROBE = {'dpid': '0000000000000001', 'in_port': 'tap1', 'src_mac': '02:00:00:00:00:01',
         'src_ip': '10.0.0.1', 'dst_mac': '02:00:00:00:00:02', 'dst_ip': '10.0.0.2'}
ADMIN, READER = Token(b's3cret-admin', 'alice', False), Token(b's3cret-reader', 'bob', True)


@pytest.fixture
def api():
    wsgi = WSGIApplication()
    app = ProbeApp(wsgi=wsgi)
    Switch(app.prober)
    app.access = Access(tokens=[ADMIN, READER])

    def call(method, path, body=None, token=None, raw=None, **headers):
        req = Request.blank(path, method=method, remote_addr='192.0.2.7')
        if token is not None:
            req.headers['Authorization'] = 'Bearer ' + token
        req.headers.update(headers)
        if body is not None or raw is not None:
            req.body = raw if raw is not None else json.dumps(body).encode()
        res = req.get_response(wsgi)
        return res.status_int, res
    call.app = app
    return call


def test_without_a_valid_token_every_call_is_401_with_a_json_error(api):
    for token in (None, 'wrong', 's3cret-admin-and-more', ''):
        status, res = api('GET', '/probe/switches', token=token)
        assert status == 401 and res.headers['WWW-Authenticate'] == 'Bearer'
        assert res.json['error'].startswith('authorization:')
    status, res = api('GET', '/probe/switches', Authorization='Basic s3cret-admin')
    assert status == 401
    assert api('GET', '/probe/switches', token='s3cret-admin')[0] == 200


def test_a_read_only_token_reads_but_cannot_start_probes_or_change_monitors(api):
    assert api('GET', '/probe/probes', token='s3cret-reader')[0] == 200
    status, res = api('POST', '/probe/probes', PROBE, token='s3cret-reader')
    assert status == 403 and res.json['error'].startswith('authorization:')
    assert api('DELETE', '/probe/monitors/x', token='s3cret-reader')[0] == 403
    assert api('POST', '/probe/probes', PROBE, token='s3cret-admin')[0] == 201


def test_metrics_can_be_left_open_and_the_page_files_always_are(api):
    assert api('GET', '/metrics')[0] == 401
    api.app.access.metrics_open = True
    assert api('GET', '/metrics')[0] == 200
    assert api('GET', '/probe/probes')[0] == 401
    assert api('GET', '/probe/ui/app.js')[0] == 200


def test_a_body_over_the_cap_is_413_unread(api):
    api.app.access.max_body = 2048
    status, res = api('POST', '/probe/probes', raw=b' ' * 4096, token='s3cret-admin')
    assert status == 413 and res.json['error'].startswith('body:')


def test_past_the_rate_a_client_gets_429_with_retry_after(api):
    api.app.access.rate, api.app.access.burst = 0.5, 3
    statuses = [api('GET', '/probe/stats', token='s3cret-admin') for _ in range(4)]
    assert [s for s, _ in statuses] == [200, 200, 200, 429]
    assert statuses[-1][1].headers['Retry-After'] == '2'
    assert api('GET', '/probe/stats', token='guess')[0] == 429    # before the token check


def test_the_rate_limit_is_per_client_and_refills():
    access = Access(rate=1.0, burst=1)
    assert access.check('GET', '/p', None, 'a', None, 0.0)[1] is None
    assert access.check('GET', '/p', None, 'a', None, 0.5)[1][0] == 429
    assert access.check('GET', '/p', None, 'b', None, 0.5)[1] is None
    assert access.check('GET', '/p', None, 'a', None, 1.1)[1] is None


def test_every_start_and_change_is_audited_with_who(api, caplog):
    caplog.set_level(logging.INFO, logger='ryu_probe.audit')
    status, res = api('POST', '/probe/probes', dict(PROBE, kind='tcp', dst_port=443),
                      token='s3cret-admin')
    assert status == 201
    monitor = {'name': 'web', 'interval': 5, 'probes': [
        {k: PROBE[k] for k in ('dpid', 'in_port', 'src_ip', 'dst_ip')}]}
    assert api('POST', '/probe/monitors', monitor, token='s3cret-admin')[0] == 201
    assert api('DELETE', '/probe/monitors/web', token='s3cret-admin')[0] == 200
    stamped = [r.getMessage().split(' ', 1) for r in caplog.records
               if r.name == 'ryu_probe.audit']
    assert all(re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$', t) for t, _ in stamped)
    lines = [line for _, line in stamped]
    assert lines[0].startswith('probe by alice@192.0.2.7: %s tcp/443 from 0000000000000001 '
                               'port 1 10.0.0.1 -> 10.0.0.2' % res.json['id'])
    assert lines[1] == 'monitor add by alice@192.0.2.7: web: 1 pairs, icmp every 5 s'
    assert lines[2] == 'monitor delete by alice@192.0.2.7: web'


def test_token_files_name_their_tokens_and_an_empty_file_is_refused(tmp_path):
    path = tmp_path / 'tokens'
    path.write_text('# operators\nalice s3cret-admin\n\nanonymous-token  # no name\n')
    assert load_tokens(str(path), False) == [
        Token(b's3cret-admin', 'alice', False),
        Token(b'anonymous-token', fingerprint(b'anonymous-token'), False)]
    path.write_text('# nothing\n')
    with pytest.raises(ValueError):
        load_tokens(str(path), False)
    with pytest.raises(ValueError):
        Access.from_settings(Settings(api_readonly_token_file=str(path)))
