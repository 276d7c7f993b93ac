"""Probe kinds (kinds.py) through the prober: what each sends, catches and concludes. The
answers are built by scapy, as the destination's kernel (or dnsmasq) would send them."""
import pytest
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import ARP, Ether

from helpers import SETTINGS, Switch, packet_in, request
from ryu_apps import kinds
from ryu_apps.bridge import INDEX_SHIFT
from ryu_apps.probes import ProbeError, Prober

VM1, VM2 = '02:00:00:00:00:01', '02:00:00:00:00:02'


def started(**fields):
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(**fields), now=0.0)
    switch.confirm_all(now=0.001)
    prober.tick(0.001 + SETTINGS.catch_settle)
    return prober, switch, probe


def answer(prober, probe, frame, now, catch=0):
    """A PacketIn from the probe's `catch`th catch (its first shadow) carrying `frame`."""
    c = probe.catches[catch]
    return prober.packet_in(1, packet_in(bytes(frame), SETTINGS.cookie | c.index << INDEX_SHIFT,
                                         table_id=c.shadows[0].table), now)


def sent(switch):
    return [Ether(p.data) for p in switch.packet_outs()]


def finish(prober, switch, probe, t=0.01):
    while probe.state == 'running':
        t = round(t + 0.05, 6)
        assert t < 30
        prober.tick(t)
        switch.confirm_all(t)
    return probe


def catch_flows(switch):
    return [m for m in switch.shadow_adds()]


def test_tcp_syn_ack_is_open_and_the_app_resets_the_half_open_connection():
    prober, switch, probe = started(kind='tcp', dst_port=443, count=1)
    syn = sent(switch)[0]
    assert syn[TCP].flags == 'S' and syn[TCP].dport == 443 and syn[TCP].sport in kinds.PORTS
    assert syn[IP].src == '10.0.0.1' and syn[Ether].dst == VM2
    take = next(m for m in catch_flows(switch) if dict(m.match.items()).get('ip_proto') == 6)
    assert dict(take.match.items()).items() >= {'tcp_src': 443, 'tcp_dst': syn[TCP].sport,
                                                'ipv4_src': '10.0.0.2',
                                                'ipv4_dst': '10.0.0.1'}.items()
    # it takes the segment: to us only, the VM never sees it
    actions = [a for i in take.instructions if hasattr(i, 'actions') for a in i.actions]
    assert len(actions) == 1 and actions[0].max_len == ofp.OFPCML_NO_BUFFER
    synack = (Ether(src=VM2, dst=VM1) / IP(src='10.0.0.2', dst='10.0.0.1')
              / TCP(sport=443, dport=syn[TCP].sport, flags='SA', seq=7, ack=syn[TCP].seq + 1))
    assert answer(prober, probe, synack, 0.0102) is probe
    rst = sent(switch)[-1]
    assert rst[TCP].flags == 'R' and rst[TCP].seq == syn[TCP].seq + 1
    assert rst[TCP].sport == syn[TCP].sport
    result = probe.to_json()
    assert result['verdict'] == 'open' and result['replies'][0]['answer'] == 'open'
    assert result['src_port'] == syn[TCP].sport and result['request']['dst_port'] == 443


def test_tcp_rst_is_closed_and_a_segment_for_another_syn_does_not_count():
    prober, switch, probe = started(kind='tcp', dst_port=22, count=1)
    syn = sent(switch)[0]
    reply = (Ether(src=VM2, dst=VM1) / IP(src='10.0.0.2', dst='10.0.0.1')
             / TCP(sport=22, dport=syn[TCP].sport, flags='RA', ack=syn[TCP].seq + 2))
    assert answer(prober, probe, reply, 0.011) is None     # not our ISN
    reply[TCP].ack = syn[TCP].seq + 1
    answer(prober, probe, reply, 0.012)
    assert probe.verdict == 'closed'
    injected = [Ether(p.data) for p in switch.packet_outs() if p.in_port == 1]
    assert [p[TCP].flags for p in injected] == ['S']      # no RST to a RST
    handed = [p for p in switch.packet_outs() if p.actions[0].port == ofp.OFPP_NORMAL]
    assert [Ether(p.data)[TCP].ack for p in handed] == [syn[TCP].seq + 2]   # not ours: to the VM


def test_tcp_silence_is_filtered_after_a_second_round_on_its_catches_laid_anew_and_no_trace():
    """The second round lays the same catches again under new cookies (a flow table
    change: OVS translates its cached datapath flows again), and the first generation
    goes once the switch confirmed the second."""
    prober, switch, probe = started(kind='tcp', dst_port=80, count=2, interval=0.1, timeout=0.3)
    catches = list(probe.catches)
    first = [(m.cookie, m.match.to_jsondict()) for m in switch.shadow_adds()]
    finish(prober, switch, probe)
    assert probe.verdict == 'filtered' and probe.to_json()['loss'] == 1.0
    assert (probe.first_sent, probe.to_json()['sent']) == (2, 2)
    assert prober.counters['second_rounds'] == 1 and prober.counters['unmarked_rounds'] == 0
    assert prober.counters['traces'] == 0 and probe.catches in ([], catches)
    again = [(m.cookie, m.match.to_jsondict()) for m in switch.shadow_adds()][len(first):]
    assert [m for _, m in again] == [m for _, m in first]      # the same flows...
    assert not {c for c, _ in again} & {c for c, _ in first}   # ...under new cookies
    assert probe.to_json()['flows_reinstalled'] == 0           # nobody else's doing
    deleted = {m.cookie for m in switch.deletes()}
    assert {c for c, _ in first + again} <= deleted            # nothing left behind


def test_a_udp_answer_missed_in_the_first_round_is_heard_in_the_second():
    """A catch laid in a loaded datapath may not be used yet when the answer comes (every
    send of the first round missed): the second round, before any silence verdict."""
    prober, switch, probe = started(kind='udp', dst_port=9, count=1, timeout=0.5)
    t = 0.01
    while not probe.second:
        t = round(t + 0.05, 6)
        prober.tick(t)
        switch.confirm_all(t)
    assert probe.state == 'running' and not probe.echoes   # waits for its catches laid anew
    switch.confirm_all(t)
    t += SETTINGS.catch_settle
    prober.tick(t)
    assert len(probe.echoes) == 1
    last = sent(switch)[-1]
    unreachable = (Ether(src=VM2, dst=VM1) / IP(src='10.0.0.2', dst='10.0.0.1')
                   / ICMP(type=3, code=3) / bytes(last[IP])[:28])
    answer(prober, probe, unreachable, t + 0.01, catch=1)
    assert probe.verdict == 'closed' and prober.counters['second_rounds'] == 1


def test_tcp_icmp_unreachable_is_filtered_and_says_who_sent_it():
    prober, switch, probe = started(kind='tcp', dst_port=80, count=1)
    syn = sent(switch)[0]
    error = (Ether(src=VM2, dst=VM1) / IP(src='10.0.0.254', dst='10.0.0.1')
             / ICMP(type=3, code=13) / bytes(syn[IP])[:28])
    assert answer(prober, probe, error, 0.02, catch=1) is probe
    assert probe.verdict == 'filtered'
    assert 'code 13 from 10.0.0.254' in probe.to_json()['replies'][0]['icmp']


def test_udp_reply_is_open_port_unreachable_closed_silence_open_or_filtered():
    prober, switch, probe = started(kind='udp', dst_port=53, payload='abcd', count=1)
    out = sent(switch)[0]
    assert bytes(out[UDP].payload) == b'\xab\xcd'
    reply = (Ether(src=VM2, dst=VM1) / IP(src='10.0.0.2', dst='10.0.0.1')
             / UDP(sport=53, dport=out[UDP].sport) / b'answer')
    answer(prober, probe, reply, 0.02)
    assert probe.verdict == 'open' and probe.to_json()['replies'][0]['reply_bytes'] == 6

    prober, switch, probe = started(kind='udp', dst_port=5353, count=1)
    out = sent(switch)[0]
    unreachable = (Ether(src=VM2, dst=VM1) / IP(src='10.0.0.2', dst='10.0.0.1')
                   / ICMP(type=3, code=3) / bytes(out[IP])[:28])
    answer(prober, probe, unreachable, 0.02, catch=1)
    assert probe.verdict == 'closed'

    prober, switch, probe = started(kind='udp', dst_port=5353, count=1, timeout=0.2)
    assert finish(prober, switch, probe).verdict == 'open|filtered'


def test_udp6_port_unreachable_is_closed():
    prober, switch, probe = started(kind='udp', dst_port=9, count=1, src_ip='fd00::1',
                                    dst_ip='fd00::2')
    out = sent(switch)[0]
    error = (Ether(src=VM2, dst=VM1) / IPv6(src='fd00::2', dst='fd00::1')
             / ICMPv6DestUnreach(code=4) / bytes(out[IPv6])[:48])
    answer(prober, probe, error, 0.02, catch=1)
    assert probe.verdict == 'closed'


def test_arp_reply_is_reachable_with_the_mac_and_silence_unreachable():
    prober, switch, probe = started(kind='arp', dst_mac=None, count=2, interval=0.1)
    ask = sent(switch)[0]
    assert ask[ARP].op == 1 and ask[ARP].psrc == '10.0.0.1' and ask[ARP].pdst == '10.0.0.2'
    assert ask[Ether].dst == 'ff:ff:ff:ff:ff:ff'
    reply = (Ether(src=VM2, dst=VM1) / ARP(op=2, hwsrc=VM2, psrc='10.0.0.2', hwdst=VM1,
                                            pdst='10.0.0.1'))
    answer(prober, probe, reply, 0.011)
    finish(prober, switch, probe)
    assert probe.verdict == 'reachable' and probe.to_json()['mac'] == VM2
    assert probe.received == 1 and probe.to_json()['loss'] == 0.5

    prober, switch, probe = started(kind='arp', dst_mac=None, count=1, timeout=0.2)
    assert finish(prober, switch, probe).verdict == 'unreachable' and probe.to_json()['mac'] is None


def test_a_second_arp_probe_of_the_same_pair_is_refused_while_one_runs():
    prober, switch, probe = started(kind='arp', dst_mac=None)
    with pytest.raises(ProbeError) as refused:
        prober.start(request(kind='arp', dst_mac=None), now=0.1)
    assert refused.value.status == 409 and str(refused.value).startswith('kind:')
    with pytest.raises(ProbeError):
        Prober(SETTINGS).start_all([request(kind='arp', dst_mac=None)] * 2, now=0.0)


def dhcp_offer(xid, yiaddr='10.0.0.1', server='10.0.0.100'):
    return (Ether(src='02:00:00:00:00:64', dst=VM1) / IP(src=server, dst=yiaddr)
            / UDP(sport=67, dport=68)
            / BOOTP(op=2, xid=xid, yiaddr=yiaddr, chaddr=bytes.fromhex(VM1.replace(':', '')))
            / DHCP(options=[('message-type', 'offer'), ('server_id', server),
                            ('lease_time', 120), ('router', '10.0.0.254'), 'end']))


def test_dhcp_offer_is_reachable_and_is_not_handed_to_the_vm():
    prober, switch, probe = started(kind='dhcp', dst_mac=None, dst_ip=None, count=1)
    discover = sent(switch)[0]
    assert discover[BOOTP].chaddr[:6] == bytes.fromhex('020000000001')
    assert discover[Ether].dst == 'ff:ff:ff:ff:ff:ff' and discover[IP].src == '0.0.0.0'
    assert answer(prober, probe, dhcp_offer(discover[BOOTP].xid), 0.02) is probe
    result = probe.to_json()
    assert result['verdict'] == 'reachable' and result['offer'] == {
        'server': '10.0.0.100', 'server_mac': '02:00:00:00:00:64', 'offered': '10.0.0.1',
        'router': '10.0.0.254', 'lease_seconds': 120}
    assert len(sent(switch)) == 1       # nothing sent on: no REQUEST, no OFFER to the VM


def test_what_a_dhcp_catch_takes_that_is_not_ours_goes_on_to_the_vm():
    prober, switch, probe = started(kind='dhcp', dst_mac=None, dst_ip=None, count=1)
    discover = sent(switch)[0]
    tenants = dhcp_offer(discover[BOOTP].xid ^ 0x10000)    # the VM's own exchange
    assert answer(prober, probe, tenants, 0.02) is None and probe.received == 0
    handed = switch.packet_outs()[-1]
    # as the NORMAL flow it was taken at would have, from the port it came in on (a
    # tagged frame from a trunk reaches the VM's access port untagged only so)
    assert handed.data == bytes(tenants) and handed.in_port == 2
    assert [a.port for a in handed.actions] == [ofp.OFPP_NORMAL]
    assert prober.counters['handed_on'] == 1


def test_each_kind_has_one_object_and_the_prober_knows_no_kind_by_name():
    assert set(kinds.KINDS) == {'icmp', 'tcp', 'udp', 'arp', 'dhcp'}
    for kind in kinds.KINDS.values():
        assert kind.success <= set(kind.verdicts)


@pytest.mark.parametrize('kind', [dict(kind='dhcp', dst_mac=None, dst_ip=None), {}])
def test_one_mac_and_ip_probed_from_two_ports_of_one_flow_is_an_error_not_a_flowmod_storm(
        kind):
    """One NORMAL flow delivers to both ports: the second probe's catch would be the very
    flows of the first's, and each would replace the other for ever."""
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    first = prober.start(request(count=1, **kind), now=0.0)
    switch.confirm_all(now=0.001)
    second = prober.start(request(count=1, in_port=2, **kind), now=0.002)
    prober.tick(0.003)
    assert second.state == 'error' and 'port 1' in second.error, second.error
    mods = len(switch.shadow_adds())
    finish(prober, switch, first)
    assert first.state == 'done' and first.error is None
    # no storm (it was thousands of FlowMods): the first probe's own flows only (for
    # icmp, its fallback round and its trace's watches)
    assert len(switch.shadow_adds()) - mods <= 10
