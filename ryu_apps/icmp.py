"""The echo of each IP version: how its request is built, how its answers are read and
matched, and how its next hop is asked for. Everything that differs between ICMP over
IPv4 and ICMPv6 is here, once; the rest of the app asks `family(ip)`."""
import ipaddress
from dataclasses import dataclass
from typing import Callable

from ryu_apps import packet


@dataclass(frozen=True)
class Family:
    version: int
    eth_type: int
    ip_proto: int
    request_type: int            # ICMP type of an echo request
    reply_type: int
    dst_field: str               # OpenFlow match field of the IP destination
    type_field: str              # and of the ICMP type
    build: Callable              # (src_mac, dst_mac, src_ip, dst_ip, ident, seq, payload, dscp)
    parse: Callable              # (frame, icmp_type) -> EchoReply | None
    asks_itself: str             # what asks a VM for its own MAC (resolve.py)
    next_hop_answer: str         # what answers a request for a next hop's MAC

    def match(self, icmp_type: int, **fields) -> dict:
        """OpenFlow match fields of an echo of this family with `icmp_type`."""
        code = self.type_field.replace('_type', '_code')
        return dict(eth_type=self.eth_type, ip_proto=self.ip_proto,
                    **{self.type_field: icmp_type, code: 0}, **fields)

    def reply_fields(self, src_mac: str, src_ip: str, dscp: int | None) -> dict:
        """What a catch of echo replies to a source VM adds to a delivery flow's match."""
        fields = self.match(self.reply_type, eth_dst=src_mac, **{self.dst_field: src_ip})
        if dscp is not None:
            fields['ip_dscp'] = dscp
        return fields

    def kinds(self) -> dict[int, str]:
        """Its echo's ICMP types, by direction."""
        return {self.request_type: 'request', self.reply_type: 'reply'}


V4 = Family(4, packet.ETH_IPV4, packet.ICMP, packet.ECHO_REQUEST, packet.ECHO_REPLY,
            'ipv4_dst', 'icmpv4_type', packet.echo_request, packet.parse_echo,
            'an ARP probe', 'ARP reply')
V6 = Family(6, packet.ETH_IPV6, packet.ICMPV6, packet.ECHO6_REQUEST, packet.ECHO6_REPLY,
            'ipv6_dst', 'icmpv6_type', packet.echo_request6, packet.parse_echo6,
            'a neighbour solicitation from ::', 'neighbour advertisement')


def family(ip: str) -> Family:
    return V6 if ipaddress.ip_address(ip).version == 6 else V4
