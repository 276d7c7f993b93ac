"""The lab library itself: private OVS, VMs on VLANs, and cleanup that leaves nothing.

Only one userspace OVS fits in a network namespace (see topologies/ovs.py), so the
test that uses the root namespace skips while another lab holds it; the others put
their OVS in a namespace of their own and can run next to anything.
"""
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from topologies.lab import Lab, missing_requirements
from topologies.netns import link_exists
from topologies.ovs import DATAPATH_TAP, vswitchd_pids_in

pytestmark = pytest.mark.skipif(missing_requirements() is not None,
                                reason=missing_requirements() or "")


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def assert_nothing_left(lab: Lab, pids: list[int], rundirs: list[str]) -> None:
    namespaces = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert not [ns for ns in namespaces if ns.startswith(lab.prefix)]
    assert not [link for link in root_links() if link.startswith(lab.prefix)]
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"pid {pid} still exists (not reaped?)"
    for rundir in rundirs:
        assert not os.path.exists(rundir)


def test_vlan_tags_separate_vms_and_close_leaves_nothing():
    if link_exists(DATAPATH_TAP) or vswitchd_pids_in(None):
        pytest.skip("another userspace OVS holds the root namespace (another lab running?)")
    lab = Lab()
    try:
        ovs = lab.ovs("hv")
        bridge = f"{lab.prefix}br"  # a tap in the root namespace: unique on the machine
        ovs.add_bridge(bridge, dpid=0x42)
        vm1 = lab.vm(ovs, bridge, "vm1", "10.0.0.1", tag=10)
        vm2 = lab.vm(ovs, bridge, "vm2", "10.0.0.2", tag=10)
        lab.vm(ovs, bridge, "vm3", "10.0.0.3", tag=11)
        assert ovs.dpid(bridge) == 0x42
        assert ovs.dump_flows(bridge) == ["cookie=0x0, table=0, priority=0 actions=NORMAL"]
        assert vm1.port_no and vm2.port_no and vm1.port_no != vm2.port_no
        assert vm1.exec("cat", "/sys/class/net/eth0/address").strip() == vm1.mac == "02:00:0a:00:00:01"
        with ThreadPoolExecutor() as pool:  # the failing ping takes 2 s: overlap them
            same_vlan = pool.submit(vm1.ping, "10.0.0.2", count=2, wait=1)
            other_vlan = pool.submit(vm1.ping, "10.0.0.3", count=2, wait=1)
        assert same_vlan.result()
        assert not other_vlan.result()
        pids, rundirs = list(ovs.pids.values()), [ovs.rundir]
        assert len(pids) == 2
    finally:
        lab.close()
    assert_nothing_left(lab, pids, rundirs)
    assert DATAPATH_TAP not in root_links()


def test_two_instances_with_same_bridge_name_run_side_by_side():
    with Lab() as lab:
        instances = []
        for hv in ("hv1", "hv2"):
            ovs = lab.ovs(hv, netns=lab.namespace(hv).name)
            ovs.add_bridge("br0")
            a = lab.vm(ovs, "br0", f"{hv}a", "10.0.0.1")
            lab.vm(ovs, "br0", f"{hv}b", "10.0.0.2")
            instances.append((ovs, a))
        for ovs, a in instances:
            assert a.ping("10.0.0.2", count=1, wait=1)
        pids = [pid for ovs, _ in instances for pid in ovs.pids.values()]
        rundirs = [ovs.rundir for ovs, _ in instances]
    assert_nothing_left(lab, pids, rundirs)


def test_failure_inside_lab_block_still_cleans_up():
    with pytest.raises(ZeroDivisionError):
        with Lab() as lab:
            ovs = lab.ovs("hv", netns=lab.namespace("hv").name)
            ovs.add_bridge("br0")
            lab.vm(ovs, "br0", "vm1", "10.0.0.1")
            pids, rundirs = list(ovs.pids.values()), [ovs.rundir]
            1 / 0
    assert_nothing_left(lab, pids, rundirs)


def test_second_userspace_ovs_in_one_namespace_is_refused(lab):
    hv = lab.namespace("hv").name
    lab.ovs("hv1", netns=hv).add_bridge("br0")
    with pytest.raises(RuntimeError, match="only one userspace OVS"):
        lab.ovs("hv2", netns=hv)
