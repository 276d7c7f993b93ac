"""The status page at /probe/ui/, served by the app, read by a real headless Chromium.

Three VMs on one bridge (`scale` with one hypervisor of three VMs) are a monitor's mesh.
The page shows every pair green; then ICMP to vm1-3 is dropped on its bridge, as a
security group would: every pair to or from vm1-3 turns red (requests to it, and replies
to it, are dropped), vm1-1 <-> vm1-2 stays green, and the tenant's own kernel ping agrees
pair by pair. A red cell's detail shows its history and where the probe broke; the
switch table shows the bridge up, then down once its controller is gone; an app that
stopped answering shows in the banner.

The screenshot is saved in the test's tmp_path; RYU_PROBE_SCREENSHOT=docs/ui.png copies
it there too (for the README).
"""
import os
import re
import shutil
import signal
import urllib.error
import urllib.request

import pytest

from test_topologies import assert_gone, kernel_ping
from topologies import engine
from topologies.controller import ProbeController
from topologies.lab import missing_requirements
from topologies.model import Probe, Topology

webdriver = pytest.importorskip('selenium.webdriver')
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
pytestmark = [
    pytest.mark.skipif(missing_requirements() is not None, reason=missing_requirements() or ''),
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                       reason='needs chromium and chromium-driver (apt-get install chromium '
                              'chromium-driver)'),
]
INSTANCE = 'uscale'
SCALE = os.path.join(os.path.dirname(engine.nets.__file__), 'scale.py')
MONITOR = 'tenant-a'
VMS = ['vm1-1', 'vm1-2', 'vm1-3']
DROPPED = 'vm1-3'
WAIT = 90           # seconds a page state may take: rounds every 2 s, a trace per failure
# every pair's cell: its monitor, src, dst, data-verdict and colour (cell-<colour>)
CELLS_JS = """return [...document.querySelectorAll('td[data-verdict]')].map(td =>
    [td.dataset.monitor, td.dataset.src, td.dataset.dst, td.dataset.verdict,
     [...td.classList].filter(c => c.startsWith('cell-')).join(' ')])"""
# what the detail panel shows, read in one go (it is redrawn as rounds come)
DETAIL_JS = """const panel = document.getElementById('detail');
  const link = panel.querySelector('.failure a');
  return {title: panel.hidden ? '' : panel.querySelector('h2').textContent,
          text: panel.innerText,
          broken_at: Object.fromEntries([...panel.querySelectorAll('.broken-at tr')].map(
            tr => [tr.dataset.field, tr.querySelector('td').textContent])),
          points: panel.querySelectorAll('.history-chart .point').length,
          lost: panel.querySelectorAll('.history-chart .mark-lost').length,
          failure_link: link && link.href}"""
# dpid -> [state, ports] of the switch table
SWITCHES_JS = """return Object.fromEntries([...document.querySelectorAll('#switches tr[data-dpid]')].map(
    tr => [tr.dataset.dpid, [tr.dataset.state, tr.cells[2].textContent]]))"""


def three_vms() -> Topology:
    """`scale` as one hypervisor with three VMs, loaded afresh (scale reads its size at
    import; the module others imported keeps theirs)."""
    size = {'RYU_PROBE_SCALE_HOSTS': '1', 'RYU_PROBE_SCALE_VMS': '3'}
    saved = {name: os.environ.get(name) for name in size}
    os.environ.update(size)
    try:
        return engine.load(SCALE)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


@pytest.fixture
def app(request):
    app = ProbeController(config='[probe]\n')
    request.addfinalizer(app.close)
    app.start()
    return app


@pytest.fixture
def network(request, app):
    request.addfinalizer(lambda: assert_gone(INSTANCE))
    topology = three_vms()
    network = engine.up(topology, controller=app.target, instance=INSTANCE)
    network.topology = topology
    app.wait_for_switches(*[dpid for _, _, dpid in network.probed_bridges()], timeout=30)
    return network


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, ...], or None if gone."""
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of pid -> its start time (to tell a reused pid apart)."""
    stats = {int(e): _stat(int(e)) for e in os.listdir('/proc') if e.isdigit()}
    stats = {p: st for p, st in stats.items() if st}
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, st in stats.items():
            if st[1] == str(parent) and child not in found:
                found[child] = st[19]
                todo.append(child)
    return found


@pytest.fixture
def browser(request, tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
                '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
                '--window-size=1280,1000', '--user-data-dir=%s' % (tmp_path / 'chromium')):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / 'chromedriver.log'))
    driver = webdriver.Chrome(service=service, options=options)
    driver_pid = service.process.pid

    def close():
        ours = descendants(driver_pid)          # chromium's processes, started by chromedriver
        try:
            driver.quit()
        finally:
            for pid, started in ours.items():   # whatever quit left behind, ours only
                st = _stat(pid)
                if st and st[19] == started:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
    request.addfinalizer(close)
    return driver


def cells(driver) -> dict[tuple[str, str], tuple[str, str]]:
    """(src, dst) -> (data-verdict, colour) of every pair's cell, read in one go."""
    return {(src, dst): (verdict, colour.removeprefix('cell-'))
            for monitor, src, dst, verdict, colour in driver.execute_script(CELLS_JS)
            if monitor == MONITOR}


def wait_for(driver, app, what: str, predicate):
    """Until predicate(driver) is true; on timeout, fail with what the page shows."""
    try:
        return WebDriverWait(driver, WAIT, ignored_exceptions=(
            StaleElementReferenceException,)).until(predicate)
    except TimeoutException:
        banner = driver.find_element(By.ID, 'banner').text
        console = '\n'.join(str(e) for e in driver.get_log('browser'))
        pytest.fail('page never showed %s\ncells: %s\nbanner: %s\nconsole: %s\napp log:\n%s' % (
            what, cells(driver), banner, console, app.log()[-6000:]))


def served(app, name: str) -> tuple[int, str]:
    """(status, media type) of GET /probe/ui/<name> (JavaScript as text/javascript)."""
    try:
        res = urllib.request.urlopen(app.url + '/probe/ui/' + name, timeout=10)
    except urllib.error.HTTPError as error:
        res = error
    with res:
        kind = (res.headers['Content-Type'] or '').split(';')[0].strip().lower()
        return res.status, 'text/javascript' if kind == 'application/javascript' else kind


def expected(src: str, dst: str) -> str:
    """With ICMP to DROPPED dropped: its requests and the replies to it never arrive."""
    return 'unreachable' if DROPPED in (src, dst) else 'reachable'


def test_status_page_shows_each_pair_turn_red_where_the_fault_is_and_why(
        app, network, browser, tmp_path):
    vms = network.vms()
    mesh = [{'name': name, 'dpid': '%016x' % vms[name].dpid, 'in_port': vms[name].port_no,
             'mac': vms[name].mac, 'ip': vms[name].ip} for name in VMS]
    status, body = app.request('POST', '/probe/monitors', {
        'name': MONITOR, 'interval': 2, 'count': 2, 'mesh': mesh})
    assert status == 201, body
    pairs = {(p['src'], p['dst']) for p in body['pairs']}
    assert len(pairs) == 6

    kinds = {'': 'text/html', 'app.js': 'text/javascript', 'style.css': 'text/css'}
    assert {name: served(app, name) for name in kinds} == {
        name: (200, kind) for name, kind in kinds.items()}
    browser.get(app.url + '/probe/ui/')
    wait_for(browser, app, 'every cell green', lambda d: set(cells(d)) == pairs and all(
        v == ('reachable', 'reachable') for v in cells(d).values()))
    assert re.fullmatch(r'updated \d\d:\d\d:\d\d', browser.find_element(By.ID, 'updated').text)
    assert not browser.find_element(By.ID, 'banner').is_displayed()
    rtt = browser.find_element(By.CSS_SELECTOR, 'td[data-src="vm1-1"][data-dst="vm1-2"]').text
    assert re.fullmatch(r'[\d.]+ ms', rtt), rtt

    for command in network.topology.faults['sg-drop'].commands:
        assert command.argv[-1].endswith('nw_dst=%s,actions=drop' % vms[DROPPED].ip)
        network.run(command.where, command.argv)
    want = {pair: expected(*pair) for pair in pairs}
    wait_for(browser, app, 'the pairs of %s red, the others green' % DROPPED,
             lambda d: {pair: v for pair, (v, _) in cells(d).items()} == want)
    assert {pair: colour for pair, (_, colour) in cells(browser).items()} == want
    assert {pair: kernel_ping(network, Probe(*pair)) for pair in pairs} == want

    # the detail of a red cell: where its probe broke, its history, its probe
    broken = ('vm1-1', DROPPED)
    browser.find_element(By.CSS_SELECTOR, 'td[data-src="%s"][data-dst="%s"]' % broken).click()

    def shown_broken(driver):
        shown = driver.execute_script(DETAIL_JS)
        return shown if shown['broken_at'] and shown['lost'] else None
    detail = wait_for(browser, app, "the detail's broken_at and loss in its chart", shown_broken)
    dpid = '%016x' % vms[broken[0]].dpid
    assert detail['title'].startswith('%s: %s → %s' % (MONITOR, *broken)), detail
    assert 'changed_at' in detail['text'] and detail['points'], detail
    fields = detail['broken_at']
    assert (fields['direction'], fields['dpid'], fields['table'], fields['reason']) == (
        'request', dpid, '0', 'dropped'), fields
    assert fields['flow'].startswith('table=0 priority=100 '), fields

    def linked_failure(driver):
        """The probe the last failure's link names, once the API still keeps it (a newer
        failure replaces it every round)."""
        link = driver.execute_script(DETAIL_JS)['failure_link']
        assert link and link.startswith(app.url + '/probe/probes/'), link
        status, probe = app.request('GET', link[len(app.url):])
        return probe if status == 200 else None
    probe = wait_for(browser, app, "a last failure's link to its probe", linked_failure)
    assert probe['verdict'] == 'unreachable' and probe['broken_at']['reason'] == 'dropped'

    # the switch: up, with its ports
    ports = next(len(s['ports']) for s in app.get('/probe/switches') if s['dpid'] == dpid)
    assert browser.execute_script(SWITCHES_JS) == {dpid: ['up', str(ports)]}

    target = os.environ.get('RYU_PROBE_SCREENSHOT')
    if target:      # the README's picture: a longer history in the chart
        wait_for(browser, app, 'a dozen rounds of %s->%s' % broken, lambda d: len(next(
            p['history'] for p in app.get('/probe/monitors/' + MONITOR)['pairs']
            if (p['src'], p['dst']) == broken)) >= 12)
    shot = tmp_path / 'ui.png'
    assert browser.save_screenshot(str(shot))
    if target:
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        shutil.copyfile(shot, target)

    # pause: the toggle says so; resume
    pause = browser.find_element(By.ID, 'pause')
    pause.click()
    assert pause.get_attribute('aria-pressed') == 'true' and pause.text == 'Resume'
    pause.click()
    assert pause.get_attribute('aria-pressed') == 'false'

    # the bridge is pointed away from the app: its row is down, every cell grey
    host, bridge, _ = network.probed_bridges()[0]
    network.run(host, ['ovs-vsctl', 'set-controller', bridge, 'tcp:127.0.0.1:9'])
    wait_for(browser, app, 'the switch down', lambda d: d.execute_script(SWITCHES_JS) == {
        dpid: ['down', '—']} and all(v == ('switch-not-connected', 'waiting')
                                      for v in cells(d).values()))

    # the app is gone: the banner says which call failed
    app.stop()
    wait_for(browser, app, 'the error banner', lambda d: d.find_element(
        By.ID, 'banner').is_displayed() and 'GET /probe/monitors' in d.find_element(
        By.ID, 'banner').text)


def test_the_page_asks_for_a_token_when_the_api_wants_one_and_then_shows_it(
        request, browser, tmp_path):
    tokens = tmp_path / 'tokens'
    tokens.write_text('page-user t0ken-for-the-page\n')
    secured = ProbeController(config='[probe]\napi_token_file = %s\n' % tokens,
                              token='t0ken-for-the-page', listen=False)
    secured.start()
    request.addfinalizer(secured.close)
    browser.get(secured.url + '/probe/ui/')
    form = browser.find_element(By.ID, 'token-form')
    WebDriverWait(browser, 10).until(lambda d: form.is_displayed())
    assert '401' in browser.find_element(By.ID, 'banner').text
    browser.find_element(By.ID, 'token').send_keys('t0ken-for-the-page')
    form.submit()
    WebDriverWait(browser, 10).until(
        lambda d: not d.find_element(By.ID, 'banner').is_displayed()
        and d.find_element(By.ID, 'updated').text.startswith('updated'))
    assert not form.is_displayed()
