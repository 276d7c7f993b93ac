"""Bytes on the wire: the frames we inject as a tenant VM, and the answers we accept.

Builders return a whole untagged Ethernet frame, as the source VM would send it. Parsers
take a whole frame (up to two VLAN tags) from a PacketIn. That came from the data plane,
so a parser trusts nothing: every length is checked, every checksum is verified (the IPv4
header's, ICMP's, and ICMPv6's, TCP's and UDP's over the pseudo-header), and anything
that is not a complete, well-formed answer gives None. No parser raises, on any bytes.

Addresses are bytes: 6-byte MACs, and 4-byte (IPv4) or 16-byte (IPv6) IPs; a builder
given IPs picks the IP version by their length.
"""
import ipaddress
import struct
from dataclasses import dataclass
from typing import NamedTuple

ETH_IPV4, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86dd
VLAN_TPIDS = (0x8100, 0x88a8)
BROADCAST = b'\xff' * 6
ICMP, TCP, UDP, ICMPV6 = 1, 6, 17, 58
ECHO_REPLY, ECHO_REQUEST = 0, 8
ECHO6_REQUEST, ECHO6_REPLY = 128, 129
UNREACHABLE, UNREACHABLE6 = 3, 1
PORT_UNREACHABLE, PORT_UNREACHABLE6 = 3, 4        # their codes for "port unreachable"
NEIGHBOR_SOLICITATION, NEIGHBOR_ADVERTISEMENT = 135, 136
ARP_REQUEST, ARP_REPLY = 1, 2
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
DHCP_SERVER_PORT, DHCP_CLIENT_PORT = 67, 68
DHCP_DISCOVER, DHCP_OFFER = 1, 2
TTL = 64
ND_HOP_LIMIT = 255           # RFC 4861: a packet with it cannot have crossed a router
IP_DONT_FRAGMENT = 0x4000
MTU = 1500                   # what the MSS of our SYN announces

_ETH = struct.Struct('!6s6sH')
_IPV4 = struct.Struct('!BBHHHBBH4s4s')
_IPV6 = struct.Struct('!IHBB16s16s')
_PSEUDO4 = struct.Struct('!4s4sxBH')
_PSEUDO6 = struct.Struct('!16s16sI3xB')
_ICMP = struct.Struct('!BBHHH')           # echo, v4 or v6: type, code, checksum, ident, seq
_ICMP_ERROR = struct.Struct('!BBH4x')     # type, code, checksum, unused (or MTU)
_ND = struct.Struct('!BBHB3x16s')         # type, code, checksum, flags (R S O), target
_ND_LINK_LAYER = struct.Struct('!BB6s')   # an option: type, length in 8 bytes, MAC
_ARP = struct.Struct('!HHBBH6s4s6s4s')
_TCP = struct.Struct('!HHIIBBHHH')        # ports, seq, ack, offset, flags, window, csum, urg
_UDP = struct.Struct('!HHHH')
_PORTS = struct.Struct('!HH')
_BOOTP = struct.Struct('!BBBBIHH4s4s4s4s16s192xI')   # up to the magic cookie; no sname/file

_CHECKSUM_AT = {ICMP: 2, ICMPV6: 2, TCP: 16, UDP: 6}
_SOLICITED_NODE = ipaddress.ip_address('ff02::1:ff00:0').packed[:13]   # its /104
_ND_SOURCE_LL, _ND_TARGET_LL = 1, 2
_NA_ROUTER, _NA_SOLICITED, _NA_OVERRIDE = 0x80, 0x40, 0x20
_TCP_WINDOW = 64240
_DHCP_MAGIC = 0x63825363
_DHCP_MESSAGE_TYPE, _DHCP_PARAMETERS, _DHCP_END = 53, 55, 255
_DHCP_ROUTER, _DHCP_LEASE_TIME, _DHCP_SERVER_ID = 3, 51, 54
_DHCP_SIZES = {_DHCP_MESSAGE_TYPE: 1, _DHCP_LEASE_TIME: 4, _DHCP_SERVER_ID: 4}
_DHCP_ASKED = bytes([1, 3, 6, 15, 51, 54])    # mask, router, DNS, domain, lease, server
_BOOTP_MIN = 300             # what BOOTP relays may insist on; dhclient pads to it too


def mac_bytes(mac: str) -> bytes:
    """'02:00:00:00:00:01' -> 6 bytes."""
    return bytes.fromhex(mac.replace(':', ''))


def mac_text(mac: bytes) -> str:
    """6 bytes -> '02:00:00:00:00:01'."""
    return ':'.join('%02x' % b for b in mac)


def ip_bytes(ip: str) -> bytes:
    """'10.0.0.1' -> 4 bytes, '2001:db8::1' -> 16 bytes; ValueError for anything else."""
    return ipaddress.ip_address(ip).packed


def ip_text(ip: bytes) -> str:
    """4 or 16 bytes -> '10.0.0.1' or '2001:db8::1'."""
    return str(ipaddress.ip_address(ip))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def ip_match(src_ip: bytes, dst_ip: bytes, proto: int) -> dict:
    """OpenFlow match fields (Ryu's names) for `proto` over IP from `src_ip` to `dst_ip`."""
    v4 = len(src_ip) == 4
    version = 'ipv4' if v4 else 'ipv6'
    return {'eth_type': ETH_IPV4 if v4 else ETH_IPV6, 'ip_proto': proto,
            version + '_src': ip_text(src_ip), version + '_dst': ip_text(dst_ip)}


# Builders

def echo_request(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
                 ident: int, seq: int, payload: bytes, dscp: int = 0) -> bytes:
    """An Ethernet/IPv4/ICMP echo request, its IP header marked with `dscp` (a Linux
    destination echoes it in the reply)."""
    return _ip_frame(src_mac, dst_mac, src_ip, dst_ip, ICMP,
                     _ICMP.pack(ECHO_REQUEST, 0, 0, ident, seq) + payload, dscp)


def echo_request6(src_mac: bytes, dst_mac: bytes, src_ip6: bytes, dst_ip6: bytes,
                  ident: int, seq: int, payload: bytes, dscp: int = 0) -> bytes:
    """An Ethernet/IPv6/ICMPv6 echo request, hop limit 64, its traffic class marked with
    `dscp` (Linux echoes it in the reply)."""
    return _ip_frame(src_mac, dst_mac, src_ip6, dst_ip6, ICMPV6,
                     _ICMP.pack(ECHO6_REQUEST, 0, 0, ident, seq) + payload, dscp)


def arp_request(src_mac: bytes, src_ip4: bytes | None, target_ip4: bytes,
                eth_dst: bytes = BROADCAST, tha: bytes = bytes(6)) -> bytes:
    """An ARP request from `src_mac` for `target_ip4`. With `src_ip4` None the sender
    address is 0.0.0.0: an RFC 5227 probe, which claims no address, so no ARP cache
    learns anything from it (Linux answers it with a unicast reply to `src_mac`). A
    request's target hardware address (`tha`) is ignored by its receivers (RFC 826)."""
    arp = _ARP.pack(1, ETH_IPV4, 6, 4, ARP_REQUEST, src_mac,
                    bytes(4) if src_ip4 is None else src_ip4, tha, target_ip4)
    return _ETH.pack(eth_dst, src_mac, ETH_ARP) + arp


def neighbor_solicitation(src_mac: bytes, src_ip6: bytes | None, target_ip6: bytes,
                          dscp: int = 0) -> bytes:
    """A neighbour solicitation for `target_ip6`, to its solicited-node multicast group
    (ff02::1:ffXX:XXXX, Ethernet 33:33:ff:XX:XX:XX), hop limit 255, with `src_mac` as its
    source link-layer option. With `src_ip6` None the source is :: as in duplicate address
    detection: there is no option, no neighbour cache learns anything from it, and the
    owner of the address answers to all-nodes (ff02::1) with S clear. Its traffic class
    is `dscp` (Linux sends 0; RFC 4861's receivers check the hop limit, not the class)."""
    group = _SOLICITED_NODE + target_ip6[13:]
    icmp = _ND.pack(NEIGHBOR_SOLICITATION, 0, 0, 0, target_ip6)
    if src_ip6 is not None:
        icmp += _ND_LINK_LAYER.pack(_ND_SOURCE_LL, 1, src_mac)
    return _ip_frame(src_mac, b'\x33\x33' + group[12:], src_ip6 or bytes(16), group, ICMPV6,
                     icmp, dscp, ND_HOP_LIMIT)


def tcp_syn(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
            sport: int, dport: int, seq: int, dscp: int = 0) -> bytes:
    """A TCP SYN over IPv4 or IPv6, with an MSS option for a 1500-byte MTU."""
    mss = MTU - (_IPV4.size if len(src_ip) == 4 else _IPV6.size) - _TCP.size
    return _tcp(src_mac, dst_mac, src_ip, dst_ip, sport, dport, seq, dscp, TCP_SYN,
                _TCP_WINDOW, struct.pack('!BBH', 2, 4, mss))


def tcp_rst(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
            sport: int, dport: int, seq: int, dscp: int = 0) -> bytes:
    """A bare TCP RST (no ACK) with `seq`. To abort the half-open connection after a
    SYN-ACK, pass the SYN-ACK's ack number, as the source's own kernel would (RFC 793)."""
    return _tcp(src_mac, dst_mac, src_ip, dst_ip, sport, dport, seq, dscp, TCP_RST, 0, b'')


def udp_datagram(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
                 sport: int, dport: int, payload: bytes, dscp: int = 0) -> bytes:
    """A UDP datagram over IPv4 or IPv6, checksummed (a sum of 0 is sent as 0xffff)."""
    return _ip_frame(src_mac, dst_mac, src_ip, dst_ip, UDP,
                     _UDP.pack(sport, dport, _UDP.size + len(payload), 0) + payload, dscp)


def dhcp_discover(client_mac: bytes, xid: int) -> bytes:
    """A DHCPDISCOVER from `client_mac`, 0.0.0.0:68 to 255.255.255.255:67 and Ethernet
    broadcast: message type, a parameter request list and end, padded to 300 bytes.

    The BOOTP broadcast flag is clear, as Linux clients (dhclient, systemd-networkd) leave
    it, so the server sends the OFFER to the client's MAC (dnsmasq does, to yiaddr), not
    to Ethernet broadcast. Either way the OFFER heads for the VM's port and has to be
    caught; unicast keeps it on the one path from the server to that port, where a catch
    on eth_dst and UDP 67 -> 68 takes it, while a broadcast OFFER would be flooded to
    every port of the segment. It carries no client identifier, so the server looks the
    client up by its MAC, as Neutron's dnsmasq hosts file does."""
    options = bytes([_DHCP_MESSAGE_TYPE, 1, DHCP_DISCOVER,
                     _DHCP_PARAMETERS, len(_DHCP_ASKED), *_DHCP_ASKED, _DHCP_END])
    bootp = _BOOTP.pack(1, 1, 6, 0, xid, 0, 0, bytes(4), bytes(4), bytes(4), bytes(4),
                        client_mac, _DHCP_MAGIC) + options
    return udp_datagram(client_mac, BROADCAST, bytes(4), b'\xff' * 4, DHCP_CLIENT_PORT,
                        DHCP_SERVER_PORT, bootp.ljust(_BOOTP_MIN, b'\0'))


def _tcp(src_mac, dst_mac, src_ip, dst_ip, sport, dport, seq, dscp, flags, window,
         options) -> bytes:
    offset = (_TCP.size + len(options)) // 4 << 4
    segment = _TCP.pack(sport, dport, seq, 0, offset, flags, window, 0, 0) + options
    return _ip_frame(src_mac, dst_mac, src_ip, dst_ip, TCP, segment, dscp)


def _ip_frame(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, proto: int,
              l4: bytes, dscp: int = 0, ttl: int = TTL) -> bytes:
    """`l4` (its checksum field zero, filled in here) in IPv4 or IPv6 in Ethernet."""
    if {len(src_ip), len(dst_ip)} not in ({4}, {16}):
        raise ValueError('the IPs must be both IPv4 (4 bytes) or both IPv6 (16 bytes)')
    total = checksum(_pseudo(src_ip, dst_ip, proto, len(l4)) + l4)
    if proto == UDP and not total:
        total = 0xffff                        # 0 would say "no checksum" (RFC 768)
    at = _CHECKSUM_AT[proto]
    l4 = l4[:at] + struct.pack('!H', total) + l4[at + 2:]
    if len(src_ip) == 4:
        ip = _IPV4.pack(0x45, dscp << 2, _IPV4.size + len(l4), 0, IP_DONT_FRAGMENT, ttl,
                        proto, 0, src_ip, dst_ip)
        ip, ethertype = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:], ETH_IPV4
    else:
        ip = _IPV6.pack(6 << 28 | dscp << 22, len(l4), proto, ttl, src_ip, dst_ip)
        ethertype = ETH_IPV6
    return _ETH.pack(dst_mac, src_mac, ethertype) + ip + l4


def _pseudo(src_ip: bytes, dst_ip: bytes, proto: int, length: int) -> bytes:
    """What the L4 checksum covers before the segment: nothing for ICMPv4."""
    if proto == ICMP:
        return b''
    if len(src_ip) == 4:
        return _PSEUDO4.pack(src_ip, dst_ip, proto, length)
    return _PSEUDO6.pack(src_ip, dst_ip, length, proto)


# What the parsers return

@dataclass(frozen=True)
class EchoReply:
    """An ICMP or ICMPv6 echo (reply or request: `icmp_type`); IPv6 when its IPs are."""
    dst_mac: bytes
    src_ip: bytes
    dst_ip: bytes
    ident: int
    seq: int
    payload: bytes
    dscp: int
    icmp_type: int = ECHO_REPLY
    src_mac: bytes = b''
    vlan: int | None = None        # the outer tag's VLAN id

    @property
    def ipv6(self) -> bool:
        return len(self.src_ip) == 16

    def fields(self) -> dict:
        """Its headers as OpenFlow match fields (Ryu's names and values)."""
        icmp = 'icmpv6' if self.ipv6 else 'icmpv4'
        return {'eth_dst': mac_text(self.dst_mac), 'eth_src': mac_text(self.src_mac),
                'vlan_vid': 0 if self.vlan is None else 0x1000 | self.vlan,
                **ip_match(self.src_ip, self.dst_ip, ICMPV6 if self.ipv6 else ICMP),
                'ip_dscp': self.dscp, icmp + '_type': self.icmp_type, icmp + '_code': 0}


@dataclass(frozen=True)
class Arp:
    """An ARP request or reply (`op`) for IPv4 over Ethernet."""
    op: int
    sha: bytes
    spa: bytes
    tha: bytes
    tpa: bytes
    vlan: int | None = None
    eth_dst: bytes = b''
    eth_src: bytes = b''

    def fields(self) -> dict:
        """Its headers as OpenFlow match fields (Ryu's names and values)."""
        return {'eth_dst': mac_text(self.eth_dst), 'eth_src': mac_text(self.eth_src),
                'vlan_vid': 0 if self.vlan is None else 0x1000 | self.vlan,
                'eth_type': ETH_ARP, 'arp_op': self.op, 'arp_spa': ip_text(self.spa),
                'arp_tpa': ip_text(self.tpa), 'arp_sha': mac_text(self.sha),
                'arp_tha': mac_text(self.tha)}


@dataclass(frozen=True)
class Na:
    """A neighbour advertisement: `target` is at `target_mac` (its target link-layer
    option; None if it had none, as a reply to a unicast solicitation may)."""
    src_ip6: bytes
    dst_ip6: bytes
    target: bytes
    target_mac: bytes | None
    router: bool
    solicited: bool
    override: bool
    vlan: int | None = None


@dataclass(frozen=True)
class Ns:
    """A neighbour solicitation for `target`; `src_mac` is its source link-layer option
    (None if it had none, as one from :: has none)."""
    eth_dst: bytes
    eth_src: bytes
    src_ip6: bytes
    dst_ip6: bytes
    target: bytes
    src_mac: bytes | None
    dscp: int
    vlan: int | None = None

    def fields(self) -> dict:
        """Its headers as OpenFlow match fields (Ryu's names and values)."""
        return {'eth_dst': mac_text(self.eth_dst), 'eth_src': mac_text(self.eth_src),
                'vlan_vid': 0 if self.vlan is None else 0x1000 | self.vlan,
                **ip_match(self.src_ip6, self.dst_ip6, ICMPV6), 'ip_dscp': self.dscp,
                'icmpv6_type': NEIGHBOR_SOLICITATION, 'icmpv6_code': 0,
                'ipv6_nd_target': ip_text(self.target),
                'ipv6_nd_sll': mac_text(self.src_mac or bytes(6))}


@dataclass(frozen=True)
class Tcp:
    """A TCP segment's header; `flags` is its flags byte (TCP_SYN | TCP_ACK...)."""
    src_ip: bytes
    dst_ip: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    vlan: int | None = None


@dataclass(frozen=True)
class Udp:
    """A UDP datagram."""
    src_ip: bytes
    dst_ip: bytes
    sport: int
    dport: int
    payload: bytes
    vlan: int | None = None


@dataclass(frozen=True)
class Unreachable:
    """An ICMP(v6) destination unreachable sent by `reporter`, and the start of the
    datagram it reports (ports None unless that was unfragmented TCP or UDP)."""
    kind: str                      # 'icmp' or 'icmpv6'
    icmp_type: int
    code: int
    reporter: bytes
    src_ip: bytes
    dst_ip: bytes
    proto: int
    sport: int | None
    dport: int | None
    vlan: int | None = None

    @property
    def port_unreachable(self) -> bool:
        return self.code == (PORT_UNREACHABLE if self.kind == 'icmp' else PORT_UNREACHABLE6)


@dataclass(frozen=True)
class Offer:
    """A DHCPOFFER of `yiaddr` to `client_mac` (its chaddr). The server named itself
    `server_id` (option 54) and sent from `server_ip`/`server_mac` (a relay's, if
    relayed); options it left out are None."""
    xid: int
    yiaddr: bytes
    server_id: bytes | None
    server_ip: bytes
    server_mac: bytes
    lease_time: int | None
    router: bytes | None           # the first of option 3's routers
    client_mac: bytes
    vlan: int | None = None


# Parsers

def parse_echo_reply(data: bytes) -> EchoReply | None:
    """The ICMP echo reply in an Ethernet frame (up to two VLAN tags), or None."""
    return parse_echo(data, ECHO_REPLY)


def parse_echo(data: bytes, kind: int) -> EchoReply | None:
    """The ICMP echo reply or request (`kind`, the ICMP type) in an Ethernet frame (up to
    two VLAN tags), or None."""
    return _echo(data, ICMP, kind)


def parse_echo6(frame: bytes, kind: int) -> EchoReply | None:
    """The ICMPv6 echo reply or request (`kind`: ECHO6_REPLY or ECHO6_REQUEST) in an
    Ethernet frame (up to two VLAN tags), or None."""
    return _echo(frame, ICMPV6, kind)


def parse_arp(frame: bytes) -> Arp | None:
    """The ARP request or reply (IPv4 over Ethernet) in a frame, or None."""
    eth = _ethernet(frame)
    if eth is None or eth.ethertype != ETH_ARP or len(eth.body) < _ARP.size:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(eth.body)
    if (htype, ptype, hlen, plen) != (1, ETH_IPV4, 6, 4) or op not in (ARP_REQUEST, ARP_REPLY):
        return None
    return Arp(op, sha, spa, tha, tpa, eth.vlan, eth.dst_mac, eth.src_mac)


def parse_neighbor_advertisement(frame: bytes) -> Na | None:
    """The neighbour advertisement in a frame, valid as RFC 4861 7.1.2 says (hop limit
    255, code 0, a unicast target, S clear if sent to multicast, no empty option), or
    None."""
    ip = _ip(frame, ICMPV6)
    if ip is None or ip.hops != ND_HOP_LIMIT or len(ip.payload) < _ND.size:
        return None
    icmp_type, code, _sum, flags, target = _ND.unpack_from(ip.payload)
    if (icmp_type != NEIGHBOR_ADVERTISEMENT or code or target[0] == 0xff
            or ip.dst[0] == 0xff and flags & _NA_SOLICITED):
        return None
    options = _nd_options(ip.payload[_ND.size:])
    if options is None:
        return None
    target_mac = options.get(_ND_TARGET_LL)
    if target_mac is not None and len(target_mac) != 6:
        return None
    return Na(ip.src, ip.dst, target, target_mac, bool(flags & _NA_ROUTER),
              bool(flags & _NA_SOLICITED), bool(flags & _NA_OVERRIDE), ip.eth.vlan)


def parse_neighbor_solicitation(frame: bytes) -> Ns | None:
    """The neighbour solicitation in a frame, valid as RFC 4861 7.1.1 says (hop limit 255,
    code 0, a unicast target, no empty option, none from ::), or None."""
    ip = _ip(frame, ICMPV6)
    if ip is None or ip.hops != ND_HOP_LIMIT or len(ip.payload) < _ND.size:
        return None
    icmp_type, code, _sum, _flags, target = _ND.unpack_from(ip.payload)
    options = _nd_options(ip.payload[_ND.size:])
    if icmp_type != NEIGHBOR_SOLICITATION or code or target[0] == 0xff or options is None:
        return None
    src_mac = options.get(_ND_SOURCE_LL)
    if src_mac is not None and (len(src_mac) != 6 or ip.src == bytes(16)):
        return None
    return Ns(ip.eth.dst_mac, ip.eth.src_mac, ip.src, ip.dst, target, src_mac, ip.dscp,
              ip.eth.vlan)


def parse_tcp(frame: bytes) -> Tcp | None:
    """The TCP segment (over IPv4 or IPv6) in a frame, or None."""
    ip = _ip(frame, TCP)
    if ip is None or len(ip.payload) < _TCP.size:
        return None
    sport, dport, seq, ack, offset, flags, _window, _sum, _urg = _TCP.unpack_from(ip.payload)
    if not _TCP.size <= (offset >> 4) * 4 <= len(ip.payload):
        return None
    return Tcp(ip.src, ip.dst, sport, dport, seq, ack, flags, ip.eth.vlan)


def parse_udp(frame: bytes) -> Udp | None:
    """The UDP datagram (over IPv4 or IPv6) in a frame, or None."""
    udp = _udp(frame)
    if udp is None:
        return None
    ip, sport, dport, payload = udp
    return Udp(ip.src, ip.dst, sport, dport, payload, ip.eth.vlan)


def parse_unreachable(frame: bytes) -> Unreachable | None:
    """The ICMPv4 (type 3) or ICMPv6 (type 1) destination unreachable in a frame, with
    the headers it quotes (those and 8 bytes of L4 are enough), or None."""
    ip = _ip(frame, ICMP, ICMPV6)
    if ip is None or len(ip.payload) < _ICMP_ERROR.size:
        return None
    icmp_type, code, _sum = _ICMP_ERROR.unpack_from(ip.payload)
    if icmp_type != (UNREACHABLE if ip.proto == ICMP else UNREACHABLE6):
        return None
    quoted = ip.payload[_ICMP_ERROR.size:]
    header = _ip_header(quoted, len(ip.src))
    if header is None or len(quoted) < header.size + _PORTS.size * 2:
        return None
    ports = (None, None)
    if header.proto in (TCP, UDP) and not header.frag & 0x1fff:
        ports = _PORTS.unpack_from(quoted, header.size)
    return Unreachable('icmp' if ip.proto == ICMP else 'icmpv6', icmp_type, code, ip.src,
                       header.src, header.dst, header.proto, *ports, ip.eth.vlan)


def parse_dhcp_offer(frame: bytes) -> Offer | None:
    """The DHCPOFFER (UDP 67 -> 68 over IPv4) in a frame, or None."""
    udp = _udp(frame)
    if udp is None:
        return None
    ip, sport, dport, message = udp
    if (sport, dport) != (DHCP_SERVER_PORT, DHCP_CLIENT_PORT) or len(message) < _BOOTP.size:
        return None
    (op, htype, hlen, _hops, xid, _secs, _flags, _ciaddr, yiaddr, _siaddr, _giaddr,
     chaddr, magic) = _BOOTP.unpack_from(message)
    options = _dhcp_options(message[_BOOTP.size:])
    if ((op, htype, hlen, magic) != (2, 1, 6, _DHCP_MAGIC) or options is None
            or options.get(_DHCP_MESSAGE_TYPE) != bytes([DHCP_OFFER])):
        return None
    lease = options.get(_DHCP_LEASE_TIME)
    return Offer(xid, yiaddr, options.get(_DHCP_SERVER_ID), ip.src, ip.eth.src_mac,
                 None if lease is None else int.from_bytes(lease, 'big'),
                 options.get(_DHCP_ROUTER, b'')[:4] or None, chaddr[:6], ip.eth.vlan)


# The layers every parser walks through

class _Frame(NamedTuple):
    dst_mac: bytes
    src_mac: bytes
    vlan: int | None     # the outer tag's VLAN id
    ethertype: int
    body: bytes          # from the L3 header on


class _Header(NamedTuple):
    src: bytes
    dst: bytes
    proto: int
    dscp: int
    hops: int            # TTL or hop limit
    size: int            # of the header
    end: int             # of the packet, as the header says
    frag: int            # IPv4's flags and fragment offset; 0 for IPv6


class _Ip(NamedTuple):
    eth: _Frame
    src: bytes
    dst: bytes
    proto: int
    dscp: int
    hops: int
    payload: bytes       # the L4 segment, as long as the IP header says


def _ethernet(frame: bytes) -> _Frame | None:
    """The Ethernet header past up to two VLAN tags, or None."""
    frame = bytes(frame)
    offset, vlan = 12, None
    for _ in range(3):
        if len(frame) < offset + 2:
            return None
        ethertype, = struct.unpack_from('!H', frame, offset)
        if ethertype not in VLAN_TPIDS:
            return _Frame(frame[:6], frame[6:12], vlan, ethertype, frame[offset + 2:])
        if len(frame) < offset + 4:
            return None
        if vlan is None:
            vlan = struct.unpack_from('!H', frame, offset + 2)[0] & 0x0fff
        offset += 4
    return None


def _ip_header(data: bytes, version: int) -> _Header | None:
    """The IPv4 (`version` 4) or IPv6 (16) header at the start of `data`, or None; an
    IPv4 header's checksum must hold."""
    if version == 4 and len(data) >= _IPV4.size:
        ver_ihl, tos, total, _id, frag, ttl, proto, _sum, src, dst = _IPV4.unpack_from(data)
        ihl = (ver_ihl & 0x0f) * 4
        if ver_ihl >> 4 != 4 or ihl < _IPV4.size or len(data) < ihl or checksum(data[:ihl]):
            return None
        return _Header(src, dst, proto, tos >> 2, ttl, ihl, total, frag & 0x3fff)
    if version == 16 and len(data) >= _IPV6.size:
        word, length, proto, hops, src, dst = _IPV6.unpack_from(data)
        if word >> 28 != 6:
            return None
        return _Header(src, dst, proto, word >> 22 & 0x3f, hops, _IPV6.size,
                       _IPV6.size + length, 0)
    return None


def _ip(frame: bytes, *protos: int) -> _Ip | None:
    """The whole, unfragmented IP packet in `frame` that carries one of `protos` (ICMP
    over IPv4 only, ICMPv6 over IPv6 only) straight after its header (no IPv6 extension
    header), its L4 checksum holding, or None. A UDP checksum of 0 over IPv4 is none."""
    eth = _ethernet(frame)
    if eth is None or eth.ethertype not in (ETH_IPV4, ETH_IPV6):
        return None
    header = _ip_header(eth.body, 4 if eth.ethertype == ETH_IPV4 else 16)
    if (header is None or header.frag or not header.size <= header.end <= len(eth.body)
            or header.proto not in protos
            or header.proto == (ICMPV6 if eth.ethertype == ETH_IPV4 else ICMP)):
        return None
    payload = eth.body[header.size:header.end]
    unsummed = header.proto == UDP and eth.ethertype == ETH_IPV4 and payload[6:8] == b'\0\0'
    if not unsummed and checksum(_pseudo(header.src, header.dst, header.proto,
                                         len(payload)) + payload):
        return None
    return _Ip(eth, header.src, header.dst, header.proto, header.dscp, header.hops, payload)


def _echo(frame: bytes, proto: int, kind: int) -> EchoReply | None:
    ip = _ip(frame, proto)
    if ip is None or len(ip.payload) < _ICMP.size:
        return None
    icmp_type, code, _sum, ident, seq = _ICMP.unpack_from(ip.payload)
    if icmp_type != kind or code:
        return None
    return EchoReply(ip.eth.dst_mac, ip.src, ip.dst, ident, seq, ip.payload[_ICMP.size:],
                     ip.dscp, kind, ip.eth.src_mac, ip.eth.vlan)


def _udp(frame: bytes) -> tuple[_Ip, int, int, bytes] | None:
    """(the IP packet, source port, destination port, payload) of a UDP datagram, or None."""
    ip = _ip(frame, UDP)
    if ip is None or len(ip.payload) < _UDP.size:
        return None
    sport, dport, length, _sum = _UDP.unpack_from(ip.payload)
    if length != len(ip.payload):
        return None
    return ip, sport, dport, ip.payload[_UDP.size:]


def _nd_options(data: bytes) -> dict[int, bytes] | None:
    """The bodies of ND options by type (the first of each), or None if one is empty or
    overruns (RFC 4861 4.6)."""
    options = {}
    while data:
        if len(data) < 2 or not data[1] or data[1] * 8 > len(data):
            return None
        size = data[1] * 8
        options.setdefault(data[0], data[2:size])
        data = data[size:]
    return options


def _dhcp_options(data: bytes) -> dict[int, bytes] | None:
    """The DHCP options up to the end option, by code (the last of each), or None if one
    overruns, or has the wrong length for its code."""
    options, at = {}, 0
    while at < len(data) and data[at] != _DHCP_END:
        if data[at] == 0:                     # pad
            at += 1
            continue
        if at + 2 > len(data) or at + 2 + data[at + 1] > len(data):
            return None
        code, value = data[at], data[at + 2:at + 2 + data[at + 1]]
        if len(value) != _DHCP_SIZES.get(code, len(value)):
            return None
        options[code], at = value, at + 2 + len(value)
    router = options.get(_DHCP_ROUTER)
    if router is not None and (not router or len(router) % 4):
        return None
    return options
