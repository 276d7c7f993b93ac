"""GET /metrics: the monitors' pairs and the app's own counters, for Prometheus.

A collector reads the live state at each scrape (as exporters' custom collectors do), so
a deleted monitor's series are gone from the next scrape with nothing to unregister.
Names follow blackbox_exporter (`probe_success`) and smokeping_prober (sent/received
counters, an RTT histogram), prefixed `ryu_probe_`; a pair's labels are monitor, src, dst.
"""
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ryu_apps.monitors import RTT_BUCKETS, Monitors
from ryu_apps.probes import Prober, format_dpid

PAIR = ['monitor', 'src', 'dst', 'kind']
PROBE_STATES = ('started', 'done', 'error', 'cancelled')
# The core's counters (GET /probe/stats), each as ryu_probe_<name>_total.
COUNTERS = {
    'packet_outs': 'PacketOuts sent (probe packets, retransmissions, traces, hand-ons).',
    'packet_ins': 'PacketIns received from our flows.',
    'replies': 'Answers matched to a probe (echo replies, SYN-ACKs, offers...).',
    'late_replies': 'Echo replies that came after their echo was answered or lost.',
    'tenant_packet_ins': "PacketIns of tenant packets (with our mark, or copied, or taken).",
    'handed_on': "Tenant packets a catch took (one with our mark, or of tcp, udp, dhcp), sent on to their VM.",
    'trace_packet_ins': 'PacketIns of trace watches.',
    'flow_mods': 'FlowMods sent.',
    'flow_reads': 'Flow table reads.',
    'flows_lost': 'Our flows deleted by someone else.',
    'unmarked_rounds': 'Probe rounds repeated without the mark.',
    'second_rounds': 'Probe rounds of unmarked kinds repeated after a first with no answer.',
    'traces': 'Traces run to find where a path broke (or an ARP request went).',
}
CONTENT_TYPE = 'text/plain; version=0.0.4'


# A scrape of thousands of pairs takes a while: `pause()` after every PAUSE_EVERY pairs lets
# the app's other work (PacketIns, timers) run in between.
PAUSE_EVERY = 100


class Collector:
    def __init__(self, prober: Prober, monitors: Monitors, pause=lambda: None):
        self.prober, self.monitors, self.pause = prober, monitors, pause

    def collect(self):
        yield from self._pairs()
        yield from self._app()

    def _pairs(self):
        success = GaugeMetricFamily(
            'ryu_probe_success', 'Whether the last round succeeded (1) or not (0): icmp reachable or partial, '
            'tcp and udp open, arp and dhcp reachable.', labels=PAIR)
        failures = GaugeMetricFamily(
            'ryu_probe_consecutive_failures', 'Rounds in a row with no answer.', labels=PAIR)
        rtt = HistogramMetricFamily(
            'ryu_probe_rtt_seconds', 'Round-trip time of answered echoes.', labels=PAIR)
        sent = CounterMetricFamily(
            'ryu_probe_echoes_sent', 'Echo requests sent by monitor rounds.', labels=PAIR)
        received = CounterMetricFamily(
            'ryu_probe_echoes_received', 'Echo replies caught for monitor rounds.', labels=PAIR)
        last = GaugeMetricFamily(
            'ryu_probe_last_round_timestamp_seconds', 'When the last round ended (Unix time): '
            'a pair whose rounds stopped (its switch away) stops moving.', labels=PAIR)
        errors = CounterMetricFamily(
            'ryu_probe_errors', 'Rounds that ended in error (no verdict).', labels=PAIR)
        rounds = CounterMetricFamily(
            'ryu_probe_rounds', 'Rounds completed, by monitor.', labels=['monitor'])
        late = CounterMetricFamily(
            'ryu_probe_rounds_late', 'Rounds started late, by monitor.', labels=['monitor'])
        done = 0
        for monitor in list(self.monitors.monitors.values()):
            for pair in monitor.pairs:
                done += 1
                if done % PAUSE_EVERY == 0:
                    self.pause()
                labels = [monitor.name, pair.target.src, pair.target.dst, pair.target.kind]
                if pair.success is not None:
                    success.add_metric(labels, pair.success)
                failures.add_metric(labels, pair.failures)
                if pair.last_at is not None:
                    last.add_metric(labels, pair.last_at)
                sent.add_metric(labels, pair.sent)
                received.add_metric(labels, pair.received)
                errors.add_metric(labels, pair.errors)
                buckets, total = [], 0
                for bound, count in zip(RTT_BUCKETS + (float('inf'),), pair.rtt_counts):
                    total += count
                    buckets.append(('+Inf' if bound == float('inf') else repr(bound), total))
                rtt.add_metric(labels, buckets, pair.rtt_sum)
            rounds.add_metric([monitor.name], sum(p.rounds for p in monitor.pairs))
            late.add_metric([monitor.name], sum(p.late_rounds for p in monitor.pairs))
        yield from (success, failures, last, rtt, sent, received, errors, rounds, late)

    def _app(self):
        prober = self.prober
        up = GaugeMetricFamily('ryu_probe_switch_up', 'Whether the switch is connected.',
                               labels=['dpid'])
        named = {p.target.dpid for m in self.monitors.monitors.values() for p in m.pairs}
        for dpid in sorted(prober.seen | named | set(prober.bridges)):
            up.add_metric([format_dpid(dpid)], int(dpid in prober.bridges))
        yield up
        probes = CounterMetricFamily('ryu_probe_probes', 'Probes by how they ended '
                                     '(started: every probe).', labels=['state'])
        for state in PROBE_STATES:
            probes.add_metric([state], prober.counters['probes_' + state])
        yield probes
        yield GaugeMetricFamily('ryu_probe_running_probes', 'Probes running now.',
                                value=len(prober.running))
        yield GaugeMetricFamily('ryu_probe_catch_flows', 'Catch flows installed now.',
                                value=sum(len(c.shadows) for b in prober.bridges.values()
                                          for c in b.catches.values()))
        for name, doc in COUNTERS.items():
            yield CounterMetricFamily('ryu_probe_' + name, doc, value=prober.counters[name])


def exposition(prober: Prober, monitors: Monitors, pause=lambda: None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(prober, monitors, pause))
    return generate_latest(registry)
