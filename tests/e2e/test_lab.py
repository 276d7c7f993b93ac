"""The lab library itself: private OVS, VMs on VLANs, and cleanup that leaves nothing."""
import os
import subprocess

import pytest

from topologies.lab import Lab, missing_requirements
from topologies.netns import namespace_exists

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or "")


def links(netns=None):
    cmd = ["ip", *(["-n", netns] if netns else []), "-o", "link", "show"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def namespaces():
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def assert_nothing_left(prefix, pids, rundirs):
    assert not {ns for ns in namespaces() if ns.startswith(prefix)}
    assert not {link for link in links() if link.startswith(prefix)}
    assert "ovs-netdev" not in links()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"pid {pid} still exists (not reaped?)"
    for rundir in rundirs:
        assert not os.path.exists(rundir)


def test_vlan_tags_separate_vms_and_close_leaves_nothing():
    lab = Lab()
    try:
        ovs = lab.ovs("hv")
        ovs.add_bridge(f"{lab.prefix}br", dpid=0x42)
        vm1 = lab.vm(ovs, f"{lab.prefix}br", "vm1", "10.0.0.1", tag=10)
        vm2 = lab.vm(ovs, f"{lab.prefix}br", "vm2", "10.0.0.2", tag=10)
        lab.vm(ovs, f"{lab.prefix}br", "vm3", "10.0.0.3", tag=11)
        assert ovs.dpid(f"{lab.prefix}br") == 0x42
        assert ovs.dump_flows(f"{lab.prefix}br") == ["cookie=0x0, table=0, priority=0 actions=NORMAL"]
        assert vm1.port_no and vm2.port_no and vm1.port_no != vm2.port_no
        assert vm1.mac == "02:00:0a:00:00:01"
        assert vm1.ping("10.0.0.2", count=2, wait=1)
        assert not vm1.ping("10.0.0.3", count=2, wait=1)
        pids, rundirs = list(ovs.pids.values()), [ovs.rundir]
        assert len(pids) == 2
    finally:
        lab.close()
    assert_nothing_left(lab.prefix, pids, rundirs)


def test_two_instances_with_same_bridge_name_run_side_by_side():
    with Lab() as lab:
        pairs = []
        for hv in ("hv1", "hv2"):
            ovs = lab.ovs(hv, netns=lab.namespace(hv).name)
            ovs.add_bridge("br0")
            a = lab.vm(ovs, "br0", f"{hv}a", "10.0.0.1")
            lab.vm(ovs, "br0", f"{hv}b", "10.0.0.2")
            pairs.append((ovs, a))
        for ovs, a in pairs:
            assert a.ping("10.0.0.2", count=1, wait=1)
        pids = [pid for ovs, _ in pairs for pid in ovs.pids.values()]
        rundirs = [ovs.rundir for ovs, _ in pairs]
    assert_nothing_left(lab.prefix, pids, rundirs)


def test_failure_inside_lab_block_still_cleans_up():
    with pytest.raises(ZeroDivisionError):
        with Lab() as lab:
            ovs = lab.ovs("hv")
            ovs.add_bridge(f"{lab.prefix}br")
            lab.vm(ovs, f"{lab.prefix}br", "vm1", "10.0.0.1")
            pids, rundirs = list(ovs.pids.values()), [ovs.rundir]
            1 / 0
    assert_nothing_left(lab.prefix, pids, rundirs)
    assert not namespace_exists(f"{lab.prefix}-vm1")


def test_second_userspace_ovs_in_one_namespace_is_refused(lab):
    ovs = lab.ovs("hv1")
    ovs.add_bridge(f"{lab.prefix}br")
    with pytest.raises(RuntimeError, match="only one userspace OVS"):
        lab.ovs("hv2")
