"""Network namespaces as stand-in VMs, and the veth links that plug them into OVS.

A *VM* is a namespace holding one veth end named ``eth0`` (with a MAC and an IPv4
address); the other end sits in the OVS instance's namespace as an OVS port. IPv6 is
disabled on every veth we create so that captures only show the traffic a test sends;
`enable_ipv6` turns it back on, quietly, for an interface that gets an IPv6 address.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import ipaddress
import logging
import os
import socket
import struct
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from topologies.ovs import OvsInstance

log = logging.getLogger(__name__)

IFNAMSIZ = 15  # longest Linux interface name
_CLONE_NEWNET = 0x40000000


class CommandError(RuntimeError):
    """A command failed; the message carries the command line and its stderr."""

    def __init__(self, cmd: list[str], returncode: int | None, stderr: str, detail: str = ""):
        self.cmd, self.returncode, self.stderr = cmd, returncode, stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        msg = f"{' '.join(cmd)} {status}: {stderr.strip() or '(no stderr)'}"
        super().__init__(msg + (f"\n{detail}" if detail else ""))


def netns_cmd(cmd: list[str], netns: str | None) -> list[str]:
    """`cmd`, prefixed with `ip netns exec NS` when a namespace is given."""
    return ["ip", "netns", "exec", netns, *cmd] if netns else list(cmd)


def run(cmd: list[str], netns: str | None = None, check: bool = True, timeout: float = 30,
        env: dict[str, str] | None = None) -> str:
    """Run `cmd` (inside `netns` if given) and return its stdout.

    With `check`, a non-zero exit or a timeout raises CommandError.
    """
    full = netns_cmd(cmd, netns)
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        if not check:
            return e.stdout or ""
        raise CommandError(full, None, e.stderr or "") from None
    if check and proc.returncode != 0:
        raise CommandError(full, proc.returncode, proc.stderr)
    return proc.stdout


def namespace_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def iproute_cmd(*args: str, netns: str | None = None) -> list[str]:
    """`ip [-n NS] ARGS...` (-n is cheaper than `ip netns exec`)."""
    return ["ip", *(["-n", netns] if netns else []), *args]


def iproute(*args: str, netns: str | None = None) -> str:
    return run(iproute_cmd(*args, netns=netns))


def link_exists(ifname: str, netns: str | None = None) -> bool:
    if netns and not namespace_exists(netns):
        return False
    cmd = iproute_cmd("link", "show", "dev", ifname, netns=netns)
    return subprocess.run(cmd, capture_output=True).returncode == 0


@contextlib.contextmanager
def entered(netns: str | None):
    """Run the block in `netns`: this thread only (setns(2)), without a subprocess, so
    sockets and /proc/sys/net opened in it are the namespace's. Back home afterwards."""
    if not netns:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)

    def setns(fd: int) -> None:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns: {os.strerror(err)}")

    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{netns}") as there:
        setns(there.fileno())
        try:
            yield
        finally:
            setns(home.fileno())


def disable_ipv6(ifname: str, netns: str | None = None) -> None:
    with entered(netns), open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
        f.write("1")


def sysctl(name: str, value: str | None = None, netns: str | None = None) -> str:
    """A sysctl of `netns` (`net.ipv4.ip_forward`), set to `value` if given; its value."""
    path = "/proc/sys/" + name.replace(".", "/")
    with entered(netns):
        if value is not None:
            with open(path, "w") as f:
                f.write(value)
        with open(path) as f:
            return f.read().strip()


# IPv6 on a VM's interface, kept quiet: no DAD (addresses go on `nodad`), no router
# solicitations sent nor advertisements heeded, and MLD's unsolicited reports sent within
# milliseconds rather than over seconds, so none of its own IPv6 packets shows up later,
# while a test watches a bridge or another controller.
QUIET_IPV6 = {"accept_dad": "0", "accept_ra": "0", "router_solicitations": "0",
              "mldv1_unsolicited_report_interval": "10",
              "mldv2_unsolicited_report_interval": "10"}


def enable_ipv6(ifname: str, netns: str | None = None) -> None:
    """Turn IPv6 back on for `ifname` (veth_pair turned it off), quietly (QUIET_IPV6).

    If IPv6 is off namespace-wide (`all.disable_ipv6=1`, inherited from a host that has it
    off), it is turned on there first, which turns it on for every interface of `netns`.
    """
    if sysctl("net.ipv6.conf.all.disable_ipv6", netns=netns) != "0":
        sysctl("net.ipv6.conf.all.disable_ipv6", "0", netns)
    for key, value in (*QUIET_IPV6.items(), ("disable_ipv6", "0")):
        sysctl(f"net.ipv6.conf.{ifname}.{key}", value, netns)


def disable_tx_checksum(ifname: str, netns: str | None = None) -> None:
    """Make the kernel checksum what `ifname` sends (like `ethtool -K IF tx off`).

    The userspace datapath reads veths through packet sockets and forwards packets as
    they are; with checksum offload on, a guest's TCP/UDP packets still have partial
    checksums then, and the receiver drops them. (ICMP is checksummed by ping itself.)
    """
    # `ethtool -K IF tx off` without ethtool (not installed here): SIOCETHTOOL/ETHTOOL_STXCSUM.
    value = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))  # ETHTOOL_STXCSUM, off
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with entered(netns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), 0x8946, ifreq)  # SIOCETHTOOL


class Namespace:
    """A named network namespace with its loopback up.

    `delete()` only removes the namespace: callers stop their own processes first
    (a process still inside keeps the namespace and its devices alive).
    """

    def __init__(self, name: str):
        self.name = name

    def create(self) -> "Namespace":
        run(["ip", "netns", "add", self.name])
        iproute("link", "set", "lo", "up", netns=self.name)
        return self

    def delete(self) -> None:
        """Delete the namespace; does nothing if it is already gone."""
        if namespace_exists(self.name):
            run(["ip", "netns", "delete", self.name])

    def exec(self, *cmd: str, check: bool = True, timeout: float = 30) -> str:
        return run(list(cmd), netns=self.name, check=check, timeout=timeout)

    def popen(self, *cmd: str, **kwargs) -> subprocess.Popen:
        """Start `cmd` inside the namespace; kwargs go to subprocess.Popen."""
        return subprocess.Popen(netns_cmd(list(cmd), self.name), **kwargs)

    def __enter__(self) -> "Namespace":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.delete()

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"


@dataclass
class Vm:
    """A namespace plugged into an OVS bridge through a veth pair."""

    name: str
    netns: str
    mac: str
    ip: str  # without prefix
    prefix: int
    host_if: str  # host-side veth, an OVS port
    port_no: int | None
    bridge: str
    host_netns: str | None = None  # namespace of host_if (the OVS instance's), None = root

    def exec(self, *cmd: str, check: bool = True, timeout: float = 30) -> str:
        return Namespace(self.netns).exec(*cmd, check=check, timeout=timeout)

    def popen(self, *cmd: str, **kwargs) -> subprocess.Popen:
        return Namespace(self.netns).popen(*cmd, **kwargs)

    def ping(self, dst: str, count: int = 2, wait: float = 1) -> bool:
        """True if `ping -c count -W wait dst` from inside the VM got replies."""
        proc = subprocess.run(
            netns_cmd(["ping", "-n", "-q", "-c", str(count), "-W", str(wait), dst], self.netns),
            capture_output=True, timeout=count * (wait + 1) + 5)
        return proc.returncode == 0


def mac_for_ip(ip_addr: str) -> str:
    """A locally administered unicast MAC derived from an IPv4 address: 02:00:a:b:c:d."""
    octets = ipaddress.IPv4Address(ip_addr).packed
    return "02:00:" + ":".join(f"{b:02x}" for b in octets)


def ifname(prefix: str, name: str) -> str:
    """`prefix + name`, or if that is too long for Linux, prefix + a hash of name."""
    full = prefix + name
    if len(full) <= IFNAMSIZ:
        return full
    room = IFNAMSIZ - len(prefix)
    if room < 4:
        raise ValueError(f"interface prefix {prefix!r} leaves no room for a name")
    return prefix + hashlib.sha1(name.encode()).hexdigest()[:room]


def veth_pair(a: str, b: str, a_netns: str | None = None, b_netns: str | None = None) -> None:
    """Create veth `a` <-> `b`, each directly in its namespace, IPv6 off, both up.

    The ends are created in their target namespaces, so `a`/`b` only need to be unique
    there (and in the root namespace when that is where they go).
    """
    for name in (a, b):
        if len(name) > IFNAMSIZ:
            raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ} characters")
    cmd = ["link", "add", a, *(["netns", a_netns] if a_netns else []),
           "type", "veth", "peer", "name", b, *(["netns", b_netns] if b_netns else [])]
    iproute(*cmd)
    try:
        for name, ns in ((a, a_netns), (b, b_netns)):
            disable_ipv6(name, ns)
            iproute("link", "set", name, "up", netns=ns)
    except Exception:
        delete_link(a, a_netns)
        raise


def delete_link(ifname_: str, netns: str | None = None) -> None:
    """Delete an interface if it exists (deleting one veth end removes its peer too)."""
    cmd = iproute_cmd("link", "delete", ifname_, netns=netns)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and link_exists(ifname_, netns):
        raise CommandError(cmd, proc.returncode, proc.stderr)


def add_vm(ovs: "OvsInstance", bridge: str, name: str, ip: str, *, prefix: int = 24,
           mac: str | None = None, tag: int | None = None, netns_prefix: str = "") -> Vm:
    """Create VM `name`: namespace `netns_prefix + name` with eth0 (MAC, IP, up) whose
    veth peer `netns_prefix + name` (shortened to 15 chars if needed) is a port of
    `bridge` (access VLAN `tag` if given).

    Use a run-unique `netns_prefix` (Lab does): host-side names must not collide with
    other labs on the machine.
    """
    vm = Vm(name=name, netns=netns_prefix + name, mac=mac or mac_for_ip(ip), ip=ip,
            prefix=prefix, host_if=ifname(netns_prefix, name), port_no=None, bridge=bridge,
            host_netns=ovs.netns)
    Namespace(vm.netns).create()
    try:
        veth_pair(vm.host_if, "eth0", a_netns=vm.host_netns, b_netns=vm.netns)
        iproute("link", "set", "eth0", "address", vm.mac, netns=vm.netns)
        disable_tx_checksum("eth0", vm.netns)
        iproute("addr", "add", f"{ip}/{prefix}", "dev", "eth0", netns=vm.netns)
        vm.port_no = ovs.add_port(bridge, vm.host_if, tag=tag)
    except Exception:
        delete_vm(vm, ovs)
        raise
    return vm


def delete_vm(vm: Vm, ovs: "OvsInstance | None" = None) -> None:
    """Remove the VM's namespace and host-side veth; safe to call twice.

    If `ovs` is given and running, the OVS port is removed too (otherwise it would
    linger in the database as a port without a device).
    """
    if ovs is not None and ovs.running:
        ovs.vsctl("--if-exists", "del-port", vm.bridge, vm.host_if)
    # The veth first: it goes at once, while devices of a deleted namespace are
    # destroyed later by the kernel (or never, if a process still holds the namespace).
    if vm.host_netns is None or namespace_exists(vm.host_netns):
        delete_link(vm.host_if, vm.host_netns)
    Namespace(vm.netns).delete()
