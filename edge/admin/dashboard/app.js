// Portcullis dashboard. Plain browser JavaScript, no build step, no external resources.
// Data: GET /api/stats every second (numbers, series, servers, tops) and the WebSocket feed
// /api/events/ws (live events, filtered server-side). The token lives in sessionStorage only and is
// sent as a Bearer header (and as a `token.<t>` WebSocket sub-protocol, since browsers cannot set
// headers on a WebSocket). Every value from the server goes into the page through textContent.
/* global uPlot */
(function () {
  'use strict';
  var TOKEN_KEY = 'portcullisToken';
  var MAX_EVENTS = 1000;       // kept in memory, newest first
  var PAGE_SIZE = 25;          // rows shown: the table pages instead of growing the page
  var RULE_SERIES = 6;
  var COLORS = ['#4fa3ff', '#52c41a', '#f0b429', '#ff6b6b', '#b37feb', '#36cfc9', '#ff9c6e'];
  var RULE_COLORS = ['#ff6b6b', '#f0b429', '#b37feb', '#36cfc9', '#ff9c6e', '#4fa3ff', '#52c41a', '#f759ab', '#bae637', '#9254de', '#13c2c2', '#fadb14'];
  var $ = function (id) { return document.getElementById(id); };
  var token = sessionStorage.getItem(TOKEN_KEY);
  var pollTimer = null;
  var ws = null;
  var wsRetry = null;
  var rateChart = null;
  var blockChart = null;
  var blockRules = '';
  var eventCount = 0;
  var events = [];             // newest first
  var eventPage = 0;           // 0 = newest page (live)
  var eventAnchor = 0;         // events that arrived while an older page was shown (keeps that page still)
  var ruleColor = {};          // rule id → colour, kept for the session: a rule keeps its colour when the ranking changes
  var usedColors = {};
  var bannedKeys = {};
  var range = 'live';          // time range of the charts: live (last 2 min, /api/stats) or a history range
  var page = 'overview';
  var historyTimer = null;
  var latencyChart = null;
  var utilChart = null;
  var utilSig = '';
  var capChart = null;
  var capView = null;
  var capSelected = null;

  function api(method, path, body) {
    var init = { method: method, headers: { authorization: 'Bearer ' + token } };
    if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) {
      if (r.status === 401) { logout('token refused'); throw new Error('unauthorized'); }
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j && j.error ? j.error : 'HTTP ' + r.status);
        return j;
      });
    });
  }

  function toast(msg) {
    var t = $('toast'); t.textContent = msg;
    setTimeout(function () { if (t.textContent === msg) t.textContent = ''; }, 4000);
  }

  function act(method, path, body, okMsg) {
    return api(method, path, body).then(function () { toast(okMsg); return poll(); }, function (e) { toast('failed: ' + e.message); });
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function button(label, id, onClick) {
    var b = el('button', label); b.type = 'button'; if (id) b.id = id;
    b.addEventListener('click', onClick); return b;
  }
  // A cell is a text, a Node, or {wrap: text} for a long text that wraps inside its cell.
  function cell(c) {
    var td = document.createElement('td');
    if (c instanceof Node) td.appendChild(c);
    else if (c !== null && typeof c === 'object' && 'wrap' in c) { td.className = 'wrap'; td.textContent = c.wrap === null || c.wrap === undefined ? '–' : String(c.wrap); }
    else td.textContent = c === null || c === undefined ? '–' : String(c);
    return td;
  }
  function fill(tableId, rows) {
    var tb = $(tableId).tBodies[0];
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    rows.forEach(function (cells) {
      var tr = document.createElement('tr');
      cells.forEach(function (c) { tr.appendChild(cell(c)); });
      tb.appendChild(tr);
    });
  }
  function fmtNum(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
  function fmtSec(s) {
    if (s === null || s === undefined) return '–';
    if (!isFinite(s)) return '>30 s';
    return s < 0.01 ? (s * 1000).toFixed(1) + ' ms' : s < 1 ? Math.round(s * 1000) + ' ms' : s.toFixed(2) + ' s';
  }
  // A rule's colour: its own slot (from its id) when free, else the next free one; kept once given.
  function colorOf(rule) {
    if (ruleColor[rule]) return ruleColor[rule];
    var h = 0;
    for (var i = 0; i < rule.length; i++) h = (h * 31 + rule.charCodeAt(i)) >>> 0;
    var slot = h % RULE_COLORS.length;
    for (var k = 0; k < RULE_COLORS.length && usedColors[RULE_COLORS[slot]]; k++) slot = (slot + 1) % RULE_COLORS.length;
    ruleColor[rule] = RULE_COLORS[slot];
    usedColors[RULE_COLORS[slot]] = true;
    return ruleColor[rule];
  }
  function fmtUptime(s) { var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60); return h + 'h ' + m + 'm ' + (s % 60) + 's'; }
  function safeId(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, '_'); }

  // ---- charts ------------------------------------------------------------------------------
  function chartWidth(id) { return Math.max(300, $(id).clientWidth || 500); }
  // x axis: whole seconds as hh:mm:ss (the samples are one per second; uPlot's default would tick
  // half seconds as ":19.500").
  // `space`: the least distance between two ticks, wider than one "hh:mm:ss" label, so labels
  // never run together ("11:40:4011:40:50") however narrow the chart.
  function timeAxis() {
    if (range !== 'live') return historyAxis();
    return { stroke: '#8b96a3', grid: { stroke: '#2a333d' }, space: 90, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600],
      values: function (u, vals) { return vals.map(function (v) { return new Date(v * 1000).toTimeString().slice(0, 8); }); } };
  }
  // History ranges: minutes to days; labels in UTC like the rest of the history (hh:mm, or MM-DD hh:mm).
  function historyAxis() {
    var long = range === '7d' || range === '30d' || range === '1y';
    return { stroke: '#8b96a3', grid: { stroke: '#2a333d' }, space: long ? 110 : 70,
      incrs: [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000],
      values: function (u, vals) { return vals.map(function (v) { var iso = new Date(v * 1000).toISOString(); return long ? iso.slice(5, 10) + ' ' + iso.slice(11, 16) : iso.slice(11, 16); }); } };
  }
  function makeRateChart() {
    var opts = {
      width: chartWidth('chart-rate'), height: 200,
      scales: { x: { time: true } },
      series: [{}, { label: 'req/s', stroke: COLORS[0], width: 2 }, { label: '2xx', stroke: COLORS[1] }, { label: '3xx', stroke: COLORS[5] },
        { label: '4xx', stroke: COLORS[2] }, { label: '5xx', stroke: COLORS[3] }, { label: 'blocked', stroke: COLORS[4], dash: [4, 3] }],
      axes: [timeAxis(), { stroke: '#8b96a3', grid: { stroke: '#2a333d' } }],
    };
    rateChart = new uPlot(opts, [[], [], [], [], [], [], []], $('chart-rate'));
  }
  function updateRateChart(h) {
    if (!rateChart) makeRateChart();
    rateChart.setData([h.map(function (p) { return p.t; }), h.map(function (p) { return p.rps; }), h.map(function (p) { return p.s2xx; }),
      h.map(function (p) { return p.s3xx; }), h.map(function (p) { return p.s4xx; }), h.map(function (p) { return p.s5xx; }), h.map(function (p) { return p.blocked; })]);
  }
  function updateBlockChart(blocks) {
    var hist = blocks.history;
    var rules = blocks.topRules.slice(0, RULE_SERIES).map(function (r) { return r.key; });
    var sig = rules.join('\u0000');
    if (blockChart === null || sig !== blockRules) {
      if (blockChart) blockChart.destroy();
      var series = [{}].concat(rules.map(function (r) { return { label: r, stroke: colorOf(r), width: 2 }; }));
      if (rules.length === 0) series.push({ label: 'blocked', stroke: COLORS[3] });
      blockChart = new uPlot({ width: chartWidth('chart-blocked'), height: 200, scales: { x: { time: true } }, series: series,
        axes: [timeAxis(), { stroke: '#8b96a3', grid: { stroke: '#2a333d' } }] },
        [[]].concat(series.slice(1).map(function () { return []; })), $('chart-blocked'));
      blockRules = sig;
    }
    var data = [hist.map(function (p) { return p.t; })];
    if (rules.length === 0) data.push(hist.map(function (p) { return p.blocked; }));
    rules.forEach(function (r) { data.push(hist.map(function (p) { return p.byRule[r] || 0; })); });
    blockChart.setData(data);
  }

  // ---- stats -------------------------------------------------------------------------------
  function render(s, bans) {
    bannedKeys = {};
    (bans || []).forEach(function (b) { bannedKeys[b.key] = true; });
    $('node').textContent = s.node;
    $('uptime').textContent = fmtUptime(s.uptimeSec);
    $('ready').textContent = s.ready ? 'yes' : 'no';
    $('redis').textContent = s.redis;
    var last = s.history.length ? s.history[s.history.length - 1] : null;
    $('kpi-rps').textContent = fmtNum(last ? last.rps : 0);
    $('kpi-blocked').textContent = fmtNum(last ? last.blocked : 0);
    $('kpi-total').textContent = fmtNum(s.requests.total);
    $('kpi-blocked-window').textContent = fmtNum(s.blocks.blocked);
    $('kpi-p95').textContent = fmtSec(s.requests.latency.p95);
    $('kpi-conns').textContent = fmtNum(s.connections);
    $('kpi-bans').textContent = fmtNum(s.bans);
    $('kpi-table').textContent = fmtNum(s.tables.reduce(function (a, t) { return a + t.size; }, 0));
    $('kpi-dropped').textContent = fmtNum(s.events.sinks.reduce(function (a, x) { return a + x.dropped; }, 0) + s.events.wsClientDrops);
    $('kpi-auth').textContent = fmtNum(s.blocks.authFailures || 0);
    if (range === 'live') { updateRateChart(s.history); updateBlockChart(s.blocks); }

    fill('top-rules', s.blocks.topRules.map(function (r) { return [r.key, r.count]; }));
    fill('top-clients', s.blocks.topClients.map(function (r) {
      if (bannedKeys[r.key]) {
        // Already banned: say so, and offer the opposite.
        var st = document.createElement('span');
        st.appendChild(el('span', 'banned', 'banned'));
        st.appendChild(button('unban', 'topunban-' + safeId(r.key), function () { act('DELETE', '/api/bans/' + encodeURIComponent(r.key), undefined, 'unbanned ' + r.key); }));
        return [r.key, r.count, st];
      }
      return [r.key, r.count, button('ban', 'ban-' + safeId(r.key), function () { ban(r.key, '10m', 'dashboard: top blocked client'); })];
    }));
    fill('top-countries', s.blocks.topCountries.map(function (r) { return [r.key, r.count]; }));
    fill('top-asns', s.blocks.topAsns.map(function (r) { return [r.key, r.count]; }));
    var protos = s.protocols || {};
    var protoTotal = Object.keys(protos).reduce(function (a, k) { return a + protos[k]; }, 0);
    fill('protocols', Object.keys(protos).sort().map(function (k) {
      return ['HTTP/' + (k === '2' ? '2' : k), protos[k], protoTotal ? (100 * protos[k] / protoTotal).toFixed(1) + ' %' : '–'];
    }));
    var h2d = s.http2Defences || {};
    fill('h2-defences', Object.keys(h2d).sort(function (a, b) { return h2d[b] - h2d[a]; }).map(function (k) { return [k, h2d[k]]; }));

    var queue = {};
    s.queues.forEach(function (q) { queue[q.backend] = q.length; });
    fill('servers', s.servers.map(function (v) {
      var base = '/api/servers/' + encodeURIComponent(v.backend) + '/' + encodeURIComponent(v.name);
      var id = safeId(v.backend + '-' + v.name);
      var actions = document.createElement('span');
      actions.appendChild(button('drain', 'drain-' + id, function () { act('POST', base + '/drain', undefined, 'draining ' + v.backend + '/' + v.name); }));
      actions.appendChild(button('ready', 'ready-' + id, function () { act('POST', base + '/ready', undefined, v.backend + '/' + v.name + ' ready'); }));
      actions.appendChild(button('maint', 'maint-' + id, function () { act('POST', base + '/maint', undefined, v.backend + '/' + v.name + ' in maintenance'); }));
      var w = el('input'); w.type = 'number'; w.min = '0'; w.max = '256'; w.value = String(v.weight); w.size = 3; w.id = 'weight-' + id; w.className = 'weight';
      actions.appendChild(w);
      actions.appendChild(button('set weight', 'setweight-' + id, function () { act('PUT', base + '/weight', { weight: Number(w.value) }, 'weight set'); }));
      var q = queue[v.backend] !== undefined ? queue[v.backend] : v.queued;
      // A change made through the admin API that the config file does not hold is marked as such.
      var name = v.runtime ? el('span', v.name + ' (runtime: ' + v.runtime.join(', ') + ')', 'runtime') : v.name;
      return [v.backend, name, el('span', v.state, 'state-' + v.state), v.weight, v.active, q, v.total, v.checkStatus, actions];
    }));

    fill('tables', s.tables.map(function (t) { return [t.name, t.size]; }));
    fill('rules', s.rules.list.map(function (r) {
      var sel = el('select'); sel.id = 'mode-' + safeId(r.id);
      ['enforce', 'log_only', 'off'].forEach(function (m) { var o = el('option', m); o.value = m; if (m === r.mode) o.selected = true; sel.appendChild(o); });
      sel.addEventListener('change', function () { act('PUT', '/api/rules/' + encodeURIComponent(r.id) + '/mode', { mode: sel.value }, r.id + ' → ' + sel.value); });
      return [r.id, r.mode, sel, { wrap: r.action }];
    }));
  }

  function renderBans(list) {
    fill('bans', list.map(function (b) {
      return [b.key, b.reason, b.ttl === null ? 'none' : b.ttl + ' s', b.source,
        button('unban', 'unban-' + safeId(b.key), function () { act('DELETE', '/api/bans/' + encodeURIComponent(b.key), undefined, 'unbanned ' + b.key); })];
    }));
  }

  function ban(key, ttl, reason) {
    var n = Number(ttl);
    var t = ttl === '' ? null : isFinite(n) ? n : ttl;
    return act('POST', '/api/bans', { key: key, ttl: t, reason: reason }, 'banned ' + key);
  }

  function poll() {
    return Promise.all([api('GET', '/api/stats'), api('GET', '/api/bans')]).then(function (r) { render(r[0], r[1]); renderBans(r[1]); }, function () { /* next tick retries */ });
  }

  // ---- history ranges (GET /api/history) ----------------------------------------------------
  function resetCharts() {
    [rateChart, blockChart, latencyChart, utilChart].forEach(function (c) { if (c) c.destroy(); });
    rateChart = null; blockChart = null; latencyChart = null; utilChart = null; blockRules = ''; utilSig = '';
  }
  function setRange(r) {
    range = r;
    Array.prototype.forEach.call($('ranges').querySelectorAll('button'), function (b) { b.className = b.getAttribute('data-range') === r ? 'on' : ''; });
    resetCharts();
    $('history-charts').hidden = r === 'live';
    if (historyTimer) clearInterval(historyTimer); historyTimer = null;
    if (r === 'live') { $('range-note').textContent = 'last 2 minutes, per second'; poll(); return; }
    loadHistory();
    historyTimer = setInterval(loadHistory, 60000);
  }
  function loadHistory() {
    var r = range;
    return api('GET', '/api/history?range=' + encodeURIComponent(r)).then(function (h) { if (r === range) renderHistory(h); }, function (e) { toast('history: ' + e.message); });
  }
  function renderHistory(h) {
    var tot = h.total;
    var step = h.stepSec;
    var per = function (f) { return tot.map(function (p) { return p[f] === null || p[f] === undefined ? null : p[f] / step; }); };
    var xs = tot.map(function (p) { return p.t; });
    $('range-note').textContent = 'step ' + h.step + ' · ' + h.from.slice(0, 16).replace('T', ' ') + ' → ' + h.to.slice(0, 16).replace('T', ' ') + ' UTC · nodes: ' + h.nodes.join(', ') +
      (h.store && h.store.cluster.state === 'degraded' ? ' · cluster view degraded (Redis: ' + (h.store.cluster.reason || '?') + ')' : '');
    if (!rateChart) makeRateChart();
    rateChart.setData([xs, per('requests'), per('s2xx'), per('s3xx'), per('s4xx'), per('s5xx'), tot.map(function (p) { return (p.blocked + p.limited + p.banned) / step; })]);
    // Blocked per second by rule: the rules with the most enforced matches in the range.
    var rules = h.series.filter(function (x) { return x.kind === 'rule'; }).map(function (x) {
      return { key: x.key, sum: x.points.reduce(function (a, p) { return a + p.enforced; }, 0), byT: x.points.reduce(function (m, p) { m[p.t] = p.enforced; return m; }, {}) };
    }).sort(function (a, b) { return b.sum - a.sum; }).slice(0, RULE_SERIES);
    if (blockChart) blockChart.destroy();
    var bseries = [{}].concat(rules.map(function (r) { return { label: r.key, stroke: colorOf(r.key), width: 2 }; }));
    if (rules.length === 0) bseries.push({ label: 'blocked', stroke: COLORS[3] });
    var bdata = [xs];
    if (rules.length === 0) bdata.push(tot.map(function (p) { return (p.blocked + p.limited + p.banned) / step; }));
    rules.forEach(function (r) { bdata.push(xs.map(function (t) { return (r.byT[t] || 0) / step; })); });
    blockChart = new uPlot({ width: chartWidth('chart-blocked'), height: 200, scales: { x: { time: true } }, series: bseries, axes: [timeAxis(), { stroke: '#8b96a3', grid: { stroke: '#2a333d' } }] }, bdata, $('chart-blocked'));
    if (!latencyChart) {
      latencyChart = new uPlot({ width: chartWidth('chart-latency'), height: 200, scales: { x: { time: true } },
        series: [{}, { label: 'p50', stroke: COLORS[1] }, { label: 'p95', stroke: COLORS[2] }, { label: 'p99', stroke: COLORS[3], width: 2 }],
        axes: [timeAxis(), { stroke: '#8b96a3', grid: { stroke: '#2a333d' } }] }, [[], [], [], []], $('chart-latency'));
    }
    latencyChart.setData([xs, tot.map(function (p) { return p.p50_ms; }), tot.map(function (p) { return p.p95_ms; }), tot.map(function (p) { return p.p99_ms; })]);
    var servers = h.series.filter(function (x) { return x.kind === 'server' && x.points.some(function (p) { return p.util_peak !== null; }); }).slice(0, 8);
    var sig = servers.map(function (x) { return x.key; }).join('\u0000');
    if (utilChart === null || sig !== utilSig) {
      if (utilChart) utilChart.destroy();
      utilChart = new uPlot({ width: chartWidth('chart-util'), height: 200, scales: { x: { time: true }, y: { range: [0, 1] } },
        series: [{}].concat(servers.map(function (x, i) { return { label: x.key, stroke: RULE_COLORS[i % RULE_COLORS.length], value: function (u, v) { return v === null ? '–' : Math.round(v * 100) + ' %'; } }; })),
        axes: [timeAxis(), { stroke: '#8b96a3', grid: { stroke: '#2a333d' }, values: function (u, v) { return v.map(function (x) { return Math.round(x * 100) + ' %'; }); } }] },
        [[]].concat(servers.map(function () { return []; })), $('chart-util'));
      utilSig = sig;
    }
    var udata = [xs];
    servers.forEach(function (x) { var m = {}; x.points.forEach(function (p) { m[p.t] = p.util_peak; }); udata.push(xs.map(function (t) { return t in m ? m[t] : null; })); });
    utilChart.setData(udata);
  }

  // ---- export: the current view, one click ---------------------------------------------------
  function download(format) {
    var path = page === 'capacity' ? capacityQuery() + '&format=' + format : '/api/history?range=' + (range === 'live' ? '1h' : range) + '&format=' + format;
    return fetch(path, { headers: { authorization: 'Bearer ' + token } }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.blob();
    }).then(function (blob) {
      var a = document.createElement('a');
      var stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-');
      a.download = 'portcullis-' + (page === 'capacity' ? 'capacity' : 'history-' + (range === 'live' ? '1h' : range)) + '-' + stamp + '.' + format;
      a.href = URL.createObjectURL(blob);
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      toast('exported ' + a.download);
    }, function (e) { toast('export failed: ' + e.message); });
  }

  // ---- capacity page (GET /api/capacity) -----------------------------------------------------
  function capacityQuery() {
    var q = '/api/capacity?days=' + encodeURIComponent($('cap-days').value) + '&target=' + (Number($('cap-target').value) / 100) +
      '&growth=' + encodeURIComponent($('cap-growth').value || '0');
    if ($('cap-lose').value) q += '&lose=' + encodeURIComponent($('cap-lose').value);
    return q;
  }
  function pct(x) { return x === null || x === undefined || !isFinite(x) ? '–' : Math.round(x * 100) + ' %'; }
  function utilBar(u, target) {
    var wrap = el('span');
    var bar = el('span', null, 'util' + (u >= target ? ' bad' : u >= target * 0.85 ? ' warn' : ''));
    var fillEl = el('i'); fillEl.style.width = Math.min(100, Math.round((u || 0) * 100)) + '%';
    bar.appendChild(fillEl); wrap.appendChild(bar); wrap.appendChild(el('span', pct(u)));
    return wrap;
  }
  function setPage(p) {
    page = p;
    $('tab-overview').className = p === 'overview' ? 'on' : '';
    $('tab-capacity').className = p === 'capacity' ? 'on' : '';
    $('page-overview').hidden = p !== 'overview';
    $('page-capacity').hidden = p !== 'capacity';
    $('ranges').hidden = p !== 'overview';
    $('range-note').hidden = p !== 'overview';
    if (p === 'capacity') loadCapacity();
  }
  function loadCapacity() {
    return api('GET', capacityQuery()).then(renderCapacity, function (e) { toast('capacity: ' + e.message); });
  }
  function renderCapacity(v) {
    capView = v;
    var lose = $('cap-lose');
    var keep = lose.value;
    while (lose.options.length > 1) lose.remove(1);
    v.rows.filter(function (r) { return r.kind === 'server'; }).forEach(function (r) { var o = el('option', r.key); o.value = r.key; lose.appendChild(o); });
    lose.value = keep;
    var wi = v.whatIf;
    var what = (wi.growthPct ? (wi.growthPct > 0 ? '+' : '') + wi.growthPct + ' % traffic' : '') + (wi.lose ? (wi.growthPct ? ', ' : '') + wi.lose + ' lost' : '');
    $('cap-summary').textContent = v.crossing.length === 0
      ? 'Nothing reaches the ' + pct(v.target) + ' band' + (what ? ' with ' + what : '') + '.'
      : v.crossing.length + ' reach the ' + pct(v.target) + ' band' + (what ? ' with ' + what : '') + ': ' + v.crossing.join(', ');
    var tb = $('capacity-table').tBodies[0];
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    v.rows.forEach(function (r) {
      var tr = document.createElement('tr');
      tr.id = 'cap-' + safeId(r.key);
      if (r.whatIf.crosses) tr.className = 'crossing';
      if (capSelected === r.key) tr.className += ' sel';
      var c = r.current;
      var cross = r.crossing === null ? '–' : r.crossing.already ? 'already above' : r.crossing.date === null ? 'not within 2 years'
        : r.crossing.date + ' (' + (r.crossing.earliest || '?') + ' … ' + (r.crossing.latest || 'later') + ')';
      [r.kind === 'backend' ? r.key + ' (backend)' : r.key, r.maxconn || 'unlimited', r.capacityRps === null ? '–' : fmtNum(r.capacityRps),
        c ? c.day + ' ' + String(c.hour).padStart(2, '0') + ':00' : '–', c ? utilBar(c.util, v.target) : '–',
        r.trend ? (r.trend.perWeek >= 0 ? '+' : '') + (r.trend.perWeek * 100).toFixed(2) + ' pts' : '–', cross,
        r.headroomRps === null ? '–' : fmtNum(Math.round(r.headroomRps)), utilBar(r.whatIf.util, v.target)].forEach(function (x) { tr.appendChild(cell(x)); });
      tr.addEventListener('click', function () { capSelected = r.key; renderCapacity(capView); });
      tb.appendChild(tr);
    });
    var first = v.rows.filter(function (r) { return r.kind === 'server'; })[0] || v.rows[0];
    var sel = v.rows.filter(function (r) { return r.key === capSelected; })[0] || first;
    var methods = v.rows.filter(function (r) { return r.trend; }).map(function (r) { return r.trend.method; });
    $('cap-method').textContent = (methods[0] ? 'Trend: ' + methods[0] + '. ' : '') + 'Interval: the 95 % range of the slope. Utilisation: peak in flight ÷ maxconn, or req/s ÷ history.capacity.';
    renderCapChart(sel, v.target);
  }
  function renderCapChart(row, target) {
    if (capChart) { capChart.destroy(); capChart = null; }
    if (!row) return;
    $('cap-chart-title').textContent = 'Daily peaks: ' + row.key + ' (busiest hour, utilisation)';
    var xs = row.days.map(function (d) { return Date.parse(d.day) / 1000; });
    var saved = range; range = '30d';
    capChart = new uPlot({ width: chartWidth('chart-capacity'), height: 220, scales: { x: { time: true }, y: { range: [0, Math.max(1, target * 1.2)] } },
      series: [{}, { label: 'busiest hour', stroke: COLORS[0], width: 2, points: { show: true } }, { label: 'target band', stroke: COLORS[3], dash: [6, 4] }],
      axes: [timeAxis(), { stroke: '#8b96a3', grid: { stroke: '#2a333d' }, values: function (u, v) { return v.map(function (x) { return Math.round(x * 100) + ' %'; }); } }] },
      [xs, row.days.map(function (d) { return d.util; }), xs.map(function () { return target; })], $('chart-capacity'));
    range = saved;
  }

  // ---- live events -------------------------------------------------------------------------
  function currentFilter() {
    return { type: $('filter-type').value, rule: $('filter-rule').value.trim(), client: $('filter-client').value.trim() };
  }
  function matchesFilter(f, e) {
    if (f.type && e.type !== f.type) return false;
    if (f.rule && e.rule !== f.rule) return false;
    if (f.client) { var c = e.client || {}; if (c.ip !== f.client && c.key !== f.client && e.key !== f.client) return false; }
    return true;
  }
  function detail(e) {
    switch (e.type) {
      case 'health': return e.backend + '/' + e.server + ' ' + e.from + ' → ' + e.to;
      case 'redis': return 'state ' + e.state + (e.reason ? ' (' + e.reason + ')' : '');
      case 'reload': return (e.ok ? 'ok' : 'failed: ' + (e.errors || []).join('; ')) + (e.hash ? ' ' + e.hash : '');
      case 'admin': return e.who + ': ' + e.what + ' ' + (e.target || '') + ' ' + JSON.stringify(e.before) + ' → ' + JSON.stringify(e.after);
      case 'ban': case 'unban': return e.key + (e.ttl ? ' ttl ' + e.ttl + ' s' : '') + (e.reason ? ' — ' + e.reason : '');
      default:
        var c = e.counters ? Object.keys(e.counters).map(function (k) { return k + '=' + e.counters[k]; }).join(' ') : '';
        return [e.reason, c].filter(Boolean).join(' ');
    }
  }
  function eventRow(e) {
    var tr = document.createElement('tr');
    var c = e.client || {};
    var rq = e.request ? e.request.method + ' ' + e.request.host + e.request.path : null;
    [String(e.time || '').slice(11, 23), e.node, el('span', e.type, 't-' + e.type), c.ip, c.country, c.asn, e.rule, e.mode, e.status, e.term, { wrap: rq }, { wrap: detail(e) }]
      .forEach(function (v) { tr.appendChild(cell(v)); });
    return tr;
  }
  // The table shows one page of PAGE_SIZE events, newest first. The newest page is live; an older
  // page stays where it is while new events arrive (eventAnchor), until the user goes back.
  function renderEvents() {
    var pages = Math.max(1, Math.ceil((events.length - eventAnchor) / PAGE_SIZE));
    if (eventPage > pages - 1) eventPage = pages - 1;
    var start = eventAnchor + eventPage * PAGE_SIZE;
    var tb = $('events').tBodies[0];
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    events.slice(start, start + PAGE_SIZE).forEach(function (e) { tb.appendChild(eventRow(e)); });
    $('events-page').textContent = 'page ' + (eventPage + 1) + ' of ' + pages + (eventAnchor > 0 ? ' (' + eventAnchor + ' newer)' : '');
    $('events-newer').disabled = eventPage === 0 && eventAnchor === 0;
    $('events-older').disabled = eventPage >= pages - 1;
    $('event-count').textContent = eventCount + ' events';
  }
  var renderPending = false;
  function addEvent(e) {
    events.unshift(e);
    if (eventPage > 0) eventAnchor++;
    if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
    if (eventAnchor > events.length) eventAnchor = events.length;
    eventCount++;
    // A burst of events redraws the table once per frame, not once per event.
    if (!renderPending) { renderPending = true; requestAnimationFrame(function () { renderPending = false; renderEvents(); }); }
  }
  function clearEvents() { events = []; eventPage = 0; eventAnchor = 0; eventCount = 0; renderEvents(); }
  function connectFeed() {
    var f = currentFilter();
    var q = new URLSearchParams();
    if (f.type) q.set('type', f.type); if (f.rule) q.set('rule', f.rule); if (f.client) q.set('client', f.client);
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(proto + '//' + location.host + '/api/events/ws?' + q.toString(), ['portcullis', 'token.' + token]);
    ws.onopen = function () { $('feed-state').textContent = 'live'; };
    ws.onmessage = function (m) {
      var e; try { e = JSON.parse(m.data); } catch (x) { return; }
      if (e.kind) return; // hello / filter acknowledgements
      // Events already in flight when the filter changed: the server filters, this only trims them.
      if (matchesFilter(currentFilter(), e)) addEvent(e);
    };
    ws.onclose = function () {
      $('feed-state').textContent = 'reconnecting';
      if (token && !wsRetry) wsRetry = setTimeout(function () { wsRetry = null; if (token) connectFeed(); }, 2000);
    };
  }
  function loadRecent() {
    var f = currentFilter();
    var q = new URLSearchParams({ limit: '500' });
    if (f.type) q.set('type', f.type); if (f.rule) q.set('rule', f.rule); if (f.client) q.set('client', f.client);
    return api('GET', '/api/events/recent?' + q.toString()).then(function (list) { list.forEach(addEvent); renderEvents(); }, function () {});
  }

  // ---- session -----------------------------------------------------------------------------
  function start() {
    $('login').hidden = true; $('app').hidden = false;
    poll();
    pollTimer = setInterval(poll, 1000);
    loadRecent().then(connectFeed);
  }
  function logout(reason) {
    sessionStorage.removeItem(TOKEN_KEY); token = null;
    if (pollTimer) clearInterval(pollTimer); pollTimer = null;
    if (historyTimer) clearInterval(historyTimer); historyTimer = null;
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    $('app').hidden = true; $('login').hidden = false;
    $('login-error').textContent = reason || '';
  }

  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = $('token').value.trim();
    fetch('/api/stats', { headers: { authorization: 'Bearer ' + token } }).then(function (r) {
      if (r.status === 200) { sessionStorage.setItem(TOKEN_KEY, token); $('login-error').textContent = ''; start(); }
      else { token = null; $('login-error').textContent = r.status === 401 ? 'Wrong token' : 'Error ' + r.status; }
    }, function () { $('login-error').textContent = 'Admin listener unreachable'; });
  });
  $('logout').addEventListener('click', function () { logout(''); });
  $('ban-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    ban($('ban-key').value.trim(), $('ban-ttl').value.trim(), $('ban-reason').value.trim() || 'dashboard');
  });
  $('rules-reload').addEventListener('click', function () { act('POST', '/api/rules/reload', undefined, 'rules reloaded'); });
  $('event-filter').addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ filter: currentFilter() }));
    clearEvents(); loadRecent();
  });
  $('events-newer').addEventListener('click', function () {
    if (eventPage > 0) eventPage--;
    if (eventPage === 0) eventAnchor = 0; // back on the newest page: live again
    renderEvents();
  });
  $('events-older').addEventListener('click', function () { eventPage++; renderEvents(); });
  Array.prototype.forEach.call($('ranges').querySelectorAll('button'), function (b) {
    b.addEventListener('click', function () { setRange(b.getAttribute('data-range')); });
  });
  $('tab-overview').addEventListener('click', function () { setPage('overview'); });
  $('tab-capacity').addEventListener('click', function () { setPage('capacity'); });
  $('export-csv').addEventListener('click', function () { download('csv'); });
  $('export-json').addEventListener('click', function () { download('json'); });
  $('cap-form').addEventListener('submit', function (ev) { ev.preventDefault(); loadCapacity(); });
  window.addEventListener('resize', function () {
    if (rateChart) rateChart.setSize({ width: chartWidth('chart-rate'), height: 200 });
    if (blockChart) blockChart.setSize({ width: chartWidth('chart-blocked'), height: 200 });
    if (latencyChart) latencyChart.setSize({ width: chartWidth('chart-latency'), height: 200 });
    if (utilChart) utilChart.setSize({ width: chartWidth('chart-util'), height: 200 });
    if (capChart) capChart.setSize({ width: chartWidth('chart-capacity'), height: 220 });
  });

  // Read-only handle for the browser layout test (and the console): the uPlot charts, whose axis
  // labels are drawn on a canvas where the DOM cannot measure them.
  window.portcullisDashboard = { charts: function () { return [rateChart, blockChart, latencyChart, utilChart, capChart].filter(Boolean); } };

  if (token) start();
})();
