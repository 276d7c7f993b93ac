"""Brings a `Topology` up on this machine and takes it down again.

Everything an instance creates is findable without any memory of having created it, so
`down` works even after `up` crashed half-way:
* every namespace is called `INSTANCE-HOST` or `INSTANCE-NODE`;
* every file, OVS run dir, log and pidfile lives under `/run/ryu-probe/INSTANCE/`;
* every process started outside OVS writes `NAME.pid` there as "PID STARTTIME", so a
  recycled pid is never killed.
Each hypervisor's OVS lives in its own namespace, so instances never collide. Its probed
bridges reach the controller (the probe app, on the root namespace's loopback) through a
unix socket in the OVS run dir, relayed by socat to the controller's TCP address: no
address is ever added to the root namespace. A `passive` bridge gets no controller
target: it listens on a unix socket, relayed from a TCP port on 127.0.0.1 that the app
dials (state `switch_addresses`).

A topology with `ovn` commands gets its own OVN: NB and SB ovsdb-servers and ovn-northd
in the root namespace (unix sockets only, files `ovn-*` in the instance's dir), and on
each `ovn_chassis` host an ovn-controller on that host's OVS, which creates br-int.

An interface with an `ip6` gets IPv6 back (veths start without it), quietly
(netns.QUIET_IPV6), and its address `nodad`; a node whose commands turned IPv4
forwarding on forwards IPv6 too.
"""
import concurrent.futures
import contextlib
import fcntl
import importlib
import importlib.util
import ipaddress
import json
import os
import pkgutil
import re
import shutil
import subprocess
import time
import zlib
from dataclasses import asdict, dataclass

from topologies import nets
from topologies.controller import RYU_MANAGER, free_port, listening
from topologies.model import OVN, Bridge, Host, Node, Probe, Run, Topology
from topologies.netns import (Namespace, disable_tx_checksum, enable_ipv6, iproute, mac_for_ip,
                              netns_cmd, run, sysctl, veth_pair)
from topologies.ovs import OvsInstance, pid_dead, terminate

RUN_ROOT = os.environ.get('RYU_PROBE_RUN_DIR', '/run/ryu-probe')
DEFAULT_CONTROLLER = 'tcp:127.0.0.1:6653'
NAME = re.compile(r'^[a-z][a-z0-9]{0,11}$')
DHCLIENT_SCRIPT = os.path.join(os.path.dirname(__file__), 'dhclient-script.sh')
OVN_SCHEMAS = {'nb': '/usr/share/ovn/ovn-nb.ovsschema', 'sb': '/usr/share/ovn/ovn-sb.ovsschema'}
OVN_BRIDGE = 'br-int'          # the integration bridge ovn-controller creates
OVN_CENTRAL = ('ovn-nb', 'ovn-sb', 'ovn-northd')   # their pidfiles: NAME.pid


# The kernel's ARP table, and its limits, are shared by every namespace on the machine:
# 50 VMs talking to each other need 2,450 entries, and past gc_thresh3 (1,024 by default)
# the kernel drops packets ("neighbor table overflow"). Topologies raise them (never lower).
NEIGHBOUR_LIMITS = {'gc_thresh1': 8192, 'gc_thresh2': 32768, 'gc_thresh3': 65536}


def raise_neighbour_limits() -> None:
    for name, wanted in NEIGHBOUR_LIMITS.items():
        for family in ('ipv4', 'ipv6'):
            path = '/proc/sys/net/%s/neigh/default/%s' % (family, name)
            with open(path) as f:
                if int(f.read()) >= wanted:
                    continue
            with open(path, 'w') as f:
                f.write(str(wanted))


class TopologyError(RuntimeError):
    """A topology could not come up; the message names the step that failed."""


# --- finding topologies -------------------------------------------------------------

def names() -> list[str]:
    """The built-in topologies (modules of topologies/nets)."""
    return sorted(m.name for m in pkgutil.iter_modules(nets.__path__))


def load(name: str) -> Topology:
    """A built-in topology by name, or the TOPOLOGY of a .py file given by path."""
    if name.endswith('.py'):
        spec = importlib.util.spec_from_file_location('user_topology', name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    elif name in names():
        module = importlib.import_module('topologies.nets.' + name)
    else:
        raise TopologyError('unknown topology %r; known: %s' % (name, ', '.join(names())))
    return module.TOPOLOGY


# --- processes we start -------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def spawn(pidfile: str, argv: list[str], netns: str | None = None, log: str | None = None,
          env: dict | None = None) -> int:
    """Start a long-running process and record it in `pidfile`."""
    out = open(log or os.devnull, 'ab')
    proc = subprocess.Popen(netns_cmd(argv, netns), stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    out.close()
    with open(pidfile, 'w') as f:
        f.write('%d %s\n' % (proc.pid, _start_time(proc.pid)))
    return proc.pid


def kill_pidfile(pidfile: str) -> None:
    """Stop the process a pidfile of ours names, if it is still that process."""
    try:
        with open(pidfile) as f:
            fields = f.read().split()
    except OSError:
        return
    if not fields or not fields[0].isdigit():
        return
    pid = int(fields[0])
    if len(fields) > 1 and _start_time(pid) != fields[1]:
        return   # gone, and the pid is someone else's now
    terminate(pid, grace=0.0)


def _pidfile_pid(path: str) -> int | None:
    """The pid in a complete pidfile (a number and a newline), else None."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    return int(text) if text.endswith('\n') and text.strip().isdigit() else None


def wait_for(check, what: str, timeout: float = 10.0, every: float = 0.02):
    """check()'s first true value, asked every `every` s (TopologyError after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TopologyError('timed out waiting for ' + what)
        time.sleep(every)


def ovn_env(base: str, rundir: str | None = None) -> dict:
    """ovn-nbctl/ovn-sbctl reach the instance's databases (in `base`); ovn-appctl -t NAME
    finds NAME's pidfile and socket in `rundir` (a chassis' OVS run dir)."""
    return dict(os.environ, OVN_NB_DB='unix:' + os.path.join(base, 'ovn-nb.sock'),
                OVN_SB_DB='unix:' + os.path.join(base, 'ovn-sb.sock'), OVN_RUNDIR=rundir or base)


def host_env(base: str, ovs: OvsInstance) -> dict:
    """What a command on a host runs with: ovs-* reach its OVS, ovn-* the instance's OVN."""
    return dict(ovs.env(), **ovn_env(base, ovs.rundir))


def _ovsdb_list(value) -> list:
    """An OVSDB JSON value as a list: ["set", [...]] or a single atom (["uuid", U] -> U)."""
    items = value[1] if isinstance(value, list) and value[0] == 'set' else [value]
    return [item[1] if isinstance(item, list) else item for item in items]


# --- a running instance -------------------------------------------------------------

@dataclass
class VmInfo:
    name: str
    host: str
    bridge: str
    dpid: int | None
    port_no: int
    port_name: str
    mac: str
    ip: str                 # without prefix
    ip6: str | None = None  # IPv6, without prefix; None: IPv4 only


class Network:
    """A topology that is up: what `show` prints and what tests probe."""

    def __init__(self, instance: str, state: dict):
        self.instance, self.state = instance, state
        self.topology = load(state['topology'])
        self.dir = os.path.join(RUN_ROOT, instance)

    @classmethod
    def load(cls, instance: str) -> 'Network':
        try:
            with open(os.path.join(RUN_ROOT, instance, 'state.json')) as f:
                return cls(instance, json.load(f))
        except FileNotFoundError:
            raise TopologyError('%s is not up' % instance) from None

    def netns(self, where: str) -> str:
        return '%s-%s' % (self.instance, where)

    def ovs(self, host: str) -> OvsInstance:
        return OvsInstance.attach(os.path.join(self.dir, host), self.netns(host))

    def run(self, where: str, argv: list[str], check: bool = True, timeout: float = 30) -> str:
        """A command in a host's namespace (with its OVS), in a node's, or at OVN."""
        if where == OVN:
            return run(argv, check=check, timeout=timeout, env=ovn_env(self.dir))
        env = host_env(self.dir, self.ovs(where)) if where in self.state['hosts'] else None
        return run(argv, netns=self.netns(where), check=check, timeout=timeout, env=env)

    def ping(self, src: str, address: str, count: int = 3) -> str:
        """What the tenant's own ping from `src` to `address` (IPv4 or IPv6) says:
        'reachable' (every echo answered), 'unreachable' (none; or no route at all) or
        'partial'. The truth every verdict is checked against."""
        output = self.run(src, ['ping', '-n', '-q', '-c', str(count), '-i', '0.2', '-W', '1',
                                address], check=False, timeout=30)
        found = re.search(r'(\d+) received', output)
        received = int(found.group(1)) if found else 0
        return {count: 'reachable', 0: 'unreachable'}.get(received, 'partial')

    def vms(self) -> dict[str, VmInfo]:
        return {name: VmInfo(**vm) for name, vm in self.state['vms'].items()}

    def switch_addresses(self) -> list[str]:
        """Where the app dials the passive bridges: `--ofp-switch-address-list`."""
        return list(self.state.get('switch_addresses', {}).values())

    def probed_bridges(self) -> list[tuple[str, str, int]]:
        return [(host, bridge, dpid) for host, bridges in self.state['hosts'].items()
                for bridge, (dpid, probed) in bridges.items() if probed]

    def body(self, probe: Probe, family: int | None = None, **extra) -> dict:
        """The POST /probe/probes body for a probe of this topology: between the two VMs'
        addresses of the probe's IP version, or of `family` (4 or 6) if given."""
        family = probe.family if family is None else family
        if family not in (4, 6):
            raise ValueError('family %r: 4 or 6' % (family,))
        src, dst = self.state['vms'][probe.src], self.state['vms'][probe.dst]
        key = 'ip' if family == 4 else 'ip6'
        for vm in (src, dst) if family == 6 else ():
            if not vm.get(key):
                raise TopologyError('%s has no IPv%d address in %s' % (vm['name'], family,
                                                                     self.topology.name))
        dst_mac = dst['mac']
        if probe.via:
            dst_mac = _next_hop(self.state['next_hops'][probe.via], src, src[key])
        return dict(dpid='%016x' % src['dpid'], in_port=src['port_no'], src_mac=src['mac'],
                    src_ip=src[key], dst_mac=dst_mac, dst_ip=dst[key], **extra)


def _next_hop(hops: dict[str, str], src: dict, address: str | None = None) -> str:
    """The MAC of the via node's interface on the subnet of the source's `address` (its
    IPv4 one by default), else on its bridge (a router can have several interfaces on
    one bridge, on different VLANs)."""
    address = address or src['ip']
    for where, mac in hops.items():
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(where):
                return mac
        except (TypeError, ValueError):
            pass   # a HOST/BRIDGE key, or a source without an address
    return hops[src['host'] + '/' + src['bridge']]


def _ipv6_route(route: str) -> bool:
    """Whether `ip route add ROUTE` is an IPv6 route: it names an IPv6 address or prefix."""
    for word in route.split():
        try:
            if ipaddress.ip_network(word, strict=False).version == 6:
                return True
        except ValueError:
            pass
    return False


# --- up and down --------------------------------------------------------------------

@contextlib.contextmanager
def _locked(instance: str):
    """One up or down at a time, machine-wide (a down racing an up of the same instance
    would orphan the daemons the up starts after down looked). One lock file in all."""
    if not NAME.match(instance):
        raise TopologyError('instance name %r: use 1-12 lowercase letters and digits' % instance)
    os.makedirs(RUN_ROOT, exist_ok=True)
    with open(os.path.join(RUN_ROOT, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(topology: Topology, controller: str | None = DEFAULT_CONTROLLER,
       faults: tuple[str, ...] = (), instance: str | None = None) -> Network:
    """Bring the topology up (idempotent: an identical instance that is up is kept)."""
    instance = instance or topology.name
    with _locked(instance):
        return _up(topology, controller, faults, instance)


def _up(topology: Topology, controller: str | None, faults: tuple[str, ...],
        instance: str) -> Network:
    unknown = sorted(set(faults) - set(topology.faults))
    if unknown:
        raise TopologyError('unknown fault %s for %s; known: %s' % (
            ', '.join(unknown), topology.name, ', '.join(sorted(topology.faults)) or 'none'))
    wanted = {'topology': topology.name, 'controller': controller, 'faults': sorted(faults)}
    try:
        network = Network.load(instance)
        if {k: network.state.get(k) for k in wanted} == wanted and _alive(network):
            return network
    except TopologyError:
        pass
    _down(instance)
    builder = _Builder(topology, instance, controller)
    try:
        builder.build(faults)
    except BaseException as error:
        _down(instance)
        if isinstance(error, TopologyError):
            raise
        raise TopologyError('%s: step "%s" failed: %s' % (instance, builder.step, error)) from error
    state = dict(wanted, hosts=builder.hosts_state, vms=builder.vms,
                 next_hops=builder.next_hops, faucets=builder.faucets,
                 switch_addresses=builder.switch_addresses)
    with open(os.path.join(builder.dir, 'state.json'), 'w') as f:
        json.dump(state, f, indent=1)
    return Network(instance, state)


def _alive(network: Network) -> bool:
    central = [os.path.join(network.dir, name + '.pid') for name in OVN_CENTRAL]
    return (all(network.ovs(host).running for host in network.state['hosts'])
            and all(_pid_alive(pidfile) for pidfile in central if os.path.exists(pidfile)))


def _pid_alive(pidfile: str) -> bool:
    with open(pidfile) as f:
        pid, start = f.read().split()
    return _start_time(int(pid)) == start and not pid_dead(int(pid))


def down(instance: str) -> None:
    """Remove everything of the instance: OVS, processes, namespaces, files. Idempotent."""
    with _locked(instance):
        _down(instance)


def _down(instance: str) -> None:
    base = os.path.join(RUN_ROOT, instance)
    if os.path.isdir(base):
        entries = sorted(os.listdir(base))
        hosts = [e for e in entries if os.path.isdir(os.path.join(base, e))]
        # Each OVS takes ~0.1 s to tear its datapath down; they are independent.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda host: OvsInstance.attach(
                os.path.join(base, host), '%s-%s' % (instance, host)).stop(), hosts))
        for entry in entries:
            if entry.endswith('.pid'):
                kill_pidfile(os.path.join(base, entry))
    for ns in run(['ip', 'netns', 'list']).splitlines():
        name = ns.split()[0] if ns.strip() else ''
        if name.startswith(instance + '-'):
            Namespace(name).delete()
    shutil.rmtree(base, ignore_errors=True)


class _Builder:
    """Builds one instance step by step; `step` names what it is doing."""

    def __init__(self, topology: Topology, instance: str, controller: str | None):
        self.topology, self.instance, self.controller = topology, instance, controller
        self.dir = os.path.join(RUN_ROOT, instance)
        self.step = 'start'
        self.ovs: dict[str, OvsInstance] = {}
        self.hosts_state: dict[str, dict] = {}
        self.vms: dict[str, dict] = {}
        self.next_hops: dict[str, dict[str, str]] = dict(topology.next_hops)
        self.faucets: dict[str, dict] = {}
        self.switch_addresses: dict[str, str] = {}     # HOST/BRIDGE -> IP:PORT, passive bridges
        self.bridges = 0

    def netns(self, where: str) -> str:
        return '%s-%s' % (self.instance, where)

    def dpid(self, bridge: Bridge) -> int:
        """The bridge's own number under a prefix of the instance's: instances up at
        once, on one controller, never share a dpid."""
        self.bridges += 1
        return zlib.crc32(self.instance.encode()) << 16 | (bridge.dpid or self.bridges)

    def run(self, command: Run) -> str:
        if command.where == OVN:
            return run(command.argv, env=ovn_env(self.dir))
        ovs = self.ovs.get(command.where)
        env = host_env(self.dir, ovs) if ovs else None
        return run(command.argv, netns=self.netns(command.where), env=env)

    def build(self, faults) -> None:
        os.makedirs(self.dir)
        raise_neighbour_limits()
        topo = self.topology
        if topo.ovn:
            self._ovn_central()
        for host in topo.hosts:
            self.step = 'host %s' % host.name
            self._host(host)
        for i, link in enumerate(topo.links):
            self.step = 'link %s <-> %s' % (link.a, link.b)
            self._link(i, link)
        for node in topo.nodes:
            self.step = 'node %s' % node.name
            self._node(node)
        for host in topo.hosts:
            for bridge in host.bridges:
                if bridge.flows is not None:
                    self.step = 'flows of %s/%s' % (host.name, bridge.name)
                    self._flows(host.name, bridge)
        for host in topo.hosts:
            for bridge in host.bridges:
                if bridge.faucet:
                    self.step = 'FAUCET of %s/%s' % (host.name, bridge.name)
                    self._faucet(host.name, bridge)
        for node in topo.nodes:
            for i, argv in enumerate(node.daemons):
                self.step = 'daemon %s of %s' % (argv[0], node.name)
                spawn(os.path.join(self.dir, '%s-daemon%d.pid' % (node.name, i)), argv,
                      self.netns(node.name), os.path.join(self.dir, '%s-daemon%d.log' % (node.name, i)))
        for node in topo.nodes:
            for iface in node.ifaces:
                if iface.dhcp:
                    self.step = 'DHCP lease of %s' % node.name
                    self._dhcp(node, iface)
        for command in topo.setup:
            self.step = 'setup in %s: %s' % (command.where, ' '.join(command.argv))
            self.run(command)
        for name in faults:
            for command in topo.faults[name].commands:
                self.step = 'fault %s: %s' % (name, ' '.join(command.argv))
                self.run(command)
        for host in topo.hosts:
            for bridge in host.bridges:
                if bridge.faucet and faults:
                    self.step = 'FAUCET of %s/%s: reload with %s' % (host.name, bridge.name,
                                                                   ', '.join(faults))
                    self._faucet_reload(host.name, bridge, frozenset(faults))

    def _host(self, host: Host) -> None:
        ns = Namespace(self.netns(host.name)).create()
        ovs = self.ovs[host.name] = OvsInstance(ns.name, netns=ns.name,
                                                rundir=os.path.join(self.dir, host.name))
        ovs.start()
        self.hosts_state[host.name] = {}
        for bridge in host.bridges:
            self.step = 'bridge %s/%s' % (host.name, bridge.name)
            targets = []
            if bridge.probed and bridge.passive:
                targets.append(self._passive(ovs, host.name, bridge.name))
            elif bridge.probed and self.controller:
                targets.append(self._relay(ovs, 'probe', self.controller))
            if bridge.other_controller:
                targets.append(self._other_controller(ovs, host.name, bridge.other_controller))
            if host.ovn_chassis and bridge.name == OVN_BRIDGE:
                self._ovn_controller(host, ovs)
                # At once: ovn-controller dials br-int.mgmt a second after creating it. A
                # later change of dpid closes its connections; it redials in 2 s, and
                # the flows stay as they were.
                ovs.vsctl('set', 'bridge', bridge.name,
                          'other-config:datapath-id=%016x' % self.dpid(bridge))
                if targets:   # only passive ones: a first active target flushes OVN's flows
                    ovs.set_controller(bridge.name, *targets)
            else:
                ovs.add_bridge(bridge.name, dpid=self.dpid(bridge), controller=targets,
                               normal_flow=bridge.flows is None)
            if bridge.ip:
                iproute('addr', 'add', bridge.ip, 'dev', bridge.name, netns=ns.name)
                iproute('link', 'set', bridge.name, 'up', netns=ns.name)
            for port in bridge.ports:
                ovs.add_port(bridge.name, port.name, tag=port.tag, type=port.type or None,
                             options=port.options)
            self.hosts_state[host.name][bridge.name] = [ovs.dpid(bridge.name), bridge.probed]

    def _relay(self, ovs: OvsInstance, name: str, target: str) -> str:
        """A unix socket in the OVS run dir that socat relays to a TCP controller."""
        sock = ovs.path(name + '.sock')
        if not os.path.exists(sock):
            proto, addr, port = target.split(':')
            if proto != 'tcp':
                raise TopologyError('controller %r: only tcp:IP:PORT is supported' % target)
            spawn(os.path.join(self.dir, 'relay-%s-%s.pid' % (os.path.basename(ovs.rundir), name)),
                  ['socat', 'UNIX-LISTEN:%s,fork,unlink-early' % sock, 'TCP:%s:%s,nodelay' % (addr, port)])
            wait_for(lambda: os.path.exists(sock), 'the relay socket ' + sock)
        return 'unix:' + sock

    def _passive(self, ovs: OvsInstance, host: str, bridge: str) -> str:
        """A passive listener for the app to dial: a unix socket in the OVS run dir (the
        target returned), relayed from a free TCP port on 127.0.0.1 (recorded)."""
        sock, port = ovs.path(bridge + '.probe'), free_port()
        spawn(os.path.join(self.dir, 'relay-%s-%s.pid' % (host, bridge)),
              ['socat', 'TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,nodelay' % port,
               'UNIX-CONNECT:' + sock])
        wait_for(lambda: listening(port), 'the relay for %s/%s to listen on %d' % (host, bridge, port))
        self.switch_addresses['%s/%s' % (host, bridge)] = '127.0.0.1:%d' % port
        return 'punix:' + sock

    def _ovn_central(self) -> None:
        """NB and SB ovsdb-servers, ovn-northd, then the topology's logical network."""
        def path(name: str) -> str:
            return os.path.join(self.dir, name)
        for db, schema in OVN_SCHEMAS.items():
            self.step = 'OVN %s database' % db.upper()
            name = 'ovn-' + db
            run(['ovsdb-tool', 'create', path(name + '.db'), schema])
            spawn(path(name + '.pid'), ['ovsdb-server', path(name + '.db'),
                                        '--remote=punix:' + path(name + '.sock'),
                                        '--unixctl=' + path(name + '.ctl')],
                  log=path(name + '.log'))
            wait_for(lambda: os.path.exists(path(name + '.sock')), 'the socket of ' + name)
        env = ovn_env(self.dir)
        self.step = 'ovn-northd'
        spawn(path('ovn-northd.pid'), ['ovn-northd', '--ovnnb-db=' + env['OVN_NB_DB'],
                                       '--ovnsb-db=' + env['OVN_SB_DB'],
                                       '--unixctl=' + path('ovn-northd.ctl')],
              log=path('ovn-northd.log'), env=env)
        run(['ovn-nbctl', 'init'], env=env)
        for argv in self.topology.ovn:
            self.step = 'ovn-nbctl ' + ' '.join(argv)
            run(['ovn-nbctl', *argv], env=env)
        self._ovn_routers(env)

    def _ovn_routers(self, env: dict) -> None:
        """Each logical router is a `via`: its port's MAC on each of its networks."""
        def table(name: str) -> list[dict]:
            out = json.loads(run(['ovn-nbctl', '--format=json', 'list', name], env=env))
            return [dict(zip(out['headings'], row)) for row in out['data']]
        ports = {_ovsdb_list(port['_uuid'])[0]: port for port in table('Logical_Router_Port')}
        for router in table('Logical_Router'):
            hops = self.next_hops.setdefault(router['name'], {})
            for uuid in _ovsdb_list(router['ports']):
                for network in _ovsdb_list(ports[uuid]['networks']):
                    hops[str(ipaddress.ip_interface(network).network)] = ports[uuid]['mac']

    def _ovn_controller(self, host: Host, ovs: OvsInstance) -> None:
        """ovn-controller on the host's OVS; returns once it has created br-int."""
        self.step = 'ovn-controller on %s' % host.name
        encap = next(bridge.ip for bridge in host.bridges if bridge.ip).split('/')[0]
        settings = {'system-id': host.name, 'ovn-remote': ovn_env(self.dir)['OVN_SB_DB'],
                    'ovn-encap-type': 'geneve', 'ovn-encap-ip': encap,
                    'ovn-bridge-datapath-type': 'netdev'}
        ovs.vsctl('set', 'open_vswitch', '.',
                  *['external_ids:%s=%s' % item for item in settings.items()])
        spawn(os.path.join(self.dir, 'ovn-controller-%s.pid' % host.name),
              ['ovn-controller', 'unix:' + ovs.path('db.sock'), '--pidfile'],
              self.netns(host.name), ovs.path('ovn-controller.log'),
              env=host_env(self.dir, ovs))
        wait_for(lambda: OVN_BRIDGE in ovs.bridges(), 'ovn-controller to create ' + OVN_BRIDGE)

    def _other_controller(self, ovs: OvsInstance, host: str, app: str) -> str:
        """Another controller in its own ryu-manager (root namespace, loopback)."""
        port = free_port()
        spawn(os.path.join(self.dir, 'other-%s.pid' % host),
              [RYU_MANAGER, '--ofp-listen-host', '127.0.0.1', '--ofp-tcp-listen-port', str(port),
               app], log=os.path.join(self.dir, 'other-%s.log' % host))
        wait_for(lambda: listening(port), '%s to listen on %d' % (app, port), 20)
        return self._relay(ovs, 'other', 'tcp:127.0.0.1:%d' % port)

    def _faucet(self, host: str, bridge: Bridge) -> None:
        """FAUCET started with the bridge's real dpid and port numbers, then added to its
        controllers (it wipes the bridge when it connects), and waited for."""
        from topologies.faucet import Faucet   # it imports this module
        ovs, place = self.ovs[host], '%s/%s' % (host, bridge.name)
        faucet = Faucet.create(self.dir, place, ovs.dpid(bridge.name))
        self.faucets[place] = asdict(faucet)
        faucet.write(bridge.faucet(faucet.dpid, self._port_numbers(host, bridge.name),
                                   frozenset()))
        faucet.start()
        targets = ovs.vsctl('get-controller', bridge.name).split()
        ovs.set_controller(bridge.name, *targets,
                           self._relay(ovs, 'faucet-' + bridge.name,
                                       'tcp:127.0.0.1:%d' % faucet.of_port))
        faucet.wait_running()

    def _faucet_reload(self, host: str, bridge: Bridge, faults: frozenset[str]) -> None:
        from topologies.faucet import Faucet
        faucet = Faucet(**self.faucets['%s/%s' % (host, bridge.name)])
        ports = self._port_numbers(host, bridge.name)
        config = bridge.faucet(faucet.dpid, ports, faults)
        if config != bridge.faucet(faucet.dpid, ports, frozenset()):
            faucet.reload(config)

    def _port_numbers(self, host: str, bridge: str) -> dict[str, int]:
        ovs = self.ovs[host]
        return {port: int(ovs.vsctl('get', 'interface', port, 'ofport'))
                for port in ovs.vsctl('list-ports', bridge).split()}

    def _link(self, index: int, link) -> None:
        (host_a, bridge_a), (host_b, bridge_b) = link.a.split('/'), link.b.split('/')
        name_a, name_b = ('to-%s' % host_b)[:15], ('to-%s' % host_a)[:15]
        if host_a == host_b:
            name_a, name_b = 'l%d-%s' % (index, bridge_b), 'l%d-%s' % (index, bridge_a)
            name_a, name_b = name_a[:15], name_b[:15]
        veth_pair(name_a, name_b, self.netns(host_a), self.netns(host_b))
        self.ovs[host_a].add_port(bridge_a, name_a, tag=link.tag)
        self.ovs[host_b].add_port(bridge_b, name_b, tag=link.tag)

    def _node(self, node: Node) -> None:
        ns = Namespace(self.netns(node.name)).create()
        for i, iface in enumerate(node.ifaces):
            host, bridge = iface.bridge.split('/')
            host_if = (node.name if i == 0 else '%s-%s' % (node.name, iface.name))[:15]
            address = iface.ip.split('/')[0] if iface.ip else None
            mac = iface.mac or (mac_for_ip(address) if address else None)
            veth_pair(host_if, iface.name, self.netns(host), ns.name)
            if mac:
                iproute('link', 'set', iface.name, 'address', mac, netns=ns.name)
            mac = mac or run(['cat', '/sys/class/net/%s/address' % iface.name], netns=ns.name).strip()
            disable_tx_checksum(iface.name, ns.name)
            if iface.ip and not iface.dhcp:
                iproute('addr', 'add', iface.ip, 'dev', iface.name, netns=ns.name)
            if iface.ip6:
                enable_ipv6(iface.name, ns.name)
                iproute('-6', 'addr', 'add', iface.ip6, 'dev', iface.name, 'nodad', netns=ns.name)
            port_no = self.ovs[host].add_port(bridge, host_if, tag=iface.tag)
            hops = self.next_hops.setdefault(node.name, {})
            hops[iface.bridge] = mac
            for cidr in (iface.ip, iface.ip6):
                if cidr:
                    hops[str(ipaddress.ip_interface(cidr).network)] = mac
            if node.vm and i == 0:
                dpid, _ = self.hosts_state[host][bridge]
                address6 = str(ipaddress.ip_interface(iface.ip6).ip) if iface.ip6 else None
                self.vms[node.name] = asdict(VmInfo(node.name, host, bridge, dpid, port_no,
                                                    host_if, mac, address, address6))
        for route in node.routes:
            iproute(*(['-6'] if _ipv6_route(route) else []), 'route', 'add', *route.split(),
                    netns=ns.name)
        for argv in node.commands:
            run(argv, netns=ns.name)
        # a router forwards IPv6 too: where its commands turned IPv4 forwarding on
        if any(iface.ip6 for iface in node.ifaces) and sysctl('net.ipv4.ip_forward',
                                                              netns=ns.name) == '1':
            sysctl('net.ipv6.conf.all.forwarding', '1', ns.name)

    def _flows(self, host: str, bridge: Bridge) -> None:
        path = os.path.join(self.dir, host, '%s.flows' % bridge.name)
        with open(path, 'w') as f:
            f.write('\n'.join(bridge.flows) + '\n')
        self.ovs[host].ofctl('add-flows', bridge.name, path)

    def _dhcp(self, node: Node, iface) -> None:
        base = os.path.join(self.dir, '%s-dhclient' % node.name)
        run(['dhclient', '-1', '-sf', DHCLIENT_SCRIPT, '-pf', base + '.pid', '-lf',
             base + '.leases', iface.name], netns=self.netns(node.name), timeout=30)
        # dhclient's own pidfile, written by its background child after the parent has
        # exited: wait for it, then add the start time.
        wait_for(lambda: _pidfile_pid(base + '.pid') is not None,
                 'the pidfile of dhclient in ' + node.name, 5)
        pid = _pidfile_pid(base + '.pid')
        with open(base + '.pid', 'w') as f:
            f.write('%d %s\n' % (pid, _start_time(pid)))
        got = run(['ip', '-4', '-o', 'addr', 'show', 'dev', iface.name], netns=self.netns(node.name))
        if iface.ip and iface.ip not in got:
            raise TopologyError('%s: DHCP gave %r, expected %s' % (node.name, got.strip(), iface.ip))
