/* The status page: each monitor as a matrix of its pairs, one pair's detail, the switches.
   Plain JS, no build step. Every call to the API goes through api(). */
'use strict';

const REFRESH_MS = 2000;
const HISTORY = 30;                 // rounds a pair keeps (the API's history length)
// The page is served at <root>/probe/ui/; the API is under <root>/probe/.
const ROOT = location.pathname.replace(/\/probe\/ui(\/.*)?$/, '');
const SVG = 'http://www.w3.org/2000/svg';
// Each probe kind's verdicts that are a success (ryu_apps/kinds.py), and what it sends.
const KINDS = {
  icmp: {success: ['reachable', 'partial'], sends: ['echo', 'echoes']},
  tcp: {success: ['open'], sends: ['SYN', 'SYNs']},
  udp: {success: ['open'], sends: ['datagram', 'datagrams']},
  arp: {success: ['reachable'], sends: ['request', 'requests']},
  dhcp: {success: ['reachable'], sends: ['DISCOVER', 'DISCOVERs']},
};
const BETWEEN = ['partial', 'open|filtered'];     // some answers, or no telling: amber

const view = {
  paused: false,
  timer: null,
  selected: null,                   // {monitor, src, dst} of the cell whose detail is open
  detailKey: null,                  // what the detail panel shows now, to redraw only on change
  monitors: [],                     // the last GET /probe/monitors
};

/* GET a path of the API and decode its JSON; an error names the call and says why. With
   a token (the app's api_token_file), it goes along; a 401 asks for one (askToken). */
async function api(path) {
  let res;
  const headers = {Accept: 'application/json'};
  const token = sessionStorage.getItem('ryu-probe-token');
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    res = await fetch(ROOT + path, {headers, cache: 'no-store'});
  } catch (err) {
    throw new Error(`GET ${path}: ${err.message}`);
  }
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch (err) {
    body = undefined;
  }
  if (res.status === 401) askToken(true);
  if (!res.ok) {
    const why = (body && body.error) || text.trim().slice(0, 200) || res.statusText;
    throw Object.assign(new Error(`GET ${path}: ${res.status} ${why}`), {status: res.status});
  }
  if (body === undefined) throw new Error(`GET ${path}: the answer is not JSON`);
  return body;
}

// --- small helpers ---------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/* An SVG element; `tip` becomes its tooltip (<title>), or the text of a <text>. */
function svg(tag, attrs = {}, tip = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (tip !== null && tag === 'text') {
    node.textContent = tip;
  } else if (tip !== null) {
    const title = document.createElementNS(SVG, 'title');
    title.textContent = tip;
    node.append(title);
  }
  return node;
}

const pad = (n) => String(n).padStart(2, '0');

function hms(date) {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map(pad).join(':');
}

/* Unix seconds as the local time, with the date when it is not today. */
function when(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const date = new Date(seconds * 1000);
  const day = date.toDateString() === new Date().toDateString() ? '' :
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} `;
  return day + hms(date);
}

function ms(value) {
  if (value === null || value === undefined) return '—';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : String(Math.round(value));
}

function percent(loss) {
  return loss === null || loss === undefined ? '—' : `${Math.round(loss * 100)}%`;
}

function unique(values) {
  return [...new Set(values)];
}

// --- the matrices ----------------------------------------------------------------------

/* What a pair's cell says (its data-verdict): the verdict, else the status, or 'error'. */
function said(pair) {
  if (pair.status === 'switch-not-connected' || pair.status === 'waiting') return pair.status;
  if (pair.error) return 'error';     // the last round's error, not an old verdict
  return pair.verdict || pair.status;
}

/* A pair's colour (its cell-<colour> class), by its monitor's kind: a success reachable
   (green; partial with some loss), partial and open|filtered partial (amber), any other
   verdict unreachable (red); waiting (grey) without one, error. */
function colourOf(pair, kind) {
  const verdict = said(pair);
  if (verdict === 'error') return 'error';
  if (verdict !== pair.verdict) return 'waiting';
  if (BETWEEN.includes(verdict)) return 'partial';
  if (KINDS[kind].success.includes(verdict)) return pair.loss ? 'partial' : 'reachable';
  return 'unreachable';
}

/* A monitor's kind, with the port of tcp and udp: "tcp/443". */
function kindLabel(monitor) {
  return monitor.dst_port ? `${monitor.kind}/${monitor.dst_port}` : monitor.kind;
}

function isSelected(monitor, pair) {
  const s = view.selected;
  return s !== null && s.monitor === monitor && s.src === pair.src && s.dst === pair.dst;
}

/* A cell shows a success's RTT, another verdict's name. */
function updateCell(td, monitor, pair) {
  const verdict = said(pair);
  td.className = `cell cell-${colourOf(pair, monitor.kind)}` +
    (isSelected(monitor.name, pair) ? ' selected' : '');
  td.dataset.verdict = verdict;
  const fresh = pair.status === 'ok' && !pair.error;
  const label = {'switch-not-connected': 'switch down', waiting: 'waiting', error: 'error'};
  const rtt = pair.rtt_ms ? `${ms(pair.rtt_ms.avg)} ms` : '';
  td.replaceChildren(label[verdict] ||
    (KINDS[monitor.kind].success.includes(pair.verdict) ? rtt : pair.verdict || ''));
  if (fresh && pair.loss) td.append(el('small', {}, `${percent(pair.loss)} loss`));
  td.title = `${pair.name}: ${verdict}` + (pair.error ? ` (${pair.error})` : '') +
    (fresh ? `, loss ${percent(pair.loss)}` : '') + `, last round ${when(pair.last_at)}`;
}

/* A monitor's section: its table is rebuilt only when its rows or columns change, its
   cells are updated in place (so a click is never lost to a refresh). */
function monitorSection(monitor, section) {
  const srcs = unique(monitor.pairs.map((p) => p.src));
  // a mesh's columns in the order of its rows
  const dstSet = new Set(monitor.pairs.map((p) => p.dst));
  const dsts = unique([...srcs.filter((s) => dstSet.has(s)), ...monitor.pairs.map((p) => p.dst)]);
  const shape = JSON.stringify([srcs, dsts]);
  if (!section || section.dataset.shape !== shape) {
    const head = el('tr', {}, el('th', {class: 'corner'}, 'src \\ dst'),
      ...dsts.map((dst) => el('th', {scope: 'col'}, dst)));
    const rows = srcs.map((src) => el('tr', {}, el('th', {scope: 'row'}, src),
      ...dsts.map((dst) => el('td', {class: 'cell cell-none', 'data-monitor': monitor.name,
        'data-src': src, 'data-dst': dst}))));
    section = el('section', {class: 'monitor', 'data-monitor': monitor.name, 'data-shape': shape},
      el('h2', {}, monitor.name, el('span', {class: 'kind'}), el('span', {class: 'meta'})),
      el('table', {class: 'matrix'}, el('thead', {}, head), el('tbody', {}, ...rows)));
  }
  section.querySelector('.kind').textContent = kindLabel(monitor);
  const [one, many] = KINDS[monitor.kind].sends;
  section.querySelector('.meta').textContent = ` every ${monitor.interval} s, ` +
    `${monitor.count} ${monitor.count === 1 ? one : many}, ${monitor.pairs.length} pairs`;
  const cells = new Map([...section.querySelectorAll('td[data-src]')]
    .map((td) => [JSON.stringify([td.dataset.src, td.dataset.dst]), td]));
  for (const pair of monitor.pairs) {
    const td = cells.get(JSON.stringify([pair.src, pair.dst]));
    updateCell(td, monitor, pair);
    td.tabIndex = 0;
  }
  return section;
}

function renderMonitors(monitors) {
  const root = document.getElementById('monitors');
  if (!monitors.length) {
    root.replaceChildren(el('p', {class: 'empty'},
      'No monitors yet: POST /probe/monitors to add one.'));
    return;
  }
  const old = new Map([...root.querySelectorAll('section.monitor')]
    .map((s) => [s.dataset.monitor, s]));
  const sections = monitors.map((m) => monitorSection(m, old.get(m.name)));
  const current = [...root.children];
  if (sections.length !== current.length || sections.some((s, i) => s !== current[i])) {
    root.replaceChildren(...sections);
  }
}

// --- one pair's detail -----------------------------------------------------------------

function probeLink(id) {
  return id ? el('a', {href: `${ROOT}/probe/probes/${encodeURIComponent(id)}`}, id) : '—';
}

function flowText(flow) {
  if (flow === null || flow === undefined) return '—';
  if (typeof flow !== 'object') return String(flow);
  return Object.entries(flow).map(([k, v]) => `${k}=${v}`).join(' ');
}

function facts(rows) {
  return el('dl', {}, ...rows.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
}

/* RTT avg per round as a line (gaps where no echo came back), loss as bars from the
   bottom (amber some, red all), errors as purple ticks at the top. Newest at the right. */
function historyChart(history) {
  const W = 360, H = 110, left = 44, right = 8, top = 10, bottom = 18;
  const plotW = W - left - right, plotH = H - top - bottom;
  const step = plotW / (HISTORY - 1);
  const offset = HISTORY - history.length;
  const x = (i) => left + (i + offset) * step;
  const rtts = history.map((h) => h.rtt_ms).filter((v) => v !== null && v !== undefined);
  const max = rtts.length ? Math.max(...rtts) * 1.15 : 1;
  const y = (v) => top + plotH - (v / max) * plotH;
  const chart = svg('svg', {class: 'history-chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: 'img', 'aria-label': 'RTT avg and loss per round'});
  chart.append(svg('rect', {class: 'plot', x: left, y: top, width: plotW, height: plotH}));
  for (const [v, label] of [[max, `${ms(max)} ms`], [max / 2, ms(max / 2)], [0, '0']]) {
    chart.append(svg('line', {class: 'grid', x1: left, x2: left + plotW, y1: y(v), y2: y(v)}));
    chart.append(svg('text', {class: 'axis', x: left - 4, y: y(v) + 3, 'text-anchor': 'end'},
      label));
  }
  let line = [];
  const flush = () => {
    if (line.length) chart.append(svg('polyline', {class: 'rtt', points: line.join(' ')}));
    line = [];
  };
  history.forEach((h, i) => {
    const tip = `${when(h.at)} ${h.verdict || 'error'}, loss ${percent(h.loss)}, ` +
      `RTT ${ms(h.rtt_ms)} ms` + (h.error ? `: ${h.error}` : '');
    if (h.verdict === null || h.verdict === undefined) {
      chart.append(svg('rect', {class: 'mark-error', x: x(i) - 3, y: top, width: 6,
        height: 6}, tip));
    } else if (h.loss) {
      const height = Math.max(h.loss * plotH, 2);
      chart.append(svg('rect', {class: h.loss >= 1 ? 'mark-lost' : 'mark-loss',
        x: x(i) - 3, y: top + plotH - height, width: 6, height}, tip));
    }
    if (h.rtt_ms === null || h.rtt_ms === undefined) {
      flush();
    } else {
      line.push(`${x(i)},${y(h.rtt_ms)}`);
      chart.append(svg('circle', {class: 'point', cx: x(i), cy: y(h.rtt_ms), r: 2.5}, tip));
    }
  });
  flush();
  if (history.length) {         // the newest round's time, and the oldest's if there is room
    const last = history.length - 1;
    chart.append(svg('text', {class: 'axis', x: x(last), y: H - 4, 'text-anchor': 'end'},
      when(history[last].at)));
    if (x(last) - x(0) > 100) {
      chart.append(svg('text', {class: 'axis', x: x(0), y: H - 4, 'text-anchor': 'start'},
        when(history[0].at)));
    }
  }
  return chart;
}

function brokenAt(broken) {
  if (!broken) return el('p', {}, 'broken_at: none (the trace found no place)');
  return el('table', {class: 'broken-at'}, el('tbody', {},
    ...['direction', 'dpid', 'table', 'reason', 'detail', 'flow'].map((name) =>
      el('tr', {'data-field': name}, el('th', {scope: 'row'}, name),
        el('td', {}, name === 'flow' ? flowText(broken.flow) :
          broken[name] === null || broken[name] === undefined ? '—' : String(broken[name]))))));
}

function renderDetail(monitorName, pair, missing = 'This monitor has no such pair any more.') {
  const panel = document.getElementById('detail');
  const key = JSON.stringify([monitorName, view.selected, pair]);
  if (key === view.detailKey) return;   // unchanged: keep the DOM (and any text selected)
  view.detailKey = key;
  const sel = view.selected;
  const close = el('button', {type: 'button', class: 'close', 'aria-label': 'close'}, '×');
  close.addEventListener('click', closeDetail);
  const title = el('h2', {}, `${monitorName}: ${sel.src} → ${sel.dst}`, close);
  if (!pair) {
    panel.replaceChildren(title, el('p', {}, missing));
    panel.hidden = false;
    return;
  }
  const failure = pair.last_failure;
  panel.replaceChildren(
    title,
    facts([
      ['verdict', said(pair)], ['loss', percent(pair.loss)],
      ['RTT min/avg/max', pair.rtt_ms ?
        `${ms(pair.rtt_ms.min)} / ${ms(pair.rtt_ms.avg)} / ${ms(pair.rtt_ms.max)} ms` : '—'],
      ['dpid', pair.dpid], ['rounds', `${pair.rounds} (${pair.late_rounds} late)`],
      ['last round', when(pair.last_at)], ['changed_at', when(pair.changed_at)],
      ['last probe', probeLink(pair.probe_id)], ['error', pair.error || '—'],
    ]),
    el('h3', {}, 'History (RTT avg per round, loss bars)'),
    historyChart(pair.history || []),
    el('h3', {}, 'Last failure'),
    failure ? el('div', {class: 'failure'},
      facts([['at', when(failure.at)], ['verdict', failure.verdict],
        ['probe', probeLink(failure.probe_id)]]),
      brokenAt(failure.broken_at)) : el('p', {}, 'none'));
  panel.hidden = false;
}

async function refreshDetail() {
  const sel = view.selected;
  if (sel === null) return;
  let monitor = null;
  try {
    monitor = await api('/probe/monitors/' + encodeURIComponent(sel.monitor));
  } catch (err) {
    if (err.status !== 404) throw err;  // a deleted monitor is said in the panel
  }
  if (view.selected !== sel) return;    // another cell was clicked meanwhile
  if (monitor === null) {
    renderDetail(sel.monitor, null, 'This monitor is gone.');
  } else {
    renderDetail(monitor.name, monitor.pairs.find((p) => p.src === sel.src && p.dst === sel.dst));
  }
}

function select(td) {
  view.selected = {monitor: td.dataset.monitor, src: td.dataset.src, dst: td.dataset.dst};
  for (const cell of document.querySelectorAll('td.selected')) cell.classList.remove('selected');
  td.classList.add('selected');
  refreshDetail().catch((err) => showErrors([err.message]));
}

function closeDetail() {
  view.selected = null;
  view.detailKey = null;
  document.getElementById('detail').hidden = true;
  for (const cell of document.querySelectorAll('td.selected')) cell.classList.remove('selected');
}

// --- switches --------------------------------------------------------------------------

/* Connected switches, and every dpid a monitor's pair names that is not connected (down). */
function renderSwitches(switches, monitors) {
  const connected = new Map(switches.map((s) => [s.dpid, s]));
  const users = new Map();
  for (const monitor of monitors) {
    for (const pair of monitor.pairs) {
      if (!users.has(pair.dpid)) users.set(pair.dpid, new Set());
      users.get(pair.dpid).add(monitor.name);
    }
  }
  const dpids = unique([...connected.keys(), ...users.keys()]).sort();
  const rows = dpids.map((dpid) => {
    const sw = connected.get(dpid);
    const names = users.has(dpid) ? [...users.get(dpid)].sort().join(', ') : '—';
    return el('tr', {'data-dpid': dpid, 'data-state': sw ? 'up' : 'down', class: sw ? 'up' : 'down'},
      el('td', {class: 'dpid'}, dpid), el('td', {}, sw ? 'up' : 'down'),
      el('td', {title: sw ? sw.ports.map((p) => `${p.port_no} ${p.name}`).join('\n') : null},
        sw ? String(sw.ports.length) : '—'),
      el('td', {}, names));
  });
  const body = document.querySelector('#switches tbody');
  body.replaceChildren(...(rows.length ? rows :
    [el('tr', {}, el('td', {colspan: 4, class: 'empty'}, 'No switch connected.'))]));
}

// --- refresh ---------------------------------------------------------------------------

function showErrors(errors) {
  const banner = document.getElementById('banner');
  banner.replaceChildren(...errors.map((e) => el('div', {}, e)));
  banner.hidden = errors.length === 0;
}

/* One refresh of everything shown; whatever failed goes in the banner, and the next
   refresh is scheduled whatever happened. */
async function refresh() {
  const errors = [];
  const step = async (what) => {
    try {
      await what();
    } catch (err) {
      errors.push(err.message);
    }
  };
  const monitors = api('/probe/monitors');
  const switches = api('/probe/switches');
  switches.catch(() => {});     // handled below, once monitors are in: no "uncaught" meanwhile
  await step(async () => {
    view.monitors = await monitors;
    renderMonitors(view.monitors);
  });
  await step(async () => renderSwitches(await switches, view.monitors));
  await step(refreshDetail);
  showErrors(errors);
  document.body.classList.toggle('stale', errors.length > 0);    // what is shown may be old
  if (!errors.length) document.getElementById('updated').textContent = `updated ${hms(new Date())}`;
  schedule();
}

/* The token form: shown when the API wants a token; kept for this tab only. */
function askToken(show) {
  document.getElementById('token-form').hidden = !show;
}

document.getElementById('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('token');
  sessionStorage.setItem('ryu-probe-token', input.value.trim());
  input.value = '';
  askToken(false);
  refresh();
});

function schedule() {
  clearTimeout(view.timer);
  view.timer = view.paused ? null : setTimeout(refresh, REFRESH_MS);
}

function togglePause() {
  view.paused = !view.paused;
  const button = document.getElementById('pause');
  button.textContent = view.paused ? 'Resume' : 'Pause';
  button.setAttribute('aria-pressed', String(view.paused));
  document.body.classList.toggle('paused', view.paused);
  if (view.paused) schedule();
  else refresh();
}

document.getElementById('pause').addEventListener('click', togglePause);
const matrices = document.getElementById('monitors');
matrices.addEventListener('click', (event) => {
  const td = event.target.closest('td[data-verdict]');
  if (td) select(td);
});
matrices.addEventListener('keydown', (event) => {
  const td = event.target.closest('td[data-verdict]');
  if (td && (event.key === 'Enter' || event.key === ' ')) {
    event.preventDefault();
    select(td);
  }
});
refresh();
