"""The ryu-probe CLI without an app: its formatters fed JSON as the API answers it, its
argument parsing and exit statuses (per probe kind), and its errors. The API is either
nobody (a free port on 127.0.0.1: a real refused connection) or FakeApi, a stand-in for
cli.http that answers canned JSON."""
import io
import json
import socket

import pytest

from ryu_apps import cli

DPID = '0000000000000001'
REQUEST = {'dpid': DPID, 'in_port': 1, 'src_mac': '02:00:0a:00:00:01', 'src_ip': '10.0.0.1',
           'dst_mac': '02:00:0a:00:00:02', 'dst_ip': '10.0.0.2', 'count': 3, 'interval': 0.2,
           'timeout': 1.0}
DROP = {'direction': 'request', 'dpid': DPID, 'table': 0, 'reason': 'dropped',
        'detail': 'dropped', 'flow': {'table': 0, 'priority': 100, 'cookie': '0x0',
                                      'match': 'eth_type=0x800,ip_proto=1,ipv4_dst=10.0.0.2'}}
# As the app answers a probe whose MACs it could not find (probes.py: no echo went out).
UNRESOLVED = {'direction': 'request', 'dpid': DPID, 'table': None, 'flow': None,
              'reason': 'next-hop-unresolved',
              'detail': 'no ARP reply for 10.0.0.99 to 10.0.0.1, asked as the source VM from '
                        'port 1'}
SILENT = dict(UNRESOLVED, reason='source-not-answering',
              detail='10.0.0.1 did not answer an ARP probe for its own address out of port 1')


def probe(state='done', verdict='reachable', rtts=(0.412, 1.364, 12.34), sent=3, **extra):
    rtt = rtts and {'min': min(rtts), 'avg': sum(rtts) / len(rtts), 'max': max(rtts)}
    body = {'id': 'abc', 'state': state, 'verdict': verdict, 'sent': sent,
            'received': len(rtts), 'loss': 1 - len(rtts) / sent if sent else None,
            'rtt_ms': rtt or None, 'broken_at': None, 'error': None, 'request': REQUEST,
            'replies': [{'seq': 48594 + i, 'rtt_ms': r} for i, r in enumerate(rtts)]}
    return dict(body, **extra)


def pair(src, dst, status='ok', verdict='reachable', **extra):
    body = {'name': '%s->%s' % (src, dst), 'src': src, 'dst': dst, 'dpid': DPID,
            'status': status, 'verdict': verdict, 'loss': 0.0 if verdict else None,
            'rtt_ms': {'min': 0.3, 'avg': 0.5, 'max': 0.7} if verdict == 'reachable' else None,
            'broken_at': None, 'error': None, 'last_at': 990.0, 'changed_at': 940.0}
    return dict(body, **extra)


def monitor(name='tenant-a', pairs=(), mesh=None, **kind):
    body = {'name': name, 'interval': 10, 'count': 3, 'timeout': 1.0, 'echo_interval': 0.2,
            'kind': 'icmp', 'created_at': 900.0, 'pairs': list(pairs), **kind}
    if mesh:
        body['mesh'] = [{'dpid': DPID, 'in_port': i, 'mac': '02:00:0a:00:00:%02x' % i,
                         'ip': '10.0.0.%d' % i, 'name': n} for i, n in enumerate(mesh, 1)]
    else:
        body['probes'] = []
    return body


# --- ping ---------------------------------------------------------------------------

def test_ping_prints_a_line_per_reply_and_pings_statistics():
    assert cli.format_ping(probe()) == [
        'PING 10.0.0.2 from 10.0.0.1 port 1 on 0000000000000001',
        'from 10.0.0.2: seq=1 time=0.412 ms',
        'from 10.0.0.2: seq=2 time=1.36 ms',
        'from 10.0.0.2: seq=3 time=12.3 ms',
        '',
        '--- 10.0.0.2 ryu-probe statistics ---',
        '3 transmitted, 3 received, 0% loss',
        'rtt min/avg/max = 0.412/4.705/12.340 ms']


def test_ping_of_an_unreachable_pair_says_where_its_path_broke():
    lines = cli.format_ping(probe(verdict='unreachable', rtts=(), broken_at=DROP))
    assert lines[1:] == [
        '',
        '--- 10.0.0.2 ryu-probe statistics ---',
        '3 transmitted, 0 received, 100% loss',
        'verdict: unreachable',
        'broken at: request on 0000000000000001 table 0: dropped',
        '  flow:   table=0 priority=100 cookie=0x0 eth_type=0x800,ip_proto=1,ipv4_dst=10.0.0.2']


def test_ping_of_a_partial_pair_shows_its_loss_and_the_verdict():
    lines = cli.format_ping(probe(verdict='partial', rtts=(1.0,)))
    assert '3 transmitted, 1 received, 66.7% loss' in lines
    assert lines[-1] == 'verdict: partial'


def test_ping_of_a_probe_in_error_shows_the_error():
    lines = cli.format_ping(probe(state='error', verdict=None, rtts=(), sent=0,
                                  error='switch 0000000000000001 disconnected'))
    assert lines[-2:] == ['0 transmitted, 0 received, - loss',
                          'state: error: switch 0000000000000001 disconnected']


def test_broken_at_of_an_unfinished_walk_says_why():
    broken = {'direction': None, 'dpid': None, 'table': None, 'flow': None, 'reason': None,
              'detail': 'the switch disconnected'}
    assert cli.format_broken(broken) == ['broken at: unknown: the switch disconnected']
    assert cli.broken_summary(broken) == 'unknown'


def test_ping_header_shows_the_macs_the_app_found_after_their_ips():
    assert cli.format_ping(probe(), found=['src_mac', 'dst_mac'])[0] == (
        'PING 10.0.0.2 (02:00:0a:00:00:02) from 10.0.0.1 (02:00:0a:00:00:01) port 1 on '
        '0000000000000001')
    assert cli.format_ping(probe(), found=['dst_mac'])[0] == (
        'PING 10.0.0.2 (02:00:0a:00:00:02) from 10.0.0.1 port 1 on 0000000000000001')
    assert cli.format_ping(probe())[0] == 'PING 10.0.0.2 from 10.0.0.1 port 1 on 0000000000000001'


def test_ping_header_of_an_off_subnet_destination_shows_the_gateway_with_its_mac():
    routed = dict(REQUEST, dst_ip='10.2.0.3', dst_mac='02:00:0a:01:00:01', gateway='10.1.0.1')
    assert cli.format_ping(probe(request=routed), found=['src_mac', 'dst_mac'])[0] == (
        'PING 10.2.0.3 via 10.1.0.1 (02:00:0a:01:00:01) from 10.0.0.1 (02:00:0a:00:00:01) '
        'port 1 on 0000000000000001')


def test_ping_of_an_unresolved_next_hop_says_no_echo_went_out_and_what_was_asked():
    request = dict(REQUEST, dst_ip='10.0.0.99', dst_mac=None)
    lines = cli.format_ping(probe(verdict='next-hop-unresolved', rtts=(), sent=0,
                                  broken_at=UNRESOLVED, request=request),
                            found=['src_mac', 'dst_mac'])
    assert lines == [
        'PING 10.0.0.99 from 10.0.0.1 (02:00:0a:00:00:01) port 1 on 0000000000000001',
        '',
        '--- 10.0.0.99 ryu-probe statistics ---',
        '0 transmitted, 0 received, - loss',
        'verdict: next-hop-unresolved, no echo sent',
        'broken at: request on 0000000000000001: next-hop-unresolved',
        '  detail: no ARP reply for 10.0.0.99 to 10.0.0.1, asked as the source VM from port 1']
    assert cli.ping_status(probe(verdict='next-hop-unresolved', rtts=(), sent=0)) == 1


def test_ping_of_a_source_that_does_not_answer_says_so():
    request = dict(REQUEST, src_mac=None, dst_mac=None)
    lines = cli.format_ping(probe(verdict='source-not-answering', rtts=(), sent=0,
                                  broken_at=SILENT, request=request),
                            found=['src_mac', 'dst_mac'])
    assert lines[0] == 'PING 10.0.0.2 from 10.0.0.1 port 1 on 0000000000000001'
    assert lines[-3:] == [
        'verdict: source-not-answering, no echo sent',
        'broken at: request on 0000000000000001: source-not-answering',
        '  detail: 10.0.0.1 did not answer an ARP probe for its own address out of port 1']
    assert cli.broken_summary(SILENT) == 'request 0000000000000001 source-not-answering'
    assert cli.broken_summary(DROP) == 'request 0000000000000001 t0 dropped'


@pytest.mark.parametrize('kwargs, status', [
    (dict(), 0),
    (dict(verdict='partial', rtts=(1.0,)), 0),
    (dict(verdict='unreachable', rtts=()), 1),
    (dict(verdict='source-not-answering', rtts=(), sent=0), 1),
    (dict(verdict='next-hop-unresolved', rtts=(), sent=0), 1),
    (dict(state='error', verdict=None, rtts=()), 2),
    (dict(state='cancelled', verdict=None, rtts=(1.0,)), 2),
])
def test_ping_exits_0_if_any_reply_1_if_none_2_if_the_probe_did_not_end_done(kwargs, status):
    assert cli.ping_status(probe(**kwargs)) == status


@pytest.mark.parametrize('value, text', [(0.0412, '0.041'), (1.5, '1.50'), (12.34, '12.3'),
                                         (123.4, '123')])
def test_times_have_pings_precision(value, text):
    assert cli.ms(value) == text


# --- other kinds --------------------------------------------------------------------

TCP = dict(REQUEST, kind='tcp', dst_port=443)


def answered(request, verdict, replies, sent=3, **extra):
    """A done probe of another kind than icmp, with these replies (seq and rtt added)."""
    replies = [dict({'seq': 7 + i, 'rtt_ms': 0.412 * (i + 1)}, **r) for i, r in enumerate(replies)]
    return probe(verdict=verdict, rtts=[r['rtt_ms'] for r in replies], sent=sent,
                 request=request, replies=replies, **extra)


def test_the_clis_kinds_are_the_apps_with_the_same_verdicts_and_successes():
    from ryu_apps import kinds
    assert set(cli.KINDS) == set(kinds.KINDS)
    for name, kind in kinds.KINDS.items():
        assert set(cli.KINDS[name].verdicts) == set(kind.verdicts), name
        assert set(cli.KINDS[name].success) == kind.success, name
    assert set(cli.OUTCOMES) == set(cli.CELLS) == set(cli.COLOURS)


def test_tcp_prints_a_line_per_answer_and_the_verdict_with_the_counts():
    lines = cli.format_ping(answered(TCP, 'open', [{'answer': 'open'}] * 2 + [{'answer': 'closed'}],
                                     src_port=61001), found=['src_mac', 'dst_mac'])
    assert lines == [
        'TCP 10.0.0.2:443 (02:00:0a:00:00:02) from 10.0.0.1 (02:00:0a:00:00:01) port 1 on '
        '0000000000000001',
        'tcp 10.0.0.2:443 open: SYN-ACK in 0.412 ms',
        'tcp 10.0.0.2:443 open: SYN-ACK in 0.824 ms',
        'tcp 10.0.0.2:443 closed: RST in 1.24 ms',
        '',
        'verdict: open, 3 SYNs sent, 3 answered, rtt min/avg/max = 0.412/0.824/1.236 ms']


def test_an_icmp_unreachable_answer_is_told_with_its_code_named():
    udp = dict(REQUEST, kind='udp', dst_port=53, dst_ip='fd00::2', src_ip='fd00::1')
    lines = cli.format_ping(answered(udp, 'closed', [
        {'answer': 'closed', 'icmp': 'icmpv6 unreachable code 4 from fd00::2'},
        {'answer': 'filtered', 'icmp': 'icmpv6 unreachable code 7 from fd00::fe'}], sent=2))
    assert lines[1:3] == [
        'udp [fd00::2]:53 closed: ICMPv6 port unreachable from fd00::2 in 0.412 ms',
        'udp [fd00::2]:53 filtered: icmpv6 unreachable code 7 from fd00::fe in 0.824 ms']
    assert lines[-1].startswith('verdict: closed, 2 datagrams sent, 2 answered, rtt ')
    assert cli.icmp_text('icmp unreachable code 13 from 10.0.0.254') == (
        'ICMP administratively prohibited from 10.0.0.254')


def test_udp_says_how_long_a_reply_was_and_silence_is_open_or_filtered():
    udp = dict(REQUEST, kind='udp', dst_port=9999, payload='70726f6265')
    assert cli.format_ping(answered(udp, 'open', [{'answer': 'open', 'reply_bytes': 5}],
                                    sent=1))[1] == 'udp 10.0.0.2:9999 open: 5-byte reply in 0.412 ms'
    assert cli.format_ping(answered(udp, 'open|filtered', []))[1:] == [
        '', 'verdict: open|filtered, 3 datagrams sent, 0 answered']


def test_arp_shows_the_mac_that_answered():
    arp = dict(REQUEST, kind='arp', dst_mac=None)
    lines = cli.format_ping(answered(arp, 'reachable', [{'mac': '02:00:0a:00:00:02'}], sent=1,
                                     mac='02:00:0a:00:00:02'), found=['dst_mac'])
    assert lines == ['ARP 10.0.0.2 from 10.0.0.1 port 1 on 0000000000000001',
                     'arp reply from 10.0.0.2 at 02:00:0a:00:00:02 in 0.412 ms',
                     '',
                     'verdict: reachable, 1 request sent, 1 answered, rtt min/avg/max = '
                     '0.412/0.412/0.412 ms']


def test_dhcp_shows_the_offer_and_has_no_destination():
    dhcp = dict(REQUEST, kind='dhcp', src_ip=None, dst_ip=None, dst_mac=None)
    offer = {'server': '10.0.0.2', 'server_mac': '02:00:0a:00:00:02', 'offered': '10.0.0.11',
             'router': '10.0.0.254', 'lease_seconds': 600}
    lines = cli.format_ping(answered(dhcp, 'reachable', [offer], sent=1, offer=offer))
    assert lines[:2] == [
        'DHCP from 02:00:0a:00:00:01 port 1 on 0000000000000001',
        'dhcp offer of 10.0.0.11 from 10.0.0.2 (02:00:0a:00:00:02) in 0.412 ms, router '
        '10.0.0.254, lease 600 s']
    bare = dict(offer, router=None, lease_seconds=None)
    assert cli.format_answer(dhcp, dict(bare, rtt_ms=1.5)) == (
        'dhcp offer of 10.0.0.11 from 10.0.0.2 (02:00:0a:00:00:02) in 1.50 ms')
    found = dict(dhcp, src_ip='10.0.0.1')
    assert cli.ping_header(found, ['src_mac']) == (
        'DHCP from 10.0.0.1 (02:00:0a:00:00:01) port 1 on 0000000000000001')
    assert cli.format_ping(answered(dhcp, 'unreachable', [], sent=2))[-1] == (
        'verdict: unreachable, 2 DISCOVERs sent, 0 answered')


def test_a_tcp_probe_that_sent_nothing_or_ended_in_error_says_so():
    lines = cli.format_ping(probe(verdict='next-hop-unresolved', rtts=(), sent=0,
                                  broken_at=UNRESOLVED, request=dict(TCP, dst_mac=None)))
    assert lines[1:3] == ['', 'verdict: next-hop-unresolved, no SYN sent']
    assert lines[3] == 'broken at: request on 0000000000000001: next-hop-unresolved'
    lines = cli.format_ping(probe(state='error', verdict=None, rtts=(), error='switch gone',
                                  request=TCP))
    assert lines[-2:] == ['3 SYNs sent, 0 answered', 'state: error: switch gone']


@pytest.mark.parametrize('kind, verdict, status', [
    ('tcp', 'open', 0), ('tcp', 'closed', 1), ('tcp', 'filtered', 1),
    ('udp', 'open', 0), ('udp', 'closed', 1), ('udp', 'filtered', 1), ('udp', 'open|filtered', 1),
    ('arp', 'reachable', 0), ('arp', 'unreachable', 1),
    ('dhcp', 'reachable', 0), ('dhcp', 'unreachable', 1),
    ('tcp', 'next-hop-unresolved', 1), ('arp', 'source-not-answering', 1),
])
def test_ping_exits_0_on_its_kinds_success_and_1_on_any_other_verdict(kind, verdict, status):
    done = probe(verdict=verdict, request=dict(REQUEST, kind=kind))    # replies or not
    assert cli.ping_status(done) == status
    assert cli.ping_status(dict(done, state='error', verdict=None)) == 2


# --- tables -------------------------------------------------------------------------

def test_switches_table_lists_each_port_under_its_switch():
    switches = [{'dpid': '00000000000000d0', 'ports': []},
                {'dpid': DPID, 'ports': [
                    {'port_no': 0xfffffffe, 'name': 'br0', 'hw_addr': '02:00:00:00:00:ff'},
                    {'port_no': 1, 'name': 'tap1', 'hw_addr': '02:00:00:00:00:01'}]}]
    assert cli.format_switches(switches) == [
        'DPID              PORT   NAME        HW_ADDR',
        '0000000000000001      1  tap1        02:00:00:00:00:01',
        '                  LOCAL  br0         02:00:00:00:00:ff',
        '00000000000000d0  -      (no ports)']
    assert cli.format_switches([]) == ['no switch is connected']


def test_monitors_table_counts_each_monitors_pairs_by_outcome():
    monitors = [monitor('a', [pair('vm1', 'vm2'), pair('vm2', 'vm1', verdict='unreachable'),
                              pair('vm1', 'vm3', status='waiting', verdict=None)]),
                monitor('b', [pair('vm1', 'vm2', status='switch-not-connected'),
                              pair('vm2', 'vm1', verdict=None, error='switch disconnected'),
                              pair('vm3', 'vm1', verdict='partial')])]
    assert cli.format_monitors(monitors) == [
        'NAME  KIND  PAIRS  INTERVAL  REACHABLE  UNREACHABLE  PARTIAL  ERROR  WAITING',
        'a     icmp      3  10s               1            1        0      0        1',
        'b     icmp      3  10s               0            0        1      2        0']
    assert cli.format_monitors([]) == ['no monitors']


def test_monitors_table_has_a_column_for_an_unresolved_address_only_if_a_pair_has_one():
    monitors = [monitor('a', [pair('vm1', 'vm2'),
                              pair('vm2', 'vm1', verdict='next-hop-unresolved')])]
    assert cli.format_monitors(monitors) == [
        'NAME  KIND  PAIRS  INTERVAL  REACHABLE  UNREACHABLE  PARTIAL  NEXT-HOP-UNRESOLVED  '
        'ERROR  WAITING',
        'a     icmp      2  10s               1            0        0                    1  '
        '    0        0']


def test_monitor_shows_a_row_per_pair_with_its_verdict_and_where_it_broke():
    m = monitor('a', [pair('vm1', 'vm2'),
                      pair('vm2', 'vm1', verdict='unreachable', loss=1.0, broken_at=DROP),
                      pair('vm1', 'vm3', status='waiting', verdict=None, changed_at=None),
                      pair('vm3', 'vm1', verdict=None, error='switch disconnected')])
    assert cli.format_monitor(m, now=1000.0) == [
        'monitor a: 4 pairs, every 10s, 3 echoes 0.2s apart, timeout 1s',
        '',
        'SRC  DST  STATUS   VERDICT      LOSS  RTT AVG   CHANGED  BROKEN AT',
        'vm1  vm2  ok       reachable    0%    0.500 ms  1m ago   -',
        'vm2  vm1  ok       unreachable  100%  -         1m ago   request 0000000000000001 t0 '
        'dropped',
        'vm1  vm3  waiting  -            -     -         -        -',
        'vm3  vm1  ok       -            -     -         1m ago   error: switch disconnected']


def test_a_monitor_of_another_kind_shows_it_with_its_port_and_counts_its_verdicts():
    web = monitor('web', [pair('10.0.0.1', '10.0.0.2', verdict='open'),
                          pair('10.0.0.1', '10.0.0.3', verdict='filtered')],
                  kind='tcp', dst_port=443)
    arp = monitor('arp', [pair('10.0.0.1', '10.0.0.2', verdict='unreachable')], kind='arp')
    assert cli.monitor_title(web) == (
        'monitor web (tcp/443): 2 pairs, every 10s, 3 SYNs 0.2s apart, timeout 1s')
    assert cli.format_monitors([web, arp]) == [
        'NAME  KIND     PAIRS  INTERVAL  REACHABLE  UNREACHABLE  OPEN  CLOSED  FILTERED  ERROR  '
        'WAITING',
        'web   tcp/443      2  10s               0            0     1       0         1      0  '
        '      0',
        'arp   arp          1  10s               0            1     0       0         0      0  '
        '      0']


@pytest.mark.parametrize('seconds, text', [(0, '0s ago'), (59, '59s ago'), (61, '1m ago'),
                                           (7200, '2h ago'), (90000, '1d ago')])
def test_ages_are_in_the_largest_whole_unit(seconds, text):
    assert cli.ago(1000.0 - seconds, 1000.0) == text


# --- matrices -----------------------------------------------------------------------

CELLS = {('vm1', 'vm2'): 'reachable', ('vm1', 'vm3'): 'unreachable',
         ('vm2', 'vm1'): 'partial', ('vm2', 'vm3'): 'error',
         ('vm3', 'vm1'): 'reachable', ('vm3', 'vm2'): 'reachable'}


def test_mesh_matrix_has_sources_as_rows_destinations_as_columns_a_legend_and_a_summary():
    assert cli.format_mesh(['vm1', 'vm2', 'vm3'], CELLS, elapsed=1.25) == [
        '    vm1 vm2 vm3',
        'vm1      ok  --',
        'vm2   ~       !',
        'vm3  ok  ok',
        '',
        'ok reachable  -- unreachable  ~ partial  ! error',
        '6 pairs, 3 reachable, 1 unreachable, 1 partial, 1 error, 1.2 s']


def test_mesh_matrix_marks_pairs_whose_addresses_did_not_resolve_and_says_so_below():
    cells = {('vm1', 'vm2'): 'reachable', ('vm1', 'ghost'): 'next-hop-unresolved',
             ('vm2', 'vm1'): 'reachable', ('vm2', 'ghost'): 'next-hop-unresolved',
             ('ghost', 'vm1'): 'source-not-answering', ('ghost', 'vm2'): 'source-not-answering'}
    assert cli.format_mesh(['vm1', 'vm2', 'ghost'], cells, elapsed=2.0) == [
        '        vm1   vm2 ghost',
        'vm1            ok     ?',
        'vm2      ok           ?',
        'ghost     x     x',
        '',
        'ok reachable  -- unreachable  ~ partial  x source-not-answering  '
        '? next-hop-unresolved  ! error',
        '6 pairs, 2 reachable, 0 unreachable, 2 source-not-answering, 2 next-hop-unresolved, '
        '2.0 s']
    assert cli.mesh_status(list(cells.values())) == 1


def test_mesh_matrix_numbers_its_columns_when_the_names_do_not_fit():
    assert cli.format_matrix(['vm1', 'vm2', 'vm3'], CELLS, width=12) == [
        '       1  2  3',
        '1 vm1    ok --',
        '2 vm2  ~     !',
        '3 vm3 ok ok']


def test_matrix_colours_only_its_cells_when_asked():
    lines = cli.format_matrix(['vm1', 'vm2'], {('vm1', 'vm2'): 'reachable'}, colour=True)
    assert lines[1] == 'vm1     \033[32m ok\033[0m'
    assert '\033' not in ''.join(cli.format_matrix(['vm1', 'vm2'], {('vm1', 'vm2'): 'reachable'}))


@pytest.mark.parametrize('outcomes, status', [
    (['reachable', 'reachable'], 0),
    (['reachable', 'partial'], 1),
    (['reachable', 'unreachable'], 1),
    (['unreachable', 'error'], 2),
])
def test_mesh_exits_0_only_if_all_reachable_and_2_if_a_probe_ended_in_error(outcomes, status):
    assert cli.mesh_status(outcomes) == status


def test_watch_draws_a_mesh_monitor_as_a_matrix_with_its_failing_pairs():
    m = monitor('a', [pair('vm1', 'vm2'), pair('vm2', 'vm1', verdict='unreachable',
                                               broken_at=DROP)], mesh=['vm1', 'vm2'])
    assert cli.format_watch(m, now=1000.0) == [
        'monitor a: 2 pairs, every 10s, 3 echoes 0.2s apart, timeout 1s',
        '',
        '    vm1 vm2',
        'vm1      ok',
        'vm2  --',
        '',
        'ok reachable  -- unreachable  ~ partial  ! error',
        'vm2->vm1: unreachable, request 0000000000000001 t0 dropped',
        '',
        '2 pairs, 1 reachable, 1 unreachable']


def test_watch_draws_a_probes_monitor_as_its_pair_table_coloured_by_outcome():
    m = monitor('a', [pair('10.0.0.1', '10.0.0.2'),
                      pair('10.0.0.2', '10.0.0.1', status='waiting', verdict=None)])
    lines = cli.format_watch(m, now=1000.0, colour=True)
    assert lines[2].startswith('SRC ')
    assert lines[3].startswith('\033[32m10.0.0.1 ') and lines[4].startswith('\033[2m10.0.0.2 ')
    assert lines[-1] == '2 pairs, 1 reachable, 0 unreachable, 1 waiting'


def test_watch_draws_a_udp_mesh_with_its_verdicts_cells_legend_and_summary():
    m = monitor('dns', [pair('vm1', 'vm2', verdict='open'),
                        pair('vm2', 'vm1', verdict='closed'),
                        pair('vm1', 'vm3', verdict='open|filtered'),
                        pair('vm3', 'vm1', verdict='filtered')],
                mesh=['vm1', 'vm2', 'vm3'], kind='udp', dst_port=53)
    lines = cli.format_watch(m, now=1000.0)
    assert lines == [
        'monitor dns (udp/53): 4 pairs, every 10s, 3 datagrams 0.2s apart, timeout 1s',
        '',
        '    vm1 vm2 vm3',
        'vm1      ok  o?',
        'vm2  cl',
        'vm3  --',
        '',
        'ok open  cl closed  -- filtered  o? open|filtered  ! error',
        'vm2->vm1: closed',
        'vm1->vm3: open|filtered',
        'vm3->vm1: filtered',
        '',
        '4 pairs, 1 open, 1 closed, 1 filtered, 1 open|filtered']
    coloured = cli.format_watch(m, now=1000.0, colour=True)
    assert '\033[32m ok\033[0m' in coloured[3] and '\033[33m o?\033[0m' in coloured[3]
    assert '\033[31m cl\033[0m' in coloured[4]


def test_a_mesh_of_tcp_exits_0_only_if_every_port_is_open():
    assert cli.mesh_status(['open', 'open'], 'tcp') == 0
    assert cli.mesh_status(['open', 'closed'], 'tcp') == 1
    assert cli.mesh_status(['reachable', 'reachable'], 'tcp') == 1


def test_progress_bar_fills_as_pairs_are_done():
    line = cli.format_progress(1, 4, 2.0, width=39)
    assert line == '[#####...............] 1/4 pairs 2.0 s' and len(line) < 39
    assert cli.format_progress(4, 4, 3.0, width=39).startswith('[' + '#' * 20 + ']')


# --- mesh files ---------------------------------------------------------------------

ENDPOINTS = [{'dpid': DPID, 'in_port': i, 'mac': '02:00:0a:00:00:%02x' % i,
              'ip': '10.0.0.%d' % i, 'name': 'vm%d' % i} for i in (1, 2, 3)]


def test_mesh_file_is_an_object_with_timing_or_just_the_list():
    endpoints, timing = cli.mesh_plan({'endpoints': ENDPOINTS, 'count': 1}, None, 0.1, None)
    assert timing == {'count': 1, 'interval': 0.1, 'timeout': 1.0}
    assert [e['name'] for e in endpoints] == ['vm1', 'vm2', 'vm3']
    unnamed = [{k: v for k, v in e.items() if k != 'name'} for e in ENDPOINTS]
    endpoints, timing = cli.mesh_plan(unnamed, 2, None, None)
    assert timing == {'count': 2, 'interval': 0.2, 'timeout': 1.0}
    assert [e['name'] for e in endpoints] == ['10.0.0.1', '10.0.0.2', '10.0.0.3']


@pytest.mark.parametrize('data, message', [
    ({'endpoints': ENDPOINTS[:1]}, 'endpoints: must be a list of at least 2 endpoints'),
    ([ENDPOINTS[0], {'dpid': DPID, 'ip': '10.0.0.9'}], 'endpoints[1].in_port: missing'),
    ([ENDPOINTS[0], {'in_port': 2, 'mac': '02:00:0a:00:00:02'}], 'endpoints[1].dpid, ip: missing'),
    ([ENDPOINTS[0], ENDPOINTS[0]], 'endpoints: names must be unique'),
])
def test_a_bad_mesh_file_is_an_error_naming_the_endpoint(data, message):
    with pytest.raises(cli.CliError, match=message.replace('[', r'\[').replace(']', r'\]')):
        cli.mesh_plan(data, None, None, None)


def test_mesh_probes_every_ordered_pair_from_the_sources_port():
    endpoints, timing = cli.mesh_plan(ENDPOINTS, None, None, None)
    pairs = cli.mesh_pairs(endpoints, timing)
    assert [(a['name'], b['name']) for a, b, _ in pairs] == [
        ('vm1', 'vm2'), ('vm1', 'vm3'), ('vm2', 'vm1'), ('vm2', 'vm3'), ('vm3', 'vm1'),
        ('vm3', 'vm2')]
    assert pairs[2][2] == dict(timing, dpid=DPID, in_port=2, src_mac='02:00:0a:00:00:02',
                               src_ip='10.0.0.2', dst_mac='02:00:0a:00:00:01',
                               dst_ip='10.0.0.1')


def test_an_endpoint_without_a_mac_sends_none_for_the_app_to_find():
    endpoints = [ENDPOINTS[0], {k: v for k, v in ENDPOINTS[1].items() if k != 'mac'},
                 dict(ENDPOINTS[2], mac=None)]
    pairs = cli.mesh_pairs(*cli.mesh_plan(endpoints, None, None, None))
    requests = {(a['name'], b['name']): request for a, b, request in pairs}
    assert requests[('vm1', 'vm2')] == dict(cli.mesh_plan(ENDPOINTS, None, None, None)[1],
                                            dpid=DPID, in_port=1, src_mac='02:00:0a:00:00:01',
                                            src_ip='10.0.0.1', dst_ip='10.0.0.2')
    assert 'src_mac' not in requests[('vm2', 'vm1')]
    assert requests[('vm2', 'vm1')]['dst_mac'] == '02:00:0a:00:00:01'
    assert not {'src_mac', 'dst_mac'} & set(requests[('vm2', 'vm3')])


def test_a_mesh_of_a_kind_sends_it_with_every_pair_and_arp_asks_for_no_mac():
    endpoints, timing = cli.mesh_plan(ENDPOINTS, None, None, None)
    pairs = cli.mesh_pairs(endpoints, timing, {'kind': 'udp', 'dst_port': 53, 'payload': '00'})
    assert {(r['kind'], r['dst_port'], r['payload'], r['dst_mac']) for _, _, r in pairs} == {
        ('udp', 53, '00', e['mac']) for e in ENDPOINTS}
    arp = cli.mesh_pairs(endpoints, timing, {'kind': 'arp'})
    assert arp[0][2] == dict(timing, dpid=DPID, in_port=1, src_mac='02:00:0a:00:00:01',
                             src_ip='10.0.0.1', dst_ip='10.0.0.2', kind='arp')


def test_a_batchs_error_is_told_as_the_mesh_files_endpoint_and_field():
    pairs = cli.mesh_pairs(*cli.mesh_plan(ENDPOINTS, None, None, None))
    assert cli.mesh_error('probes[1].dst_mac: bad', pairs) == 'endpoints[2].mac: bad'
    assert cli.mesh_error('probes[3].in_port: no port', pairs) == 'endpoints[1].in_port: no port'
    assert cli.mesh_error('probes[0].count: must be between 1 and 1000', pairs) == \
        'count: must be between 1 and 1000'
    assert cli.mesh_error('probes: too many', pairs) == 'probes: too many'


# --- arguments, exit statuses and errors, through main -------------------------------

PING = ['ping', '--dpid', DPID, '--port', '1', '--src-ip', '10.0.0.1', '--src-mac',
        '02:00:0a:00:00:01', '--dst-ip', '10.0.0.2', '--dst-mac', '02:00:0a:00:00:02']
BARE = ['ping', '--dpid', DPID, '--port', '1', '--src-ip', '10.0.0.1', '--dst-ip', '10.0.0.2']


@pytest.mark.parametrize('argv', [[], ['frobnicate'], PING[:3], PING + ['-c', 'three'],
                                  ['mesh'], ['watch', 'a', '-n', 'x'], ['monitors', 'show']])
def test_bad_arguments_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert 'usage: ryu-probe' in capsys.readouterr().err


def test_help_has_examples(capsys):
    assert cli.main(['--help']) == 0
    assert 'examples:' in capsys.readouterr().out
    assert cli.main(['ping', '--help']) == 0
    out = capsys.readouterr().out
    assert 'ryu-probe ping --dpid' in out
    assert '  ryu-probe ping --dpid 0000000000000001 --port 1 --src-ip 10.0.0.1 --dst-ip ' \
           '10.0.0.2\n' in out
    assert '--gateway 10.1.0.1' in out


def test_ping_macs_are_optional_and_only_those_given_are_sent():
    parser = cli.build_parser()
    assert cli.ping_body(parser.parse_args(BARE)) == {
        'dpid': DPID, 'in_port': 1, 'src_ip': '10.0.0.1', 'dst_ip': '10.0.0.2', 'count': 3,
        'interval': 0.2, 'timeout': 1.0, 'wait': True}
    body = cli.ping_body(parser.parse_args(BARE + ['--src-mac', '02:00:0a:00:00:01',
                                                   '--gateway', '10.0.0.254']))
    assert (body['src_mac'], body['gateway']) == ('02:00:0a:00:00:01', '10.0.0.254')
    assert 'dst_mac' not in body
    assert cli.ping_body(parser.parse_args(PING)) == dict(REQUEST, wait=True)


def test_ping_with_a_gateway_and_a_dst_mac_is_an_error(capsys):
    assert cli.main(PING + ['--gateway', '10.0.0.254', '--url', free_url()]) == 2
    assert capsys.readouterr().err == (
        'ryu-probe: --gateway: only without --dst-mac (the app asks the gateway for the MAC '
        'that --dst-mac gives)\n')


KIND_ARGS = ['ping', '--dpid', DPID, '--port', '1']


def test_ping_sends_the_kind_its_port_and_payload_and_icmp_sends_none():
    parser = cli.build_parser()
    tcp = cli.ping_body(parser.parse_args(BARE + ['--tcp', '443']))
    assert (tcp['kind'], tcp['dst_port']) == ('tcp', 443) and 'payload' not in tcp
    udp = cli.ping_body(parser.parse_args(BARE + ['--udp', '53', '--payload', 'beef']))
    assert (udp['kind'], udp['dst_port'], udp['payload']) == ('udp', 53, 'beef')
    assert cli.ping_body(parser.parse_args(BARE + ['--arp']))['kind'] == 'arp'
    dhcp = cli.ping_body(parser.parse_args(KIND_ARGS + ['--src-mac', '02:00:0a:00:00:01',
                                                        '--dhcp']))
    assert dhcp == {'dpid': DPID, 'in_port': 1, 'src_mac': '02:00:0a:00:00:01', 'count': 3,
                    'interval': 0.2, 'timeout': 1.0, 'wait': True, 'kind': 'dhcp'}
    assert not {'kind', 'dst_port', 'payload'} & set(cli.ping_body(parser.parse_args(BARE)))


@pytest.mark.parametrize('argv', [BARE + ['--tcp', '0'], BARE + ['--udp', '65536'],
                                  BARE + ['--tcp', 'http'], BARE + ['--tcp', '80', '--arp'],
                                  BARE + ['--arp', '--dhcp'], BARE + ['-4', '-6'],
                                  ['mesh', 'f.json', '--dhcp']])
def test_a_bad_port_or_two_kinds_or_versions_at_once_exit_2_with_usage(argv, capsys):
    assert cli.main(argv) == 2
    assert 'usage: ryu-probe' in capsys.readouterr().err


@pytest.mark.parametrize('argv, message', [
    (KIND_ARGS + ['--src-ip', '10.0.0.1'], '--dst-ip: required'),
    (KIND_ARGS + ['--dst-ip', '10.0.0.2', '--tcp', '80'], '--src-ip: required'),
    (KIND_ARGS + ['--arp'], '--src-ip and --dst-ip: required'),
    (KIND_ARGS + ['--src-ip', '10.0.0.1', '--dst-ip', '10.0.0.2', '--dhcp'],
     '--dst-ip: not with --dhcp (its DISCOVER is broadcast)'),
    (KIND_ARGS + ['--dhcp'], '--dhcp: needs --src-mac, or --src-ip for the app to find it'),
    (KIND_ARGS + ['--src-mac', '02:00:0a:00:00:01', '--dhcp', '-6'],
     '-6: not with --dhcp (DHCPv6 is not supported)'),
    (BARE + ['-6'], '--src-ip 10.0.0.1: not an IPv6 address (-6)'),
    (KIND_ARGS + ['--src-ip', 'fd00::1', '--dst-ip', '10.0.0.2', '-6'],
     '--dst-ip 10.0.0.2: not an IPv6 address (-6)'),
    (BARE + ['--gateway', 'fd00::fe', '-4'], '--gateway fd00::fe: not an IPv4 address (-4)'),
    (BARE + ['--src-mac', 'x', '--tcp', '80', '--payload', '00'], '--payload: only with --udp'),
])
def test_ping_checks_the_addresses_a_kind_needs_and_the_ip_version_before_it_asks(
        argv, message, capsys):
    assert cli.main(argv + ['--url', free_url()]) == 2
    assert capsys.readouterr().err == 'ryu-probe: %s\n' % message


def test_port_is_a_number_or_a_name():
    args = cli.build_parser().parse_args(PING[:4] + ['tap1'] + PING[5:])
    assert args.port == 'tap1'
    assert cli.build_parser().parse_args(PING).port == 1


def free_url() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return 'http://127.0.0.1:%d' % sock.getsockname()[1]


@pytest.mark.parametrize('argv', [['switches'], PING, ['monitors'], ['watch', 'a', '--once']])
def test_app_not_running_is_an_error_that_says_so(argv, capsys):
    url = free_url()
    assert cli.main(argv + ['--url', url]) == 2
    assert capsys.readouterr().err == (
        'ryu-probe: cannot reach the ryu-probe API at %s: connection refused; is ryu-manager '
        'ryu_apps/probe_app.py running?\n' % url)


def test_url_comes_from_the_environment_unless_given(monkeypatch, capsys):
    url, other = free_url(), free_url()
    monkeypatch.setenv('RYU_PROBE_URL', url)
    assert cli.main(['switches']) == 2
    assert url in capsys.readouterr().err
    assert cli.main(['--url', other, 'switches']) == 2
    assert other in capsys.readouterr().err
    assert cli.main(['--url', url, 'switches', '--url', other.replace('http://', '') + '/']) == 2
    assert 'at %s:' % other in capsys.readouterr().err


def test_a_url_that_is_not_one_is_an_error(capsys):
    assert cli.main(['switches', '--url', 'http://[::1']) == 2
    assert capsys.readouterr().err.startswith('ryu-probe: --url http://[::1: ')


def test_a_mesh_file_that_is_not_json_is_an_error(tmp_path, capsys):
    path = tmp_path / 'mesh.json'
    path.write_text('{"endpoints": [')
    assert cli.main(['mesh', str(path), '--url', free_url()]) == 2
    assert capsys.readouterr().err.startswith('ryu-probe: %s: not JSON: ' % path)


class FakeApi:
    """Stands in for cli.http (the e2e tests run the real app): answers from `routes`,
    (method, path) -> [(status, body), ...], one per call (the last one again when they
    run out), non-2xx as cli.http raises them; records each call in `calls`."""

    def __init__(self):
        self.routes, self.calls = {}, []

    def __call__(self, url, method, path, body=None, timeout=None):
        self.calls.append((method, path, body))
        answers = self.routes.get((method, path), [(404, {'error': 'no route'})])
        status, reply = answers.pop(0) if len(answers) > 1 else answers[0]
        if status >= 400:
            raise cli.CliError(reply['error'], status)
        return status, reply


@pytest.fixture
def api(monkeypatch):
    fake = FakeApi()
    monkeypatch.setattr(cli, 'http', fake)
    yield fake, 'http://127.0.0.1:9'


def test_ping_posts_a_waiting_probe_and_polls_it_while_it_still_runs(api, capsys):
    fake, url = api
    fake.routes = {('POST', '/probe/probes'): [(200, probe(state='running', verdict=None,
                                                           rtts=()))],
                   ('GET', '/probe/probes/abc'): [(200, probe(state='running', verdict=None,
                                                              rtts=())),
                                                  (200, probe(verdict='partial', rtts=(1.0,)))]}
    assert cli.main(PING + ['--url', url, '-c', '3', '--port', 'tap1']) == 0
    assert capsys.readouterr().out.splitlines() == cli.format_ping(
        probe(verdict='partial', rtts=(1.0,)))
    method, path, body = fake.calls[0]
    assert body == dict(REQUEST, in_port='tap1', wait=True)
    assert [c[:2] for c in fake.calls[1:]] == [('GET', '/probe/probes/abc')] * 2


def test_ping_exits_1_for_an_unreachable_pair_and_prints_json_if_asked(api, capsys):
    fake, url = api
    unreachable = probe(verdict='unreachable', rtts=(), broken_at=DROP)
    fake.routes = {('POST', '/probe/probes'): [(200, unreachable)]}
    assert cli.main(PING + ['--url', url, '--json']) == 1
    assert json.loads(capsys.readouterr().out) == unreachable


def test_ping_without_macs_sends_none_and_shows_the_macs_the_app_found(api, capsys):
    fake, url = api
    fake.routes = {('POST', '/probe/probes'): [(200, probe())]}
    assert cli.main(BARE + ['--url', url]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        'PING 10.0.0.2 (02:00:0a:00:00:02) from 10.0.0.1 (02:00:0a:00:00:01) port 1 on '
        '0000000000000001')
    assert not {'src_mac', 'dst_mac', 'gateway'} & set(fake.calls[0][2])


def test_ping_of_an_unresolved_next_hop_exits_1(api, capsys):
    fake, url = api
    unresolved = probe(verdict='next-hop-unresolved', rtts=(), sent=0, broken_at=UNRESOLVED,
                       request=dict(REQUEST, dst_ip='10.0.0.99', dst_mac=None))
    fake.routes = {('POST', '/probe/probes'): [(200, unresolved)]}
    assert cli.main(BARE + ['--url', url]) == 1
    out, err = capsys.readouterr()
    assert 'verdict: next-hop-unresolved, no echo sent' in out.splitlines() and err == ''


def test_ping_exits_2_for_a_probe_in_error_saying_why_on_stderr(api, capsys):
    fake, url = api
    fake.routes = {('POST', '/probe/probes'): [(200, probe(state='error', verdict=None,
                                                           rtts=(), error='switch gone'))]}
    assert cli.main(PING + ['--url', url]) == 2
    assert capsys.readouterr().err == 'ryu-probe: probe abc ended error: switch gone\n'


@pytest.mark.parametrize('status, message', [(400, 'src_mac: must be a MAC address'),
                                             (404, 'dpid: no connected switch 00000000000000ff')])
def test_an_api_error_prints_its_message_and_exits_2(api, capsys, status, message):
    fake, url = api
    fake.routes = {('POST', '/probe/probes'): [(status, {'error': message})]}
    assert cli.main(PING + ['--url', url]) == 2
    assert capsys.readouterr().err == 'ryu-probe: %s\n' % message


def test_adding_a_monitor_whose_name_is_taken_says_so(api, tmp_path, capsys):
    fake, url = api
    path = tmp_path / 'm.json'
    path.write_text(json.dumps({'name': 'tenant-a', 'interval': 10, 'mesh': ENDPOINTS}))
    fake.routes = {('POST', '/probe/monitors'): [
        (201, monitor('tenant-a', [pair('vm1', 'vm2')])),
        (409, {'error': 'name: a monitor named tenant-a exists'})]}
    assert cli.main(['monitors', 'add', str(path), '--url', url]) == 0
    assert capsys.readouterr().out == 'monitor tenant-a added: 1 pair, every 10s\n'
    assert fake.calls[0][2] == json.loads(path.read_text())
    assert cli.main(['monitors', 'add', str(path), '--url', url]) == 2
    assert capsys.readouterr().err == (
        'ryu-probe: monitor tenant-a exists already (name: a monitor named tenant-a exists); '
        'remove it first with `ryu-probe monitors rm tenant-a`\n')


def test_mesh_sends_batches_of_at_most_chunk_pairs_and_retries_while_the_app_is_busy(
        api, capsys, monkeypatch):
    fake, url = api
    monkeypatch.setattr(cli, 'CHUNK', 4)
    monkeypatch.setattr(cli, 'BUSY_RETRY', 0.01)
    endpoints = ENDPOINTS + [dict(ENDPOINTS[0], ip='10.0.0.4', name='vm4')]   # 12 pairs
    fake.routes = {('POST', '/probe/batch'): [(429, {'error': 'busy'})] + [
        (200, {'probes': [probe()] * 4})] * 3}
    monkeypatch.setattr('sys.stdin', io.StringIO(json.dumps(endpoints)))
    assert cli.main(['mesh', '-', '--url', url]) == 0
    assert [len(body['probes']) for _, _, body in fake.calls] == [4] * 4    # one busy
    assert all(body['wait'] for _, _, body in fake.calls)
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith('12 pairs, 12 reachable, 0 unreachable, ')


def test_ping_of_a_closed_tcp_port_exits_1_and_of_an_open_one_0(api, capsys):
    fake, url = api
    closed = answered(TCP, 'closed', [{'answer': 'closed'}], sent=1, src_port=61000)
    fake.routes = {('POST', '/probe/probes'): [(200, closed)]}
    assert cli.main(PING + ['--url', url, '--tcp', '443', '-c', '1']) == 1
    assert capsys.readouterr().out.splitlines() == cli.format_ping(closed, found=[])
    assert fake.calls[0][2] == dict(REQUEST, count=1, kind='tcp', dst_port=443, wait=True)
    fake.routes = {('POST', '/probe/probes'): [(200, dict(closed, verdict='open'))]}
    assert cli.main(PING + ['--url', url, '--tcp', '443', '-c', '1']) == 0


def test_ping_of_dhcp_sends_no_destination_and_prints_json_if_asked(api, capsys):
    fake, url = api
    dhcp = answered(dict(REQUEST, kind='dhcp', dst_ip=None, dst_mac=None), 'unreachable', [])
    fake.routes = {('POST', '/probe/probes'): [(200, dhcp)]}
    assert cli.main(KIND_ARGS + ['--src-ip', '10.0.0.1', '--dhcp', '--json', '--url', url]) == 1
    assert json.loads(capsys.readouterr().out) == dhcp
    assert fake.calls[0][2] == {'dpid': DPID, 'in_port': 1, 'src_ip': '10.0.0.1', 'count': 3,
                                'interval': 0.2, 'timeout': 1.0, 'wait': True, 'kind': 'dhcp'}


def test_mesh_with_tcp_probes_every_pair_on_the_port_and_prints_its_verdicts(
        api, capsys, monkeypatch):
    fake, url = api
    opened = answered(TCP, 'open', [{'answer': 'open'}], sent=1)
    fake.routes = {('POST', '/probe/batch'): [(200, {'probes': [opened] * 6})]}
    monkeypatch.setattr('sys.stdin', io.StringIO(json.dumps(ENDPOINTS)))
    assert cli.main(['mesh', '-', '--tcp', '443', '--url', url]) == 0
    assert {(r['kind'], r['dst_port']) for r in fake.calls[0][2]['probes']} == {('tcp', 443)}
    out = capsys.readouterr().out.splitlines()
    assert out[1:4] == ['vm1      ok  ok', 'vm2  ok      ok', 'vm3  ok  ok']
    assert out[5] == 'ok open  cl closed  -- filtered  ! error'
    assert out[6].startswith('6 pairs, 6 open, 0 closed, ')


def test_the_token_comes_from_the_file_or_the_environment_and_goes_with_every_request(
        monkeypatch, tmp_path):
    sent = []

    class Answer:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b'[]'

    def urlopen(request, timeout):
        sent.append(request.get_header('Authorization'))
        return Answer()
    monkeypatch.setattr(cli.urllib.request, 'urlopen', urlopen)
    monkeypatch.setitem(cli.HEADERS, 'Content-Type', 'application/json')
    monkeypatch.delitem(cli.HEADERS, 'Authorization', raising=False)
    token = tmp_path / 'token'
    token.write_text('# ours\nops s3cret\n')
    assert cli.main(['--token-file', str(token), 'switches']) == 0
    monkeypatch.setenv('RYU_PROBE_TOKEN', 'from-env')
    assert cli.main(['switches']) == 0
    assert sent == ['Bearer s3cret', 'Bearer from-env']
    cli.HEADERS.pop('Authorization')
    token.write_text('# none\n')
    assert cli.main(['switches', '--token-file', str(token)]) == 2
