import pytest
from scapy.layers.inet import ICMP
from scapy.layers.l2 import Ether
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from helpers import NORMAL, SETTINGS, Switch, flow_stats, reply_frame, request
from ryu_apps.bridge import Port
from ryu_apps.options import Settings
from ryu_apps.probes import ARM_TIMEOUT, RETRANSMIT_WINDOW, ProbeError, Prober

SETTLE = SETTINGS.catch_settle


def catch_adds(switch):
    return switch.shadow_adds()


def catch_deletes(switch):
    return switch.deletes()


def run_until_done(prober, probe, t=0.0, step=0.01, each=lambda t: None, switch=None) -> float:
    """Tick the clock in `step`s until the probe ends, the switch answering at once;
    the time it ended."""
    while probe.state == 'running':
        assert t < 60, 'the probe never ended'
        t = round(t + step, 6)
        prober.tick(t)
        if switch is not None:
            switch.confirm_all(t)
        each(t)
    return t


def armed(count=3, **overrides):
    """A prober with one started probe whose catch flow the switch has confirmed."""
    done = []
    prober = Prober(SETTINGS, on_done=done.append)
    switch = Switch(prober)
    probe = prober.start(request(count=count, **overrides), now=0.0)
    switch.confirm_all(now=0.001)
    return prober, switch, probe, done


def test_catch_flow_goes_in_before_any_echo_and_echoes_wait_for_the_settle_time():
    prober, switch, probe, _ = armed()
    assert len(catch_adds(switch)) == 1 and not switch.packet_outs()
    prober.tick(0.001 + SETTLE / 2)
    assert not switch.packet_outs()
    prober.tick(0.001 + SETTLE)
    assert len(switch.packet_outs()) == 1


def test_echoes_go_out_at_the_interval_and_all_answered_is_reachable():
    prober, switch, probe, done = armed(count=3, interval=0.2)
    t0 = 0.001 + SETTLE
    for i, t in enumerate((t0, t0 + 0.2, t0 + 0.4)):
        prober.tick(t)
        assert len(switch.packet_outs()) == i + 1
        switch.reply_to(switch.packet_outs()[-1], now=t + 0.0005)
    result = probe.to_json()
    assert (result['state'], result['verdict'], result['sent'], result['received']) == \
        ('done', 'reachable', 3, 3)
    assert result['loss'] == 0.0 and result['rtt_ms']['max'] == pytest.approx(0.5)
    assert done == [probe]
    assert len(catch_deletes(switch)) == 1


def test_no_reply_within_timeout_is_unreachable():
    prober, switch, probe, _ = armed(count=2, interval=0.1, timeout=0.5)
    t = run_until_done(prober, probe, switch=switch)
    assert probe.verdict == 'unreachable' and probe.to_json()['loss'] == 1.0
    # two rounds: marked, then unmarked in case the path clears the mark; then a trace
    # whose one echo nothing answers either
    assert t == pytest.approx(2 * (SETTLE + 0.1 + 0.5) + SETTLE + 0.5 + 0.001, abs=0.04)
    assert prober.counters['traces'] == 1 and probe.broken_at is None
    assert prober.counters['unmarked_rounds'] == 1 and probe.to_json()['mark'] is None


def test_some_replies_lost_is_partial_with_the_loss_fraction():
    prober, switch, probe, _ = armed(count=4, interval=0.1, timeout=0.3)

    def answer_echoes_0_and_2(t):
        outs = switch.packet_outs()
        if len(outs) in (1, 3) and probe.echoes[-1].pending:
            switch.reply_to(outs[-1], now=t)
    run_until_done(prober, probe, each=answer_echoes_0_and_2, switch=switch)
    assert probe.verdict == 'partial' and probe.to_json()['loss'] == 0.5


def test_cancel_ends_the_probe_and_removes_its_catch_flow():
    prober, switch, probe, done = armed()
    prober.tick(0.01)
    assert prober.cancel(probe.id, now=0.01) is probe
    assert probe.state == 'cancelled' and probe.verdict is None and done == [probe]
    assert len(catch_deletes(switch)) == 1
    prober.tick(5.0)
    assert len(switch.packet_outs()) == 1   # nothing more is sent


def test_replies_without_the_token_or_with_another_dye_or_addresses_do_not_count():
    prober, switch, probe, _ = armed(count=1)
    prober.tick(0.01)
    out = switch.packet_outs()[0]
    assert switch.reply_to(out, 0.011, payload=b'tenant ping data') is None
    assert switch.reply_to(out, 0.011, payload=probe.token[:-1] + b'x') is None
    assert switch.reply_to(out, 0.011, id=112) is None
    assert switch.reply_to(out, 0.011, cookie=0x1234) is None   # not from our flow
    assert probe.received == 0
    assert switch.reply_to(out, 0.012) is probe and probe.verdict == 'reachable'


def test_a_tenants_echo_reply_with_our_mark_is_handed_on_to_its_vm_not_kept():
    prober, switch, probe, _ = armed(count=1)
    prober.tick(0.01)
    out = switch.packet_outs()[0]
    tenants = reply_frame(out.data, id=4242, payload=b'tenant ping data')   # marked too
    assert switch.reply_to(out, 0.011, id=4242, payload=b'tenant ping data') is None
    handed = switch.packet_outs()[-1]
    assert bytes(handed.data) == tenants and handed.actions[0].port == ofp.OFPP_NORMAL
    assert prober.counters['handed_on'] == prober.counters['tenant_packet_ins'] == 1
    assert probe.received == 0 and switch.reply_to(out, 0.012) is probe


def test_forged_reply_from_the_wrong_address_does_not_count():
    prober, switch, probe, _ = armed(count=1)
    prober.tick(0.01)
    other = Prober(SETTINGS)   # an identical echo request but 10.0.0.9 -> 10.0.0.1
    other_switch = Switch(other)
    other.start(request(count=1, dst_ip='10.0.0.9'), 0.0)
    other_switch.confirm_all(0.001)
    other.tick(0.01)
    forged = other_switch.packet_outs()[0]
    forged.data = forged.data.replace(other.running[next(iter(other.running))].token,
                                      probe.token)
    assert switch.reply_to(forged, 0.011) is None and probe.received == 0


def test_a_reply_twice_is_counted_once_and_reported_as_a_duplicate():
    prober, switch, probe, _ = armed(count=2)
    prober.tick(0.01)
    out = switch.packet_outs()[0]
    switch.reply_to(out, 0.011)
    switch.reply_to(out, 0.012)
    assert probe.received == 1 and probe.duplicates == 1


def test_concurrent_probes_from_one_source_share_one_catch_flow_until_the_last_ends():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    first = prober.start(request(count=1), 0.0)
    second = prober.start(request(count=1, dst_ip='10.0.0.3'), 0.0)
    switch.confirm_all(0.001)
    assert len(catch_adds(switch)) == 1
    prober.tick(0.01)
    outs = switch.packet_outs()
    assert len(outs) == 2
    switch.reply_to(outs[0], 0.011)
    assert not catch_deletes(switch)
    switch.reply_to(outs[1], 0.011)
    assert first.verdict == second.verdict == 'reachable'
    assert len(catch_deletes(switch)) == 1


def test_a_probe_joining_a_live_catch_starts_at_once_without_a_burst():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    prober.start(request(count=2, interval=10, timeout=10), 0.0)
    switch.confirm_all(0.001)
    prober.tick(0.01)
    switch.reply_to(switch.packet_outs()[0], 0.011)   # the catch is live now
    late = prober.start(request(count=3, interval=0.5), 5.0)
    prober.tick(5.0)
    assert len(switch.packet_outs()) == 2   # the old probe's echo and one for the new one
    prober.tick(5.4)
    assert len(late.echoes) == 1
    prober.tick(5.5)
    assert len(late.echoes) == 2


def test_sequence_numbers_are_unique_among_outstanding_echoes():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    for i in range(50):
        prober.start(request(count=5, interval=0.01, dst_ip='10.0.1.%d' % (i + 1)), 0.0)
    switch.confirm_all(0.001)
    for t in range(1, 10):
        prober.tick(0.01 * t)
    seqs = [e.seq for p in prober.running.values() for e in p.echoes]
    assert len(seqs) == 250 and len(set(seqs)) == 250


def test_switch_disconnect_ends_its_probes_in_error():
    prober, switch, probe, done = armed()
    prober.disconnect(switch.dpid, now=0.5)
    assert probe.state == 'error' and 'disconnected' in probe.error and done == [probe]


def test_a_port_deleted_or_replaced_under_its_number_ends_the_probes_from_it():
    prober, switch, probe, done = armed(count=50)
    other = prober.start(request(in_port=2, src_mac='02:00:00:00:00:02', src_ip='10.0.0.2',
                                 dst_mac='02:00:00:00:00:01', dst_ip='10.0.0.1'), now=0.0)
    prober.resolver.cache[(switch.dpid, 1, '10.0.0.9')] = ('02:00:00:00:00:09', 99.0)
    switch.confirm_all(0.001)
    prober.tick(0.1)
    sent = len(switch.packet_outs())
    # a link going down: the same port, changed; nothing ends
    prober.port_status(switch.dpid, Port(1, 'tap1', '02:00:00:00:01:01'), False, 0.15)
    assert probe.state == 'running'
    prober.port_status(switch.dpid, Port(1, 'tap1', '02:00:00:00:01:01'), True, 0.2)
    assert (probe.state, probe.verdict) == ('error', None) and done == [probe]
    assert 'port 1 (tap1)' in probe.error and 'deleted' in probe.error
    assert prober.resolver.cache == {}      # what port 1 answered is no longer true
    prober.tick(0.5)
    assert not [m for m in switch.packet_outs()[sent:] if m.in_port == 1]
    assert other.state == 'running'
    # another VM plugged in under port 2's number, no delete in between
    prober.port_status(switch.dpid, Port(2, 'tap9', '02:00:00:00:01:09'), False, 0.6)
    assert other.state == 'error' and 'replaced by port tap9' in other.error
    assert switch.bridge.find_port('tap9').port_no == 2 and switch.bridge.find_port(1) is None


def test_a_vm_plugged_in_again_under_another_number_is_probed_at_once():
    # its old port's catch lingered, and its flows were the new one's: a clash, for as
    # long as the linger (seen in the soak: 20 rounds in error)
    prober = Prober(Settings(catch_settle=0.005, catch_linger=10))
    switch = Switch(prober, ports=(1, 2))
    answered = set()

    def answer(t):
        for packet_out in switch.packet_outs():
            if id(packet_out) not in answered:
                answered.add(id(packet_out))
                switch.reply_to(packet_out, t)
    probe = prober.start(request(count=1), now=0.0)
    run_until_done(prober, probe, each=answer, switch=switch)
    assert probe.verdict == 'reachable' and switch.bridge.catches   # lingering
    deletes = len(switch.deletes())
    prober.port_status(switch.dpid, Port(1, 'tap1', '02:00:00:00:01:01'), True, 1.0)
    assert not switch.bridge.catches and len(switch.deletes()) == deletes + 1
    prober.port_status(switch.dpid, Port(7, 'tap1', '02:00:00:00:01:01'), False, 1.1)
    again = prober.start(request(count=1, in_port=7), now=1.2)
    run_until_done(prober, again, t=1.2, each=answer, switch=switch)
    assert (again.verdict, again.error) == ('reachable', None), again.error


def test_unconfirmed_catch_flow_is_an_error_not_unreachable():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(), 0.0)
    prober.tick(ARM_TIMEOUT + 0.001)
    assert probe.state == 'error' and 'confirm' in probe.error
    assert not switch.packet_outs()


def test_switch_refusing_the_catch_flow_is_an_error():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    probe = prober.start(request(), 0.0)
    (read,) = switch.of_type(parser.OFPFlowStatsRequest)
    prober.flow_stats(switch.dpid, read.xid, switch.flows, False, 0.0005)
    flow_mod = catch_adds(switch)[0]
    prober.refused(switch.dpid, flow_mod.xid, 'OpenFlow error type 5 code 0', 0.001)
    assert probe.state == 'error' and 'refused' in probe.error


def test_unknown_switch_or_port_and_too_many_probes_are_refused():
    prober = Prober(Settings(max_active_probes=2))
    Switch(prober)
    with pytest.raises(ProbeError) as unknown_dpid:
        prober.start(request(dpid=99), 0.0)
    with pytest.raises(ProbeError) as unknown_port:
        prober.start(request(in_port=42), 0.0)
    assert unknown_dpid.value.status == unknown_port.value.status == 404
    prober.start(request(), 0.0)
    prober.start(request(), 0.0)
    with pytest.raises(ProbeError) as busy:
        prober.start(request(), 0.0)
    assert busy.value.status == 429


def test_finished_results_are_bounded_and_listed_newest_first():
    prober = Prober(Settings(max_results=3))
    Switch(prober)
    ids = []
    for i in range(5):
        probe = prober.start(request(), float(i))
        prober.cancel(probe.id, float(i))
        ids.append(probe.id)
    assert [p.id for p in prober.probes()] == ids[:1:-1]
    assert prober.get(ids[0]) is None


def test_reconnect_sweeps_stale_flows_and_fails_the_old_sessions_probes():
    prober, switch, probe, _ = armed()
    again = Switch(prober)
    sweep = [m for m in again.of_type(parser.OFPFlowMod) if m.command == ofp.OFPFC_DELETE]
    assert probe.state == 'error'
    assert sweep and sweep[0].cookie == SETTINGS.cookie
    assert sweep[0].cookie_mask == 0xffffffff0000ffff   # every catch index of ours


def test_first_echo_is_resent_with_backoff_until_answered_while_the_catch_flow_is_new():
    prober, switch, probe, _ = armed(count=2, interval=0.5, timeout=1.0)
    t = 0.001 + SETTLE
    prober.tick(t)
    first = switch.packet_outs()[0]
    sends = [t]
    while len(sends) < 4:   # the datapath is still using stale flows: nothing comes back
        t = round(t + 0.0005, 6)
        prober.tick(t)
        if len(switch.packet_outs()) > len(sends):
            sends.append(t)
    gaps = [round(b - a, 4) for a, b in zip(sends, sends[1:])]
    assert gaps == [SETTLE, 2 * SETTLE, 4 * SETTLE]
    assert {o.data for o in switch.packet_outs()} == {first.data}   # same seq, same token
    switch.reply_to(switch.packet_outs()[-1], now=t + 0.0003)
    assert probe.received == 1
    assert probe.echoes[0].rtt == pytest.approx(0.0003)   # from the copy that got through
    result = probe.to_json()
    assert result['sent'] == 1 and result['retransmits'] == 3


def test_an_unreachable_pair_gets_only_a_handful_of_retransmissions():
    prober, switch, probe, _ = armed(count=1, timeout=1.0)
    run_until_done(prober, probe, step=0.001, switch=switch)
    assert probe.verdict == 'unreachable'
    # a marked round, then an unmarked one on a new (young) catch: a handful each
    assert 1 + probe.to_json()['retransmits'] < len(switch.packet_outs()) <= 12


def test_no_retransmission_from_a_catch_flow_older_than_the_window():
    prober, switch, probe, _ = armed(count=2, interval=10, timeout=10)
    prober.tick(0.01)   # the first probe keeps the catch flow in place
    t = 0.001 + SETTLE + RETRANSMIT_WINDOW * SETTLE
    other = prober.start(request(count=1, timeout=1.0, dst_ip='10.0.0.3'), t)
    while not other.second:   # its marked round, on the old catch
        t = round(t + 0.001, 6)
        prober.tick(t)
        switch.confirm_all(t)
    assert other.first_sent == 1 and len(switch.packet_outs()) == 2


def test_a_reply_on_another_path_does_not_stop_this_probes_retransmissions():
    # Each path has its own cached datapath flow: vm1 <- vm2 being caught says nothing
    # about vm1 <- vm3 while the catch flow is young.
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    to_vm2 = prober.start(request(count=1), 0.0)
    to_vm3 = prober.start(request(count=1, dst_ip='10.0.0.3'), 0.0)
    switch.confirm_all(0.001)
    prober.tick(0.01)
    switch.reply_to(switch.packet_outs()[0], 0.011)
    assert to_vm2.verdict == 'reachable'
    run_until_done(prober, to_vm3, t=0.011, step=0.001, switch=switch)
    assert to_vm3.to_json()['retransmits'] >= 3


def test_a_reply_not_addressed_to_the_source_vm_does_not_count():
    # e.g. the reply crossing the source's bridge on its way to a router
    prober, switch, probe, _ = armed(count=1)
    prober.tick(0.01)
    out = switch.packet_outs()[0]
    assert switch.reply_to(out, 0.011, eth_dst='02:00:00:00:00:fe') is None
    assert switch.reply_to(out, 0.012) is probe


def test_a_batch_starts_all_or_none():
    prober = Prober(Settings(max_active_probes=3))
    switch = Switch(prober)
    with pytest.raises(ProbeError):
        prober.start_all([request(), request(in_port=42)], 0.0)
    with pytest.raises(ProbeError) as busy:
        prober.start_all([request()] * 4, 0.0)
    assert busy.value.status == 429 and not prober.running and not switch.of_type(
        parser.OFPPacketOut)
    assert len(prober.start_all([request(), request(dst_ip='10.0.0.3')], 0.0)) == 2


def test_counters_follow_what_is_sent_and_received():
    prober, switch, probe, _ = armed(count=1)
    prober.tick(0.01)
    switch.reply_to(switch.packet_outs()[0], 0.011)
    counters = prober.counters
    assert (counters['probes_started'], counters['probes_done'], counters['packet_outs'],
            counters['packet_ins'], counters['replies'], counters['flow_mods']) == (1, 1, 1, 1, 1, 2)


def test_echoes_are_paced_by_the_rate_limit_first_come_first_served():
    prober = Prober(Settings(max_echo_rate=1000, catch_settle=0.002))   # bursts of 10
    switch = Switch(prober)
    probes = [prober.start(request(count=1, dst_ip='10.0.1.%d' % (i + 1)), 0.0)
              for i in range(100)]
    switch.confirm_all(0.0)
    t, sent_by = 0.0, {}
    while t < 0.2:
        deadline = prober.tick(t)
        sent_by[round(t, 3)] = len(switch.packet_outs())
        t = round(max(t + 0.001, min(deadline, t + 0.01)), 6)
    assert sent_by[0.002] == 10                     # the burst
    assert 55 <= max(n for t, n in sent_by.items() if t <= 0.05) <= 62   # then 1 per ms
    owner = {p.echoes[0].seq: i for i, p in enumerate(probes) if p.echoes}
    seqs = [Ether(o.data)[ICMP].seq for o in switch.packet_outs()]
    firsts = [owner[seq] for i, seq in enumerate(seqs) if seq not in seqs[:i]]
    assert firsts == sorted(firsts) == list(range(len(firsts)))


def test_an_echo_is_lost_only_once_a_flow_read_after_its_deadline_shows_our_flows_complete():
    prober, switch, probe, _ = armed(count=1, timeout=0.5)
    prober.tick(0.01)
    reads = len(switch.of_type(parser.OFPFlowStatsRequest))
    prober.tick(0.52)                              # past the deadline: not lost yet
    assert probe.echoes[0].pending and len(switch.of_type(parser.OFPFlowStatsRequest)) == reads + 1
    # the read shows a delivery flow another controller added: no shadow over it yet
    switch.flows = switch.flows + [flow_stats(5, 10, actions=[parser.OFPActionOutput(1)],
                                              eth_dst='02:00:00:00:00:01')]
    switch.confirm_all(0.53)
    switch.confirm_all(0.54)                       # the new shadows are in
    prober.tick(0.54 + SETTLE)
    assert probe.echoes[0].pending and not probe.echoes[0].lost
    assert len(switch.packet_outs()) == 2          # sent again, same sequence number
    assert switch.packet_outs()[1].data == switch.packet_outs()[0].data
    switch.reply_to(switch.packet_outs()[1], 0.6)
    assert probe.verdict == 'reachable' and probe.to_json()['flows_reinstalled'] == 1


def test_flows_deleted_by_another_controller_suspend_echoes_and_none_is_lost():
    prober, switch, probe, _ = armed(count=2, interval=0.1, timeout=1.0)
    prober.tick(0.01)
    cookie = switch.shadow_adds()[-1].cookie
    prober.removed(switch.dpid, cookie, ofp.OFPRR_DELETE, 0.02)   # a cold start
    assert probe.echoes[0].suspended
    run_until_done(prober, probe, t=0.02, switch=switch,
                   each=lambda t: [switch.reply_to(o, t) for o in switch.packet_outs()[1:]
                                   if not probe.echoes[-1].rtt])
    assert probe.verdict == 'reachable' and prober.counters['flows_lost'] == 1


def test_a_same_mark_clash_ends_the_bridges_probes_in_error():
    prober = Prober(SETTINGS)
    other = flow_stats(0, 1, cookie=0x72797570_00000001 | 5 << 16, ip_dscp=SETTINGS.dscp,
                       eth_type=0x0800)
    switch = Switch(prober, flows=[*NORMAL, other])
    probe = prober.start(request(), 0.0)
    switch.confirm_all(0.001)
    assert probe.state == 'error' and 'controller id 1' in probe.error


def test_an_error_for_our_meter_already_there_does_not_matter_and_is_not_a_warning():
    prober = Prober(SETTINGS)
    switch = Switch(prober)
    meter = next(m for m in switch.sent if isinstance(m, parser.OFPMeterMod))
    assert prober.refused(switch.dpid, meter.xid, 'OpenFlow error type 12 code 1', 0.0) is False
    assert prober.refused(switch.dpid, meter.xid + 1, 'OpenFlow error type 5 code 0', 0.0)
