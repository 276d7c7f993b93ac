"""One connected switch: its ports, its flow table as we last read it, and every flow,
meter and PacketOut we send it.

Nothing else in the app builds OpenFlow messages. Messages are built with
`datapath=None` and handed to the `send` callback, which the Ryu shim binds to the
datapath (and tests to a list).

A *catch* is what lets us see the replies to one probed source VM (port P, MAC, IP):
the shadows of the flows that deliver to P (pipeline.py), each

    table T, priority p+1, cookie C|index, hard_timeout H, flags=send_flow_rem
    <delivery flow's match>, ip_dscp=MARK, icmp, icmp_type=0, dl_dst=SRC_MAC, nw_dst=SRC_IP
    actions=controller(id=OUR_ID,meter_id=OUR_ID)

It takes the marked reply at the step that would deliver it to the VM. All probes from
one source share its catch (reference counted); it goes when the last of them has been
idle for `catch_linger` seconds, strictly by its cookie, and `hard_timeout` removes it
even if the app dies. While it lives, the bridge re-reads its flow table every
`resync_interval` seconds and re-lays the shadows when the delivery flows changed, and a
FLOW_REMOVED for a shadow we did not delete (another controller's cold start, say)
makes it re-read and re-install at once: the probes' outstanding echoes wait for that
and are sent again, never counted lost.

A catch in *unmarked* mode (the fallback for paths that clear the mark) matches replies
with any DSCP and copies them: controller, then the delivery flow's own instructions.

Our meter (packet_in_rate) is named by the controller action itself (NXAST_CONTROLLER2's
meter_id), never by a meter instruction. ovs-vswitchd keeps flows in memory only, and
`ovs-ctl restart` saves and puts back every bridge's flows but not its meters (OVS 3.1
ovs-save): one flow with a `meter:N` instruction for a meter that is gone makes
`ovs-ofctl replace-flows` fail, and the bridge comes back with no flows at all (checked
here: none, with or without --bundle). A controller action whose meter does not exist
goes unmetered instead, so a bridge with our flows on it restarts cleanly.
"""
import collections
import logging
import math
import random
import struct
from dataclasses import dataclass, field
from typing import Callable

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from ryu.lib.pack_utils import msg_pack_into

from ryu_apps import icmp, pipeline
from ryu_apps.options import Settings
from ryu_apps.pipeline import Flow, Shadow

NX_VENDOR = 0x00002320
NXT_SET_CONTROLLER_ID = 20
ALL_BITS = 0xffffffffffffffff
COOKIE_PREFIX = 0x72797570 << 32          # 'ryup': every instance of this app
INDEX_SHIFT, INDEX_BITS = 16, 0xffff      # cookie bits 16..31: the catch's index
OURS_MASK = ALL_BITS & ~(INDEX_BITS << INDEX_SHIFT)   # 'ryup' and our controller id
# Enough of a reply for us (Ethernet, two VLAN tags, IPv4 with options, ICMP, token).
PACKET_IN_MAX_LEN = 256
# The flows outlive the probe by this much, so the switch never drops them mid-probe.
HARD_TIMEOUT_MARGIN = 2.0
# A catch whose flows were deleted under it is re-read this often until the switch has
# a flow that delivers to the port again (another controller re-programming the bridge).
REREAD_DELAY = 0.05
# A trace's watches go with it; this removes them even if the app dies.
TRACE_HARD_TIMEOUT = 60
# Messages whose errors we ignore (meters, watches), remembered until this many newer ones.
IGNORED_KEPT = 1024

LOG = logging.getLogger(__name__)
Send = Callable[[object], None]
NXAC2PT_METER_ID = 5          # OVS's NXAST_CONTROLLER2 property: ovs_be32 meter id


def _register_meter_id_property() -> None:
    """Teach Ryu 4.34 NXAST_CONTROLLER2's meter_id property, both ways: it has none, and
    it cannot even parse a flow dump holding an action with a property it does not know."""
    registry = dict(zip(parser.NXActionController2.parser.__func__.__code__.co_freevars,
                        parser.NXActionController2.parser.__func__.__closure__))
    prop = registry['NXActionController2Prop'].cell_contents

    @prop.register_type(NXAC2PT_METER_ID)
    class MeterId(prop):
        _arg_name = 'meter_id'

        @classmethod
        def parser_prop(cls, buf, length):
            return struct.unpack_from('!I', buf, 0)[0], 4

        @classmethod
        def serialize_prop(cls, meter_id):
            data = bytearray()
            msg_pack_into('!HHI', data, 0, NXAC2PT_METER_ID, 8, meter_id)
            return data


_register_meter_id_property()


@dataclass(frozen=True)
class Port:
    port_no: int
    name: str
    hw_addr: str

    def to_json(self) -> dict:
        return {'port_no': self.port_no, 'name': self.name, 'hw_addr': self.hw_addr}


def echo_reply_fields(src_mac: str, src_ip: str, dscp: int | None) -> dict:
    """What a catch of echo replies to a source VM adds to a delivery flow's match."""
    return icmp.family(src_ip).reply_fields(src_mac, src_ip, dscp)


@dataclass(eq=False)
class Catch:
    """The shadows that catch one kind of answer to one probed source VM (its port, and
    the fields the answers carry), as probes see them. A `copy` catch hands the answer
    on as the delivery flow would: it matches tenant packets too (no mark)."""
    in_port: int
    match: tuple                     # the fields, sorted (name, value) pairs
    copy: bool = False
    index: int = 0                   # cookie bits of the installed generation
    users: int = 0
    shadows: tuple[Shadow, ...] = ()
    ready_at: float | None = None    # the switch confirmed the flows; inject from then on
    expires_at: float = 0.0          # when the switch drops the flows by itself
    lost_at: float | None = None     # our flows were deleted by someone else
    error: str | None = None         # the switch refused a flow
    reinstalls: int = 0
    laid_xid: int = 0                # the barrier after its flows
    extending: list[int] = field(default_factory=list)   # the FlowMods of its last extension
    retired: list[int] = field(default_factory=list)   # generations to delete once confirmed

    @property
    def key(self) -> tuple:
        return (self.in_port, self.match, self.copy)

    @property
    def fields(self) -> dict:
        """What every shadow adds to its delivery flow's match."""
        return dict(self.match)

    @property
    def dscp(self) -> int | None:
        """The mark its answers carry; None: any."""
        return self.fields.get('ip_dscp')

    @property
    def takes(self) -> bool:
        """It takes what it matches (no copy goes on): it may take a tenant's packet (one
        that happens to carry our mark, for a marked catch), which comes to us whole, to
        be handed on to the VM."""
        return not self.copy


class Bridge:
    """The flows and ports of one datapath."""

    def __init__(self, dpid: int, send: Send, settings: Settings,
                 counters: collections.Counter | None = None):
        self.dpid = dpid
        self.send = send
        self.settings = settings
        self.counters = collections.Counter() if counters is None else counters
        self.ports: dict[int, Port] = {}
        self.ports_known = False                # the port description's last part came
        self.flows: list[Flow] | None = None    # the switch's own flows, as last read
        self.flows_at = -math.inf               # when that read came back
        self.flows_since = -math.inf            # and when it was asked for
        self.tenant_at = -math.inf              # the last PacketIn of a tenant's, with our mark
        self.clash: str | None = None           # another instance uses our mark here
        self.catches: dict[tuple, Catch] = {}
        self._by_index: dict[int, Catch] = {}
        self._idle: dict[tuple, float] = {}      # catch key -> when the idle catch goes
        self._awaiting: dict[int, Catch] = {}    # xid -> catch, for barriers and errors
        self._ignored: dict[int, None] = {}      # xids whose errors don't matter, newest last
        self._reading: tuple[int, list[Flow], float] | None = None   # a read in flight
        self._reread_at: float | None = None
        self._next_index = random.randrange(1, INDEX_BITS)
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
        # Only the PacketIns our flows ask for (no table misses of other pipelines), and
        # word of our flows going away.
        reasons = 1 << ofp.OFPR_ACTION
        port_events = (1 << ofp.OFPPR_ADD) | (1 << ofp.OFPPR_DELETE) | (1 << ofp.OFPPR_MODIFY)
        removed = ((1 << ofp.OFPRR_HARD_TIMEOUT) | (1 << ofp.OFPRR_DELETE)
                   | (1 << ofp.OFPRR_GROUP_DELETE) | (1 << 4))   # 4: OFPRR_METER_DELETE
        self._send(parser.OFPSetAsync(None, [reasons, reasons],
                                      [port_events, port_events], [removed, removed]))
        self._send(parser.OFPFlowMod(
            None, cookie=self.settings.cookie, cookie_mask=OURS_MASK,
            table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
            out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
        self._add_meter()
        self._send(parser.OFPPortDescStatsRequest(None, 0))

    def _add_meter(self) -> None:
        """The meter that caps our PacketIns (an existing one of ours is fine)."""
        rate = self.settings.packet_in_rate
        self._ignore(self._send(parser.OFPMeterMod(
            None, command=ofp.OFPMC_ADD, flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST,
            meter_id=self.settings.meter_id,
            bands=[parser.OFPMeterBandDrop(rate=rate, burst_size=max(1, rate // 10))])))

    def add_ports(self, ports: list[Port], more: bool = False) -> None:
        """Ports from a (possibly multipart) port description reply; `more`: parts
        follow. Until the last part nothing may start on the switch: a port not yet
        listed is not a port the switch lacks."""
        self.ports.update((port.port_no, port) for port in ports)
        self.ports_known = self.ports_known or not more

    def port_changed(self, port: Port, deleted: bool) -> Port | None:
        """A port status; the port its number named before, if the number no longer
        names it (deleted, or another port under the same number)."""
        old = self.ports.get(port.port_no)
        if deleted:
            self.ports.pop(port.port_no, None)
        else:
            self.ports[port.port_no] = port
        if old is not None and (deleted or (old.name, old.hw_addr) != (port.name,
                                                                       port.hw_addr)):
            return old
        return None

    def find_port(self, key: int | str) -> Port | None:
        """A port by number or by name."""
        if isinstance(key, int):
            return self.ports.get(key)
        return next((p for p in self.ports.values() if p.name == key), None)

    # --- reading the flow table ----------------------------------------------------

    def read_flows(self, now: float) -> None:
        """Ask for the whole flow table, unless a read is already under way."""
        if self._reading is None:
            self.counters['flow_reads'] += 1
            xid = self._send(parser.OFPFlowStatsRequest(
                None, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0, parser.OFPMatch()))
            self._reading = (xid, [], now)

    def flow_stats(self, xid: int, body: list, more: bool, now: float) -> list[Catch]:
        """A part of the flow dump. At the last part, the catches are laid anew where the
        delivery flows changed; returned are those that lost flows of theirs without a
        FLOW_REMOVED (replaced by someone else's identical flow, say)."""
        if self._reading is None or self._reading[0] != xid:
            return []
        self._reading[1].extend(Flow.from_stats(s) for s in body)
        if more:
            return []
        _, flows, requested_at = self._reading
        self._reading = None
        mine = collections.Counter(f.cookie for f in flows
                                   if f.cookie & OURS_MASK == self.settings.cookie)
        lost = [c for c in self.catches.values() if c.ready_at is not None and c.index
                and c.laid_xid < xid and mine[self._cookie(c.index)] < len(c.shadows)]
        for catch in lost:
            self.removed(self._cookie(catch.index), ofp.OFPRR_DELETE, now)
        theirs = [f for f in flows if f.cookie & 0xffffffff00000000 != COOKIE_PREFIX]
        self.clash = next((
            'another ryu-probe instance (controller id %d) uses DSCP mark %d on this bridge: '
            'give each instance its own controller_id' % (f.cookie & 0xffff, self.settings.dscp)
            for f in flows if f.cookie & 0xffffffff00000000 == COOKIE_PREFIX
            and f.cookie & 0xffff != self.settings.controller_id
            and dict(f.match).get('ip_dscp') == self.settings.dscp), None)
        self.flows, self.flows_at, self.flows_since = theirs, now, requested_at
        for catch in list(self.catches.values()):
            live = catch.ready_at is not None and catch not in lost
            if self._lay(catch, now) and live:
                # The delivery flows changed under a live catch (another controller added
                # one): a reply may have taken a flow we had no shadow over. Its probes'
                # outstanding echoes go again once the new shadows are in place.
                catch.lost_at, catch.ready_at = now, None
                lost.append(catch)
        return lost

    # --- catches -------------------------------------------------------------------

    def acquire(self, in_port: int, src_mac: str, src_ip: str, until: float, now: float,
                dscp: int | None) -> Catch:
        """The source's catch for echo replies marked `dscp` (None: any, copied)."""
        return self.catch(in_port, echo_reply_fields(src_mac, src_ip, dscp), until, now,
                          copy=dscp is None)

    def catch(self, in_port: int, fields: dict, until: float, now: float,
              copy: bool = False) -> Catch:
        """The catch of answers with `fields` delivered to `in_port`, laid (or being laid)
        so that it lasts past `until`."""
        key = (in_port, tuple(sorted(fields.items())), copy)
        catch = self.catches.get(key)
        if catch is None:
            catch = self.catches[key] = Catch(in_port, key[1], copy)
            # long enough for its linger too: releasing it then costs no FlowMod
            catch.expires_at = until + (self.settings.catch_linger if self._lingers(catch)
                                        else 0)
            if self.flows_at + self.settings.resync_interval > now:
                self._lay(catch, now)
            else:
                self.read_flows(now)
        catch.users += 1
        self._idle.pop(key, None)
        self._extend(catch, until, now)
        return catch

    def _lingers(self, catch: Catch) -> bool:
        """Only marked catches outlive their probes: they match nothing of the tenant's."""
        return not catch.copy and catch.dscp == self.settings.dscp

    def release(self, catch: Catch, now: float) -> None:
        """One probe is done with the catch; after the last one it is deleted, at once
        or once it has been idle for `catch_linger` seconds."""
        catch.users -= 1
        if catch.users > 0:
            return
        linger = self.settings.catch_linger
        if linger and catch.error is None and self._lingers(catch):
            self._idle[catch.key] = now + linger
            self._extend(catch, now + linger, now)
        else:
            self._delete(catch)

    def forget_port(self, port_no: int) -> None:
        """Delete the idle catches of a port that is gone: lingering, they would clash
        with the catch of the same VM plugged in again under another number."""
        for catch in [c for c in self.catches.values()
                      if c.in_port == port_no and c.users <= 0]:
            self._delete(catch)

    def forget_idle(self) -> None:
        """Delete the catches that only linger, now (their probes' owner is gone)."""
        for key in list(self._idle):
            del self._idle[key]
            self._delete(self.catches[key])

    def expire(self, now: float) -> float | None:
        """Delete catches idle for their whole linger, re-read the flow table when it is
        due; when this is next due."""
        for key, until in list(self._idle.items()):
            if until <= now:
                del self._idle[key]
                self._delete(self.catches[key])
        deadlines = list(self._idle.values())
        if self.catches:
            due = self.flows_at + self.settings.resync_interval
            if self._reread_at is not None:
                due = min(due, self._reread_at)
            if due <= now:
                self._reread_at = None
                self.read_flows(now)
                due = now + self.settings.resync_interval
            deadlines.append(due)
        return min(deadlines, default=None)

    def lay_again(self, catch: Catch, until: float, now: float) -> None:
        """Lay a live catch's flows anew, under a new cookie, lasting past `until`; it is
        ready again once the switch confirms them (its probes wait). A flow table change
        makes OVS translate its cached datapath flows again: a datapath flow cached
        without our catch can outlive the FlowMod that laid it (measured, OVS 3.1
        netdev: ~10 s after a Neutron lab came up, an ARP reply datapath flow without our
        controller action served every reply for the whole 2.2 s of a probe, in 2 of 3
        runs; the next probe's new catch got its answers)."""
        if catch.error is not None or not catch.index or catch.ready_at is None:
            return
        catch.expires_at = max(catch.expires_at, until)
        catch.ready_at = None
        self._lay(catch, now, again=True)

    def _lay(self, catch: Catch, now: float, again: bool = False) -> bool:
        """Install the catch's shadows over the delivery flows as last read; whether its
        flows changed. Shadows already in place are left alone, unless `again`."""
        if self.flows is None or catch.error is not None:
            return False
        wanted = tuple(pipeline.shadows(self.flows, catch.in_port, catch.fields))
        if catch.index and wanted == catch.shadows and catch.lost_at is None and not again:
            return False
        clash = self._clash(catch, wanted)
        if clash is not None:
            # Identical flows replace each other: laid, each would delete the other's,
            # and each FLOW_REMOVED lay it again (measured: 2,743 FlowMods in 5 s).
            catch.error = ('the same answers reach port %d and port %d by one flow (the same '
                           'MAC and IP on two ports?): a probe from port %d runs already'
                           % (catch.in_port, clash.in_port, clash.in_port))
            return False
        if catch.lost_at is not None and not wanted:
            self._reread_at = now + REREAD_DELAY   # wait for the other controller
            return False
        if catch.index:
            catch.retired.append(catch.index)
            del self._by_index[catch.index]
            catch.reinstalls += not again
        catch.index = self._new_index()
        self._by_index[catch.index] = catch
        catch.shadows = wanted
        if catch.lost_at is not None:
            self._add_meter()     # a cold start may have deleted it, and our flows with it
        hard_timeout = math.ceil(catch.expires_at - now + HARD_TIMEOUT_MARGIN)
        catch.expires_at = now + hard_timeout
        for shadow in wanted:
            self._awaiting[self._send(self._shadow_flow(catch, shadow, hard_timeout))] = catch
        catch.laid_xid = self._send(parser.OFPBarrierRequest(None))
        self._awaiting[catch.laid_xid] = catch
        return True

    def _clash(self, catch: Catch, wanted: tuple[Shadow, ...]) -> Catch | None:
        """Another catch that has a flow identical to one `catch` wants (a flow that
        delivers to both ports, and one MAC and IP probed from each)."""
        keys = {(s.table, s.priority, s.match) for s in wanted}
        return next((other for other in self.catches.values() if other is not catch
                     and any((s.table, s.priority, s.match) in keys for s in other.shadows)),
                    None)

    def _extend(self, catch: Catch, until: float, now: float) -> None:
        if catch.expires_at >= until + HARD_TIMEOUT_MARGIN / 2 or not catch.index:
            return
        # Re-adding an identical flow replaces it in place with the new timeout. Only the
        # last extension's FlowMods wait for an error: no barrier follows them, and a
        # source probed for days would otherwise pile up one entry per extension.
        hard_timeout = math.ceil(until - now + HARD_TIMEOUT_MARGIN)
        catch.expires_at = now + hard_timeout
        for xid in catch.extending:
            self._awaiting.pop(xid, None)
        catch.extending = [self._send(self._shadow_flow(catch, shadow, hard_timeout))
                           for shadow in catch.shadows]
        self._awaiting.update((xid, catch) for xid in catch.extending)

    def _delete(self, catch: Catch) -> None:
        del self.catches[catch.key]
        self._idle.pop(catch.key, None)
        self._forget(catch)
        if catch.index:
            del self._by_index[catch.index]
            self._delete_generation(catch.index)
        for index in catch.retired:
            self._delete_generation(index)
        catch.retired.clear()

    def _delete_generation(self, index: int) -> None:
        self.counters['flow_mods'] += 1
        self._send(parser.OFPFlowMod(
            None, cookie=self._cookie(index), cookie_mask=ALL_BITS, table_id=ofp.OFPTT_ALL,
            command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))

    def confirmed(self, xid: int, now: float) -> Catch | None:
        """A barrier came back: the catch's flows are in the table; the catch if it has
        just become ready.

        The datapath may still use flows it cached before the FlowMod for a moment,
        so echoes wait `catch_settle` longer."""
        catch = self._awaiting.pop(xid, None)
        if catch is None or catch.error is not None:
            return None
        for index in catch.retired:
            self._delete_generation(index)
        catch.retired.clear()
        self._forget(catch)
        if catch.ready_at is None:
            catch.ready_at = now + self.settings.catch_settle
            catch.lost_at = None
            return catch
        return None

    def ignores(self, xid: int) -> bool:
        """Whether an error for `xid` is one that does not matter (our meter, there
        already from an earlier session); it is forgotten then."""
        return self._ignored.pop(xid, False) is None

    def refused(self, xid: int, reason: str) -> Catch | None:
        """The switch answered one of our messages with an error (one that `ignores`
        did not let go)."""
        catch = self._awaiting.pop(xid, None)
        if catch is not None:
            catch.error = reason
            self._forget(catch)
        return catch

    def removed(self, cookie: int, reason: int, now: float) -> Catch | None:
        """A FLOW_REMOVED; the catch that has lost flows it needs, if any. That catch
        waits for the switch to have a delivery flow again, then is laid anew."""
        catch = self._by_index.get((cookie >> INDEX_SHIFT) & INDEX_BITS)
        if (catch is None or cookie & OURS_MASK != self.settings.cookie
                or catch.lost_at is not None):
            return None
        self.counters['flows_lost'] += 1
        LOG.info('switch %016x: catch flows of port %d removed (reason %d): laying them again',
                 self.dpid, catch.in_port, reason)
        catch.lost_at, catch.ready_at = now, None
        catch.shadows = ()
        self._reread_at = now
        return catch

    def _forget(self, catch: Catch) -> None:
        for xid in [x for x, c in self._awaiting.items() if c is catch]:
            del self._awaiting[xid]

    def _ignore(self, xid: int) -> None:
        """Errors for this message do not matter. Only the last IGNORED_KEPT are kept:
        an error comes back within milliseconds, and successes never do."""
        self._ignored[xid] = None
        while len(self._ignored) > IGNORED_KEPT:
            del self._ignored[next(iter(self._ignored))]

    def _new_index(self) -> int:
        while True:
            self._next_index = self._next_index % INDEX_BITS + 1
            if self._next_index not in self._by_index:
                return self._next_index

    def _cookie(self, index: int) -> int:
        return self.settings.cookie | index << INDEX_SHIFT

    def _to_us(self, max_len: int = PACKET_IN_MAX_LEN):
        """The action that sends a packet to our connection alone, through our meter."""
        return parser.NXActionController2(max_len=max_len,
                                          controller_id=self.settings.controller_id,
                                          reason=ofp.OFPR_ACTION,
                                          meter_id=self.settings.meter_id)

    def _shadow_flow(self, catch: Catch, shadow: Shadow, hard_timeout: int):
        self.counters['flow_mods'] += 1
        actions = [self._to_us(ofp.OFPCML_NO_BUFFER if catch.takes else PACKET_IN_MAX_LEN)]
        meters, instructions = [], []
        if catch.copy:    # copy, and let the delivery flow do what it does (its meter too)
            for inst in shadow.over.instructions:
                if isinstance(inst, parser.OFPInstructionMeter):
                    meters.append(inst)
                elif inst.type == ofp.OFPIT_APPLY_ACTIONS:
                    actions += inst.actions
                else:
                    instructions.append(inst)
        instructions = meters + [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                              actions)] + instructions
        return parser.OFPFlowMod(
            None, cookie=self._cookie(catch.index), cookie_mask=ALL_BITS,
            table_id=shadow.table, command=ofp.OFPFC_ADD, hard_timeout=hard_timeout,
            priority=shadow.priority, flags=ofp.OFPFF_SEND_FLOW_REM, match=shadow.ofp_match(),
            instructions=instructions)

    def catch_of(self, msg) -> tuple[Catch, Shadow | None] | None:
        """The catch (and the shadow, as far as the PacketIn tells) that sent a PacketIn;
        None for anything that is not ours."""
        if (msg.cookie & OURS_MASK != self.settings.cookie
                or msg.reason != ofp.OFPR_ACTION):
            return None
        catch = self._by_index.get((msg.cookie >> INDEX_SHIFT) & INDEX_BITS)
        if catch is None:
            return None
        fields = dict(msg.match.items())
        here = [s for s in catch.shadows if s.table == msg.table_id and all(
            pipeline.compatible(v, fields[n]) for n, v in s.match if n in fields)]
        return catch, (here[0] if here else None)

    # --- trace watches --------------------------------------------------------------

    def reserve_index(self) -> int:
        """A cookie index of our own for flows that are no catch's (a trace's watches)."""
        index = self._new_index()
        self._by_index[index] = None
        return index

    def free_index(self, index: int) -> None:
        """Delete every flow with that index, and free it."""
        self._by_index.pop(index, None)
        self._delete_generation(index)

    def watch(self, index: int, table: int, fields: dict, key: tuple[str, int] | None,
              add: bool = True) -> None:
        """A watch: table T, top priority, takes every packet with `fields` (a trace's:
        trace.py) that a lookup in T meets, in one context (`key`: a field and its value)
        or in any (None, one priority lower), and sends it to us; or (`add` False) its
        removal."""
        self.counters['flow_mods'] += 1
        fields = dict(fields)
        if key is not None:
            fields[key[0]] = key[1]
        match = parser.OFPMatch(**fields)
        self._ignore(self._send(parser.OFPFlowMod(
            None, cookie=self._cookie(index), cookie_mask=ALL_BITS, table_id=table,
            command=ofp.OFPFC_ADD if add else ofp.OFPFC_DELETE_STRICT,
            priority=0xffff if key is not None else 0xfffe,
            hard_timeout=TRACE_HARD_TIMEOUT, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
            match=match, instructions=[
                parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [self._to_us()])])))

    def answer_watch(self, index: int, fields: dict) -> None:
        """Table 0, top priority: what arrives with `fields` (an answer to a question we
        asked out of a port: its in_port and what marks it ours) comes to us, and goes no
        further."""
        self.counters['flow_mods'] += 1
        self._ignore(self._send(parser.OFPFlowMod(
            None, cookie=self._cookie(index), cookie_mask=ALL_BITS, table_id=0,
            command=ofp.OFPFC_ADD, priority=0xffff, hard_timeout=TRACE_HARD_TIMEOUT,
            match=parser.OFPMatch(**fields), instructions=[
                parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [self._to_us()])])))

    def barrier(self) -> int:
        return self._send(parser.OFPBarrierRequest(None))

    def is_watch(self, msg, index: int) -> bool:
        return msg.cookie == self._cookie(index) and msg.reason == ofp.OFPR_ACTION

    # --- injection -----------------------------------------------------------------

    def inject(self, in_port: int, frame: bytes) -> None:
        """Submit `frame` to table 0 as if it had arrived on `in_port`."""
        self.counters['packet_outs'] += 1
        self._send(parser.OFPPacketOut(
            None, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
            actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=frame))

    def send_out(self, port: int, frame: bytes) -> None:
        """Send `frame` out of `port` straight to what is plugged in there, past the
        pipeline (a question for the VM itself)."""
        self.counters['packet_outs'] += 1
        self._send(parser.OFPPacketOut(
            None, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
            actions=[parser.OFPActionOutput(port)], data=frame))

    def hand_on(self, port: int, flow, frame: bytes, in_port: int | None) -> None:
        """Send on a tenant's packet that a catch took at `flow`, a delivery flow of
        `port`, as that flow would have (pipeline.hand_on), as if it came in on
        `in_port`."""
        self.counters['packet_outs'] += 1
        self._send(parser.OFPPacketOut(
            None, buffer_id=ofp.OFP_NO_BUFFER,
            in_port=ofp.OFPP_CONTROLLER if in_port is None else in_port,
            actions=pipeline.hand_on(flow, port), data=frame))

    def _send(self, msg) -> int:
        """Send `msg`; its xid. (Ryu's send may yield, and another thread send meanwhile.)"""
        self._xid = xid = (self._xid + 1) & 0xffffffff
        msg.set_xid(xid)
        self.send(msg)
        return xid
