"""A Lab owns everything a test or demo builds, and takes it all down again.

    with Lab() as lab:
        ovs = lab.ovs("hv1")
        ovs.add_bridge("br0")
        vm1 = lab.vm(ovs, "br0", "vm1", "10.0.0.1", tag=10)
        ...

Every namespace and veth the lab creates starts with `lab.prefix` ("rp" + 4 hex
digits, unique per run), so parallel labs never collide and leftovers are easy to spot.
`close()` undoes everything in reverse order; a failing step is logged and the rest
still runs.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
from contextlib import ExitStack
from typing import Any, Callable

from topologies.netns import Namespace, Vm, add_vm, delete_vm
from topologies.ovs import OvsInstance

log = logging.getLogger(__name__)

REQUIRED_TOOLS = ("ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl",
                  "ovs-appctl", "ip", "sysctl", "ping")


def missing_requirements() -> str | None:
    """Why a lab cannot run here (not root, tools missing), or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and Open vSwitch)"
    missing = [tool for tool in REQUIRED_TOOLS if not shutil.which(tool)]
    if missing:
        return f"missing tools: {', '.join(missing)} (apt-get install openvswitch-switch iproute2 iputils-ping)"
    return None


def flows_report(instances) -> str:
    """`ovs-ofctl dump-flows` of every bridge of every running OVS instance, for a failed
    test's report: it never raises."""
    parts = []
    for ovs in instances:
        if not ovs.running:
            continue
        try:
            for bridge in ovs.bridges():
                flows = ovs.ofctl("dump-flows", bridge)
                parts.append(f"--- {ovs.name} ovs-ofctl dump-flows {bridge}\n{flows}")
        except Exception as e:
            parts.append(f"--- {ovs.name}: dump failed: {e}")
    return "\n".join(parts)


class LabCleanupError(RuntimeError):
    """Some teardown steps failed (each one was logged; all the others ran)."""


class Lab:
    """Registry of lab resources, torn down in reverse order by `close()`."""

    def __init__(self, prefix: str | None = None):
        self.prefix = prefix or "rp" + secrets.token_hex(2)
        self.instances: list[OvsInstance] = []
        self.vms: list[Vm] = []
        self.namespaces: list[Namespace] = []
        # Callables returning text to show when a test using this lab fails (an app's
        # log, say). The e2e conftest prints them after the flow dumps.
        self.on_failure: list[Callable[[], str]] = []
        self._stack = ExitStack()
        self._errors: list[str] = []

    def callback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run `fn(*args, **kwargs)` at close(), before whatever was registered earlier."""
        def guarded() -> None:
            try:
                fn(*args, **kwargs)
            except Exception as e:  # keep tearing down
                log.exception("lab %s: cleanup %r failed", self.prefix, fn)
                self._errors.append(f"{getattr(fn, '__qualname__', fn)}: {e}")
        self._stack.callback(guarded)

    def namespace(self, name: str) -> Namespace:
        """A new namespace called `PREFIX-name`, deleted at close()."""
        ns = Namespace(f"{self.prefix}-{name}")
        self.callback(ns.delete)
        ns.create()
        self.namespaces.append(ns)
        return ns

    def ovs(self, name: str, netns: str | None = None) -> OvsInstance:
        """A started private OVS, stopped at close(). One per namespace (see ovs.py):
        for a second instance pass `netns=lab.namespace(...).name`."""
        ovs = OvsInstance(f"{self.prefix}-{name}", netns=netns)
        self.callback(ovs.stop)
        ovs.start()
        self.instances.append(ovs)
        return ovs

    def vm(self, ovs: OvsInstance, bridge: str, name: str, ip: str, **kwargs: Any) -> Vm:
        """A VM (namespace `PREFIX-name`, host veth `PREFIX-name`) on `bridge`; kwargs go
        to `netns.add_vm` (prefix, mac, tag)."""
        vm = add_vm(ovs, bridge, name, ip, netns_prefix=f"{self.prefix}-", **kwargs)
        self.callback(delete_vm, vm, ovs)
        self.vms.append(vm)
        return vm

    def failure_report(self) -> str:
        """Flows of every bridge of every running instance, then the on_failure texts."""
        parts = [flows_report(self.instances)]
        for fn in self.on_failure:
            try:
                parts.append(fn())
            except Exception as e:
                parts.append(f"--- on_failure {fn!r} failed: {e}")
        return "\n".join(parts)

    def close(self, raise_errors: bool = True) -> None:
        """Tear everything down, newest first. Steps that fail are logged and skipped;
        afterwards LabCleanupError lists them (unless `raise_errors` is false)."""
        self._stack.close()
        self.instances.clear()
        self.vms.clear()
        self.namespaces.clear()
        errors, self._errors = self._errors, []
        if errors and raise_errors:
            raise LabCleanupError(f"lab {self.prefix}: cleanup failed: " + "; ".join(errors))

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Don't let a cleanup error hide the exception that ended the block.
        self.close(raise_errors=exc_type is None)
