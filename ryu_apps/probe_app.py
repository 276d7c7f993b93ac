"""ryu-probe: is one tenant VM reachable from another? Asked without logging into either.

    ryu-manager ryu_apps/probe_app.py          (REST on 127.0.0.1:8080, OpenFlow on :6653)

The app is a controller of each bridge (OpenFlow 1.3). For a probe it
  1. installs a catch flow on the source VM's bridge that copies dyed echo replies
     from the destination to us and lets them go on through the bridge's pipeline;
  2. injects dyed ICMP echo requests with a PacketOut whose in_port is the source VM's
     port and whose action submits them to table 0, so they meet exactly what the
     VM's own packets meet (VLAN tags, multi-table pipelines, tunnels);
  3. matches the PacketIns against the probe's dye, sequence numbers and secret token,
     and serves the verdict, loss and round-trip times over REST (rest.py).

This module is only glue: it turns Ryu events into calls on the pure core
(probes.Prober, bridge.Bridge) with the time, and runs the core's timer. Only the
connection that holds a dpid (claims.py: a second one claiming it is checked, and
refused while the first is alive) reaches the core.
"""
from ryu_apps import eventlet_compat  # noqa: F401  (before ryu.app.wsgi is imported)

import time

from ryu import cfg
from ryu.app.wsgi import WSGIApplication
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3

from ryu_apps import tls
from ryu_apps.access import Access
from ryu_apps.bridge import Port
from ryu_apps.claims import Claims, Contest
from ryu_apps.monitors import Monitor, Monitors, MonitorSpec, Store
from ryu_apps.options import Settings
from ryu_apps.probes import RUNNING, Probe, ProbeError, ProbeRequest, Prober
from ryu_apps.rest import APP, ProbeController, parse_monitor

# Ryu's REST listens on every address by default; a tool that injects packets into
# tenant networks must not. An explicit --wsapi-host still wins.
cfg.CONF.set_default('wsapi_host', '127.0.0.1')
# Two rounds and a trace (which may queue behind others) at most; then the answer says
# "running" and the client polls.
WAIT_LIMIT = 120


def _peer(dp) -> str:
    """A connection's peer, as `host:port`."""
    address = dp.address
    return '%s:%s' % address[:2] if isinstance(address, tuple) else str(address)


def _port(ofp_port) -> Port:
    name = ofp_port.name
    return Port(ofp_port.port_no, name.decode(errors='replace') if isinstance(name, bytes)
                else name, ofp_port.hw_addr)


class ProbeApp(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    _CONTEXTS = {'wsgi': WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = Settings.from_conf()
        self.prober = Prober(self.settings, on_done=self._probe_done)
        self.access = Access.from_settings(self.settings)
        if bool(self.settings.api_cert) != bool(self.settings.api_key):
            raise ValueError('api_cert and api_key: give both, or neither')
        if self.settings.api_cert:
            tls.serve_rest_over_tls(self.settings.api_cert, self.settings.api_key)
        if cfg.CONF.ctl_privkey:
            tls.fix_openflow_tls()
        store = self.settings.monitors_file and Store(self.settings.monitors_file)
        offset = time.time() - time.monotonic()
        self.monitors = Monitors(self.prober, store or None, wall=lambda now: now + offset)
        if store:
            self._load_monitors(store)
        self.claims = Claims()
        self.dialled: set[tuple[str, int]] = set()
        self._wake = hub.Event()
        self._waiters: dict[str, hub.Event] = {}
        kwargs['wsgi'].register(ProbeController, {APP: self})

    def start(self):
        thread = super().start()
        self.threads.append(hub.spawn(self._timer_loop))
        return thread

    # --- used by the REST controller ------------------------------------------------

    def start_probe(self, request: ProbeRequest) -> Probe:
        return self.start_probes([request])[0]

    def start_probes(self, requests: list[ProbeRequest]) -> list[Probe]:
        probes = self.prober.start_all(requests, time.monotonic())
        self._wake.set()
        return probes

    def add_monitor(self, spec: MonitorSpec, replace: bool = False) -> Monitor:
        monitor = self.monitors.add(spec, time.monotonic(), replace)
        self.logger.info('monitor %s: %d pairs every %g s', spec.name, len(spec.targets),
                         spec.interval)
        self._wake.set()
        return monitor

    def remove_monitor(self, name: str) -> Monitor | None:
        monitor = self.monitors.remove(name, time.monotonic())
        if monitor is not None:
            self.logger.info('monitor %s removed', name)
        return monitor

    def _load_monitors(self, store: Store) -> None:
        """The monitors kept in the file; one that no longer validates is logged, not
        run, and kept in the file."""
        specs, invalid = [], []
        for definition in store.load():
            try:
                specs.append(parse_monitor(definition, self.settings, None))
            except ProbeError as error:
                self.logger.error('monitor in %s not loaded: %s', store.path, error)
                invalid.append(definition)
        self.monitors.load(specs, time.monotonic(), invalid)
        self.logger.info('%d monitors loaded from %s', len(specs), store.path)

    def dial(self, host: str, port: int) -> bool:
        """Connect out to a switch's passive listener, and keep reconnecting (as
        `--ofp-switch-address-list` does); False if it is dialled already."""
        if (host, port) in self.dialled:
            return False
        self.dialled.add((host, port))
        app_manager.lookup_service_brick('ofp_event').controller.spawn_client_loop((host, port))
        return True

    def cancel_probe(self, probe_id: str) -> Probe | None:
        return self.prober.cancel(probe_id, time.monotonic())

    def wait_probes(self, probes: list[Probe]) -> None:
        """Block this green thread until the probes have ended, or WAIT_LIMIT has passed
        (one deadline for all of them)."""
        until = time.monotonic() + WAIT_LIMIT
        for probe in probes:
            if probe.state == RUNNING and time.monotonic() < until:
                done = self._waiters[probe.id] = hub.Event()
                done.wait(until - time.monotonic())
                self._waiters.pop(probe.id, None)

    def _probe_done(self, probe: Probe) -> None:
        self.logger.debug('probe %s %s %s', probe.id, probe.state, probe.verdict)
        self.monitors.finished(probe, time.monotonic())
        done = self._waiters.get(probe.id)
        if done is not None:
            done.set()

    def _timer_loop(self):
        while True:
            self._wake.clear()
            try:
                now = time.monotonic()
                outcomes, claims_due = self.claims.tick(now)
                for outcome in outcomes:
                    self._claimed(outcome, now)
                deadlines = [self.monitors.tick(now), self.prober.tick(now), claims_due]
                deadline = min((d for d in deadlines if d is not None), default=None)
            except Exception:  # a bug must not stop every probe: log it and go on
                self.logger.exception('probe timer failed')
                deadline = time.monotonic() + 0.1
            self._wake.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # --- switch events --------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        dp, now = ev.datapath, time.monotonic()
        if ev.state == MAIN_DISPATCHER:
            claim = self.claims.claim(dp.id, dp, _peer(dp), now)
            if isinstance(claim, Contest):      # is the holder still there?
                holder = claim.holder.conn
                echo = holder.ofproto_parser.OFPEchoRequest(holder, data=b'ryu-probe claim')
                holder.set_xid(echo)
                claim.xid = echo.xid
                holder.send_msg(echo)
                self._wake.set()                # its deadline
            else:
                self._claimed(claim, now)
        else:
            for outcome in self.claims.gone(dp):
                if outcome.connect is None:
                    self.prober.disconnect(outcome.dpid, now)
                    self.logger.info('switch %016x disconnected (%s)', outcome.dpid, _peer(dp))
                self._claimed(outcome, now)

    def _claimed(self, outcome, now: float) -> None:
        """Do what claims.py decided: a connection takes the dpid over, one goes."""
        if outcome.connect is not None:
            dp = outcome.connect

            def send(msg):
                msg.datapath = dp
                dp.send_msg(msg)
            self.prober.connect(outcome.dpid, send, now)
            self.logger.info('switch %016x connected (%s)', outcome.dpid, _peer(dp))
        if outcome.close is not None:
            outcome.close.close()

    def _holds(self, msg) -> bool:
        return self.claims.holds(msg.datapath.id, msg.datapath)

    @set_ev_cls(ofp_event.EventOFPEchoReply, MAIN_DISPATCHER)
    def _echo_reply(self, ev):
        outcome = self.claims.answered(ev.msg.datapath, ev.msg.xid, time.monotonic())
        if outcome is not None:
            self._claimed(outcome, time.monotonic())

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev):
        if not self._holds(ev.msg):
            return
        bridge = self.prober.bridges.get(ev.msg.datapath.id)
        if bridge is not None:
            bridge.add_ports([_port(p) for p in ev.msg.body],
                             bool(ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        if not self._holds(ev.msg):
            return
        msg = ev.msg
        self.prober.port_status(msg.datapath.id, _port(msg.desc),
                                msg.reason == msg.datapath.ofproto.OFPPR_DELETE,
                                time.monotonic())
        self._wake.set()

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        if not self._holds(ev.msg):
            return
        self.prober.packet_in(ev.msg.datapath.id, ev.msg, time.monotonic())
        if self.prober.woken:     # an address resolved: its probe goes on now
            self.prober.woken = False
            self._wake.set()

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        if not self._holds(ev.msg):
            return
        self.prober.confirmed(ev.msg.datapath.id, ev.msg.xid, time.monotonic())
        self._wake.set()

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        if not self._holds(ev.msg):
            return
        msg = ev.msg
        self.prober.flow_stats(msg.datapath.id, msg.xid, msg.body,
                               bool(msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE),
                               time.monotonic())
        self._wake.set()

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        if not self._holds(ev.msg):
            return
        msg = ev.msg
        self.prober.removed(msg.datapath.id, msg.cookie, msg.reason, time.monotonic())
        self._wake.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev):
        if not self._holds(ev.msg):
            return
        msg = ev.msg
        reason = 'OpenFlow error type %s code %s' % (msg.type, msg.code)
        if self.prober.refused(msg.datapath.id, msg.xid, reason, time.monotonic()):
            self.logger.warning('switch %016x: %s (xid %d)', msg.datapath.id, reason, msg.xid)
