"""The walk of an unanswered probe, table by table, on a switch played by hand."""
from ryu.ofproto import ofproto_v1_3_parser as parser
from scapy.layers.inet import IP

from helpers import SETTINGS, Switch, flow_stats, packet_in, request
from scapy.layers.l2 import Ether

from ryu_apps.probes import Prober

SETTLE = SETTINGS.catch_settle
# Neutron-like: table 0 -> 60, where ICMP to vm2 is dropped and the rest switched.
FLOWS = [flow_stats(0, 0, actions=[], goto=60),
         flow_stats(60, 50, cookie=0xab, actions=[], eth_type=0x0800, ip_proto=1,
                    ipv4_dst='10.0.0.2'),
         flow_stats(60, 3)]


def unanswered_until_traced():
    """A probe nothing answers, ticked through both rounds until its trace echo is out."""
    prober = Prober(SETTINGS)
    switch = Switch(prober, flows=FLOWS)
    probe = prober.start(request(count=1, timeout=0.5), 0.0)
    t = 0.0
    while prober.trace is None or not trace_echoes(switch):
        t = round(t + 0.005, 6)
        prober.tick(t)
        switch.confirm_all(t)
        assert t < 10
    return prober, switch, probe, t


def trace_echoes(switch):
    return [o for o in switch.packet_outs() if Ether(o.data)[IP].tos == SETTINGS.trace_dscp << 2]


def watches(switch, table):
    return [m for m in switch.shadow_adds() if m.table_id == table and m.priority >= 0xfffe]


def test_watches_in_every_table_take_the_trace_echo_one_table_further_each_time():
    prober, switch, probe, t = unanswered_until_traced()
    assert watches(switch, 0) and watches(switch, 60)
    assert all(dict(m.match.items())['ip_dscp'] == SETTINGS.trace_dscp
               for m in watches(switch, 0))
    echo = trace_echoes(switch)[-1]
    cookie = watches(switch, 0)[0].cookie
    prober.packet_in(switch.dpid, packet_in(echo.data, cookie, table_id=0, in_port=1), t)
    deletes = [m for m in switch.of_type(parser.OFPFlowMod) if m.command == 4]  # DELETE_STRICT
    assert {(m.table_id, dict(m.match.items()).get('in_port')) for m in deletes} == {
        (0, 1), (0, None)}   # this context's watch and its table's catch-all
    for _ in range(20):      # the next echo once the deletion is in and settled
        t = round(t + SETTLE / 2, 6)
        switch.confirm_all(t)
        prober.tick(t)
    echo = trace_echoes(switch)[-1]
    assert echo is not trace_echoes(switch)[0]
    prober.packet_in(switch.dpid, packet_in(echo.data, cookie, table_id=60, in_port=1), t)
    while probe.state == 'running':   # nothing more comes: the walk ends at table 60
        t = round(t + 0.05, 6)
        switch.confirm_all(t)
        prober.tick(t)
    result = probe.to_json()
    assert result['verdict'] == 'unreachable'
    assert [(s['direction'], s['table'], s['action']) for s in result['path']] == [
        ('request', 0, 'to table 60'), ('request', 60, 'dropped')]
    broken = result['broken_at']
    assert (broken['direction'], broken['table'], broken['reason']) == ('request', 60, 'dropped')
    assert broken['flow']['cookie'] == '0xab' and broken['flow']['priority'] == 50
    assert not [m for m in switch.ours() if m.cookie == cookie]   # every watch is gone


def test_an_echo_taken_again_where_it_was_seen_is_sent_again_not_counted():
    prober, switch, probe, t = unanswered_until_traced()
    echo = trace_echoes(switch)[-1]
    cookie = watches(switch, 0)[0].cookie
    prober.packet_in(switch.dpid, packet_in(echo.data, cookie, table_id=0, in_port=1), t)
    # the deleted watch, still cached in the datapath, takes the next echo again
    prober.packet_in(switch.dpid, packet_in(echo.data, cookie, table_id=0, in_port=1), t)
    assert len(prober.trace.path) == 1
