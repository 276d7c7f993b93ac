"""MACs the request left out, asked of the network (resolve.py), on a simulated switch."""
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP, Ether

from helpers import SETTINGS, Switch, packet_in, request
from ryu_apps.probes import Prober
from ryu_apps.resolve import TRIES, TRY_EVERY, app_mac

VM1, VM2, ROUTER = '02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:fe'


def arps(switch, start=0):
    """The ARP frames the app sent since `start`, with where they went."""
    out = []
    for msg in switch.packet_outs()[start:]:
        frame = Ether(msg.data)
        if ARP in frame:
            port = msg.actions[0].port
            out.append(('pipeline' if port == ofp.OFPP_TABLE else 'port %d' % port, frame[ARP]))
    return out


def answer(switch, asked, mac, now, cookie):
    """The ARP reply the asked host sends to the asker."""
    reply = Ether(src=mac, dst=asked.hwsrc) / ARP(op=2, hwsrc=mac, psrc=asked.pdst,
                                                   hwdst=asked.hwsrc, pdst=asked.psrc)
    return switch.prober.packet_in(switch.dpid, packet_in(bytes(reply), cookie), now)


def watch_cookie(switch):
    flow = next(m for m in switch.of_type(parser.OFPFlowMod)
                if m.table_id == 0 and dict(m.match.items()).get('eth_dst') == app_mac(
                    SETTINGS.controller_id))
    return flow.cookie


def run(prober, switch, t, until, step=0.005):
    while t < until:
        t = round(t + step, 6)
        prober.tick(t)
        switch.confirm_all(t)
    return t


def test_both_macs_are_asked_of_the_network_then_the_echoes_go_out():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(src_mac=None, dst_mac=None, count=1), now=0.0)
    t = run(prober, switch, 0.0, 0.05)
    (where, asked), = arps(switch)
    # an RFC 5227 probe, straight out of the VM's port: it claims no address
    assert where == 'port 1' and asked.op == 1 and asked.psrc == '0.0.0.0'
    assert asked.pdst == '10.0.0.1' and asked.hwsrc == app_mac(SETTINGS.controller_id)
    answer(switch, asked, VM1, t, watch_cookie(switch))
    t = run(prober, switch, t, t + 0.05)
    (where, asked), = arps(switch, 1)
    # the next hop, asked as the VM through the pipeline
    assert where == 'pipeline' and (asked.hwsrc, asked.psrc, asked.pdst) == (
        VM1, '10.0.0.1', '10.0.0.2')
    catch = switch.shadow_adds()[-1]
    assert dict(catch.match.items())['arp_tpa'] == '10.0.0.1'
    answer(switch, asked, VM2, t, catch.cookie)
    t = run(prober, switch, t, t + 0.05)
    echo = [m for m in switch.packet_outs() if ARP not in Ether(m.data)]
    assert len({bytes(m.data) for m in echo}) == 1      # one echo (retransmitted: a new catch)
    assert Ether(echo[0].data).src == VM1 and Ether(echo[0].data).dst == VM2
    switch.reply_to(echo[0], now=t)
    assert probe.to_json()['request']['src_mac'] == VM1
    assert probe.to_json()['request']['dst_mac'] == VM2
    assert probe.verdict == 'reachable'


def test_a_source_that_does_not_answer_is_its_own_verdict_and_no_echo_goes_out():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(src_mac=None, dst_mac=None), now=0.0)
    run(prober, switch, 0.0, TRIES * TRY_EVERY + 0.5)
    assert probe.verdict == 'source-not-answering'
    assert probe.broken_at['reason'] == 'source-not-answering'
    assert len(arps(switch)) == TRIES and len(switch.packet_outs()) == TRIES
    cookie = watch_cookie(switch)
    assert any(m.command == ofp.OFPFC_DELETE and m.cookie == cookie
               for m in switch.of_type(parser.OFPFlowMod))        # our flow went with it


def test_an_unanswered_next_hop_is_next_hop_unresolved_and_its_catch_goes():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(dst_mac=None, gateway='10.0.0.254'), now=0.0)
    run(prober, switch, 0.0, TRIES * TRY_EVERY + 2.0)
    # the lookup's requests, then the walk's (marked by our MAC as the target's) to see
    # where they went (trace.ArpWalk): no watch of this stand-in switch took it
    asked = [a for _, a in arps(switch)]
    assert [a.pdst for a in asked] == ['10.0.0.254'] * (TRIES + 1)
    assert [a.hwdst for a in asked] == ['00:00:00:00:00:00'] * TRIES + [prober.resolver.mac]
    assert prober.counters['traces'] == 1
    assert probe.verdict == 'next-hop-unresolved'
    assert '10.0.0.254' in probe.broken_at['detail']
    assert not switch.bridge.catches
    # the last request went out on the catch laid anew (a datapath flow cached without
    # the first one may still take the answers: Bridge.lay_again)
    order = [('add', m.cookie) if isinstance(m, parser.OFPFlowMod) else ('ask', None)
             for m in switch.sent
             if isinstance(m, parser.OFPFlowMod) and m.command == ofp.OFPFC_ADD
             and dict(m.match.items()).get('arp_spa') == '10.0.0.254'
             or isinstance(m, parser.OFPPacketOut) and ARP in Ether(m.data)
             and Ether(m.data)[ARP].hwdst == '00:00:00:00:00:00']
    (_, first), ask, ask2, (_, again), ask3 = order
    assert first != again and ask == ask2 == ask3 == ('ask', None)


def test_answers_are_cached_per_port_and_address():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    prober.start(request(dst_mac=None, count=1), now=0.0)
    t = run(prober, switch, 0.0, 0.05)
    (_, asked), = arps(switch)
    answer(switch, asked, ROUTER, t, switch.shadow_adds()[-1].cookie)
    second = prober.start(request(dst_mac=None, count=1), now=t)
    assert second.request.dst_mac == ROUTER and len(arps(switch)) == 1
    assert prober.counters['resolved_cached'] == 1


def test_a_tenants_own_arp_reply_copied_to_us_is_the_true_answer_too():
    """The catch of ARP replies copies (the VM still gets them): a reply that is not an
    answer to our question leaves the lookup waiting."""
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(dst_mac=None, count=1), now=0.0)
    t = run(prober, switch, 0.0, 0.05)
    catch = switch.shadow_adds()[-1]
    other = Ether(src=ROUTER, dst=VM1) / ARP(op=1, hwsrc=ROUTER, psrc='10.0.0.2',
                                            pdst='10.0.0.1')    # a request, not a reply
    prober.packet_in(switch.dpid, packet_in(bytes(other), catch.cookie), t)
    assert probe.request.dst_mac is None
    assert probe.state == 'running'


def test_two_sources_asked_out_of_one_port_at_once_each_get_their_own_answer():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    real = prober.start(request(src_mac=None, count=1), now=0.0)
    ghost = prober.start(request(src_mac=None, src_ip='10.0.0.9', count=1), now=0.0)
    t = run(prober, switch, 0.0, 0.05)
    watches = [m for m in switch.of_type(parser.OFPFlowMod) if m.table_id == 0
               and dict(m.match.items()).get('eth_dst') == app_mac(SETTINGS.controller_id)]
    assert len({str(m.match) for m in watches}) == 2      # one flow each: neither replaces
    asked = next(a for _, a in arps(switch) if a.pdst == '10.0.0.1')
    cookie = next(m.cookie for m in watches
                  if dict(m.match.items()).get('arp_spa') == '10.0.0.1')
    answer(switch, asked, VM1, t, cookie)
    run(prober, switch, t, TRIES * TRY_EVERY + 0.5)
    assert real.request.src_mac == VM1
    assert ghost.verdict == 'source-not-answering'


def test_a_lookup_that_could_not_ask_is_an_error_never_a_verdict():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(dst_mac=None), now=0.0)
    t = 0.0
    while probe.state == 'running':      # the switch never confirms our flows
        t = round(t + 0.05, 6)
        prober.tick(t)
        assert t < 30
    assert (probe.state, probe.verdict) == ('error', None)
    assert 'did not confirm our flows' in probe.error
    assert not arps(switch)


def test_an_unanswered_ipv6_next_hop_is_walked_with_solicitations_marked_in_their_class():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(dst_mac=None, src_ip='fd00::1', dst_ip='fd00::99'), now=0.0)
    t = run(prober, switch, 0.0, TRIES * TRY_EVERY + 0.5)
    asked = [Ether(m.data) for m in switch.packet_outs() if ICMPv6ND_NS in Ether(m.data)]
    assert [(f[ICMPv6ND_NS].tgt, f[IPv6].tc) for f in asked] == (
        [('fd00::99', 0)] * TRIES + [('fd00::99', SETTINGS.trace_dscp << 2)])
    assert (asked[-1].src, asked[-1][IPv6].src) == (VM1, 'fd00::1')    # as the VM asks
    watch = next(m for m in switch.shadow_adds() if m.table_id == 0 and m.priority >= 0xfffe)
    assert dict(watch.match.items())['ipv6_nd_target'] == 'fd00::99'
    prober.packet_in(switch.dpid, packet_in(bytes(asked[-1]), watch.cookie, table_id=0,
                                            in_port=1), t)
    run(prober, switch, t, t + 2.0)
    assert probe.verdict == 'next-hop-unresolved'
    assert [(s['direction'], s['table'], s['action']) for s in probe.path] == [
        ('request', 0, 'NORMAL')]
    broken = probe.broken_at
    assert (broken['table'], broken['reason']) == (0, 'next-hop-unresolved')
    assert broken['detail'] == (
        'no neighbour advertisement for fd00::99 to fd00::1, asked as the source VM from '
        'port 1; the request was last seen: NORMAL (to 33:33:ff:00:00:99)')
