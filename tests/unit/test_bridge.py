import struct
from types import SimpleNamespace

from ryu.ofproto import ofproto_parser
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from helpers import SETTINGS
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


def bridge():
    sent = []
    return Bridge(1, sent.append, SETTINGS), sent


def test_connect_sets_controller_id_packet_in_config_and_sweeps_our_cookie_only():
    b, sent = bridge()
    b.connect()
    kinds = [type(m).__name__ for m in sent]
    assert kinds == ['OFPExperimenter', 'OFPSetConfig', 'OFPSetAsync', 'OFPFlowMod',
                     'OFPPortDescStatsRequest']
    set_id, config, async_, sweep, _ = [wire(m) for m in sent]
    assert (set_id.experimenter, set_id.exp_type) == (0x2320, 20)
    assert struct.unpack('!6xH', set_id.data) == (SETTINGS.controller_id,)
    assert config.miss_send_len > 0
    assert async_.packet_in_mask == [1 << ofp.OFPR_ACTION] * 2
    assert (sweep.command, sweep.table_id) == (ofp.OFPFC_DELETE, ofp.OFPTT_ALL)
    assert (sweep.cookie, sweep.cookie_mask) == (SETTINGS.cookie, 2**64 - 1)


def test_catch_flow_copies_replies_to_the_source_to_us_guards_and_resubmits_to_table_0():
    b, sent = bridge()
    b.acquire('02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0)
    flow_mod, barrier = sent
    assert isinstance(barrier, parser.OFPBarrierRequest)
    flow = wire(flow_mod)
    assert (flow.command, flow.table_id, flow.priority) == (ofp.OFPFC_ADD, 0, 65535)
    assert flow.cookie == SETTINGS.cookie and flow.hard_timeout == 5
    match = dict(flow.match.items())
    assert match == {'eth_type': 0x0800, 'ip_proto': 1, 'icmpv4_type': 0, 'icmpv4_code': 0,
                     'eth_dst': '02:00:00:00:00:01', 'ipv4_dst': '10.0.0.1', 'reg15': 0}
    controller, load, resubmit = flow.instructions[0].actions
    assert (controller.controller_id, controller.reason) == (SETTINGS.controller_id,
                                                             ofp.OFPR_ACTION)
    assert (load.dst, load.value) == ('reg15', 1)
    assert resubmit.table_id == 0 and resubmit.in_port == 0xfff8   # the packet's own port


def test_catch_is_extended_in_place_when_a_later_probe_needs_it_longer():
    b, sent = bridge()
    catch = b.acquire('02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0)
    b.confirmed(sent[1].xid, now=0.001)
    sent.clear()
    b.acquire('02:00:00:00:00:01', '10.0.0.1', until=2.0, now=1.0)
    assert sent == []   # the flow outlives the new probe already
    b.acquire('02:00:00:00:00:01', '10.0.0.1', until=30.0, now=1.0)
    (extend,) = sent     # no barrier: the flow never left the table
    assert extend.command == ofp.OFPFC_ADD and extend.hard_timeout == 31
    assert catch.users == 3


def test_release_deletes_strictly_by_match_priority_and_cookie():
    b, sent = bridge()
    catch = b.acquire('02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0)
    b.release(catch, now=1.0)
    delete = wire(sent[-1])
    assert (delete.command, delete.priority) == (ofp.OFPFC_DELETE_STRICT, 65535)
    assert (delete.cookie, delete.cookie_mask) == (SETTINGS.cookie, 2**64 - 1)
    assert dict(delete.match.items())['ipv4_dst'] == '10.0.0.1'
    assert b.catches == {}


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
    sent = []
    b = Bridge(1, sent.append, Settings(catch_linger=1.0))
    catch = b.acquire('02:00:00:00:00:01', '10.0.0.1', until=3.0, now=0.0)
    b.release(catch, now=2.0)
    assert b.expire(now=2.5) == 3.0 and b.catches   # idle, still in the table
    assert b.acquire('02:00:00:00:00:01', '10.0.0.1', until=4.0, now=2.5) is catch
    b.release(catch, now=3.0)
    flow_mods = [m for m in sent if isinstance(m, parser.OFPFlowMod)]
    assert not [m for m in flow_mods if m.command == ofp.OFPFC_DELETE_STRICT]
    assert b.expire(now=4.0) is None and not b.catches
    flow_mods = [m for m in sent if isinstance(m, parser.OFPFlowMod)]
    (delete,) = [m for m in flow_mods if m.command == ofp.OFPFC_DELETE_STRICT]
    adds = [m for m in flow_mods if m.command == ofp.OFPFC_ADD]
    assert all(add.hard_timeout >= 2 for add in adds)   # the flow outlives every linger
