import os
import random

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

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
