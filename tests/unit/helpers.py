"""Shared builders for the unit tests: requests, switch replies and PacketIns."""
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from ryu_apps.bridge import Port
from ryu_apps.options import Settings
from ryu_apps.probes import ProbeRequest, Prober

DPID = 0x1
SETTINGS = Settings(catch_settle=0.005)


def request(**overrides) -> ProbeRequest:
    fields = dict(dpid=DPID, in_port=1, src_mac='02:00:00:00:00:01', src_ip='10.0.0.1',
                  dst_mac='02:00:00:00:00:02', dst_ip='10.0.0.2',
                  count=3, interval=0.2, timeout=1.0)
    fields.update(overrides)
    return ProbeRequest(**fields)


class Switch:
    """Records what the core sends to one datapath, and answers like a switch would."""

    def __init__(self, prober: Prober, dpid: int = DPID, ports=(1, 2)):
        self.prober, self.dpid, self.sent = prober, dpid, []
        self.bridge = prober.connect(dpid, self.sent.append, now=0.0)
        self.bridge.add_ports([Port(n, 'tap%d' % n, '02:00:00:00:01:%02x' % n) for n in ports])

    def of_type(self, cls) -> list:
        return [m for m in self.sent if isinstance(m, cls)]

    def confirm_all(self, now: float) -> None:
        for barrier in self.of_type(parser.OFPBarrierRequest):
            self.prober.confirmed(self.dpid, barrier.xid, now)

    def packet_outs(self) -> list:
        return self.of_type(parser.OFPPacketOut)

    def reply_to(self, packet_out, now: float, cookie: int | None = None, **changes):
        """Answer an injected echo request as the destination VM would."""
        frame = reply_frame(packet_out.data, **changes)
        return self.prober.packet_in(self.dpid, packet_in(frame, cookie), now)


def reply_frame(request_frame: bytes, **changes) -> bytes:
    """The echo reply a Linux VM would send, built by scapy; `changes` alter the ICMP layer."""
    req = Ether(request_frame)
    icmp = dict(type=0, id=req[ICMP].id, seq=req[ICMP].seq)
    payload = changes.pop('payload', bytes(req[ICMP].payload))
    eth_dst = changes.pop('eth_dst', req.src)
    icmp.update(changes)
    return bytes(Ether(src=req.dst, dst=eth_dst) / IP(src=req[IP].dst, dst=req[IP].src)
                 / ICMP(**icmp) / payload)



def packet_in(data: bytes, cookie: int | None = None, reason: int = ofp.OFPR_ACTION):
    return parser.OFPPacketIn(None, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                              reason=reason, table_id=0,
                              cookie=SETTINGS.cookie if cookie is None else cookie,
                              match=parser.OFPMatch(in_port=2), data=data)
