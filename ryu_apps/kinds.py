"""Probe kinds: what a probe of each kind sends as the source VM, what it catches on the
way back to the VM's port, how it reads an answer, and what verdict its answers give.

Every kind goes through the same life in probes.py (catch flows laid and confirmed,
`count` attempts `interval` apart, each answered or lost after `timeout`, and a second
round before a verdict of silence); only what is here differs. An *attempt* is one
packet sent (an echo request, a SYN...), an `Echo` in probes.py whatever the kind.

    kind   sends (as the VM)          catches, at the flow that delivers to the VM   verdict
    icmp   echo request, DSCP-marked  marked echo reply (copying unmarked fallback)  reachable
                                                                                     partial
                                                                                     unreachable
    tcp    SYN from our source port   the 4-tuple's segments (taken, not delivered), open closed
                                      ICMP unreachables (copied)                     filtered
    udp    datagram, our source port  the 4-tuple's datagrams (taken), ICMP          open closed
                                      unreachables (copied)                          filtered
                                                                                     open|filtered
    arp    ARP request / neighbour    the answer to the VM (copied: the VM's own     reachable
           solicitation, broadcast    ARP traffic goes on as it would)               unreachable
    dhcp   DHCPDISCOVER with the      UDP 67 -> 68 to the VM's MAC (taken: the VM    reachable
           VM's MAC, broadcast        never sees our OFFER; anything else caught      unreachable
                                      there is handed on to the VM by the prober)

A *key* names a probe (and, for icmp, one echo) among the bridge's outstanding ones; it
can be read off an answer alone. A catch that takes packets (`copy` False) with no mark
of ours can take a tenant's packet too: the prober sends whatever is not ours out of the
VM's port, as the delivery flow would have.
"""
import secrets
from dataclasses import dataclass, field

from ryu_apps import icmp, packet, resolve

# Our TCP and UDP source ports: outside Linux's ephemeral range (32768-60999), so a Linux
# VM's own connections never use the 4-tuple our catch takes.
PORTS = range(61000, 65536)
MAX_PAYLOAD = 1024              # bytes of a UDP probe's payload


@dataclass(frozen=True)
class Answer:
    outcome: str                # what it says: 'reply', 'open', 'closed', 'filtered'
    attempt: int | None = None  # which attempt it answers (its seq); None: the oldest
    dscp: int | None = None
    fields: dict = field(default_factory=dict)   # what it told: a MAC, a DHCP server...
    then: bytes | None = None   # a frame to inject as the VM in turn (a SYN-ACK's RST)


def _unreachable_fields(request) -> dict:
    """An ICMP(v6) destination unreachable to the source VM (for our TCP or UDP)."""
    v6 = icmp.family(request.src_ip) is icmp.V6
    return dict(eth_type=packet.ETH_IPV6 if v6 else packet.ETH_IPV4,
                ip_proto=packet.ICMPV6 if v6 else packet.ICMP,
                **{'icmpv6_type' if v6 else 'icmpv4_type':
                   packet.UNREACHABLE6 if v6 else packet.UNREACHABLE},
                eth_dst=request.src_mac,
                **{'ipv6_dst' if v6 else 'ipv4_dst': request.src_ip})


class Kind:
    name = ''
    verdicts: tuple[str, ...] = ('reachable', 'unreachable')
    success: frozenset = frozenset({'reachable'})   # what a monitor counts as up
    marked = False              # answers keep our DSCP mark: fallback round and trace apply
    per_echo = False            # each attempt has its own key (else one per probe)
    wants_dst_mac = True        # sends to the next hop's MAC (else broadcast)
    wants_dst_ip = True
    ident_range: range | None = None   # the bridge-unique number a probe needs, if any

    def wire(self, probe, settings) -> None:
        """Pack the probe's addresses once: `probe.frame(seq, dscp)` builds attempt seq."""
        raise NotImplementedError

    def key(self, probe, seq: int) -> tuple:
        raise NotImplementedError

    def key_of(self, data: bytes) -> tuple | None:
        """The key an answer of this kind carries, if it is one."""
        raise NotImplementedError

    def read(self, probe, data: bytes) -> Answer | None:
        """What `data` (whose key is the probe's) says, if it truly answers the probe."""
        raise NotImplementedError

    def catches(self, probe, dscp: int | None) -> list[tuple[dict, bool]]:
        """The catches it needs: (fields, copy) each. `dscp` None: the unmarked round."""
        raise NotImplementedError

    def attempt_seq(self, probe) -> int:
        """A new attempt's seq, unless `per_echo` (then the prober picks one unique on the
        bridge: it is the attempt's key)."""
        return secrets.randbits(32)

    def verdict(self, probe) -> str:
        return 'reachable' if probe.received else 'unreachable'

    def summary(self, probe) -> dict:
        """What the answers told, for the result."""
        return {}


class Echo(Kind):
    """ICMP or ICMPv6 echo, by the IP version of the addresses."""
    name = 'icmp'
    verdicts = ('reachable', 'partial', 'unreachable')
    success = frozenset({'reachable', 'partial'})
    marked = per_echo = True

    def wire(self, probe, settings) -> None:
        request, dye, token = probe.request, settings.dye, probe.token
        src_mac, dst_mac = packet.mac_bytes(request.src_mac), packet.mac_bytes(request.dst_mac)
        src_ip, dst_ip = packet.ip_bytes(request.src_ip), packet.ip_bytes(request.dst_ip)
        build = probe.family.build
        probe.frame = lambda seq, dscp=settings.dscp: build(
            src_mac, dst_mac, src_ip, dst_ip, dye, seq, token, dscp)
        probe.reply_from = (dye, dst_ip, src_ip, src_mac)

    def key(self, probe, seq):
        return ('echo', seq)

    @staticmethod
    def parse(data: bytes) -> packet.EchoReply | None:
        return next((reply for f in (icmp.V4, icmp.V6)
                     if (reply := f.parse(data, f.reply_type)) is not None), None)

    def key_of(self, data):
        reply = self.parse(data)
        return None if reply is None else ('echo', reply.seq)

    def read(self, probe, data):
        reply = self.parse(data)
        if (reply is None or reply.payload != probe.token or (
                reply.ident, reply.src_ip, reply.dst_ip, reply.dst_mac) != probe.reply_from):
            return None
        return Answer('reply', reply.seq, reply.dscp)

    def catches(self, probe, dscp):
        request = probe.request
        return [(icmp.family(request.src_ip).reply_fields(request.src_mac, request.src_ip,
                                                         dscp), dscp is None)]

    def verdict(self, probe):
        received = probe.received
        if received == len(probe.echoes):
            return 'reachable'
        return 'unreachable' if received == 0 else 'partial'


class _Port(Kind):
    """TCP or UDP to `dst_port` from a source port of ours (`probe.ident`)."""
    proto = 0
    ident_range = PORTS

    def wire(self, probe, settings) -> None:
        request = probe.request
        probe.reply_from = (packet.ip_bytes(request.dst_ip), packet.ip_bytes(request.src_ip))
        self._wire(probe, packet.mac_bytes(request.src_mac), packet.mac_bytes(request.dst_mac),
                   *probe.reply_from[::-1])

    def key(self, probe, seq):
        return (self.name, probe.ident)

    def key_of(self, data):
        segment = self._parse(data)
        if segment is not None:
            return (self.name, segment.dport)
        unreachable = packet.parse_unreachable(data)
        if unreachable is not None and unreachable.proto == self.proto:
            return (self.name, unreachable.sport)
        return None

    def read(self, probe, data):
        request = probe.request
        segment = self._parse(data)
        if segment is not None:
            if ((segment.src_ip, segment.dst_ip) != probe.reply_from
                    or segment.sport != request.dst_port):
                return None
            return self._answer(probe, segment)
        unreachable = packet.parse_unreachable(data)
        if (unreachable is None or (unreachable.dst_ip, unreachable.src_ip) != probe.reply_from
                or unreachable.dport != request.dst_port):
            return None
        reporter = packet.ip_text(unreachable.reporter)
        fields = {'icmp': '%s unreachable code %d from %s' % (
            unreachable.kind, unreachable.code, reporter)}
        closed = unreachable.port_unreachable and reporter == request.dst_ip
        return Answer('closed' if closed and self.proto == packet.UDP else 'filtered',
                      fields=fields)

    def catches(self, probe, dscp):
        request = probe.request
        v6 = icmp.family(request.src_ip) is icmp.V6
        ip = 'ipv6' if v6 else 'ipv4'
        l4 = 'tcp' if self.proto == packet.TCP else 'udp'
        return [(dict(eth_type=packet.ETH_IPV6 if v6 else packet.ETH_IPV4,
                      ip_proto=self.proto, eth_dst=request.src_mac,
                      **{ip + '_src': request.dst_ip, ip + '_dst': request.src_ip,
                         l4 + '_src': request.dst_port, l4 + '_dst': probe.ident}), False),
                (_unreachable_fields(request), True)]

    def verdict(self, probe):
        outcomes = {e.answer for e in probe.echoes}
        return next((v for v in self.verdicts if v in outcomes), self.verdicts[-1])

    def summary(self, probe):
        return {'src_port': probe.ident}


class Tcp(_Port):
    """A SYN: SYN-ACK is open (and the app sends the RST the VM's kernel would), RST is
    closed, silence or an ICMP unreachable is filtered."""
    name, proto = 'tcp', packet.TCP
    verdicts = ('open', 'closed', 'filtered')
    success = frozenset({'open'})

    def _wire(self, probe, src_mac, dst_mac, src_ip, dst_ip):
        request, sport = probe.request, probe.ident
        probe.frame = lambda seq, dscp=0: packet.tcp_syn(
            src_mac, dst_mac, src_ip, dst_ip, sport, request.dst_port, seq)
        probe.reset = lambda ack: packet.tcp_rst(
            src_mac, dst_mac, src_ip, dst_ip, sport, request.dst_port, ack)

    @staticmethod
    def _parse(data):
        return packet.parse_tcp(data)

    def _answer(self, probe, segment):
        attempt = (segment.ack - 1) & 0xffffffff
        if not segment.flags & packet.TCP_ACK:
            return None
        if segment.flags & packet.TCP_RST:
            return Answer('closed', attempt)
        if segment.flags & packet.TCP_SYN:
            return Answer('open', attempt, then=probe.reset(segment.ack))
        return None


class Udp(_Port):
    """A datagram: any reply is open, ICMP port unreachable from the destination is
    closed, another ICMP unreachable is filtered, silence is open|filtered."""
    name, proto = 'udp', packet.UDP
    verdicts = ('open', 'closed', 'filtered', 'open|filtered')
    success = frozenset({'open'})

    def _wire(self, probe, src_mac, dst_mac, src_ip, dst_ip):
        request, sport = probe.request, probe.ident
        payload = bytes.fromhex(request.payload or '')
        probe.frame = lambda seq, dscp=0: packet.udp_datagram(
            src_mac, dst_mac, src_ip, dst_ip, sport, request.dst_port, payload)

    @staticmethod
    def _parse(data):
        return packet.parse_udp(data)

    def _answer(self, probe, datagram):
        return Answer('open', fields={'reply_bytes': len(datagram.payload)})


class Arp(Kind):
    """Who has dst_ip, asked as the source VM (IPv6: a neighbour solicitation); the
    answer's MAC. It proves the destination is alive at L2 and the L2 path both ways."""
    name = 'arp'
    wants_dst_mac = False

    def wire(self, probe, settings) -> None:
        question = resolve.question(probe.request.src_mac, probe.request.src_ip,
                                    probe.request.dst_ip)
        probe.frame = lambda seq, dscp=0: question

    def key(self, probe, seq):
        request = probe.request
        return ('arp', request.src_ip, request.dst_ip)

    def key_of(self, data):
        arp = packet.parse_arp(data)
        if arp is not None and arp.op == packet.ARP_REPLY:
            return ('arp', packet.ip_text(arp.tpa), packet.ip_text(arp.spa))
        na = packet.parse_neighbor_advertisement(data)
        if na is not None:
            return ('arp', packet.ip_text(na.dst_ip6), packet.ip_text(na.target))
        return None

    def read(self, probe, data):
        mac = resolve.mac_in(probe.request.dst_ip, data)
        return None if mac is None else Answer('reply', fields={'mac': mac})

    def catches(self, probe, dscp):
        request = probe.request
        return [(resolve.answer_fields(request.dst_ip, request.src_mac, request.src_ip), True)]

    def summary(self, probe):
        return {'mac': next((e.fields['mac'] for e in probe.echoes if e.fields), None)}


class Dhcp(Kind):
    """A DHCPDISCOVER with the VM's MAC; the OFFER (server, address), never delivered,
    and no REQUEST ever sent: the VM's lease is untouched."""
    name = 'dhcp'
    wants_dst_mac = wants_dst_ip = False
    ident_range = range(1 << 16)

    def wire(self, probe, settings) -> None:
        mac, xid = packet.mac_bytes(probe.request.src_mac), self._xid(probe)
        probe.frame = lambda seq, dscp=0: packet.dhcp_discover(mac, xid)
        probe.reply_from = (mac,)

    @staticmethod
    def _xid(probe) -> int:
        """Ours on the bridge by its low half; the high half is the probe's secret."""
        return int.from_bytes(probe.token[:2], 'big') << 16 | probe.ident

    def key(self, probe, seq):
        return ('dhcp', probe.ident)

    def key_of(self, data):
        offer = packet.parse_dhcp_offer(data)
        return None if offer is None else ('dhcp', offer.xid & 0xffff)

    def read(self, probe, data):
        offer = packet.parse_dhcp_offer(data)
        if offer is None or offer.xid != self._xid(probe) or (offer.client_mac,) != probe.reply_from:
            return None
        text = lambda ip: None if ip is None else packet.ip_text(ip)
        return Answer('reply', fields={
            'server': text(offer.server_id) or text(offer.server_ip),
            'server_mac': packet.mac_text(offer.server_mac), 'offered': text(offer.yiaddr),
            'router': text(offer.router), 'lease_seconds': offer.lease_time})

    def catches(self, probe, dscp):
        request = probe.request
        return [(dict(eth_type=packet.ETH_IPV4, ip_proto=packet.UDP, eth_dst=request.src_mac,
                      udp_src=packet.DHCP_SERVER_PORT, udp_dst=packet.DHCP_CLIENT_PORT),
                 False)]

    def summary(self, probe):
        return {'offer': next((e.fields for e in probe.echoes if e.fields), None)}


KINDS = {kind.name: kind for kind in (Echo(), Tcp(), Udp(), Arp(), Dhcp())}
