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

from ryu.ofproto import nx_actions  # noqa: F401  (registers the NX action classes)
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
    actions: tuple = field(compare=False)        # apply- then write-actions, in order
    instructions: tuple = field(compare=False)

    @classmethod
    def from_stats(cls, stats) -> 'Flow':
        actions = [a for inst in stats.instructions
                   if isinstance(inst, parser.OFPInstructionActions)
                   and inst.type != ofp.OFPIT_CLEAR_ACTIONS for a in inst.actions]
        return cls(stats.table_id, stats.priority, stats.cookie, tuple(stats.match.items()),
                   str(stats.instructions), tuple(actions), tuple(stats.instructions))

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
    for action in flow.actions:
        if isinstance(action, parser.OFPActionOutput):
            if action.port == port or action.port in BY_MAC:
                return {}
        elif isinstance(action, (parser.NXActionOutputReg, parser.NXActionOutputReg2)):
            start, nbits = action.ofs_nbits >> 6, (action.ofs_nbits & 0x3f) + 1
            if port >> nbits:
                continue
            return {action.src: (port << start, ((1 << nbits) - 1) << start)}
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
