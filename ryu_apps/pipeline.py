"""The bridge's own flows, as read back from the switch, and the flows we lay over them.

The app never needs to know whose pipeline it is in (Neutron's, OVN's, FAUCET's, an
operator's NORMAL bridge): it reads the flow table (flow stats) and finds the flows that
can hand a packet to the source VM's port, its *delivery flows*:
* `output:P`, and `output:NORMAL`/`FLOOD`/`ALL` (which deliver to the VM by its MAC);
* `output:REG[bits]` (Antrea's L2ForwardingOut): the same flow, when REG[bits] == P.

For each delivery flow F (table T, priority p, match M) the app installs a *shadow*:

    table T, priority p+1, match M + (our mark, ICMP echo reply, dl_dst and nw_dst = the
    source VM), actions=meter, controller(our id)

A marked reply reaches the shadow exactly when F would have delivered it, because every
flow of table T that beats F for this packet has a priority above p, hence at least p+1,
and the shadow only matches what F matches. The reply is taken there, at the very step
that would deliver it, so the tenant never sees it; and a reply that the pipeline drops,
ACLs or routes elsewhere before that step never reaches a shadow. No register, no
metadata and no resubmit is used, so nothing of the pipeline's state is touched.

Field values are Ryu's (MAC and IP strings, ints, `(value, mask)` tuples); they are
compared as integers.
"""
import ipaddress
from dataclasses import dataclass, field

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

# Actions that deliver to a VM by its MAC (we require dl_dst = the VM's).
BY_MAC = (ofp.OFPP_NORMAL, ofp.OFPP_FLOOD, ofp.OFPP_ALL)
Fields = dict[str, object]


@dataclass(frozen=True)
class Flow:
    """One flow of the switch, as flow stats describe it."""
    table: int
    priority: int
    cookie: int
    match: tuple[tuple[str, object], ...]
    text: str                       # its instructions, as words: compared across reads
    goto: int | None = None
    actions: tuple = field(compare=False, default=())   # apply- then write-actions, in order
    instructions: tuple = field(compare=False, default=())

    @classmethod
    def from_stats(cls, stats) -> 'Flow':
        actions = [a for inst in stats.instructions
                   if isinstance(inst, parser.OFPInstructionActions)
                   and inst.type != ofp.OFPIT_CLEAR_ACTIONS for a in inst.actions]
        goto = next((i.table_id for i in stats.instructions
                     if isinstance(i, parser.OFPInstructionGotoTable)), None)
        return cls(stats.table_id, stats.priority, stats.cookie, tuple(stats.match.items()),
                   str(stats.instructions), goto, tuple(actions), tuple(stats.instructions))

    def to_json(self) -> dict:
        return {'table': self.table, 'priority': self.priority,
                'cookie': '%#x' % self.cookie, 'match': describe(dict(self.match))}


def describe(fields: Fields) -> str:
    """A match in ovs-ofctl-like words: `eth_type=0x800,ipv4_dst=10.0.0.1`."""
    def one(name, value):
        if isinstance(value, tuple):
            return '%s=%s/%s' % (name, _word(value[0]), _word(value[1]))
        return '%s=%s' % (name, _word(value))
    return ','.join(one(n, v) for n, v in sorted(fields.items())) or '(any)'


def _word(value) -> str:
    return '%#x' % value if isinstance(value, int) and value > 9 else str(value)


# --- masked values as integers --------------------------------------------------------

def _int(value) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return int.from_bytes(value, 'big')
    if len(value) == 17 and value.count(':') == 5:
        return int(value.replace(':', ''), 16)
    return int(ipaddress.ip_address(value))


def _split(value) -> tuple[int, int | None]:
    if isinstance(value, tuple):
        return _int(value[0]), _int(value[1])
    return _int(value), None


def compatible(a, b) -> bool:
    """Whether one packet can match both field values (each exact or masked)."""
    (va, ma), (vb, mb) = _split(a), _split(b)
    both = (ma if ma is not None else -1) & (mb if mb is not None else -1)
    return va & both == vb & both


def merge(flow: Fields, ours: Fields) -> Fields | None:
    """A match for what both `flow` and `ours` match, or None when nothing can.

    A field in both keeps our (exact) value once the two agree."""
    merged = dict(flow)
    for name, value in ours.items():
        if name in merged and not compatible(merged[name], value):
            return None
        merged[name] = value
    return merged


# --- delivery -------------------------------------------------------------------------

def delivery(flow: Flow, port: int) -> Fields | None:
    """The extra match under which `flow` hands a packet to `port`: {} for always, None
    for never. Only the first output-like action counts (OVS runs them in order)."""
    found = _delivering(flow, port)
    return None if found is None else found[1]


# Header edits a delivery flow may make before it delivers (hand_on repeats them).
EDITS = (parser.OFPActionPopVlan, parser.OFPActionPushVlan, parser.OFPActionSetField)


def hand_on(flow: Flow | None, port: int) -> list:
    """PacketOut actions that hand a packet taken at `flow` (a delivery flow of `port`)
    on as `flow` would have: its header edits before the delivering action, then that
    action (NORMAL and FLOOD treat VLAN tags as the real ports are set up, which a bare
    output would not: a tagged frame to a VM's access port is lost), output:REG as
    output:`port`. Without a flow: out of `port`."""
    found = None if flow is None else _delivering(flow, port)
    if found is None:
        return [parser.OFPActionOutput(port)]
    at, _extra = found
    action = flow.actions[at]
    edits = [a for a in flow.actions[:at] if isinstance(a, EDITS)]
    return edits + [action if isinstance(action, parser.OFPActionOutput)
                    else parser.OFPActionOutput(port)]


def _delivering(flow: Flow, port: int) -> tuple[int, Fields] | None:
    """(the index of the action of `flow` that hands a packet to `port`, the extra match
    under which it does), or None."""
    for at, action in enumerate(flow.actions):
        if isinstance(action, parser.OFPActionOutput):
            if action.port == port or action.port in BY_MAC:
                return at, {}
        elif isinstance(action, (parser.NXActionOutputReg, parser.NXActionOutputReg2)):
            start, nbits = action.ofs_nbits >> 6, (action.ofs_nbits & 0x3f) + 1
            if port >> nbits:
                continue
            return at, {action.src: (port << start, ((1 << nbits) - 1) << start)}
    return None


@dataclass(frozen=True)
class Shadow:
    """A flow of ours laid over a delivery flow: (table, priority, match) identify it."""
    table: int
    priority: int
    match: tuple[tuple[str, object], ...]
    over: Flow

    def ofp_match(self) -> parser.OFPMatch:
        return parser.OFPMatch(**dict(self.match))


def shadows(flows: list[Flow], port: int, ours: Fields) -> list[Shadow]:
    """One shadow per delivery flow of `port` that can see a packet matching `ours`."""
    found: dict[tuple, Shadow] = {}
    for flow in flows:
        extra = delivery(flow, port)
        if extra is None:
            continue
        match = _merged(flow, ours, extra)
        if match is None:
            continue
        shadow = Shadow(flow.table, min(flow.priority + 1, 0xffff),
                        tuple(sorted(match.items())), flow)
        found.setdefault((shadow.table, shadow.priority, shadow.match), shadow)
    return sorted(found.values(), key=lambda s: (s.table, -s.priority))


def _merged(flow: Flow, ours: Fields, extra: Fields) -> Fields | None:
    wanted = merge(ours, extra)
    return None if wanted is None else merge(dict(flow.match), wanted)


NXAST_CLONE = 42     # Ryu 4.34 knows no clone(): its actions are parsed here


def _cloned(data: bytes) -> list:
    """The actions inside a clone() (6 bytes of padding, then actions)."""
    actions, offset = [], 6
    try:
        while offset + 4 <= len(data):
            action = parser.OFPAction.parser(data, offset)
            actions.append(action)
            offset += action.len
    except Exception:   # noqa: BLE001 (a switch's bytes: whatever parses is what we use)
        pass
    return actions


# --- replaying one lookup -------------------------------------------------------------

# Pipeline fields OVS leaves out of a PacketIn when they are zero.
ZERO_IF_ABSENT = ('metadata', 'pkt_mark', 'ct_state', 'ct_zone', 'ct_mark', 'ct_label',
                  'tunnel_id', 'tun_ipv4_src', 'tun_ipv4_dst') + tuple('reg%d' % i for i in range(16))


def replay(flows: list[Flow], table: int, fields: Fields) -> Flow | None:
    """The flow of `table` that a packet with `fields` (its headers and the pipeline
    fields of its PacketIn) matches: the highest priority one; None for a table miss.
    A flow on a field we cannot know (conj_id, ...) is skipped."""
    def matches(flow: Flow) -> bool:
        for name, value in flow.match:
            have = fields.get(name, 0 if name in ZERO_IF_ABSENT else None)
            if have is None or not compatible(value, have):
                return False
        return True
    candidates = sorted((f for f in flows if f.table == table), key=lambda f: -f.priority)
    return next((f for f in candidates if matches(f)), None)


def outputs(flow: Flow) -> list[int]:
    """The real ports a flow outputs to, in order."""
    return [a.port for a in flow.actions
            if isinstance(a, parser.OFPActionOutput) and a.port < ofp.OFPP_MAX]


def tunnels(flow: Flow) -> dict:
    """The tunnel fields a flow sets (before sending the packet into a tunnel)."""
    found = {}
    for action in flow.actions:
        field = getattr(action, 'key', None) or getattr(action, 'dst', None) or ''
        if isinstance(action, (parser.NXActionSetTunnel, parser.NXActionSetTunnel64)):
            found['tunnel_id'] = action.tun_id
        elif isinstance(field, str) and field.startswith('tun'):   # set_field, load, move
            found[field] = getattr(action, 'value', None)
    return found


def effect(flow: Flow | None, fields: Fields) -> tuple[str, int | None]:
    """What a flow does with the packet next, by its first deciding action:
    ('goto', table), ('output', port), ('normal', None), ('controller', None),
    ('group', id), ('dropped', None); ('no-flow', None) for a table miss."""
    if flow is None:
        return 'no-flow', None
    decided = _decide(flow.actions, flow.table, fields)
    if decided is not None:
        return decided
    if flow.goto is not None:
        return 'goto', flow.goto
    return 'dropped', None


def _decide(actions, table: int, fields: Fields) -> tuple[str, int | None] | None:
    for action in actions:
        if isinstance(action, parser.NXActionUnknown) and action.subtype == NXAST_CLONE:
            decided = _decide(_cloned(action.data), table, fields)   # OVN: clone(..resubmit)
            if decided is not None:
                return decided
            continue
        if isinstance(action, parser.OFPActionOutput):
            if action.port == ofp.OFPP_CONTROLLER:
                return 'controller', None
            if action.port in BY_MAC:
                return 'normal', None
            return 'output', fields.get('in_port') if action.port == ofp.OFPP_IN_PORT \
                else action.port
        if isinstance(action, (parser.NXActionOutputReg, parser.NXActionOutputReg2)):
            start, nbits = action.ofs_nbits >> 6, (action.ofs_nbits & 0x3f) + 1
            return 'output', (_int(fields.get(action.src, 0)) >> start) & ((1 << nbits) - 1)
        if isinstance(action, (parser.NXActionResubmitTable, parser.NXActionResubmit)):
            return 'goto', getattr(action, 'table_id', table)
        if isinstance(action, parser.NXActionCT) and action.recirc_table != 0xff:
            return 'goto', action.recirc_table
        if isinstance(action, parser.OFPActionGroup):
            return 'group', action.group_id
        if isinstance(action, (parser.NXActionController, parser.NXActionController2)):
            return 'controller', None
    return None
