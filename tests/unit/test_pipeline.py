"""Reading another controller's flows: which deliver to a port, and the shadows over them."""
from ryu.ofproto import nicira_ext
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from helpers import flow_stats
from ryu_apps import pipeline
from ryu_apps.pipeline import Flow

OURS = dict(eth_type=0x0800, ip_proto=1, icmpv4_type=0, icmpv4_code=0,
            eth_dst='02:00:00:00:00:01', ipv4_dst='10.0.0.1', ip_dscp=3)


def flows(*stats):
    return [Flow.from_stats(s) for s in stats]


def output(port):
    return [parser.OFPActionOutput(port)]


def test_masked_values_are_compatible_when_they_agree_under_both_masks():
    assert pipeline.compatible('02:00:00:00:00:01', ('00:00:00:00:00:00', '01:00:00:00:00:00'))
    assert not pipeline.compatible('03:00:00:00:00:01', ('00:00:00:00:00:00', '01:00:00:00:00:00'))
    assert pipeline.compatible(('10.0.0.0', '255.255.255.0'), '10.0.0.7')
    assert not pipeline.compatible(5, 6) and pipeline.compatible((4, 4), 5)


def test_a_flow_matching_another_protocol_or_address_is_no_delivery_for_our_reply():
    assert pipeline.merge({'eth_type': 0x86dd}, OURS) is None
    assert pipeline.merge({'ipv4_dst': '10.0.0.2'}, OURS) is None
    assert pipeline.merge({'ip_dscp': 46}, OURS) is None
    merged = pipeline.merge({'in_port': 3, 'ipv4_dst': ('10.0.0.0', '255.0.0.0')}, OURS)
    assert merged == dict(OURS, in_port=3)


def test_shadows_lie_one_priority_above_each_flow_that_outputs_to_the_port():
    table = flows(
        flow_stats(0, 0, actions=[], goto=60),                         # no delivery
        flow_stats(60, 3),                                             # NORMAL
        flow_stats(65, 100, actions=output(1), reg15=2, metadata=1),   # OVN's output stage
        flow_stats(65, 100, actions=output(2), reg15=3, metadata=1),   # another port
        flow_stats(0, 100, actions=[], eth_type=0x0800, ip_proto=1),    # a drop
        flow_stats(7, 9, actions=output(1), eth_type=0x0806))           # ARP only
    found = pipeline.shadows(table, 1, OURS)
    assert [(s.table, s.priority) for s in found] == [(60, 4), (65, 101)]
    assert dict(found[1].match) == dict(OURS, reg15=2, metadata=1)
    assert found[1].over is table[2]


def test_output_to_a_register_delivers_when_the_register_holds_the_port():
    reg = parser.NXActionOutputReg(ofs_nbits=nicira_ext.ofs_nbits(0, 31), src='reg1',
                                   max_len=0)
    (shadow,) = pipeline.shadows(flows(flow_stats(70, 200, actions=[reg])), 7, OURS)
    assert dict(shadow.match)['reg1'] == (7, 0xffffffff)


def test_a_taken_packet_is_handed_on_as_its_delivery_flow_would_have():
    def words(actions):
        return [(type(a).__name__, getattr(a, 'port', getattr(a, 'key', None)))
                for a in actions]
    normal, = flows(flow_stats(60, 3))
    assert words(pipeline.hand_on(normal, 1)) == [('OFPActionOutput', ofp.OFPP_NORMAL)]
    tagged, = flows(flow_stats(94, 12, actions=[
        parser.OFPActionPopVlan(), parser.OFPActionSetField(eth_src='02:00:00:00:00:fe'),
        parser.NXActionCT(flags=1, zone_src=None, zone_ofs_nbits=0, recirc_table=255,
                          alg=0, actions=[]),
        parser.OFPActionOutput(1), parser.OFPActionOutput(5)]))
    assert words(pipeline.hand_on(tagged, 1)) == [
        ('OFPActionPopVlan', None), ('OFPActionSetField', 'eth_src'), ('OFPActionOutput', 1)]
    reg = parser.NXActionOutputReg(ofs_nbits=nicira_ext.ofs_nbits(0, 31), src='reg1',
                                   max_len=0)
    by_reg, = flows(flow_stats(70, 200, actions=[reg]))
    assert words(pipeline.hand_on(by_reg, 7)) == [('OFPActionOutput', 7)]
    assert words(pipeline.hand_on(None, 7)) == [('OFPActionOutput', 7)]


def test_a_flow_at_the_top_priority_is_shadowed_at_the_same_priority():
    (shadow,) = pipeline.shadows(flows(flow_stats(0, 65535, actions=output(1))), 1, OURS)
    assert shadow.priority == 65535


def test_flows_read_twice_compare_equal_so_an_unchanged_table_changes_nothing():
    one = flows(flow_stats(65, 100, actions=output(1), reg15=2))
    two = flows(flow_stats(65, 100, actions=output(1), reg15=2))
    assert one == two and pipeline.shadows(one, 1, OURS) == pipeline.shadows(two, 1, OURS)
    changed = flows(flow_stats(65, 100, actions=output(4), reg15=2))
    assert pipeline.shadows(changed, 1, OURS) == []
    assert one[0].to_json()["match"] == "reg15=2"


def test_replay_names_the_highest_priority_flow_the_packet_and_its_registers_match():
    table = flows(
        flow_stats(60, 3),
        flow_stats(60, 50, actions=[], eth_type=0x0800, ip_proto=1, ipv4_dst='10.0.0.4'),
        flow_stats(65, 100, actions=output(1), reg15=2),
        flow_stats(65, 90, actions=output(9)))
    packet = dict(OURS, ipv4_dst='10.0.0.4')
    assert pipeline.replay(table, 60, packet) is table[1]
    assert pipeline.effect(table[1], packet) == ('dropped', None)
    assert pipeline.replay(table, 60, dict(OURS)) is table[0]
    assert pipeline.effect(table[0], OURS) == ('normal', None)
    assert pipeline.replay(table, 65, dict(OURS, reg15=2)) is table[2]
    assert pipeline.replay(table, 65, OURS) is table[3]   # reg15 absent: it is 0
    assert pipeline.effect(pipeline.replay(table, 7, OURS), OURS) == ('no-flow', None)


def test_effect_follows_goto_resubmit_output_to_a_register_and_controller():
    goto = flows(flow_stats(0, 1, actions=[], goto=24))[0]
    assert pipeline.effect(goto, {}) == ('goto', 24)
    resubmit = flows(flow_stats(0, 1, actions=[parser.NXActionResubmitTable(table_id=8)]))[0]
    assert pipeline.effect(resubmit, {}) == ('goto', 8)
    reg = parser.NXActionOutputReg(ofs_nbits=nicira_ext.ofs_nbits(0, 15), src='reg1', max_len=0)
    assert pipeline.effect(flows(flow_stats(0, 1, actions=[reg]))[0], {'reg1': 5}) == ('output', 5)
    to_controller = flows(flow_stats(0, 1, actions=output(ofp.OFPP_CONTROLLER)))[0]
    assert pipeline.effect(to_controller, {}) == ('controller', None)
