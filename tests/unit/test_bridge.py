import struct
from types import SimpleNamespace

from ryu.ofproto import ofproto_parser
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from helpers import NORMAL, SETTINGS, flow_stats, installed
from ryu_apps.bridge import Bridge, Port
from ryu_apps.options import Settings

DATAPATH = SimpleNamespace(ofproto=ofp, ofproto_parser=parser, id=1)


def wire(msg):
    """The message serialized; parsed back where Ryu has a parser for its type."""
    msg.datapath = DATAPATH
    msg.serialize()
    version, msg_type, length, xid = ofproto_parser.header(msg.buf)
    assert length == len(msg.buf)
    if msg_type not in parser._MSG_PARSERS:
        return msg
    return ofproto_parser.msg(DATAPATH, version, msg_type, length, xid, bytes(msg.buf))


def bridge(flows=NORMAL, **settings):
    sent = []
    b = Bridge(1, sent.append, Settings(**dict(dict(catch_settle=0.005, catch_linger=0),
                                               **settings)))
    b.flows_table = flows
    return b, sent


def read(b, sent, now, flows=None):
    """Answer the bridge's pending flow table read."""
    (request,) = [m for m in sent if isinstance(m, parser.OFPFlowStatsRequest)][-1:]
    theirs = b.flows_table if flows is None else flows
    return b.flow_stats(request.xid, theirs + installed(sent), False, now)


def adds(sent):
    return [m for m in sent if isinstance(m, parser.OFPFlowMod) and m.command == ofp.OFPFC_ADD]


def test_connect_sets_controller_id_packet_in_config_meter_and_sweeps_our_cookies_only():
    b, sent = bridge()
    b.connect()
    kinds = [type(m).__name__ for m in sent]
    assert kinds == ['OFPExperimenter', 'OFPSetConfig', 'OFPSetAsync', 'OFPFlowMod',
                     'OFPMeterMod', 'OFPPortDescStatsRequest']
    set_id, config, async_, sweep, meter, _ = [wire(m) for m in sent]
    assert (set_id.experimenter, set_id.exp_type) == (0x2320, 20)
    assert struct.unpack('!6xH', set_id.data) == (SETTINGS.controller_id,)
    assert config.miss_send_len > 0
    assert async_.packet_in_mask == [1 << ofp.OFPR_ACTION] * 2
    assert async_.flow_removed_mask[0] & (1 << ofp.OFPRR_DELETE)
    assert (sweep.command, sweep.table_id) == (ofp.OFPFC_DELETE, ofp.OFPTT_ALL)
    assert (sweep.cookie, sweep.cookie_mask) == (SETTINGS.cookie, 0xffffffff0000ffff)
    assert meter.meter_id == SETTINGS.controller_id
    assert meter.bands[0].rate == SETTINGS.packet_in_rate


def test_a_new_catch_reads_the_flow_table_then_shadows_the_delivery_flow():
    b, sent = bridge()
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    assert [type(m).__name__ for m in sent] == ['OFPFlowStatsRequest'] and catch.ready_at is None
    read(b, sent, 0.001)
    flow = wire(adds(sent)[0])
    # NORMAL at priority 0 in table 0: the shadow sits at 1, for marked replies to vm1 only
    assert (flow.table_id, flow.priority, flow.hard_timeout) == (0, 1, 5)
    assert flow.flags == ofp.OFPFF_SEND_FLOW_REM
    assert flow.cookie == SETTINGS.cookie | catch.index << 16
    assert dict(flow.match.items()) == {
        'eth_type': 0x0800, 'ip_proto': 1, 'icmpv4_type': 0, 'icmpv4_code': 0,
        'eth_dst': '02:00:00:00:00:01', 'ipv4_dst': '10.0.0.1', 'ip_dscp': SETTINGS.dscp}
    (actions,) = flow.instructions        # no meter instruction (see the next test)
    (controller,) = actions.actions       # taken here: the tenant never sees it
    assert (controller.controller_id, controller.reason) == (SETTINGS.controller_id,
                                                             ofp.OFPR_ACTION)
    assert controller.meter_id == SETTINGS.meter_id     # our meter, named by the action
    assert isinstance(sent[-1], parser.OFPBarrierRequest)
    assert b.confirmed(sent[-1].xid, now=0.002) is catch and catch.ready_at == 0.007


def test_a_catch_is_confirmed_by_its_own_barrier_while_another_thread_sends_meanwhile():
    # Ryu's send blocks while its queue is full, and another green thread (a PacketIn
    # handler, the timer) sends meanwhile: the xid to wait for is the one the barrier has.
    b, sent = bridge()

    def send(msg):
        sent.append(msg)
        if isinstance(msg, parser.OFPBarrierRequest) and len(sent) < 10:
            b.inject(1, b'another thread')
    b.send = send
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    read(b, sent, 0.001)
    (barrier,) = [m for m in sent if isinstance(m, parser.OFPBarrierRequest)]
    assert catch.laid_xid == barrier.xid
    assert b.confirmed(barrier.xid, now=0.002) is catch and catch.ready_at is not None


def test_an_unmarked_catch_copies_and_lets_the_delivery_flow_act():
    b, sent = bridge([flow_stats(65, 100, actions=[parser.OFPActionOutput(1)], reg15=2)])
    b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=None)
    read(b, sent, 0.001)
    flow = wire(adds(sent)[0])
    assert 'ip_dscp' not in dict(flow.match.items()) and flow.priority == 101
    (actions,) = flow.instructions        # copy to us, then the flow's own output
    assert [type(a).__name__ for a in actions.actions] == ['NXActionController2',
                                                           'OFPActionOutput']
    assert actions.actions[1].port == 1


def test_no_flow_of_ours_has_a_meter_instruction_so_ovs_ctl_restart_can_put_it_back():
    # ovs-save saves no meters: a flow with `meter:N` fails the whole replace-flows of
    # the bridge. A copy keeps the delivery flow's own meter instruction, as that flow has.
    theirs = flow_stats(0, 5, actions=[parser.OFPActionOutput(2)], in_port=3)
    theirs.instructions.insert(0, parser.OFPInstructionMeter(9))
    b, sent = bridge([theirs])
    b.acquire(2, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=None)
    b.acquire(2, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    read(b, sent, 0.001)
    b.watch(b.reserve_index(), 3, {'eth_type': 0x0800}, None)
    b.answer_watch(b.reserve_index(), {'in_port': 2})
    flows = [wire(m) for m in adds(sent)]
    assert len(flows) == 4
    meters = [i.meter_id for f in flows for i in f.instructions
              if isinstance(i, parser.OFPInstructionMeter)]
    assert meters == [9]        # the copy of their flow, and only that
    to_us = [a for f in flows for i in f.instructions if hasattr(i, 'actions')
             for a in i.actions if isinstance(a, parser.NXActionController2)]
    assert [(a.controller_id, a.meter_id) for a in to_us] == [
        (SETTINGS.controller_id, SETTINGS.meter_id)] * 4


def test_catch_is_extended_in_place_when_a_later_probe_needs_it_longer():
    b, sent = bridge()
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    read(b, sent, 0.0)
    b.confirmed(sent[-1].xid, now=0.001)
    sent.clear()
    b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=2.0, now=1.0, dscp=3)
    assert sent == []   # the flow outlives the new probe already
    b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=30.0, now=1.0, dscp=3)
    (extend,) = sent     # no barrier, no read: the flow never left the table
    assert extend.command == ofp.OFPFC_ADD and extend.hard_timeout == 31
    assert catch.users == 3


def test_release_deletes_the_catch_by_its_exact_cookie():
    b, sent = bridge()
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    read(b, sent, 0.0)
    b.release(catch, now=1.0)
    delete = wire(sent[-1])
    assert (delete.command, delete.table_id) == (ofp.OFPFC_DELETE, ofp.OFPTT_ALL)
    assert (delete.cookie, delete.cookie_mask) == (SETTINGS.cookie | catch.index << 16, 2**64 - 1)
    assert b.catches == {}


def test_a_changed_pipeline_is_followed_and_the_old_shadows_go_once_the_new_are_in():
    b, sent = bridge()
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=30.0, now=0.0, dscp=3)
    read(b, sent, 0.0)
    b.confirmed(sent[-1].xid, now=0.001)
    old = catch.index
    assert b.expire(now=0.5) == 1.0 and b.expire(now=1.0) == 2.0    # re-read when due
    read(b, sent, 1.001)
    assert not adds(sent[-2:])   # unchanged: nothing to do
    b.expire(now=2.01)
    moved = [flow_stats(60, 3)]  # the operator moved NORMAL to table 60
    assert read(b, sent, 2.011, flows=moved) == [catch]   # its echoes are to go again
    assert catch.index != old and (adds(sent)[-1].table_id, adds(sent)[-1].priority) == (60, 4)
    assert catch.ready_at is None       # until the new shadows are in
    b.confirmed(sent[-1].xid, now=2.012)
    delete = sent[-1]
    assert delete.command == ofp.OFPFC_DELETE and delete.cookie == SETTINGS.cookie | old << 16


def test_flows_deleted_by_another_controller_are_laid_again_when_it_delivers_again():
    b, sent = bridge()
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=30.0, now=0.0, dscp=3)
    read(b, sent, 0.0)
    b.confirmed(sent[-1].xid, now=0.001)
    cookie = SETTINGS.cookie | catch.index << 16
    assert b.removed(cookie, ofp.OFPRR_DELETE, now=1.0) is catch
    assert catch.ready_at is None and b.removed(cookie, ofp.OFPRR_DELETE, 1.0) is None
    b.expire(now=1.0)
    read(b, sent, 1.01, flows=[])          # the other controller has not re-added its own
    assert catch.ready_at is None and b.expire(now=1.02) == 1.06
    b.expire(now=1.06)
    read(b, sent, 1.07)                    # it has: a new generation, and the meter again
    assert isinstance([m for m in sent if isinstance(m, parser.OFPMeterMod)][-1],
                      parser.OFPMeterMod)
    b.confirmed(sent[-1].xid, now=1.08)
    assert catch.ready_at == 1.085 and catch.reinstalls == 1
    assert b.removed(cookie, ofp.OFPRR_DELETE, 1.1) is None   # the old generation's


def test_a_shadow_replaced_without_flow_removed_is_noticed_at_the_next_read():
    b, sent = bridge()
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=30.0, now=0.0, dscp=3)
    read(b, sent, 0.0)
    b.confirmed(sent[-1].xid, now=0.001)
    b.expire(now=1.0)
    (request,) = [m for m in sent if isinstance(m, parser.OFPFlowStatsRequest)][-1:]
    assert b.flow_stats(request.xid, NORMAL, False, 1.001) == [catch]   # ours is gone


def test_another_instance_with_our_mark_on_the_bridge_is_a_clash():
    other = flow_stats(0, 1, cookie=0x72797570_00000001 | 5 << 16, ip_dscp=SETTINGS.dscp,
                       eth_type=0x0800)
    b, sent = bridge([*NORMAL, other])
    b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    read(b, sent, 0.0)
    assert 'controller id 1' in b.clash
    assert Settings(controller_id=1).dscp != SETTINGS.dscp   # different ids, different marks


def test_inject_submits_the_frame_to_the_table_from_the_vm_port():
    b, sent = bridge()
    b.inject(7, b'\x02' * 60)
    out = wire(sent[0])
    assert out.in_port == 7 and out.buffer_id == ofp.OFP_NO_BUFFER
    assert [a.port for a in out.actions] == [ofp.OFPP_TABLE]
    assert out.data == b'\x02' * 60


def test_ports_are_found_by_number_or_name_and_follow_port_status():
    b, _ = bridge()
    b.add_ports([Port(1, 'tap1', 'aa'), Port(2, 'tap2', 'bb')])
    assert b.find_port(2).name == 'tap2' and b.find_port('tap1').port_no == 1
    b.port_changed(Port(2, 'tap2', 'bb'), deleted=True)
    assert b.find_port('tap2') is None and b.find_port(3) is None


def test_with_a_linger_an_idle_catch_stays_then_goes_and_a_new_probe_reuses_it():
    b, sent = bridge(catch_linger=1.0, resync_interval=100)
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    read(b, sent, 0.0)
    b.release(catch, now=2.0)
    assert b.expire(now=2.5) == 3.0 and b.catches   # idle, still in the table
    assert b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=4.0, now=2.5, dscp=3) is catch
    b.release(catch, now=3.0)
    deletes = [m for m in sent if isinstance(m, parser.OFPFlowMod)
               and m.command == ofp.OFPFC_DELETE]
    assert not deletes
    assert b.expire(now=4.0) is None and not b.catches
    (delete,) = [m for m in sent if isinstance(m, parser.OFPFlowMod)
                 and m.command == ofp.OFPFC_DELETE]
    assert all(add.hard_timeout >= 2 for add in adds(sent))   # outlives every linger


def test_a_source_probed_for_hours_keeps_only_its_last_extension_waiting_for_an_error():
    # no barrier follows an extension: each used to leave its xid waiting, for ever
    b, sent = bridge(catch_linger=10)
    catch = b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0, dscp=3)
    read(b, sent, 0.001)
    b.confirmed(sent[-1].xid, now=0.002)
    t = 0.0
    for _ in range(2000):
        t += 0.5
        b.release(b.acquire(1, '02:00:00:00:00:01', '10.0.0.1', until=t + 2.4, now=t,
                            dscp=3), t + 0.4)
    assert len(b._awaiting) <= len(catch.shadows)
    last = [m for m in adds(sent)][-1]      # the last extension can still be refused
    assert b.refused(last.xid, 'table full') is catch and catch.error == 'table full'


def test_messages_whose_errors_do_not_matter_are_remembered_a_while_only():
    b, sent = bridge()
    for i in range(5000):
        b.answer_watch(b.reserve_index() if i % 1000 == 0 else 1, {'in_port': 1})
    assert len(b._ignored) == 1024
    newest = sent[-1].xid
    assert b.ignores(newest) and not b.ignores(newest)
    assert b.refused(newest, 'whatever') is None and newest not in b._ignored
