"""Bytes on the wire: the dyed ICMP echo request we inject and the reply we accept.

Everything that arrives in a PacketIn came from the data plane, so the parser trusts
nothing: every length is checked, and anything that is not a complete, checksummed
IPv4 echo reply is rejected (returns None).
"""
import socket
import struct
from dataclasses import dataclass

ETH_IPV4 = 0x0800
VLAN_TPIDS = (0x8100, 0x88a8)
ICMP = 1
ECHO_REPLY = 0
ECHO_REQUEST = 8
TTL = 64
IP_DONT_FRAGMENT = 0x4000

_IPV4 = struct.Struct('!BBHHHBBH4s4s')
_ICMP = struct.Struct('!BBHHH')


def mac_bytes(mac: str) -> bytes:
    """'02:00:00:00:00:01' -> 6 bytes."""
    return bytes.fromhex(mac.replace(':', ''))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def echo_request(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
                 ident: int, seq: int, payload: bytes, dscp: int = 0) -> bytes:
    """An untagged Ethernet/IPv4/ICMP echo request, as the source VM would send it,
    its IP header marked with `dscp` (a Linux destination echoes it in the reply)."""
    icmp = _ICMP.pack(ECHO_REQUEST, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack('!H', checksum(icmp)) + icmp[4:]
    ip = _IPV4.pack(0x45, dscp << 2, _IPV4.size + len(icmp), 0, IP_DONT_FRAGMENT, TTL, ICMP, 0,
                    src_ip, dst_ip)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return dst_mac + src_mac + struct.pack('!H', ETH_IPV4) + ip + icmp


@dataclass(frozen=True)
class EchoReply:
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

    def fields(self) -> dict:
        """Its headers as OpenFlow match fields (Ryu's names and values)."""
        return {'eth_dst': _mac_text(self.dst_mac), 'eth_src': _mac_text(self.src_mac),
                'vlan_vid': 0 if self.vlan is None else 0x1000 | self.vlan,
                'eth_type': ETH_IPV4, 'ip_proto': ICMP, 'ip_dscp': self.dscp,
                'ipv4_src': socket.inet_ntoa(self.src_ip),
                'ipv4_dst': socket.inet_ntoa(self.dst_ip),
                'icmpv4_type': self.icmp_type, 'icmpv4_code': 0}


def _mac_text(mac: bytes) -> str:
    return ':'.join('%02x' % b for b in mac)


def parse_echo_reply(data: bytes) -> EchoReply | None:
    """The echo reply in an Ethernet frame (up to two VLAN tags), or None."""
    return parse_echo(data, ECHO_REPLY)


def parse_echo(data: bytes, kind: int) -> EchoReply | None:
    """The echo reply or request (`kind`, the ICMP type) in an Ethernet frame (up to two
    VLAN tags), or None."""
    offset, vlan = 12, None
    for _ in range(3):
        if len(data) < offset + 2:
            return None
        ethertype, = struct.unpack_from('!H', data, offset)
        if ethertype not in VLAN_TPIDS:
            break
        if vlan is None and len(data) >= offset + 4:
            vlan = struct.unpack_from('!H', data, offset + 2)[0] & 0x0fff
        offset += 4
    else:
        return None
    if ethertype != ETH_IPV4:
        return None
    ip_start = offset + 2
    if len(data) < ip_start + _IPV4.size:
        return None
    (ver_ihl, tos, total, _id, frag, _ttl, proto, _csum,
     src, dst) = _IPV4.unpack_from(data, ip_start)
    ihl = (ver_ihl & 0x0f) * 4
    if ver_ihl >> 4 != 4 or ihl < _IPV4.size or proto != ICMP or frag & 0x3fff:
        return None
    ip_end = ip_start + total
    # A truncated PacketIn cannot be checksummed, and our replies are small.
    if total < ihl + _ICMP.size or len(data) < ip_end:
        return None
    if checksum(data[ip_start:ip_start + ihl]):
        return None
    icmp = data[ip_start + ihl:ip_end]
    icmp_type, code, _csum, ident, seq = _ICMP.unpack_from(icmp)
    if icmp_type != kind or code != 0 or checksum(icmp):
        return None
    return EchoReply(data[:6], src, dst, ident, seq, icmp[_ICMP.size:], tos >> 2, kind,
                     data[6:12], vlan)
