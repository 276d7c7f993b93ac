"""One connected switch: its ports, and every flow and PacketOut we send it.

Nothing else in the app builds OpenFlow messages. Messages are built with
`datapath=None` and handed to the `send` callback, which the Ryu shim binds to the
datapath (and tests to a list).

A *catch* is the flow that copies echo replies addressed to a probed source VM to us:

    table 0, priority P, cookie C, hard_timeout T
    icmp, icmp_type=0, icmp_code=0, dl_dst=SRC_MAC, nw_dst=SRC_IP, regG=0
    actions=controller(id=OUR_ID, reason=action), load:1->regG, resubmit(,0)

It *copies*: the reply goes on through the bridge's own pipeline from table 0 (with
its in_port intact), and the guard register keeps it from matching the catch twice.
Matching the source's MAC too means a reply counts only on its last hop: a reply that
crosses the bridge on its way to a router (dl_dst = the router) is not yet delivered.
All probes from one source share one catch (reference counted): a sweep from a VM to
49 others costs one flow, not 49. It is deleted, strictly and by our cookie,
when the last of them ends. The controller, not the flow, decides which replies count.
"""
import collections
import math
import random
import struct
from dataclasses import dataclass
from typing import Callable

from ryu.ofproto import nicira_ext
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from ryu_apps.options import Settings

NX_VENDOR = 0x00002320
NXT_SET_CONTROLLER_ID = 20
ALL_BITS = 0xffffffffffffffff
# Enough of a dyed reply for us (Ethernet, two VLAN tags, IPv4 with options, ICMP, token).
PACKET_IN_MAX_LEN = 256
# The flow outlives the probe by this much, so the switch never drops it mid-probe.
HARD_TIMEOUT_MARGIN = 2.0

Send = Callable[[object], None]


@dataclass(frozen=True)
class Port:
    port_no: int
    name: str
    hw_addr: str

    def to_json(self) -> dict:
        return {'port_no': self.port_no, 'name': self.name, 'hw_addr': self.hw_addr}


@dataclass
class Catch:
    """The catch flow of one probed source (MAC, IP), as probes see it."""
    src_mac: str
    src_ip: str
    users: int = 0
    ready_at: float | None = None    # the switch confirmed the flow; inject from then on
    expires_at: float = 0.0          # when the switch drops the flow by itself
    error: str | None = None         # the switch refused the flow


class Bridge:
    """The flows and ports of one datapath."""

    def __init__(self, dpid: int, send: Send, settings: Settings,
                 counters: collections.Counter | None = None):
        self.dpid = dpid
        self.send = send
        self.settings = settings
        self.counters = collections.Counter() if counters is None else counters
        self.ports: dict[int, Port] = {}
        self.catches: dict[tuple[str, str], Catch] = {}   # (src_mac, src_ip) -> catch
        self._idle: dict[tuple[str, str], float] = {}   # -> when the idle catch goes
        self._awaiting: dict[int, Catch] = {}   # xid -> catch, for barriers and errors
        self._xid = random.randrange(1 << 31)

    # --- session -------------------------------------------------------------------

    def connect(self) -> None:
        """Set up our connection and sweep flows an earlier run of the app left."""
        self._send(parser.OFPExperimenter(
            None, NX_VENDOR, NXT_SET_CONTROLLER_ID,
            struct.pack('!6xH', self.settings.controller_id)))
        # Without a non-zero miss_send_len, OVS sends a connection it did not dial
        # (`--ofp-switch-address-list`) no PacketIns at all.
        self._send(parser.OFPSetConfig(None, ofp.OFPC_FRAG_NORMAL, 128))
        # Only the PacketIns our catch flows ask for; no table misses of other pipelines.
        reasons = 1 << ofp.OFPR_ACTION
        port_events = (1 << ofp.OFPPR_ADD) | (1 << ofp.OFPPR_DELETE) | (1 << ofp.OFPPR_MODIFY)
        self._send(parser.OFPSetAsync(None, [reasons, reasons],
                                      [port_events, port_events], [0, 0]))
        self._send(parser.OFPFlowMod(
            None, cookie=self.settings.cookie, cookie_mask=ALL_BITS,
            table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
            out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
        self._send(parser.OFPPortDescStatsRequest(None, 0))

    def add_ports(self, ports: list[Port]) -> None:
        """Ports from a (possibly multipart) port description reply."""
        self.ports.update((port.port_no, port) for port in ports)

    def port_changed(self, port: Port, deleted: bool) -> None:
        if deleted:
            self.ports.pop(port.port_no, None)
        else:
            self.ports[port.port_no] = port

    def find_port(self, key: int | str) -> Port | None:
        """A port by number or by name."""
        if isinstance(key, int):
            return self.ports.get(key)
        return next((p for p in self.ports.values() if p.name == key), None)

    # --- catch flows ---------------------------------------------------------------

    def acquire(self, src_mac: str, src_ip: str, until: float, now: float) -> Catch:
        """The source's catch, installed or extended so it lasts past `until`."""
        key = (src_mac, src_ip)
        catch = self.catches.get(key)
        if catch is None:
            catch = self.catches[key] = Catch(src_mac, src_ip)
        catch.users += 1
        self._idle.pop(key, None)
        self._extend(catch, until, now)
        return catch

    def release(self, catch: Catch, now: float) -> None:
        """One probe is done with the catch; after the last one it is deleted, at once
        or once it has been idle for `catch_linger` seconds."""
        catch.users -= 1
        if catch.users > 0:
            return
        linger = self.settings.catch_linger
        if linger and catch.error is None:
            self._idle[(catch.src_mac, catch.src_ip)] = now + linger
            self._extend(catch, now + linger, now)
        else:
            self._delete(catch)

    def expire(self, now: float) -> float | None:
        """Delete the catches idle for their whole linger; when the next one is due."""
        for key, until in list(self._idle.items()):
            if until <= now:
                del self._idle[key]
                self._delete(self.catches[key])
        return min(self._idle.values(), default=None)

    def _extend(self, catch: Catch, until: float, now: float) -> None:
        if catch.expires_at >= until + HARD_TIMEOUT_MARGIN / 2:
            return
        # Re-adding an identical flow replaces it in place with the new timeout; only a
        # new flow has to wait for the datapath (see `confirmed`).
        hard_timeout = math.ceil(until - now + HARD_TIMEOUT_MARGIN)
        catch.expires_at = now + hard_timeout
        xid = self._send(self._catch_flow(catch, ofp.OFPFC_ADD, hard_timeout))
        self.counters['flow_mods'] += 1
        self._awaiting[xid] = catch
        if catch.ready_at is None:
            self._awaiting[self._send(parser.OFPBarrierRequest(None))] = catch

    def _delete(self, catch: Catch) -> None:
        del self.catches[(catch.src_mac, catch.src_ip)]
        self._forget(catch)
        self._send(self._catch_flow(catch, ofp.OFPFC_DELETE_STRICT))
        self.counters['flow_mods'] += 1

    def confirmed(self, xid: int, now: float) -> Catch | None:
        """A barrier came back: the catch flow is in the table.

        The datapath may still use flows it cached before the FlowMod for a moment,
        so echoes wait `catch_settle` longer."""
        catch = self._awaiting.pop(xid, None)
        if catch is not None and catch.ready_at is None and catch.error is None:
            catch.ready_at = now + self.settings.catch_settle
            self._forget(catch)
            return catch
        return None

    def refused(self, xid: int, reason: str) -> Catch | None:
        """The switch answered one of our messages with an error."""
        catch = self._awaiting.pop(xid, None)
        if catch is not None:
            catch.error = reason
            self._forget(catch)
        return catch

    def _forget(self, catch: Catch) -> None:
        for xid in [x for x, c in self._awaiting.items() if c is catch]:
            del self._awaiting[xid]

    def _catch_flow(self, catch: Catch, command: int, hard_timeout: int = 0):
        guard = 'reg%d' % self.settings.guard_reg
        match = parser.OFPMatch(eth_type=0x0800, ip_proto=1, icmpv4_type=0, icmpv4_code=0,
                                eth_dst=catch.src_mac, ipv4_dst=catch.src_ip, **{guard: 0})
        actions = [
            parser.NXActionController(max_len=PACKET_IN_MAX_LEN,
                                      controller_id=self.settings.controller_id,
                                      reason=ofp.OFPR_ACTION),
            parser.NXActionRegLoad(ofs_nbits=nicira_ext.ofs_nbits(0, 31), dst=guard, value=1),
            parser.NXActionResubmitTable(table_id=0),   # in_port: the packet's own
        ]
        return parser.OFPFlowMod(
            None, cookie=self.settings.cookie, cookie_mask=ALL_BITS, table_id=0,
            command=command, hard_timeout=hard_timeout,
            priority=self.settings.catch_priority, out_port=ofp.OFPP_ANY,
            out_group=ofp.OFPG_ANY, match=match,
            instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)])

    # --- injection -----------------------------------------------------------------

    def inject(self, in_port: int, frame: bytes) -> None:
        """Submit `frame` to table 0 as if it had arrived on `in_port`."""
        self.counters['packet_outs'] += 1
        self._send(parser.OFPPacketOut(
            None, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
            actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=frame))

    def is_ours(self, msg) -> bool:
        """A PacketIn sent by one of our catch flows (anything else is not our business)."""
        return (msg.cookie == self.settings.cookie and msg.table_id == 0
                and msg.reason == ofp.OFPR_ACTION)

    def _send(self, msg) -> int:
        self._xid = (self._xid + 1) & 0xffffffff
        msg.set_xid(self._xid)
        self.send(msg)
        return self._xid
