import dataclasses
import os
import random

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest,
                                ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr,
                                ICMPv6NDOptSrcLLAddr, IPv6)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from helpers import reply_frame
from ryu_apps import packet

SRC_MAC, DST_MAC = packet.mac_bytes('02:00:00:00:00:01'), packet.mac_bytes('02:00:00:00:00:02')
SRC_IP, DST_IP = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
TOKEN = bytes(range(16))


def request(seq=7, ident=111):
    return packet.echo_request(SRC_MAC, DST_MAC, SRC_IP, DST_IP, ident, seq, TOKEN)


def test_echo_request_is_what_scapy_reads_as_a_valid_dyed_ping():
    frame = Ether(request())
    assert frame.src == '02:00:00:00:00:01' and frame.dst == '02:00:00:00:00:02'
    assert (frame[IP].src, frame[IP].dst, frame[IP].ttl) == ('10.0.0.1', '10.0.0.2', 64)
    assert (frame[ICMP].type, frame[ICMP].id, frame[ICMP].seq) == (8, 111, 7)
    assert bytes(frame[ICMP].payload) == TOKEN
    rebuilt = Ether(request())
    del rebuilt[IP].chksum, rebuilt[ICMP].chksum   # scapy recomputes them
    assert bytes(rebuilt) == request()


def test_reply_from_scapy_parses_to_its_fields():
    reply = packet.parse_echo_reply(reply_frame(request(seq=9)))
    assert reply == packet.EchoReply(SRC_MAC, DST_IP, SRC_IP, 111, 9, TOKEN, 0, 0, DST_MAC)


def test_reply_with_vlan_and_qinq_tags_parses():
    plain = Ether(reply_frame(request()))
    for tags in (Dot1Q(vlan=10), Dot1AD(vlan=100) / Dot1Q(vlan=10)):
        tagged = Ether(src=plain.src, dst=plain.dst) / tags / plain[IP]
        assert packet.parse_echo_reply(bytes(tagged)).seq == 7


def test_echo_request_is_not_taken_for_a_reply():
    assert packet.parse_echo_reply(request()) is None


def test_corrupt_truncated_fragmented_or_foreign_frames_are_rejected():
    good = reply_frame(request())
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xff   # ICMP checksum no longer holds
    fragment = Ether(good)
    fragment[IP].flags, fragment[IP].frag = 'MF', 0
    del fragment[IP].chksum
    arp = bytes.fromhex('ffffffffffff020000000001' '0806') + bytes(28)
    for frame in (bytes(corrupt), good[:-1], good[:30], bytes(fragment), arp, b'', b'\0' * 13):
        assert packet.parse_echo_reply(frame) is None


def test_random_bytes_never_raise():
    rng = random.Random(1)
    good = reply_frame(request())
    for _ in range(5000):
        frame = bytearray(good if rng.random() < 0.5 else os.urandom(rng.randrange(80)))
        for _ in range(rng.randrange(1, 4)):
            if frame:
                frame[rng.randrange(len(frame))] = rng.randrange(256)
        packet.parse_echo_reply(bytes(frame[:rng.randrange(len(frame) + 1)]))


def test_the_mark_is_the_dscp_of_the_request_and_is_read_back_from_the_reply():
    marked = packet.echo_request(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 111, 7, TOKEN, dscp=59)
    frame = Ether(marked)
    assert frame[IP].tos == 59 << 2
    del frame[IP].chksum
    assert bytes(Ether(bytes(frame))) == marked     # scapy agrees on the checksum
    assert packet.parse_echo_reply(reply_frame(marked)).dscp == 59
    assert packet.parse_echo_reply(reply_frame(marked, tos=0)).dscp == 0


def test_a_request_parses_too_and_its_headers_read_as_openflow_fields():
    frame = Ether(request())
    tagged = bytes(Ether(src=frame.src, dst=frame.dst) / Dot1Q(vlan=10) / frame[IP])
    echo = packet.parse_echo(tagged, packet.ECHO_REQUEST)
    assert (echo.icmp_type, echo.vlan, echo.seq) == (8, 10, 7)
    assert packet.parse_echo_reply(tagged) is None
    assert echo.fields() == {
        'eth_dst': '02:00:00:00:00:02', 'eth_src': '02:00:00:00:00:01', 'vlan_vid': 0x100a,
        'eth_type': 0x0800, 'ip_proto': 1, 'ip_dscp': 0, 'ipv4_src': '10.0.0.1',
        'ipv4_dst': '10.0.0.2', 'icmpv4_type': 8, 'icmpv4_code': 0}


# Issue 9: ARP, IPv6 (echo and NDP), TCP, UDP, ICMP errors and DHCP

VM1, VM2, SERVER = '02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:fe'
SRC6, DST6 = packet.ip_bytes('fd00::1'), packet.ip_bytes('fd00::2')
TARGET6 = packet.ip_bytes('fd00::12:3456')
PAIRS = {4: (SRC_IP, DST_IP), 6: (SRC6, DST6)}


def ip_layer(version, src, dst, **fields):
    """A scapy IP layer of `version` between two of our byte addresses."""
    src, dst = packet.ip_text(src), packet.ip_text(dst)
    if version == 4:
        return IP(src=src, dst=dst, **fields)
    return IPv6(src=src, dst=dst, tc=fields.pop('tos', 0), **fields)


def scapy_rebuilt(frame: bytes) -> bytes:
    """`frame` as scapy reads it and builds it again, every checksum computed anew."""
    pkt = Ether(frame)
    for layer in pkt.iterpayloads():
        for name in ('chksum', 'cksum'):
            if name in layer.fields:
                delattr(layer, name)
    return bytes(pkt)


def tagged(frame: bytes, tags) -> bytes:
    eth = Ether(frame)
    return bytes(Ether(src=eth.src, dst=eth.dst) / tags / eth.payload)


def quoted(frame: bytes, length: int) -> bytes:
    """The start of `frame`'s IP packet, as an ICMP error quotes it."""
    return bytes(Ether(frame).payload)[:length]


def arp_reply():
    return bytes(Ether(src=VM2, dst=VM1) / ARP(op=2, hwsrc=VM2, psrc='10.0.0.2',
                                               hwdst=VM1, pdst='10.0.0.1'))


def echo6_reply(**ip):
    return bytes(Ether(src=VM2, dst=VM1) / ip_layer(6, DST6, SRC6, **ip)
                 / ICMPv6EchoReply(id=111, seq=7, data=TOKEN))


def advertisement(dst=SRC6, hlim=255, options=None, **flags):
    na = ICMPv6ND_NA(**{'R': 0, 'S': 1, 'O': 1, **flags}, tgt='fd00::2')
    options = ICMPv6NDOptDstLLAddr(lladdr=VM2) if options is None else options
    return bytes(Ether(src=VM2, dst=VM1) / ip_layer(6, DST6, dst, hlim=hlim) / na / options)


def solicitation(src=SRC6, hlim=255, options=None, tc=0):
    ns = ICMPv6ND_NS(tgt='fd00::2')
    options = ICMPv6NDOptSrcLLAddr(lladdr=VM1) if options is None else options
    return bytes(Ether(src=VM1, dst='33:33:ff:00:00:02')
                 / ip_layer(6, src, packet.ip_bytes('ff02::1:ff00:2'), hlim=hlim, tos=tc)
                 / ns / options)


def syn_ack(version=4, flags='SA'):
    return bytes(Ether(src=VM2, dst=VM1) / ip_layer(version, *PAIRS[version][::-1])
                 / TCP(sport=443, dport=40000, flags=flags, seq=1000, ack=5001,
                       options=[('MSS', 1400), ('NOP', None), ('WScale', 7)]))


def udp_answer(version=4, **udp):
    return bytes(Ether(src=VM2, dst=VM1) / ip_layer(version, *PAIRS[version][::-1])
                 / UDP(sport=53, dport=40000, **udp) / b'answer')


def unreachable(version=4, original=None, length=None, code=None):
    """What the destination sends back for `original` (a UDP datagram to a closed port)."""
    original = original or packet.udp_datagram(SRC_MAC, DST_MAC, *PAIRS[version], 40000, 53,
                                               b'query')
    header = IP(src='10.0.0.2', dst='10.0.0.1') if version == 4 else ip_layer(6, DST6, SRC6)
    icmp = ICMP(type=3, code=3 if code is None else code) if version == 4 else \
        ICMPv6DestUnreach(code=4 if code is None else code)
    length = length or (28 if version == 4 else 48)
    return bytes(Ether(src=VM2, dst=VM1) / header / icmp / quoted(original, length))


def offer(message_type='offer', sport=67, **options):
    listed = {'server_id': '10.0.0.254', 'lease_time': 86400, 'router': '10.0.0.1', **options}
    return bytes(Ether(src=SERVER, dst=VM1) / IP(src='10.0.0.254', dst='10.0.0.5')
                 / UDP(sport=sport, dport=68)
                 / BOOTP(op=2, xid=0x1234, yiaddr='10.0.0.5', siaddr='10.0.0.254',
                         chaddr=SRC_MAC + bytes(10))
                 / DHCP(options=[('message-type', message_type),
                                 *[(k, *(v if isinstance(v, list) else [v]))
                                   for k, v in listed.items() if v is not None],
                                 'end']))


def echo6(frame):
    return packet.parse_echo6(frame, packet.ECHO6_REPLY)


# Each parser with a frame it must accept, built by scapy.
VALID = [(packet.parse_arp, arp_reply), (echo6, echo6_reply),
         (packet.parse_neighbor_advertisement, advertisement),
         (packet.parse_neighbor_solicitation, solicitation),
         (packet.parse_tcp, syn_ack), (packet.parse_tcp, lambda: syn_ack(6)),
         (packet.parse_udp, udp_answer), (packet.parse_udp, lambda: udp_answer(6)),
         (packet.parse_unreachable, unreachable),
         (packet.parse_unreachable, lambda: unreachable(6)),
         (packet.parse_dhcp_offer, offer)]
PARSERS = [packet.parse_echo_reply, echo6, packet.parse_arp,
           packet.parse_neighbor_advertisement, packet.parse_neighbor_solicitation,
           packet.parse_tcp, packet.parse_udp,
           packet.parse_unreachable, packet.parse_dhcp_offer]


def test_addresses_convert_between_text_and_bytes():
    assert packet.ip_bytes('10.0.0.1') == SRC_IP and packet.ip_text(SRC_IP) == '10.0.0.1'
    assert packet.ip_bytes('fd00::1') == bytes.fromhex('fd00' + '00' * 13 + '01')
    assert packet.ip_text(SRC6) == 'fd00::1' and packet.mac_text(SRC_MAC) == VM1


def test_arp_request_is_what_scapy_reads_and_a_probe_claims_no_address():
    frame = Ether(packet.arp_request(SRC_MAC, SRC_IP, DST_IP))
    assert (frame.dst, frame.src, frame[ARP].op) == ('ff:ff:ff:ff:ff:ff', VM1, 1)
    assert (frame[ARP].hwsrc, frame[ARP].psrc, frame[ARP].pdst) == (VM1, '10.0.0.1', '10.0.0.2')
    assert frame[ARP].hwdst == '00:00:00:00:00:00'
    probe = Ether(packet.arp_request(SRC_MAC, None, DST_IP, eth_dst=DST_MAC))
    assert (probe.dst, probe[ARP].psrc, probe[ARP].pdst) == (VM2, '0.0.0.0', '10.0.0.2')


def test_echo_request6_is_what_scapy_reads_as_a_valid_dyed_ping():
    built = packet.echo_request6(SRC_MAC, DST_MAC, SRC6, DST6, 111, 7, TOKEN, dscp=59)
    frame = Ether(built)
    assert (frame.src, frame.dst, frame.type) == (VM1, VM2, 0x86dd)
    assert (frame[IPv6].src, frame[IPv6].dst, frame[IPv6].hlim) == ('fd00::1', 'fd00::2', 64)
    assert frame[IPv6].tc == 59 << 2 and frame[IPv6].nh == 58
    echo = frame[ICMPv6EchoRequest]
    assert (echo.id, echo.seq, echo.data) == (111, 7, TOKEN)
    assert scapy_rebuilt(built) == built


def test_neighbor_solicitation_goes_to_the_solicited_node_group_with_hop_limit_255():
    built = packet.neighbor_solicitation(SRC_MAC, SRC6, TARGET6)
    frame = Ether(built)
    assert (frame.dst, frame[IPv6].dst) == ('33:33:ff:12:34:56', 'ff02::1:ff12:3456')
    assert (frame[IPv6].src, frame[IPv6].hlim) == ('fd00::1', 255)
    assert frame[ICMPv6ND_NS].tgt == 'fd00::12:3456'
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == VM1
    assert scapy_rebuilt(built) == built


def test_a_dad_style_solicitation_comes_from_the_unspecified_address_without_an_option():
    built = packet.neighbor_solicitation(SRC_MAC, None, TARGET6)
    frame = Ether(built)
    assert (frame.src, frame.dst, frame[IPv6].src) == (VM1, '33:33:ff:12:34:56', '::')
    assert ICMPv6NDOptSrcLLAddr not in frame and len(frame[ICMPv6ND_NS]) == 24
    assert scapy_rebuilt(built) == built


@pytest.mark.parametrize('version', [4, 6])
def test_tcp_syn_and_rst_are_what_scapy_reads(version):
    syn = packet.tcp_syn(SRC_MAC, DST_MAC, *PAIRS[version], 40000, 443, 5000, dscp=59)
    frame = Ether(syn)
    tcp = frame[TCP]
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, str(tcp.flags)) == (40000, 443, 5000, 0, 'S')
    assert tcp.options == [('MSS', 1460 if version == 4 else 1440)]
    assert (frame[IP].tos if version == 4 else frame[IPv6].tc) == 59 << 2
    rst = packet.tcp_rst(SRC_MAC, DST_MAC, *PAIRS[version], 40000, 443, 5001)
    tcp = Ether(rst)[TCP]
    assert (str(tcp.flags), tcp.seq, tcp.window, tcp.options) == ('R', 5001, 0, [])
    assert scapy_rebuilt(syn) == syn and scapy_rebuilt(rst) == rst


@pytest.mark.parametrize('version', [4, 6])
def test_udp_datagram_is_what_scapy_reads(version):
    built = packet.udp_datagram(SRC_MAC, DST_MAC, *PAIRS[version], 40000, 53, b'query')
    frame = Ether(built)
    assert (frame[UDP].sport, frame[UDP].dport, frame[UDP].len) == (40000, 53, 13)
    assert bytes(frame[UDP].payload) == b'query'
    assert scapy_rebuilt(built) == built


def test_a_udp_sum_of_zero_is_sent_as_0xffff():
    def datagram(payload):
        return packet.udp_datagram(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 1, 2, payload)
    # Two bytes that cancel the rest of the sum out.
    cancel = Ether(datagram(b'\0\0'))[UDP].chksum.to_bytes(2, 'big')
    assert Ether(datagram(cancel))[UDP].chksum == 0xffff
    assert scapy_rebuilt(datagram(cancel)) == datagram(cancel)
    assert packet.parse_udp(datagram(cancel)).payload == cancel


def test_dhcp_discover_is_a_broadcast_discover_that_asks_for_a_unicast_offer():
    built = packet.dhcp_discover(SRC_MAC, 0xdeadbeef)
    frame = Ether(built)
    assert (frame.src, frame.dst) == (VM1, 'ff:ff:ff:ff:ff:ff')
    assert (frame[IP].src, frame[IP].dst) == ('0.0.0.0', '255.255.255.255')
    assert (frame[UDP].sport, frame[UDP].dport) == (68, 67)
    bootp = frame[BOOTP]
    assert (bootp.op, bootp.xid, bootp.flags, bootp.chaddr[:6]) == (1, 0xdeadbeef, 0, SRC_MAC)
    options = [o for o in frame[DHCP].options if o != 'pad']
    assert options[0] == ('message-type', 1) and options[-1] == 'end'
    assert dict(options[:-1])['param_req_list'] == [1, 3, 6, 15, 51, 54]
    assert len(bootp) == 300
    assert scapy_rebuilt(built) == built
    assert packet.parse_dhcp_offer(built) is None


def test_mixed_ip_versions_are_refused_by_the_builders():
    with pytest.raises(ValueError):
        packet.udp_datagram(SRC_MAC, DST_MAC, SRC_IP, DST6, 1, 2, b'')


def test_arp_answer_from_scapy_parses_to_its_fields():
    assert packet.parse_arp(arp_reply()) == packet.Arp(2, DST_MAC, DST_IP, SRC_MAC, SRC_IP,
                                                       None, SRC_MAC, DST_MAC)
    assert packet.parse_arp(arp_reply()).fields() == {
        'eth_dst': VM1, 'eth_src': VM2, 'vlan_vid': 0, 'eth_type': 0x806, 'arp_op': 2,
        'arp_spa': '10.0.0.2', 'arp_tpa': '10.0.0.1', 'arp_sha': VM2, 'arp_tha': VM1}
    padded = arp_reply() + bytes(18)     # to Ethernet's 60 bytes, as a NIC may
    assert packet.parse_arp(padded) == packet.parse_arp(arp_reply())
    assert packet.parse_arp(packet.arp_request(SRC_MAC, None, DST_IP)) == packet.Arp(
        1, SRC_MAC, bytes(4), bytes(6), DST_IP, None, packet.BROADCAST, SRC_MAC)
    assert packet.parse_arp(packet.arp_request(SRC_MAC, SRC_IP, DST_IP, tha=DST_MAC)).tha \
        == DST_MAC


def test_echo6_reply_from_scapy_parses_and_its_headers_read_as_openflow_fields():
    reply = echo6(echo6_reply(tos=59 << 2))
    assert reply == packet.EchoReply(SRC_MAC, DST6, SRC6, 111, 7, TOKEN, 59, 129, DST_MAC)
    assert reply.ipv6 and packet.parse_echo_reply(echo6_reply()) is None
    assert packet.parse_echo6(echo6_reply(), packet.ECHO6_REQUEST) is None
    assert reply.fields() == {
        'eth_dst': VM1, 'eth_src': VM2, 'vlan_vid': 0, 'eth_type': 0x86dd, 'ip_proto': 58,
        'ip_dscp': 59, 'ipv6_src': 'fd00::2', 'ipv6_dst': 'fd00::1', 'icmpv6_type': 129,
        'icmpv6_code': 0}
    request6 = packet.echo_request6(SRC_MAC, DST_MAC, SRC6, DST6, 111, 7, TOKEN)
    assert packet.parse_echo6(request6, packet.ECHO6_REQUEST).seq == 7


def test_neighbor_solicitation_from_scapy_parses_to_its_fields_and_ours_to_the_same():
    ns = packet.parse_neighbor_solicitation(solicitation(tc=59 << 2))
    assert ns == packet.Ns(b'\x33\x33\xff\x00\x00\x02', SRC_MAC, SRC6,
                           packet.ip_bytes('ff02::1:ff00:2'), DST6, SRC_MAC, 59)
    assert ns.fields() == {
        'eth_dst': '33:33:ff:00:00:02', 'eth_src': VM1, 'vlan_vid': 0, 'eth_type': 0x86dd,
        'ip_proto': 58, 'ipv6_src': 'fd00::1', 'ipv6_dst': 'ff02::1:ff00:2', 'ip_dscp': 59,
        'icmpv6_type': 135, 'icmpv6_code': 0, 'ipv6_nd_target': 'fd00::2',
        'ipv6_nd_sll': VM1}
    assert packet.parse_neighbor_solicitation(
        packet.neighbor_solicitation(SRC_MAC, SRC6, DST6, dscp=59)) == ns
    dad = packet.parse_neighbor_solicitation(solicitation(src=bytes(16), options=b''))
    assert dad.src_mac is None and dad.fields()['ipv6_nd_sll'] == '00:00:00:00:00:00'


def test_neighbor_solicitations_rfc_4861_says_to_discard_are_rejected():
    for frame in (solicitation(hlim=64),
                  solicitation(src=bytes(16)),           # from :: with a source option
                  solicitation(options=ICMPv6NDOptSrcLLAddr(len=0, lladdr=VM1)),
                  solicitation(options=ICMPv6NDOptSrcLLAddr(len=2, lladdr=VM1)),  # overruns
                  advertisement()):
        assert packet.parse_neighbor_solicitation(frame) is None


def test_neighbor_advertisement_from_scapy_parses_to_its_fields():
    assert packet.parse_neighbor_advertisement(advertisement()) == packet.Na(
        DST6, SRC6, DST6, DST_MAC, router=False, solicited=True, override=True)
    # The answer to a DAD-style solicitation: to all-nodes, S clear.
    to_all = packet.parse_neighbor_advertisement(advertisement(dst=packet.ip_bytes('ff02::1'),
                                                               S=0, R=1))
    assert (to_all.router, to_all.solicited, to_all.target_mac) == (True, False, DST_MAC)
    bare = packet.parse_neighbor_advertisement(advertisement(options=b''))
    assert bare.target == DST6 and bare.target_mac is None


def test_neighbor_advertisements_rfc_4861_says_to_discard_are_rejected():
    for frame in (advertisement(hlim=254), advertisement(hlim=64),
                  advertisement(dst=packet.ip_bytes('ff02::1')),     # solicited, to multicast
                  advertisement(options=ICMPv6NDOptDstLLAddr(len=0, lladdr=VM2)),
                  advertisement(options=ICMPv6NDOptDstLLAddr(len=2, lladdr=VM2)),  # overruns
                  advertisement(options=ICMPv6NDOptDstLLAddr(len=2, lladdr=VM2) / bytes(8)),
                  advertisement(options=ICMPv6NDOptDstLLAddr(lladdr=VM2) / b'\x01'),
                  packet.neighbor_solicitation(DST_MAC, DST6, SRC6)):
        assert packet.parse_neighbor_advertisement(frame) is None
    multicast_target = Ether(advertisement())
    multicast_target[ICMPv6ND_NA].tgt = 'ff02::1'
    del multicast_target[ICMPv6ND_NA].cksum
    assert packet.parse_neighbor_advertisement(bytes(multicast_target)) is None


@pytest.mark.parametrize('version', [4, 6])
def test_tcp_answers_from_scapy_parse_to_their_fields(version):
    src, dst = PAIRS[version]
    assert packet.parse_tcp(syn_ack(version)) == packet.Tcp(
        dst, src, 443, 40000, 1000, 5001, packet.TCP_SYN | packet.TCP_ACK)
    assert packet.parse_tcp(syn_ack(version, 'RA')).flags == packet.TCP_RST | packet.TCP_ACK
    syn = packet.tcp_syn(SRC_MAC, DST_MAC, src, dst, 40000, 443, 5000)
    assert packet.parse_tcp(syn) == packet.Tcp(src, dst, 40000, 443, 5000, 0, packet.TCP_SYN)


@pytest.mark.parametrize('version', [4, 6])
def test_udp_answers_from_scapy_parse_to_their_fields(version):
    src, dst = PAIRS[version]
    assert packet.parse_udp(udp_answer(version)) == packet.Udp(dst, src, 53, 40000, b'answer')


def test_a_udp_checksum_of_zero_means_none_over_ipv4_only():
    assert packet.parse_udp(udp_answer(4, chksum=0)).payload == b'answer'
    assert packet.parse_udp(udp_answer(6, chksum=0)) is None       # RFC 8200 8.1
    assert packet.parse_udp(udp_answer(4, chksum=1)) is None
    assert packet.parse_udp(udp_answer(4, len=12)) is None         # not the IP length


@pytest.mark.parametrize('version', [4, 6])
def test_unreachables_from_scapy_parse_to_the_datagram_they_report(version):
    src, dst = PAIRS[version]
    kind, icmp_type, code = ('icmp', 3, 3) if version == 4 else ('icmpv6', 1, 4)
    error = packet.parse_unreachable(unreachable(version))
    assert error == packet.Unreachable(kind, icmp_type, code, dst, src, dst, packet.UDP,
                                       40000, 53)
    assert error.port_unreachable
    whole = unreachable(version, length=1000)        # Linux quotes all it can
    assert packet.parse_unreachable(whole) == error
    syn = packet.tcp_syn(SRC_MAC, DST_MAC, src, dst, 40001, 443, 5000)
    filtered = packet.parse_unreachable(unreachable(version, syn, code=13 if version == 4 else 1))
    assert (filtered.proto, filtered.sport, filtered.dport) == (packet.TCP, 40001, 443)
    assert not filtered.port_unreachable
    ping = (packet.echo_request(SRC_MAC, DST_MAC, src, dst, 1, 2, b'') if version == 4
            else packet.echo_request6(SRC_MAC, DST_MAC, src, dst, 1, 2, b''))
    echo = packet.parse_unreachable(unreachable(version, ping))
    icmp = packet.ICMP if version == 4 else packet.ICMPV6
    assert (echo.proto, echo.sport, echo.dport) == (icmp, None, None)


def test_unreachables_quoting_too_little_or_a_broken_header_are_rejected():
    assert packet.parse_unreachable(unreachable(4, length=27)) is None   # 7 bytes of UDP
    assert packet.parse_unreachable(unreachable(6, length=47)) is None
    original = bytearray(packet.udp_datagram(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 1, 53, b''))
    original[14 + 8] ^= 1     # its TTL: the quoted IPv4 header's checksum no longer holds
    assert packet.parse_unreachable(unreachable(4, bytes(original))) is None
    time_exceeded = Ether(unreachable(4))
    time_exceeded[IP].remove_payload()
    time_exceeded = time_exceeded / ICMP(type=11) / quoted(bytes(original), 28)
    assert packet.parse_unreachable(bytes(time_exceeded)) is None


def test_dhcp_offer_from_scapy_parses_to_its_fields():
    assert packet.parse_dhcp_offer(offer()) == packet.Offer(
        0x1234, bytes([10, 0, 0, 5]), bytes([10, 0, 0, 254]), bytes([10, 0, 0, 254]),
        packet.mac_bytes(SERVER), 86400, bytes([10, 0, 0, 1]), SRC_MAC)
    sparse = packet.parse_dhcp_offer(offer(server_id=None, lease_time=None, router=None))
    assert (sparse.server_id, sparse.lease_time, sparse.router) == (None, None, None)
    routers = packet.parse_dhcp_offer(offer(router=['10.0.0.1', '10.0.0.2']))
    assert routers.router == bytes([10, 0, 0, 1])


def test_dhcp_options_are_read_strictly_and_other_answers_are_rejected():
    for frame in (offer('ack'), offer('nak'), offer(sport=53)):
        assert packet.parse_dhcp_offer(frame) is None
    for options, parses in ((b'\0\x35\x01\x02\0\xff', True),           # pads are skipped
                            (b'\x35\x01\x02\x33\x02\x00\x00\xff', False),  # 2-byte lease
                            (b'\x35\x01\x02\x03\x03\x0a\x00\x00\xff', False),  # 3-byte router
                            (b'\x35\x01\x02\x33\x04\x00\x00', False)):   # option 51 overruns
        raw = Ether(offer())
        raw[BOOTP].remove_payload()
        raw = Ether(bytes(raw / options))
        del raw[IP].len, raw[IP].chksum, raw[UDP].len, raw[UDP].chksum
        assert (packet.parse_dhcp_offer(bytes(raw)) is not None) == parses, options
    unrelayed = Ether(offer())
    unrelayed[BOOTP].op = 1
    del unrelayed[UDP].chksum
    assert packet.parse_dhcp_offer(bytes(unrelayed)) is None


@pytest.mark.parametrize('parse, build', VALID)
def test_every_parser_reads_its_answer_behind_one_and_two_vlan_tags(parse, build):
    plain = parse(build())
    assert plain is not None and plain.vlan is None
    assert parse(tagged(build(), Dot1Q(vlan=10))) == dataclasses.replace(plain, vlan=10)
    assert parse(tagged(build(), Dot1AD(vlan=100) / Dot1Q(vlan=10))) == dataclasses.replace(
        plain, vlan=100)
    assert parse(tagged(build(), Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3))) is None


@pytest.mark.parametrize('parse, build', VALID)
def test_every_parser_rejects_its_answer_truncated_at_every_length(parse, build):
    for frame in (build(), tagged(build(), Dot1AD(vlan=100) / Dot1Q(vlan=10))):
        for length in range(len(frame)):
            assert parse(frame[:length]) is None, length


@pytest.mark.parametrize('parse, build', [v for v in VALID if v[0] is not packet.parse_arp])
def test_every_parser_rejects_a_bad_checksum(parse, build):
    frame = bytearray(build())
    frame[-1] ^= 0xff                  # the last byte of L4: its checksum no longer holds
    assert parse(bytes(frame)) is None
    frame = bytearray(build())
    if Ether(frame).type == 0x0800:
        frame[14 + 8] ^= 1             # the TTL: the IPv4 header checksum no longer holds
        assert parse(bytes(frame)) is None


def test_every_parser_takes_only_its_own_kind_of_answer():
    for parse in PARSERS:
        for other, build in VALID:
            if other is not parse and (parse, other) != (packet.parse_udp,
                                                         packet.parse_dhcp_offer):
                assert parse(build()) is None, (parse, build)
    for change in (dict(op=3), dict(ptype=0x86dd), dict(plen=16), dict(hwtype=6)):
        arp = Ether(arp_reply())
        for name, value in change.items():
            setattr(arp[ARP], name, value)
        assert packet.parse_arp(bytes(arp)) is None, change


def test_random_bytes_and_mutated_answers_never_raise():
    rng = random.Random(9)
    goods = [build() for _parse, build in VALID] + [reply_frame(request())]
    for i in range(3000):
        if i % 3 == 0:
            frame = bytearray(rng.randbytes(rng.randrange(120)))
        else:
            frame = bytearray(rng.choice(goods))
            for _ in range(rng.randrange(1, 4)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            if i % 3 == 2:       # checksums right again, so the parsers read deeper
                try:
                    frame = bytearray(scapy_rebuilt(bytes(frame)))
                except Exception:
                    continue
        frame = bytes(frame[:rng.randrange(len(frame) + 1)] if rng.random() < 0.2 else frame)
        for parse in PARSERS:
            parse(frame)
