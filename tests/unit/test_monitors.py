import json
import os
import random
import signal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import DPID, SETTINGS, Switch
from ryu_apps import metrics
from ryu_apps.bridge import Port
from ryu_apps.monitors import LATE_SLACK, Monitors, Store
from ryu_apps.options import Settings
from ryu_apps.probes import ProbeError, Prober
from ryu_apps.rest import parse_monitor

ENDPOINTS = [{'dpid': DPID, 'in_port': n, 'mac': '02:00:00:00:00:%02x' % n,
              'ip': '10.0.0.%d' % n, 'name': 'vm%d' % n} for n in (1, 2, 3)]


def spec(name='tenant-a', interval=10, bridges=None, settings=SETTINGS, **fields):
    body = dict({'name': name, 'interval': interval, 'count': 2, 'timeout': 0.5,
                 'mesh': ENDPOINTS}, **fields)
    return parse_monitor(body, settings, bridges)


class Lab:
    """A prober and monitors over one simulated switch that answers every echo from a
    destination in `alive`."""

    def __init__(self, settings=SETTINGS, ports=(1, 2, 3), store=None):
        self.done = []
        self.prober = Prober(settings, on_done=lambda p: self.monitors.finished(p, self.t))
        self.monitors = Monitors(self.prober, store, rng=random.Random(1))
        self.switch = Switch(self.prober, ports=ports)
        self.alive = {'10.0.0.1', '10.0.0.2', '10.0.0.3'}
        self.t, self.answered = 0.0, 0

    def run(self, until: float, step: float = 0.005) -> None:
        while self.t < until:
            self.t = round(self.t + step, 6)
            self.monitors.tick(self.t)
            self.prober.tick(self.t)
            self.switch.confirm_all(self.t)
            outs = self.switch.packet_outs()
            for out in outs[self.answered:]:
                if self._dst(out) in self.alive:
                    self.switch.reply_to(out, self.t + 0.0002)
            self.answered = len(outs)

    @staticmethod
    def _dst(packet_out) -> str:
        from scapy.layers.inet import IP
        from scapy.layers.l2 import Ether
        return Ether(packet_out.data)[IP].dst

    def pair(self, monitor: str, src: str, dst: str) -> dict:
        body = self.monitors.to_json(self.monitors.get(monitor))
        return next(p for p in body['pairs'] if (p['src'], p['dst']) == (src, dst))

    def scrape(self) -> dict:
        text = metrics.exposition(self.prober, self.monitors).decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}


def test_pairs_are_spread_over_the_interval_one_slot_each():
    lab = Lab()
    monitor = lab.monitors.add(spec(interval=12), now=0.0)
    slots = sorted(p.due for p in monitor.pairs)
    assert len(monitor.pairs) == 6
    assert [int(due // 2) for due in slots] == [0, 1, 2, 3, 4, 5]   # slot i of 6 in 12 s
    lab.run(12.0)
    starts = sorted(p.last.created_at for p in monitor.pairs)
    assert all(b - a > 0.01 for a, b in zip(starts, starts[1:]))    # never fired at once


def test_rounds_record_verdict_history_and_metrics():
    lab = Lab()
    lab.monitors.add(spec(interval=2), now=0.0)
    lab.run(6.0)
    pair = lab.pair('tenant-a', 'vm1', 'vm2')
    assert pair['status'] == 'ok' and pair['verdict'] == 'reachable' and pair['loss'] == 0
    assert pair['rounds'] == len(pair['history']) == 3 and pair['late_rounds'] == 0
    assert pair['history'][0]['verdict'] == 'reachable' and pair['history'][0]['rtt_ms'] > 0
    assert pair['changed_at'] == pair['history'][0]['at']
    assert lab.prober.finished == {}                 # not kept with one-off results
    assert lab.monitors.probe(pair['probe_id']).verdict == 'reachable'
    scraped = lab.scrape()
    labels = (('dst', 'vm2'), ('kind', 'icmp'), ('monitor', 'tenant-a'), ('src', 'vm1'))
    assert scraped[('ryu_probe_success', labels)] == 1
    assert scraped[('ryu_probe_echoes_sent_total', labels)] == 6
    assert scraped[('ryu_probe_echoes_received_total', labels)] == 6
    assert scraped[('ryu_probe_rtt_seconds_count', labels)] == 6
    assert scraped[('ryu_probe_rtt_seconds_bucket', labels[:2] + (('le', '0.00025'),)
                    + labels[2:])] == 6
    rounds = sum(p.rounds for p in lab.monitors.get('tenant-a').pairs)
    assert rounds >= 17
    assert scraped[('ryu_probe_rounds_total', (('monitor', 'tenant-a'),))] == rounds
    assert scraped[('ryu_probe_probes_total', (('state', 'done'),))] == rounds
    assert scraped[('ryu_probe_switch_up', (('dpid', '%016x' % DPID),))] == 1


def test_an_unreachable_pair_counts_failures_and_keeps_its_last_failure():
    lab = Lab()
    lab.monitors.add(spec(interval=2), now=0.0)
    lab.run(2.0)
    lab.alive.discard('10.0.0.3')
    lab.run(10.0)
    pair = lab.pair('tenant-a', 'vm1', 'vm3')
    assert pair['verdict'] == 'unreachable' and pair['loss'] == 1
    failure = pair['last_failure']
    assert failure['verdict'] == 'unreachable' and 'broken_at' in failure
    assert lab.monitors.probe(failure['probe_id']).verdict == 'unreachable'
    assert pair['changed_at'] > pair['history'][0]['at']
    labels = (('dst', 'vm3'), ('kind', 'icmp'), ('monitor', 'tenant-a'), ('src', 'vm1'))
    scraped = lab.scrape()
    assert scraped[('ryu_probe_success', labels)] == 0
    assert scraped[('ryu_probe_consecutive_failures', labels)] >= 2
    lab.alive.add('10.0.0.3')
    lab.run(14.0)
    assert lab.scrape()[('ryu_probe_consecutive_failures', labels)] == 0
    pair = lab.pair('tenant-a', 'vm1', 'vm3')
    assert pair['verdict'] == 'reachable' and pair['last_failure']['verdict'] == 'unreachable'
    assert lab.monitors.probe(pair['last_failure']['probe_id']).verdict == 'unreachable'


def test_a_round_still_running_at_its_slot_makes_the_next_one_late_not_overlapping():
    lab = Lab()
    lab.alive.clear()        # unreachable rounds run two rounds of echoes and a trace
    monitor = lab.monitors.add(spec(interval=1.2, count=1, timeout=1.0,
                                    mesh=ENDPOINTS[:2]), now=0.0)
    lab.run(12.0)
    for pair in monitor.pairs:
        assert pair.rounds >= 3 and pair.late_rounds >= 1
    assert len(lab.prober.running) <= 2


def test_a_monitor_on_a_switch_not_connected_waits_for_it_and_resumes():
    lab = Lab()
    lab.prober.disconnect(DPID, 0.0)
    lab.monitors.add(spec(interval=2), now=0.0)
    lab.run(4.0)
    pair = lab.pair('tenant-a', 'vm1', 'vm2')
    assert pair['status'] == 'switch-not-connected' and pair['rounds'] == 0
    assert lab.scrape()[('ryu_probe_switch_up', (('dpid', '%016x' % DPID),))] == 0
    lab.switch = Switch(lab.prober, ports=(1, 2, 3))
    lab.answered = 0
    lab.run(8.0)
    assert lab.pair('tenant-a', 'vm1', 'vm2')['verdict'] == 'reachable'


def test_a_switch_whose_ports_are_not_known_yet_gets_no_round_and_no_error():
    """Between a reconnect and the port description's reply a port not yet listed is
    not a port the switch lacks: no round, no error, until the ports come."""
    lab = Lab()
    lab.monitors.add(spec(interval=2), now=0.0)
    lab.prober.disconnect(DPID, 0.0)
    bridge = lab.prober.connect(DPID, lab.switch.sent.append, 0.0)
    lab.switch.bridge = bridge
    lab.run(4.0)
    pair = lab.pair('tenant-a', 'vm1', 'vm2')
    assert (pair['status'], pair['rounds'], pair['error']) == ('switch-not-connected', 0, None)
    with pytest.raises(ProbeError) as refused:
        spec(name='other', bridges=lab.prober.bridges)
    assert refused.value.status == 503 and 'is connecting' in str(refused.value)
    bridge.add_ports([Port(n, 'tap%d' % n, '02:00:00:00:01:%02x' % n) for n in (1, 2, 3)],
                     more=True)
    assert not bridge.ports_known
    bridge.add_ports([])
    lab.run(8.0)
    pair = lab.pair('tenant-a', 'vm1', 'vm2')
    assert (pair['status'], pair['verdict'], pair['error']) == ('ok', 'reachable', None)


def test_names_are_unique_and_the_echo_load_is_capped_at_the_monitors_share():
    lab = Lab(settings=Settings(catch_settle=0.005, catch_linger=0, max_echo_rate=100))
    lab.monitors.add(spec(interval=1, count=5, timeout=0.1, echo_interval=0.1), now=0.0)
    with pytest.raises(ProbeError) as error:
        lab.monitors.add(spec(interval=10), now=0.0)
    assert error.value.status == 409 and str(error.value).startswith('name:')
    with pytest.raises(ProbeError) as error:          # 30 + 30 echoes/s > half of 100
        lab.monitors.add(spec('other', interval=1, count=5, timeout=0.1,
                              echo_interval=0.1), now=0.0)
    assert error.value.status == 429 and str(error.value).startswith('interval:')
    lab.monitors.add(spec('other', interval=10), now=0.0)


def test_monitor_rounds_leave_room_for_one_off_probes():
    from helpers import request
    settings = Settings(catch_settle=0.005, catch_linger=0, max_active_probes=4)
    lab = Lab(settings=settings)
    lab.alive.clear()
    lab.monitors.add(spec(interval=1.5, count=1, timeout=1.0), now=0.0)
    lab.run(3.0)
    assert len(lab.prober.running) <= 2              # half of max_active_probes
    assert lab.prober.start(request(count=1), lab.t).state == 'running'


def test_delete_cancels_running_rounds_and_removes_the_series():
    lab = Lab()
    lab.monitors.add(spec(interval=2), now=0.0)
    lab.run(3.0)
    assert any(name == 'ryu_probe_success' for name, _ in lab.scrape())
    running = [p for p in lab.prober.running.values()]
    lab.monitors.remove('tenant-a', lab.t)
    assert all(p.state == 'cancelled' for p in running)
    assert not lab.prober.running
    assert not any('monitor' in dict(labels) for _, labels in lab.scrape())
    lab.run(6.0)
    assert not lab.prober.running and not lab.switch.bridge.catches


def test_replace_keeps_the_name_and_swaps_the_pairs():
    lab = Lab()
    lab.monitors.add(spec(interval=2), now=0.0)
    lab.run(1.0)
    monitor = lab.monitors.add(spec(interval=2, mesh=ENDPOINTS[:2]), now=1.0, replace=True)
    assert [p.target.name for p in monitor.pairs] == ['vm1->vm2', 'vm2->vm1']
    lab.run(4.0)
    assert lab.pair('tenant-a', 'vm2', 'vm1')['verdict'] == 'reachable'


def test_the_store_round_trips_and_monitors_come_back_from_it(tmp_path):
    store = Store(str(tmp_path / 'monitors.json'))
    lab = Lab(store=store)
    lab.monitors.add(spec(interval=2), now=0.0)
    listed = {'name': 'b', 'interval': 5, 'probes': [{
        'dpid': DPID, 'in_port': 'tap1', 'src_mac': '02:00:00:00:00:01', 'src_ip': '10.0.0.1',
        'dst_mac': '02:00:00:00:00:02', 'dst_ip': '10.0.0.2', 'name': 'web'}]}
    lab.monitors.add(parse_monitor(listed, SETTINGS, None), now=0.0)
    again = Lab()
    again.monitors.load([parse_monitor(d, SETTINGS, None) for d in store.load()], 0.0)
    assert sorted(again.monitors.monitors) == ['b', 'tenant-a']
    again.run(6.0)
    assert again.pair('b', '10.0.0.1', '10.0.0.2')['verdict'] == 'reachable'
    assert again.pair('b', '10.0.0.1', '10.0.0.2')['name'] == 'web'


def test_a_crash_while_the_file_is_written_loses_no_monitor(tmp_path):
    path = str(tmp_path / 'monitors.json')
    Store(path).save([spec().definition])
    pid = os.fork()
    if pid == 0:     # the child dies, killed, half-way through writing the new file
        real_dump = json.dump

        def dump(obj, f, **kw):
            f.write(json.dumps(obj)[:20])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
            real_dump(obj, f, **kw)
        json.dump = dump
        Store(path).save([spec().definition, spec('b').definition])
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert [d['name'] for d in Store(path).load()] == ['tenant-a']


@pytest.mark.parametrize('change, message', [
    ({'name': 'Tenant A'}, 'name: must be 1 to 64 of a-z'),
    ({'interval': 0.5}, 'interval: must be 1 to 3600 seconds'),
    ({'interval': 1, 'count': 3, 'timeout': 1.0}, 'interval: must be longer than a round'),
    ({'probes': []}, 'probes: give either probes or mesh'),
    ({'mesh': ENDPOINTS[:1]}, 'mesh: must be a list of 2 to 100'),
    ({'mesh': [ENDPOINTS[0], dict(ENDPOINTS[1], name='vm1')]}, 'mesh: endpoint names must'),
    ({'mesh': [ENDPOINTS[0], dict(ENDPOINTS[1], mac='zz')]}, 'mesh[1].mac: must be a MAC'),
    ({'mesh': [ENDPOINTS[0], dict(ENDPOINTS[1], port=3)]}, 'mesh[1].port: unknown field'),
    ({'wait': True}, 'wait: unknown field'),
    ({'count': 0}, 'count: must be between 1'),
])
def test_monitor_validation_names_the_field(change, message):
    body = dict({'name': 'a', 'interval': 10, 'mesh': ENDPOINTS}, **change)
    if 'probes' in change:
        body['mesh'] = ENDPOINTS
    with pytest.raises(ProbeError) as error:
        parse_monitor(body, SETTINGS, None)
    assert error.value.status == 400 and str(error.value).startswith(message), error.value


def test_a_listed_pair_given_twice_and_an_unknown_port_are_refused():
    lab = Lab(ports=(1, 2))
    probe = {'dpid': DPID, 'in_port': 1, 'src_mac': '02:00:00:00:00:01', 'src_ip': '10.0.0.1',
             'dst_mac': '02:00:00:00:00:02', 'dst_ip': '10.0.0.2'}
    with pytest.raises(ProbeError, match=r'probes\[1\]: the pair 10.0.0.1->10.0.0.2 is given'):
        parse_monitor({'name': 'a', 'interval': 10, 'probes': [probe, probe]}, SETTINGS, None)
    with pytest.raises(ProbeError) as error:
        parse_monitor({'name': 'a', 'interval': 10, 'mesh': ENDPOINTS}, SETTINGS,
                      lab.prober.bridges)
    assert error.value.status == 404 and str(error.value).startswith('mesh[2].in_port:')


def test_a_round_that_starts_after_its_slot_plus_the_slack_is_late():
    lab = Lab()
    monitor = lab.monitors.add(spec(interval=5, mesh=ENDPOINTS[:2]), now=0.0)
    lab.t = max(p.due for p in monitor.pairs) + LATE_SLACK + 0.5   # the app was stalled
    lab.run(lab.t + 1.0)
    assert [p.late_rounds for p in monitor.pairs] == [1, 1]
    lab.run(lab.t + 10.0)
    assert [p.late_rounds for p in monitor.pairs] == [1, 1]


def test_slots_go_round_robin_over_the_switches():
    from ryu_apps.monitors import interleaved
    endpoints = [dict(e, dpid=dpid, name='%s-%d' % (e['name'], dpid))
                 for dpid in (1, 2) for e in ENDPOINTS]      # a mesh, source by source
    targets = spec(mesh=endpoints).targets
    order = [t.dpid for t in interleaved(targets)]
    assert sorted(order) == sorted(t.dpid for t in targets)
    assert all(a != b for a, b in zip(order, order[1:]))     # never twice in a row
