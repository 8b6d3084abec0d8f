/**
 * The console's script, inlined into the page (no external assets). Plain browser JavaScript: it reads
 * /console/models.json (every 5 s) and /console/stats.json (every 2 s), builds one section per model once and
 * then only updates it, so a request being edited in the try-it form is never reset. Text from the server is
 * only ever set as textContent. (No template literals or `${` in here: this is a String.raw.)
 */
export const PAGE_SCRIPT = String.raw`
'use strict';
var MODELS_MS = 5000, STATS_MS = 2000;
var sections = new Map();

function el(tag, attrs, children) {
  var node = document.createElement(tag);
  for (var key in attrs || {}) {
    if (key === 'text') node.textContent = attrs[key];
    else if (key === 'class') node.className = attrs[key];
    else node.setAttribute(key, attrs[key]);
  }
  (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
  return node;
}
function svgEl(tag, attrs) {
  var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (var key in attrs) node.setAttribute(key, attrs[key]);
  return node;
}
function idFor(name) { return 'model-' + name.replace(/[^A-Za-z0-9_.-]/g, '_'); }
function shape(s) { return '[' + s.map(function (d) { return d < 0 ? '-1' : String(d); }).join(', ') + ']'; }
function fmt(n, unit) {
  if (n === null || n === undefined) return '–';
  var digits = n >= 100 ? 0 : n >= 10 ? 1 : 2;
  return n.toFixed(digits) + (unit ? ' ' + unit : '');
}
function timeOf(ms) { return new Date(ms).toLocaleTimeString(); }
/** A request as people write one: each tensor on a line of its own. */
function requestText(request) {
  return '{"inputs": [\n' + request.inputs.map(function (t) { return '  ' + JSON.stringify(t); }).join(',\n') + '\n]}';
}
/** Output values for reading: floats to 6 significant digits (the raw response keeps them whole). */
function valueText(datatype, v) {
  return typeof v === 'number' && /^FP/.test(datatype) && !Number.isInteger(v) ? String(Number(v.toPrecision(6))) : JSON.stringify(v);
}
/** A table; a stacked one shows each row as label/value lines on a narrow screen (the CSS's .stacked). */
function table(caption, head, rows, stacked) {
  var t = el('table', stacked ? { class: 'stacked' } : {}, [
    caption ? el('caption', { class: 'sr-only', text: caption }) : null,
    el('thead', {}, [el('tr', {}, head.map(function (h) { return el('th', { scope: 'col', text: h }); }))]),
  ]);
  var body = el('tbody');
  rows.forEach(function (r) { body.appendChild(el('tr', {}, r.map(function (c, i) { return el('td', { 'data-label': head[i] }, [c]); }))); });
  t.appendChild(body);
  return el('div', { class: 'scroll' }, [t]);
}
function badge(version) {
  return el('span', { class: 'badge ' + (version.ready ? 'ok' : 'bad'), text: version.state + (version.ready ? '' : ' · not ready') });
}

function versionsTable(model) {
  return table('Versions of ' + model.name, ['Version', 'State', 'Image digest', 'Source'], model.versions.map(function (v) {
    var state = el('span', {}, [badge(v)]);
    if (v.error) state.appendChild(el('span', { class: 'error-text', text: ' ' + v.error }));
    return [v.version || '(unversioned)', state, v.digest ? el('code', { class: 'digest', text: v.digest }) : '–', el('code', { text: v.source })];
  }), true);
}

function signatureTable(signature, caption) {
  if (!signature) return el('p', { text: 'Signature not known yet: the model has not answered ModelMetadata.' });
  var rows = [];
  signature.inputs.forEach(function (s) { rows.push(['input', s.name, s.dtype, shape(s.shape)]); });
  signature.outputs.forEach(function (s) { rows.push(['output', s.name, s.dtype, shape(s.shape)]); });
  return table(caption, ['', 'Name', 'Datatype', 'Shape'], rows);
}
function signatureKey(model) { return JSON.stringify(model.versions.map(function (v) { return v.signature; })); }
/** One table when every version has the model's signature; else one per version, each under its version. */
function signatures(model) {
  var same = model.versions.every(function (v) { return JSON.stringify(v.signature) === JSON.stringify(model.signature); });
  if (same) return signatureTable(model.signature, 'Signature of ' + model.name + ' (' + model.kind + '; -1: any size)');
  return el('div', {}, model.versions.map(function (v) {
    return el('div', {}, [el('h4', { text: 'Version ' + (v.version || '(unversioned)') }), signatureTable(v.signature, 'Signature of ' + model.name + ' ' + v.version)]);
  }));
}

function outputsView(body) {
  var rows = (body.outputs || []).map(function (o) {
    var data = Array.isArray(o.data) ? o.data.flat(Infinity) : [];
    var text = '[' + data.slice(0, 64).map(function (v) { return valueText(o.datatype, v); }).join(', ') + (data.length > 64 ? ', … (' + data.length + ' values)' : '') + ']';
    return [o.name, o.datatype, shape(o.shape || []), el('code', { class: 'data', text: text })];
  });
  return el('div', {}, [
    table('Outputs of ' + body.model_name + (body.model_version ? ' ' + body.model_version : ''), ['Output', 'Datatype', 'Shape', 'Data'], rows, true),
    el('details', {}, [el('summary', { text: 'Raw response' }), el('pre', { class: 'raw' }, [el('code', { text: JSON.stringify(body, null, 1) })])]),
  ]);
}

function tryIt(model, id) {
  var area = el('textarea', { id: id + '-request', rows: '9', spellcheck: 'false', autocomplete: 'off', 'aria-describedby': id + '-hint' });
  area.value = requestText(model.example);
  var result = el('div', { class: 'result', id: id + '-result', role: 'status', 'aria-live': 'polite' });
  var send = el('button', { type: 'submit', text: 'Send request' });
  var reset = el('button', { type: 'button', class: 'secondary', text: 'Reset to example' });
  reset.addEventListener('click', function () { area.value = requestText(model.example); area.focus(); });
  var form = el('form', { class: 'try', 'aria-label': 'Try ' + model.name }, [
    el('label', { for: id + '-request', text: 'Request body (JSON)' }),
    el('p', { class: 'hint', id: id + '-hint' }, ['POST ', el('code', { text: model.infer }), ' · prefilled with an example from the signature']),
    area,
    el('div', { class: 'buttons' }, [send, reset]),
  ]);
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    send.disabled = true;
    result.replaceChildren(el('p', { text: 'Sending…' }));
    var started = performance.now();
    fetch(model.infer, { method: 'POST', headers: { 'content-type': 'application/json' }, body: area.value })
      .then(function (res) {
        return res.text().then(function (text) {
          var ms = performance.now() - started;
          var body = null;
          try { body = JSON.parse(text); } catch (e) { /* not JSON: shown as text */ }
          var head = el('p', { class: 'meta', text: 'HTTP ' + res.status + ' · ' + fmt(ms, 'ms') });
          if (res.ok && body && body.outputs) result.replaceChildren(head, outputsView(body));
          else result.replaceChildren(head, el('p', { class: 'error-box', role: 'alert', text: (body && body.error) || text || res.statusText }));
        });
      })
      .catch(function (error) { result.replaceChildren(el('p', { class: 'error-box', role: 'alert', text: 'The request did not reach the service: ' + error.message })); })
      .finally(function () { send.disabled = false; });
  });
  return el('div', {}, [form, result]);
}

function chart(label, series, unit) {
  var svg = svgEl('svg', { viewBox: '0 0 300 110', preserveAspectRatio: 'none', role: 'img', 'aria-label': label });
  var caption = el('figcaption');
  var axis = el('div', { class: 'time-axis', 'aria-hidden': 'true' }, [el('span', { text: '−3 min' }), el('span', { text: 'now' })]);
  var figure = el('figure', { class: 'chart' }, [svg, axis, caption]);
  return { figure: figure, svg: svg, caption: caption, label: label, series: series, unit: unit };
}

/** Redraws a chart from the model's points: one polyline per series, scaled to the largest value shown. */
function draw(c, points, windowMs, now) {
  var max = 0;
  points.forEach(function (p) { c.series.forEach(function (s) { var v = p[s.key]; if (v !== null && v > max) max = v; }); });
  var top = max > 0 ? max * 1.15 : 1;
  c.svg.replaceChildren(svgEl('line', { x1: 0, y1: 100, x2: 300, y2: 100, class: 'axis' }));
  c.series.forEach(function (s) {
    var coords = points.filter(function (p) { return p[s.key] !== null; }).map(function (p) {
      var x = 300 - ((now - p.t) / windowMs) * 300;
      var y = 100 - (p[s.key] / top) * 95;
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    if (coords.length) c.svg.appendChild(svgEl('polyline', { points: coords.join(' '), class: 'line ' + s.css, 'data-series': s.key }));
    // The latest point as a dot, so a chart with one point shows it.
    if (coords.length) { var xy = coords[coords.length - 1].split(','); c.svg.appendChild(svgEl('circle', { cx: xy[0], cy: xy[1], r: 2.5, class: 'dot ' + s.css })); }
  });
  c.caption.replaceChildren(el('span', { text: c.label + ' · latest ' }));
  c.series.forEach(function (s, i) {
    // Latencies exist only for intervals that answered something: the latest such.
    var latest = null;
    for (var j = points.length - 1; j >= 0 && latest === null; j--) latest = points[j][s.key];
    c.caption.appendChild(el('span', { class: 'key ' + s.css, 'data-series': s.key, text: (i ? ', ' : '') + s.name + ' ' + fmt(latest, c.unit) }));
  });
  c.caption.appendChild(el('span', { class: 'scale', text: ' · top of chart ' + fmt(top, c.unit) }));
}

function buildSection(model) {
  var id = idFor(model.name);
  var status = el('span', { class: 'status' });
  var versions = el('div');
  var rate = chart('Requests and errors per second', [{ key: 'requestsPerS', name: 'requests', css: 's1' }, { key: 'errorsPerS', name: 'errors', css: 's2' }], '/s');
  var latency = chart('Latency, milliseconds', [{ key: 'p50Ms', name: 'p50', css: 's1' }, { key: 'p99Ms', name: 'p99', css: 's3' }], 'ms');
  var errors = el('div', { class: 'errors' });
  var section = el('section', { class: 'model', id: id, 'aria-labelledby': id + '-title' }, [
    el('h2', { id: id + '-title' }, [el('span', { text: model.name }), ' ', status]),
    el('p', { class: 'links' }, [el('a', { href: model.docs, text: 'OpenAPI document' }), ' · ', el('a', { href: model.metadata, text: 'Metadata (JSON)' })]),
    el('div', { class: 'columns' }, [
      el('div', {}, [el('h3', { text: 'Versions' }), versions, el('h3', { text: 'Signature' }), signatures(model)]),
      el('div', {}, [el('h3', { text: 'Try it' }), tryIt(model, id)]),
    ]),
    el('h3', { text: 'Traffic' }),
    el('div', { class: 'charts' }, [rate.figure, latency.figure]),
    el('h3', { text: 'Recent errors' }),
    errors,
  ]);
  return { section: section, status: status, versions: versions, rate: rate, latency: latency, errors: errors, signature: signatureKey(model) };
}

function showModels(data) {
  document.getElementById('server').textContent = data.server.name + ' ' + data.server.version;
  var ready = document.getElementById('ready');
  ready.textContent = data.ready ? 'ready' : 'not ready';
  ready.className = 'badge ' + (data.ready ? 'ok' : 'bad');
  var main = document.getElementById('models');
  var nav = document.getElementById('nav');
  var names = new Set();
  data.models.forEach(function (model) {
    names.add(model.name);
    var s = sections.get(model.name);
    // A new model, or a new signature (a swapped image): built (again).
    if (!s || s.signature !== signatureKey(model)) {
      var fresh = buildSection(model);
      if (s) main.replaceChild(fresh.section, s.section); else main.appendChild(fresh.section);
      sections.set(model.name, s = fresh);
    }
    var allReady = model.versions.every(function (v) { return v.ready; });
    s.status.replaceChildren(el('span', { class: 'badge ' + (allReady ? 'ok' : 'bad'), text: allReady ? 'ready' : 'not ready' }));
    s.versions.replaceChildren(versionsTable(model));
  });
  sections.forEach(function (s, name) { if (!names.has(name)) { s.section.remove(); sections.delete(name); } });
  nav.replaceChildren.apply(nav, data.models.map(function (m) { return el('li', {}, [el('a', { href: '#' + idFor(m.name), text: m.name })]); }));
  document.getElementById('empty').hidden = data.models.length > 0;
}

function showStats(data) {
  var windowMs = data.intervalMs * 90;
  sections.forEach(function (s, name) {
    var stats = data.models[name] || { points: [], recentErrors: [], requests: 0, errors: 0 };
    draw(s.rate, stats.points, windowMs, data.now);
    draw(s.latency, stats.points, windowMs, data.now);
    if (!stats.recentErrors.length) { s.errors.replaceChildren(el('p', { class: 'muted', text: 'None since the service started (' + stats.requests + ' requests).' })); return; }
    var summary = stats.errors + ' errors in ' + stats.requests + ' requests since the service started; the latest ' + stats.recentErrors.length + ', newest first.';
    s.errors.replaceChildren(el('p', { class: 'muted', text: summary }), table('Recent errors of ' + name, ['Time', 'Version', 'Protocol', 'Code', 'Message'],
      stats.recentErrors.slice().reverse().map(function (e) { return [timeOf(e.at), e.version || '–', e.protocol, e.code, el('span', { class: 'error-text', text: e.message })]; }), true));
  });
}

function poll(url, show, everyMs) {
  var note = document.getElementById('offline');
  function tick() {
    fetch(url, { cache: 'no-store' })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (data) { note.hidden = true; show(data); })
      .catch(function (error) { note.hidden = false; note.textContent = 'Cannot reach the service (' + error.message + '); retrying.'; })
      .finally(function () { setTimeout(tick, everyMs); });
  }
  tick();
}

var statsStarted = false;
poll('/console/models.json', function (data) {
  showModels(data);
  // Stats once the sections exist to show them in.
  if (!statsStarted) { statsStarted = true; poll('/console/stats.json', showStats, STATS_MS); }
}, MODELS_MS);
`;
