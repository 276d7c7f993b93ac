"""A private Open vSwitch: its own ovsdb-server and ovs-vswitchd in a temp dir.

Everything lives in `rundir` (OVS_RUNDIR = OVS_LOGDIR = OVS_DBDIR): the database, the
daemons' pidfiles, logs and control sockets, and each bridge's management socket
(`rundir/BR.mgmt`, which is what `ovs-ofctl ... BR` resolves to). A unix-socket
controller target for a bridge must also live in this directory.

Userspace datapath only (there is no OVS kernel module here), which has two rules:

* **One userspace OVS per network namespace.** ovs-vswitchd opens a tap device named
  `ovs-netdev` for its datapath, and a second instance in the same namespace cannot
  (EBUSY), so its bridges fail to come up. To run several instances at once, give all
  but one of them their own namespace (`netns=`). `start()` refuses to run where an
  `ovs-netdev` device already exists.
* **Bridges and internal ports are tap devices** named after them in that namespace, so
  in the root namespace bridge names must be unique on the machine.

The taps are persistent: they survive a vswitchd that dies without `exit --cleanup`.
`stop()` deletes leftover ones, but only the names this instance used, and only when no
other ovs-vswitchd runs in the same namespace (one that started after ours died could
have reopened them).

Detached daemons are not our children, so nothing would reap them: they would stay
zombies under PID 1, which does not reap on these machines. `start()` therefore makes
the calling process a *child subreaper* (prctl PR_SET_CHILD_SUBREAPER): daemons started
from it are re-parented to it and `stop()` reaps them. Side effect: any other process
orphaned below the caller is re-parented to it too, and is a zombie until reaped.
"""
from __future__ import annotations

import ctypes
import logging
import os
import re
import shutil
import signal
import tempfile
import time
from typing import Sequence

from topologies.netns import CommandError, link_exists, namespace_exists, run

log = logging.getLogger(__name__)

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
DATAPATH_TAP = "ovs-netdev"  # the userspace datapath's own tap device
DAEMONS = ("ovsdb-server", "ovs-vswitchd")
VOLATILE = re.compile(r"\b(?:duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]*,?\s*")

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Make this process adopt its orphaned descendants (so it can reap our daemons)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d", ctypes.get_errno())


def pid_dead(pid: int) -> bool:
    """True if `pid` has exited; reaps it if it is our child. A zombie counts as dead."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
        return False  # our child, still running
    except ChildProcessError:
        pass  # not our child: judge by /proc
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pid_dead(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def terminate(pid: int, grace: float = 0.0) -> None:
    """Wait `grace` seconds for `pid` to exit, then SIGTERM, then SIGKILL; reap it."""
    if wait_dead(pid, grace):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        if wait_dead(pid, 3.0):
            return
    log.error("pid %d survived SIGKILL", pid)


def netns_inode(netns: str | None) -> int:
    return os.stat(f"/run/netns/{netns}" if netns else "/proc/self/ns/net").st_ino


def vswitchd_pids_in(netns: str | None) -> list[int]:
    """Live ovs-vswitchd processes whose network namespace is `netns` (None: ours)."""
    inode, found = netns_inode(netns), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "ovs-vswitchd":
                    continue
            if os.stat(f"/proc/{entry}/ns/net").st_ino == inode and not pid_dead(int(entry)):
                found.append(int(entry))
        except OSError:
            continue
    return found


class OvsInstance:
    """A private ovsdb-server + ovs-vswitchd living in its own temp dir (optionally run
    inside a network namespace via `ip netns exec NS`)."""

    def __init__(self, name: str, netns: str | None = None, rundir: str | None = None):
        """`rundir`: a directory to create and live in, instead of a fresh temp dir."""
        self.name = name
        self.netns = netns
        self._wanted_rundir = rundir
        self.rundir = ""  # set by start(), cleared by stop()
        self.pids: dict[str, int] = {}  # daemon name -> pid
        self._bridges: set[str] = set()

    @classmethod
    def attach(cls, rundir: str, netns: str | None = None) -> "OvsInstance":
        """The instance living in `rundir`, started earlier (perhaps by another process)."""
        ovs = cls(os.path.basename(rundir), netns=netns)
        ovs.rundir = rundir
        for prog in DAEMONS:
            try:
                with open(ovs.path(f"{prog}.pid")) as f:
                    ovs.pids[prog] = int(f.read())
            except (OSError, ValueError):
                pass
        return ovs

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> "OvsInstance":
        """Create the database, start both daemons and wait until vswitchd answers."""
        if self.rundir:
            return self
        others = vswitchd_pids_in(self.netns)
        if link_exists(DATAPATH_TAP, self.netns):
            where = f"namespace {self.netns}" if self.netns else "this network namespace"
            owner = (f"ovs-vswitchd pid(s) {others} run there" if others else
                     f"no ovs-vswitchd runs there, so it is a leftover: `ip link delete {DATAPATH_TAP}`")
            raise RuntimeError(
                f"{DATAPATH_TAP} already exists in {where}: only one userspace OVS fits in a "
                f"namespace ({owner}); start this instance with netns=...")
        become_subreaper()
        if self._wanted_rundir:
            os.makedirs(self._wanted_rundir)
            self.rundir = self._wanted_rundir
        else:
            self.rundir = tempfile.mkdtemp(prefix=f"ovs-{self.name}-")
        try:
            run(["ovsdb-tool", "create", self.path("conf.db"), SCHEMA])
            self._daemon("ovsdb-server", self.path("conf.db"), f"--remote=punix:{self.path('db.sock')}")
            self.vsctl("--no-wait", "init")
            self._daemon("ovs-vswitchd", f"unix:{self.path('db.sock')}")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _daemon(self, prog: str, *args: str) -> None:
        # --detach returns once the daemon is up; pidfile and log default to OVS_RUNDIR/LOGDIR.
        run([prog, *args, "--pidfile", "--detach", "--log-file", "-vconsole:off"],
            netns=self.netns, env=self.env())
        with open(self.path(f"{prog}.pid")) as f:
            self.pids[prog] = int(f.read())

    def _wait_ready(self, timeout: float = 10) -> None:
        """vswitchd answers on its control socket and has read its configuration."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.appctl("version", timeout=2)
                self.vsctl("show")
                return
            except CommandError:
                if time.monotonic() >= deadline or pid_dead(self.pids["ovs-vswitchd"]):
                    raise RuntimeError(f"ovs-vswitchd did not come up:\n{self.log_errors()}")
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop both daemons, reap them, delete leftover taps and the temp dir. Idempotent."""
        if not self.rundir:
            return
        taps = {DATAPATH_TAP} | self._bridges
        vswitchd = self.pids.get("ovs-vswitchd")
        if vswitchd and not pid_dead(vswitchd):
            try:
                taps |= set(self.vsctl("--bare", "--columns=name", "find", "interface",
                                       "type=internal").split())
            except CommandError as e:
                log.warning("%s: could not list internal ports: %s", self.name, e)
            try:
                self.appctl("exit", "--cleanup", timeout=10)
            except CommandError as e:
                log.warning("%s: ovs-appctl exit failed: %s", self.name, e)
        for prog, grace in (("ovs-vswitchd", 5.0), ("ovsdb-server", 0.0)):
            if prog in self.pids:
                terminate(self.pids[prog], grace)
        self._delete_taps(taps)
        shutil.rmtree(self.rundir, ignore_errors=True)
        self.rundir = ""
        self.pids = {}
        self._bridges.clear()

    def _delete_taps(self, names: set[str]) -> None:
        """Delete persistent taps our vswitchd left behind (normally none, after --cleanup)."""
        if self.netns and not namespace_exists(self.netns):
            return  # the namespace, and every device in it, is gone
        others = vswitchd_pids_in(self.netns)
        if others:
            log.warning("%s: not deleting taps %s: ovs-vswitchd %s runs in the same namespace",
                        self.name, sorted(names), others)
            return
        out = run(["ip", "-o", "tuntap", "show"], netns=self.netns, check=False)
        for name in {line.split(":")[0] for line in out.splitlines()} & names:
            run(["ip", "link", "delete", name], netns=self.netns, check=False)

    def restart(self, prog: str, *, crash: bool = False, keep_flows: bool = True) -> None:
        """Stop one daemon and start it again on the same database and run dir.

        `crash`: SIGKILL, else as an operator stops it (`ovs-appctl exit` for vswitchd,
        SIGTERM for ovsdb-server). ovs-vswitchd keeps its flows only in memory; with
        `keep_flows` it is restarted as `ovs-ctl restart` does: every bridge's flows
        saved, vswitchd started with flow-restore-wait (it connects to no controller
        yet), the flows put back, then flow-restore-wait cleared."""
        if prog not in DAEMONS:
            raise ValueError(f"{prog}: one of {DAEMONS}")
        vswitchd = prog == "ovs-vswitchd"
        saved = {}
        if vswitchd and keep_flows:
            for bridge in self.bridges():
                saved[bridge] = self.path(f"{bridge}.saved-flows")
                flows = self.ofctl("dump-flows", "--no-names", "--no-stats", bridge)
                with open(saved[bridge], "w") as f:
                    f.write("\n".join(re.sub(r"\b(?:idle|hard)_age=[^,]*,", "", line)
                                      for line in flows.splitlines() if "actions=" in line)
                            + "\n")
            self.vsctl("--no-wait", "set", "open_vswitch", ".",
                       "other_config:flow-restore-wait=true")
        pid = self.pids[prog]
        if crash:
            os.kill(pid, signal.SIGKILL)
        elif vswitchd:
            try:
                self.appctl("exit", timeout=10)
            except CommandError as e:
                log.warning("%s: ovs-appctl exit failed: %s", self.name, e)
        terminate(pid, grace=0.0 if crash or not vswitchd else 5.0)
        if vswitchd:
            self._daemon(prog, f"unix:{self.path('db.sock')}")
            self._wait_ready()
            for bridge, path in saved.items():
                self.ofctl("replace-flows", bridge, path)
            if saved:
                self.vsctl("--no-wait", "remove", "open_vswitch", ".", "other_config",
                           "flow-restore-wait")
        else:
            self._daemon(prog, self.path("conf.db"), f"--remote=punix:{self.path('db.sock')}")
            deadline = time.monotonic() + 10
            while True:     # vswitchd reconnects to it by itself
                try:
                    self.vsctl("--no-wait", "show", timeout=2)
                    break
                except CommandError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.05)

    @property
    def running(self) -> bool:
        pid = self.pids.get("ovs-vswitchd")
        return bool(self.rundir) and pid is not None and not pid_dead(pid)

    def __enter__(self) -> "OvsInstance":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"OvsInstance({self.name!r}, netns={self.netns!r}, rundir={self.rundir!r})"

    # -- commands ----------------------------------------------------------------

    def path(self, filename: str) -> str:
        """A path inside the run dir (e.g. for a `unix:` controller target)."""
        return os.path.join(self.rundir, filename)

    def env(self) -> dict[str, str]:
        """Environment that points ovs-* commands at this instance."""
        return dict(os.environ, OVS_RUNDIR=self.rundir, OVS_LOGDIR=self.rundir,
                    OVS_DBDIR=self.rundir)

    def _run(self, cmd: list[str], timeout: float = 30) -> str:
        # All control traffic goes over unix sockets in rundir, which work from any
        # namespace, so there is no need for `ip netns exec` here.
        if not self.rundir:
            raise RuntimeError(f"{self!r} is not running")
        try:
            return run(cmd, timeout=timeout, env=self.env())
        except CommandError as e:
            errors = self.log_errors()
            if not errors:
                raise
            raise CommandError(e.cmd, e.returncode, e.stderr,
                               detail=f"recent ovs-vswitchd warnings/errors:\n{errors}") from None

    def vsctl(self, *args: str, timeout: float = 30) -> str:
        return self._run(["ovs-vsctl", f"--db=unix:{self.path('db.sock')}",
                          f"--timeout={int(timeout)}", *args], timeout=timeout + 2)

    def ofctl(self, *args: str, timeout: float = 30) -> str:
        return self._run(["ovs-ofctl", "-O", "OpenFlow13", *args], timeout=timeout)

    def appctl(self, *args: str, timeout: float = 30) -> str:
        """`ovs-appctl ARGS` aimed at ovs-vswitchd (pass `-t ovsdb-server` for the other)."""
        return self._run(["ovs-appctl", *args], timeout=timeout)

    def log_errors(self, lines: int = 10) -> str:
        """The last WARN/ERR/EMER lines of ovs-vswitchd's log."""
        try:
            with open(self.path("ovs-vswitchd.log")) as f:
                bad = [line.rstrip() for line in f if re.search(r"\|(WARN|ERR|EMER)\|", line)]
        except OSError:
            return ""
        return "\n".join(bad[-lines:])

    # -- bridges and ports -------------------------------------------------------

    def add_bridge(self, name: str, *, dpid: int | None = None,
                   controller: str | Sequence[str] | None = None,
                   fail_mode: str | None = "secure", normal_flow: bool = True) -> None:
        """Add a netdev bridge speaking OpenFlow 1.3 (and 1.0, for plain ovs-ofctl).

        Controller targets are set in the same transaction that creates the bridge: a
        bridge that gets its first controller later has all its flows flushed. With
        `normal_flow`, `priority=0,actions=NORMAL` is added once the bridge exists.
        """
        settings = ["datapath_type=netdev", "protocols=OpenFlow10,OpenFlow13"]
        if dpid is not None:
            settings.append(f"other-config:datapath-id={dpid:016x}")
        if fail_mode:
            settings.append(f"fail_mode={fail_mode}")
        args = ["add-br", name, "--", "set", "bridge", name, *settings]
        targets = [controller] if isinstance(controller, str) else list(controller or [])
        if targets:
            args += ["--", "set-controller", name, *targets]
        self._bridges.add(name)
        self.vsctl(*args)
        if normal_flow:
            self.ofctl("add-flow", name, "priority=0,actions=NORMAL")

    def add_port(self, bridge: str, port: str, *, tag: int | None = None,
                 ofport: int | None = None, type: str | None = None,
                 options: dict | None = None) -> int:
        """Add `port` to `bridge` and return its OpenFlow port number."""
        args = ["add-port", bridge, port, *([f"tag={tag}"] if tag is not None else [])]
        iface = [f"type={type}"] if type else []
        if ofport is not None:
            iface.append(f"ofport_request={ofport}")
        iface += [f"options:{key}={value}" for key, value in (options or {}).items()]
        if iface:
            args += ["--", "set", "interface", port, *iface]
        if type == "internal":
            self._bridges.add(port)  # internal ports are taps too
        self.vsctl(*args)
        return self._wait_ofport(port)

    def _wait_ofport(self, port: str, timeout: float = 5) -> int:
        deadline = time.monotonic() + timeout
        while True:
            value = self.vsctl("get", "interface", port, "ofport").strip()
            if value not in ("[]", "-1", ""):
                return int(value)
            if value == "-1" or time.monotonic() >= deadline:
                error = self.vsctl("get", "interface", port, "error").strip()
                raise RuntimeError(f"{self.name}: port {port} got no ofport ({value}): {error}")
            time.sleep(0.02)

    def replug(self, bridge: str, port: str, ofport: int) -> None:
        """A port unplugged and plugged in again under OpenFlow number `ofport` (a VM
        moved, or its tap made again)."""
        self.vsctl("del-port", bridge, port)
        self.vsctl("add-port", bridge, port, "--", "set", "interface", port,
                   f"ofport_request={ofport}")

    def set_controller(self, bridge: str, *targets: str) -> None:
        """Replace the bridge's controller list; no targets removes them all.

        Beware: going from no active controller to one (or back) flushes all flows.
        """
        if targets:
            self.vsctl("set-controller", bridge, *targets)
        else:
            self.vsctl("del-controller", bridge)

    def bridges(self) -> list[str]:
        return self.vsctl("list-br").split()

    def dump_flows(self, bridge: str) -> list[str]:
        """Flows of `bridge`, sorted, without counters and ages, so dumps compare equal."""
        out = self.ofctl("dump-flows", "--no-names", bridge)
        flows = (VOLATILE.sub("", line).strip() for line in out.splitlines()
                 if "actions=" in line)
        return sorted(flows)

    def dpid(self, bridge: str) -> int:
        return int(self.vsctl("get", "bridge", bridge, "datapath_id").strip().strip('"'), 16)
