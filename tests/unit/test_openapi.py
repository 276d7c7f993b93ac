"""The OpenAPI document (openapi.py) against the routes the app really registers, and the
answers it really gives."""
import schemathesis

from test_rest import GOOD, api  # noqa: F401 (fixture)
from ryu_apps import openapi
from ryu_apps.kinds import KINDS
from ryu_apps.options import Settings

METHODS = {'get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'}


def registered(wsgi) -> set[tuple[str, str]]:
    """(path, method) of every route in Ryu's WSGI mapper; the methods are those the
    handler's `_methods` allows (the mapper itself routes any)."""
    routes = set()
    for route in wsgi.mapper.matchlist:
        handler = getattr(route.defaults['controller'], route.defaults['action'])
        assert hasattr(handler, 'methods'), '%s: not wrapped in rest._methods' % route.routepath
        routes |= {(route.routepath, method.lower()) for method in handler.methods}
    return routes


def documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document['paths'].items()
            for method in item if method in METHODS}


def test_the_document_has_every_route_and_method_registered_and_no_other(api):
    assert documented(openapi.document(Settings())) == registered(api.app_wsgi)


def test_the_document_is_served_with_the_apps_own_limits(api):
    status, body, _ = api('GET', '/probe/openapi.json')
    assert status == 200 and body == openapi.document(api.app.settings)
    kinds = body['components']['schemas']['ProbeRequest']['oneOf']
    assert [k['properties']['kind']['const'] for k in kinds] == list(KINDS)
    assert {k['properties']['count']['maximum'] for k in kinds} == {api.app.settings.max_count}


def test_real_answers_conform_to_the_document(api):
    """Answers that random requests seldom reach (2xx of a started probe, a monitor, a
    cancelled probe) validate against the document, as schemathesis checks them."""
    schema = schemathesis.openapi.from_wsgi('/probe/openapi.json', api.app_wsgi)
    pair = {k: GOOD[k] for k in ('dpid', 'in_port', 'src_ip', 'dst_ip')}
    monitor = {'name': 'web', 'interval': 5, 'kind': 'tcp', 'dst_port': 443, 'probes': [pair]}
    calls = [('POST', '/probe/probes', {'body': GOOD}),
             ('POST', '/probe/batch', {'body': {'probes': [GOOD, dict(GOOD, kind='arp',
                                                                        dst_mac=None)]}}),
             ('GET', '/probe/probes', {}), ('POST', '/probe/monitors', {'body': monitor}),
             ('GET', '/probe/monitors', {}), ('GET', '/probe/monitors/{name}',
                                              {'path_parameters': {'name': 'web'}}),
             ('GET', '/probe/switches', {}), ('GET', '/probe/stats', {}),
             ('GET', '/metrics', {}), ('GET', '/probe/ui/', {}),
             ('GET', '/probe/openapi.json', {})]
    for method, path, given in calls:
        case = schema[path][method].Case(**given)
        response = case.call()
        assert response.status_code < 300, (method, path, response.text)
        case.validate_response(response)
    probe_id = api('GET', '/probe/probes')[1][0]['id']
    for method in ('GET', 'DELETE'):
        case = schema['/probe/probes/{probe_id}'][method].Case(
            path_parameters={'probe_id': probe_id})
        case.validate_response(case.call())
