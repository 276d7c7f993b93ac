"""Shared builders for the unit tests: requests, switch replies and PacketIns."""
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from ryu_apps.bridge import Port
from ryu_apps.options import Settings
from ryu_apps.probes import ProbeRequest, Prober

DPID = 0x1
SETTINGS = Settings(catch_settle=0.005, catch_linger=0)
ALL_BITS = 2**64 - 1


def flow_stats(table=0, priority=0, cookie=0x1234, actions=None, goto=None, **match):
    """A flow of another controller, as the switch describes it in a flow stats reply."""
    actions = [parser.OFPActionOutput(ofp.OFPP_NORMAL)] if actions is None else actions
    instructions = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
    if goto is not None:
        instructions.append(parser.OFPInstructionGotoTable(goto))
    return parser.OFPFlowStats(table_id=table, duration_sec=0, duration_nsec=0,
                               priority=priority, idle_timeout=0, hard_timeout=0, flags=0,
                               cookie=cookie, packet_count=0, byte_count=0,
                               match=parser.OFPMatch(**match), instructions=instructions)


NORMAL = [flow_stats()]


def installed(sent: list) -> list:
    """Our flows as the switch holds them after `sent`: added and not deleted."""
    table = {}
    for m in sent:
        if isinstance(m, parser.OFPFlowMod) and m.command == ofp.OFPFC_ADD:
            table[(m.table_id, m.priority, str(m.match))] = m
        elif isinstance(m, parser.OFPFlowMod) and m.command == ofp.OFPFC_DELETE:
            table = {k: v for k, v in table.items()
                     if v.cookie & m.cookie_mask != m.cookie & m.cookie_mask}
    return [flow_stats(m.table_id, m.priority, m.cookie, [], **dict(m.match.items()))
            for m in table.values()]


def request(**overrides) -> ProbeRequest:
    fields = dict(dpid=DPID, in_port=1, src_mac='02:00:00:00:00:01', src_ip='10.0.0.1',
                  dst_mac='02:00:00:00:00:02', dst_ip='10.0.0.2',
                  count=3, interval=0.2, timeout=1.0)
    fields.update(overrides)
    return ProbeRequest(**fields)


class Switch:
    """Records what the core sends to one datapath, and answers like a switch would."""

    def __init__(self, prober: Prober, dpid: int = DPID, ports=(1, 2), flows=NORMAL):
        self.prober, self.dpid, self.sent, self.flows = prober, dpid, [], list(flows)
        self._answered: set[int] = set()
        self.bridge = prober.connect(dpid, self.sent.append, now=0.0)
        self.bridge.add_ports([Port(n, 'tap%d' % n, '02:00:00:00:01:%02x' % n) for n in ports])

    def of_type(self, cls) -> list:
        return [m for m in self.sent if isinstance(m, cls)]

    def confirm_all(self, now: float) -> None:
        """Answer every flow table read (with `flows`) and every barrier so far."""
        for request in self.of_type(parser.OFPFlowStatsRequest):
            if request.xid not in self._answered:
                self._answered.add(request.xid)
                self.prober.flow_stats(self.dpid, request.xid, self.flows + self.ours(),
                                       False, now)
        for barrier in self.of_type(parser.OFPBarrierRequest):
            if barrier.xid not in self._answered:
                self._answered.add(barrier.xid)
                self.prober.confirmed(self.dpid, barrier.xid, now)

    def ours(self) -> list:
        return installed(self.sent)

    def shadow_adds(self) -> list:
        return [m for m in self.of_type(parser.OFPFlowMod) if m.command == ofp.OFPFC_ADD]

    def deletes(self) -> list:
        """Deletions of one generation of a catch's flows (not the sweep at connect)."""
        return [m for m in self.of_type(parser.OFPFlowMod)
                if m.command == ofp.OFPFC_DELETE and m.cookie_mask == ALL_BITS]

    def packet_outs(self) -> list:
        return self.of_type(parser.OFPPacketOut)

    def reply_to(self, packet_out, now: float, cookie: int | None = None, **changes):
        """Answer an injected echo request as the destination VM would."""
        frame = reply_frame(packet_out.data, **changes)
        shadow = self.shadow_adds()[-1]
        return self.prober.packet_in(self.dpid, packet_in(
            frame, shadow.cookie if cookie is None else cookie, table_id=shadow.table_id), now)


def reply_frame(request_frame: bytes, **changes) -> bytes:
    """The echo reply a Linux VM would send, built by scapy; `changes` alter the ICMP layer."""
    req = Ether(request_frame)
    icmp = dict(type=0, id=req[ICMP].id, seq=req[ICMP].seq)
    payload = changes.pop('payload', bytes(req[ICMP].payload))
    eth_dst = changes.pop('eth_dst', req.src)
    tos = changes.pop('tos', req[IP].tos)    # Linux echoes the request's
    icmp.update(changes)
    return bytes(Ether(src=req.dst, dst=eth_dst) / IP(src=req[IP].dst, dst=req[IP].src, tos=tos)
                 / ICMP(**icmp) / payload)



def packet_in(data: bytes, cookie: int | None = None, reason: int = ofp.OFPR_ACTION,
              table_id: int = 0, **fields):
    return parser.OFPPacketIn(None, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                              reason=reason, table_id=table_id,
                              cookie=SETTINGS.cookie if cookie is None else cookie,
                              match=parser.OFPMatch(**(fields or {'in_port': 2})), data=data)
