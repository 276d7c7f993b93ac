"""A bare OpenFlow 1.3 peer for the lab: a made-up switch that claims a dpid, or a
controller that takes a role, on a connected socket. Only what the fault tests need:
HELLO, echo replies, a switch's features and (empty) port description, and the raw
messages it receives."""
import socket
import struct
import threading

OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 0, 1, 2, 3
OFPT_FEATURES_REQUEST, OFPT_FEATURES_REPLY = 5, 6
OFPT_MULTIPART_REQUEST, OFPT_MULTIPART_REPLY, OFPMP_PORT_DESC = 18, 19, 13
OFPT_ROLE_REQUEST, OFPT_ROLE_REPLY, OFPCR_ROLE_MASTER = 24, 25, 2


class Peer:
    """A bare OpenFlow 1.3 peer on a connected socket: it says HELLO and answers echo
    requests; as a switch (`dpid`), features and port description requests too. What
    it receives is kept in `got` (type, xid, body); `closed` is set when the other side
    closes."""

    def __init__(self, sock: socket.socket, dpid: int | None = None):
        self.sock, self.dpid = sock, dpid
        self.got: list[tuple[int, int, bytes]] = []
        self.closed = threading.Event()
        self.send(OFPT_HELLO)
        threading.Thread(target=self._serve, daemon=True).start()

    def send(self, kind: int, body: bytes = b'', xid: int = 0) -> None:
        self.sock.sendall(struct.pack('!BBHI', 4, kind, 8 + len(body), xid) + body)

    def _read(self, n: int) -> bytes:
        data = b''
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self) -> None:
        try:
            while True:
                _, kind, length, xid = struct.unpack('!BBHI', self._read(8))
                body = self._read(length - 8)
                self.got.append((kind, xid, body))
                if kind == OFPT_ECHO_REQUEST:
                    self.send(OFPT_ECHO_REPLY, body, xid)
                elif kind == OFPT_FEATURES_REQUEST and self.dpid is not None:
                    self.send(OFPT_FEATURES_REPLY, struct.pack('!QIBB2xII', self.dpid, 0, 254,
                                                               0, 0, 0), xid)
                elif kind == OFPT_MULTIPART_REQUEST and self.dpid is not None:
                    (part,) = struct.unpack_from('!H', body)
                    if part == OFPMP_PORT_DESC:     # no ports
                        self.send(OFPT_MULTIPART_REPLY, struct.pack('!HH4x', part, 0), xid)
        except (EOFError, OSError):
            pass
        self.closed.set()

    def close(self) -> None:
        self.sock.close()
        self.closed.wait(5)
