"""Properties over any input: no bytes make a parser raise, and no JSON body makes the
REST API answer anything but 2xx or 4xx.

Random bytes seldom get past an Ethernet header, so the frames are also built well
formed (checksums right) up to the layer whose contents are random. Random JSON seldom
names a field, so the bodies are also good ones with fields set to any JSON value.
"""
import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_rest import GOOD, api  # noqa: F401 (fixture)
from ryu_apps import packet, rest
from ryu_apps.kinds import KINDS

PARSERS = {  # parser -> what it returns when it parses
    packet.parse_echo_reply: packet.EchoReply,
    lambda f: packet.parse_echo(f, packet.ECHO_REQUEST): packet.EchoReply,
    lambda f: packet.parse_echo6(f, packet.ECHO6_REPLY): packet.EchoReply,
    lambda f: packet.parse_echo6(f, packet.ECHO6_REQUEST): packet.EchoReply,
    packet.parse_arp: packet.Arp,
    packet.parse_neighbor_advertisement: packet.Na,
    packet.parse_neighbor_solicitation: packet.Ns,
    packet.parse_tcp: packet.Tcp,
    packet.parse_udp: packet.Udp,
    packet.parse_unreachable: packet.Unreachable,
    packet.parse_dhcp_offer: packet.Offer,
}
MAC = st.binary(min_size=6, max_size=6)
ICMP_TYPES = [packet.ECHO_REPLY, packet.ECHO_REQUEST, packet.UNREACHABLE,
              packet.UNREACHABLE6, packet.ECHO6_REQUEST, packet.ECHO6_REPLY,
              packet.NEIGHBOR_ADVERTISEMENT]
PORTS = st.sampled_from([packet.DHCP_SERVER_PORT, packet.DHCP_CLIENT_PORT, 53]) | st.integers(
    0, 0xffff)
INNER = packet.tcp_syn(bytes(6), bytes(6), bytes(4), bytes(4), 1, 2, 3)[14:]   # to quote


@st.composite
def l4(draw, proto: int) -> bytes:
    """A segment of `proto` whose checksum field is left for packet._ip_frame to fill."""
    if proto == packet.UDP:
        body = draw(st.binary(max_size=64) | st.builds(
            lambda head, options: bytes([2, 1, 6]) + head + b'\x63\x82\x53\x63' + options,
            st.binary(min_size=233, max_size=233), st.binary(max_size=40)))   # a BOOTP reply
        return struct.pack('!HHHH', draw(PORTS), draw(PORTS), 8 + len(body), 0) + body
    if proto == packet.TCP:
        return draw(st.binary(min_size=20, max_size=60))
    head = bytes([draw(st.sampled_from(ICMP_TYPES)), draw(st.integers(0, 4)), 0, 0])
    return head + draw(st.binary(max_size=40) | st.builds(
        lambda unused, n: unused + INNER[:n], st.binary(min_size=4, max_size=4),
        st.integers(0, len(INNER))))


@st.composite
def frames(draw) -> bytes:
    """An Ethernet frame, perhaps VLAN-tagged: IP with a random L4 segment (checksums
    right), or ARP with random fields; perhaps cut short."""
    src, dst = draw(MAC), draw(MAC)
    if draw(st.booleans()):
        version = draw(st.sampled_from([4, 16]))
        proto = draw(st.sampled_from([packet.ICMP if version == 4 else packet.ICMPV6,
                                      packet.TCP, packet.UDP]))
        frame = packet._ip_frame(src, dst, draw(st.binary(min_size=version, max_size=version)),
                                 draw(st.binary(min_size=version, max_size=version)), proto,
                                 draw(l4(proto)), draw(st.integers(0, 63)),
                                 draw(st.sampled_from([packet.TTL, packet.ND_HOP_LIMIT])))
    else:
        frame = dst + src + struct.pack('!HHHBBH', packet.ETH_ARP, 1, packet.ETH_IPV4, 6, 4,
                                        draw(st.integers(0, 3))) + draw(st.binary(max_size=40))
    tags = b''.join(struct.pack('!HH', draw(st.sampled_from(packet.VLAN_TPIDS)),
                                draw(st.integers(0, 0xffff)))
                    for _ in range(draw(st.integers(0, 3))))
    frame = frame[:12] + tags + frame[12:]
    return frame[:draw(st.integers(0, len(frame)))] if draw(st.booleans()) else frame


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | frames())
def test_any_bytes_give_each_parser_a_parse_or_none_never_an_exception(data):
    for parse, parsed in PARSERS.items():
        result = parse(data)
        assert result is None or isinstance(result, parsed)
    for kind in KINDS.values():
        kind.key_of(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
# What looks right to a field's own check, as a client's near miss would
LOOKS_VALID = {'mac': st.from_regex(rest.MAC), 'payload': st.from_regex(rest.HEX),
               'dpid': st.from_regex(rest.HEX_DPID) | st.integers(0, 2 ** 64),
               'name': st.from_regex(rest.MONITOR_NAME) | st.from_regex(rest.LABEL),
               'ip': st.sampled_from(['10.0.0.1', 'fd00::1', '10.0.0.1\n', '::ffff:10.0.0.1']),
               'kind': st.sampled_from(['icmp', 'tcp', 'udp', 'arp', 'dhcp', 'ICMP'])}
LOOKS_VALID.update({f: LOOKS_VALID['mac'] for f in ('src_mac', 'dst_mac')},
                   **{f: LOOKS_VALID['ip'] for f in ('src_ip', 'dst_ip', 'gateway')})


def value(field: str):
    """Any JSON, or what looks right for `field`."""
    return JSON | LOOKS_VALID.get(field, JSON)


PAIR = {k: GOOD[k] for k in ('dpid', 'in_port', 'src_ip', 'dst_ip')}
KIND_FIELDS = [{}, {'kind': 'tcp', 'dst_port': 443}, {'kind': 'udp', 'dst_port': 53,
                                                       'payload': 'abcd'},
               {'kind': 'arp', 'dst_mac': None}, {'kind': 'dhcp', 'dst_mac': None, 'dst_ip': None}]
PROBES = [dict(GOOD, **kind) for kind in KIND_FIELDS]       # one good request of each kind
MONITORS = [{'name': 'm', 'interval': 5, 'probes': [PAIR]},
            {'name': 'n', 'interval': 5, 'kind': 'udp', 'dst_port': 53, 'mesh': [
                {'dpid': GOOD['dpid'], 'in_port': 'tap1', 'ip': '10.0.0.1'},
                {'dpid': GOOD['dpid'], 'in_port': 'tap2', 'ip': '10.0.0.2'}]}]
FIELDS = sorted(set(GOOD) | {'gateway', 'kind', 'dst_port', 'payload', 'count', 'interval',
                             'timeout', 'wait', 'name', 'probes', 'mesh', 'echo_interval',
                             'mac', 'ip', 'address'})


def changed(goods: list[dict]):
    """One of `goods` with some of its fields, or of the known ones, set to any JSON
    value (or left out)."""
    return st.builds(lambda good, changes, dropped: {
        k: v for k, v in dict(good, **changes).items() if k not in dropped},
        st.sampled_from(goods), st.lists(st.sampled_from(FIELDS).flatmap(
            lambda field: st.tuples(st.just(field), value(field))), max_size=3).map(dict),
        st.sets(st.sampled_from(FIELDS), max_size=2))


BODIES = {
    '/probe/probes': changed(PROBES),
    '/probe/batch': st.builds(lambda probes, wait: {'probes': probes, 'wait': wait},
                              st.lists(changed(PROBES), min_size=1, max_size=3) | JSON,
                              st.booleans()),
    '/probe/monitors': changed(MONITORS) | st.builds(
        lambda monitor, pair: dict(monitor, probes=[pair]),
        st.sampled_from([{'name': 'p', 'interval': 5, **kind} for kind in KIND_FIELDS[:3]]),
        changed([PAIR])),
    # schemathesis leaves it out (the app would dial what it is given): here, it dials nothing
    '/probe/switches': changed([{'address': '127.0.0.1:6654'}]),
}


@pytest.mark.parametrize('path', sorted(BODIES))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])   # one app takes them all
@given(data=st.data())
def test_any_json_body_is_answered_2xx_or_4xx_never_5xx(api, path, data):
    api.app.wait_probes = lambda probes: None     # no timer runs here: it would never end
    api.app.dial = lambda host, port: True
    body = data.draw(JSON | BODIES[path], label='body')
    raw = json.dumps(body).encode()
    status, answer, _ = api('POST', path, raw=raw)
    assert 200 <= status < 500, answer


# What the properties (and schemathesis) found, kept as examples: each was a 201 or a 500.
@pytest.mark.parametrize('path, body', [
    ('/probe/probes', dict(GOOD, kind=[])), ('/probe/probes', dict(GOOD, kind={})),
    ('/probe/batch', {'probes': [dict(GOOD, kind={})]}),
    ('/probe/monitors', dict(MONITORS[0], kind=['icmp'])),
    ('/probe/probes', dict(GOOD, src_mac='02:00:00:00:00:01\n')),
    ('/probe/probes', dict(GOOD, dpid='1\n')),
    ('/probe/probes', dict(GOOD, kind='udp', dst_port=53, payload='a\n')),
    ('/probe/probes', dict(GOOD, src_ip='fd00::1', dst_ip='fd00::2%eth0')),
    ('/probe/monitors', dict(MONITORS[0], name='web\n')),
    ('/probe/monitors', dict(MONITORS[0], probes=[dict(PAIR, name='x\n')])),
])
def test_a_value_that_only_looks_valid_is_400(api, path, body):
    status, answer, _ = api('POST', path, body)
    assert status == 400, answer


def test_a_body_nested_too_deep_to_decode_is_400(api):
    status, answer, _ = api('POST', '/probe/probes', raw=b'[' * 100000 + b']' * 100000)
    assert status == 400 and answer['error'].startswith('body:')
