/*
 * tessera web console: the browser side of /console/*.
 *
 * Fills the page named by <body data-page> into #content from the JSON of
 * /console/api/<path>, which the server forwards to /admin/v1/<path> with
 * the operator's admin token. The token inspector page is inspector.js's.
 *
 * Rules this file keeps:
 *  - Strict CSP: no inline script or style, no eval / new Function, no style
 *    attributes and no el.style. The look comes from console.css classes and
 *    SVG presentation attributes (x, y, width, text-anchor…) only.
 *  - Data from the API never goes through innerHTML: every node is built with
 *    createElement / createElementNS and textContent.
 *  - A control that needs a write scope is rendered only when data-scopes
 *    holds that scope or "*" (the API refuses anyway); a page whose read
 *    scope is missing says so and makes no call.
 *  - Times are shown in UTC ("2026-12-06 17:40:00 UTC"), with a relative hint.
 */
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  let content = null;
  let statusBox = null;
  let scopes = [];
  let csrf = '';
  let skew = 0; // the server's clock minus ours, in seconds (from the overview)
  let uid = 0;

  // ---- DOM helpers -------------------------------------------------------

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (!k.startsWith('on')) el.setAttribute(k, v === true ? '' : String(v));
      else if (typeof v === 'function') el.addEventListener(k.slice(2), v); // never a string handler
    }
  }

  function appendAll(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  /** An HTML element: h('p', {class: 'x'}, 'text', child…). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    return appendAll(el, children);
  }

  /** An SVG element. */
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    return appendAll(el, children);
  }

  const newId = (prefix) => `${prefix}-${++uid}`;
  const can = (scope) => scopes.includes('*') || scopes.includes(scope);
  const loading = () => h('p', { class: 'muted loading' }, 'Loading…');

  function say(text, kind) {
    if (!statusBox) return;
    statusBox.textContent = text || '';
    statusBox.classList.remove('ok', 'error');
    if (kind) statusBox.classList.add(kind);
  }

  function fail(e) {
    if (e && e.redirecting) return;
    say(e && e.message ? e.message : String(e), 'error');
  }

  function cannotRead(what, scope) {
    content.replaceChildren(h('p', { class: 'notice' }, `This admin token cannot read ${what} (needs scope ${scope}).`));
  }

  function section(title, ...children) {
    const id = newId('section');
    return h('section', { class: 'block', 'aria-labelledby': id }, h('h2', { id }, title), children);
  }

  /** A definition-list entry (a <div> grouping a <dt> and its <dd>). */
  function fact(term, ...value) {
    return h('div', null, h('dt', null, term), h('dd', null, value));
  }

  /** A value of unknown shape, as text. */
  function text(v) {
    if (v == null || v === '') return '—';
    if (Array.isArray(v)) return v.length ? v.map(text).join(', ') : '—';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function chips(list) {
    if (!Array.isArray(list) || !list.length) return h('span', { class: 'muted' }, '—');
    return list.map((x, i) => [i ? ' ' : null, h('code', { class: 'chip' }, text(x))]);
  }

  /** A table inside a horizontally scrolling wrapper. */
  function table(id, heads, rows, empty) {
    const body = rows.length ? rows : h('tr', { class: 'empty' }, h('td', { colspan: heads.length }, empty));
    return h('div', { class: 'table-wrap' },
      h('table', { id },
        h('thead', null, h('tr', null, heads.map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', null, body)));
  }

  // ---- time --------------------------------------------------------------

  const now = () => Math.floor(Date.now() / 1000) + skew;
  const isTime = (t) => typeof t === 'number' && Number.isFinite(t) && Math.abs(t) < 8.64e12;

  function utc(t) {
    if (!isTime(t)) return t == null ? '—' : String(t);
    return new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  /** A rough length of time: "40 s", "12 min", "5 h", "3 d". */
  function span(sec) {
    const a = Math.abs(Math.round(sec));
    if (a < 90) return `${a} s`;
    if (a < 5400) return `${Math.round(a / 60)} min`;
    if (a < 172800) return `${Math.round(a / 3600)} h`;
    return `${Math.round(a / 86400)} d`;
  }

  function rel(t, ref) {
    if (!isTime(t)) return '';
    const d = t - (ref == null ? now() : ref);
    if (Math.abs(d) < 5) return 'now';
    return d > 0 ? `in ${span(d)}` : `${span(d)} ago`;
  }

  /** A configured duration, exactly: "30 d (2592000 s)". */
  function exact(sec) {
    if (typeof sec !== 'number') return '—';
    for (const [n, unit] of [[86400, 'd'], [3600, 'h'], [60, 'min']]) {
      if (sec >= n && sec % n === 0) return `${sec / n} ${unit} (${sec} s)`;
    }
    return `${sec} s`;
  }

  /** A time as a <time> in UTC with its relative distance. */
  function when(t, ref) {
    if (!isTime(t)) return h('span', { class: 'muted' }, text(t));
    return h('span', { class: 'when' },
      h('time', { datetime: new Date(t * 1000).toISOString() }, utc(t)), ' ',
      h('span', { class: 'rel' }, rel(t, ref)));
  }

  /** <input type="datetime-local"> text read as UTC → Unix seconds. */
  function utcSeconds(v) {
    const m = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(v);
    if (!m) return null;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)) / 1000;
  }

  // ---- API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
      this.redirecting = status === 401;
    }
  }

  async function api(method, path, body) {
    const headers = { accept: 'application/json', 'x-csrf-token': csrf };
    const init = { method, credentials: 'same-origin', headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch('/console/api/' + path, init);
    } catch (e) {
      throw new ApiError(`The server could not be reached (${e.message}).`, 0, 'network');
    }
    if (res.status === 401) {
      location.href = '/console/login';
      throw new ApiError('Signed out: going to the sign-in page.', 401, 'invalid_token');
    }
    if (res.status === 204) return null;
    const raw = await res.text();
    let data = null;
    try { data = raw ? JSON.parse(raw) : null; } catch (_) { /* not JSON: reported by status below */ }
    if (!res.ok) {
      const msg = (data && (data.error_description || data.error)) ||
        `The request failed: HTTP ${res.status} ${res.statusText}`.trim();
      throw new ApiError(msg, res.status, data && data.error);
    }
    return data;
  }

  function withQuery(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, String(v));
    const qs = q.toString();
    return qs ? `${path}?${qs}` : path;
  }

  const enc = encodeURIComponent;

  /** GETs `path`; a failure is reported in #status (a "Loading…" left in `el`
   * is removed) and gives null. */
  async function load(el, path) {
    try {
      return await api('GET', path);
    } catch (e) {
      if (el.querySelector('.loading')) el.replaceChildren();
      fail(e);
      return null;
    }
  }

  /** Runs `fn` with `btn` disabled; a failure goes to #status. */
  async function busy(btn, fn) {
    btn.disabled = true;
    try {
      await fn();
    } catch (e) {
      fail(e);
    } finally {
      if (btn.isConnected) btn.disabled = false;
    }
  }

  // ---- inline forms and confirmations -------------------------------------

  /** Opens a form in a row under `tr` (one at a time per table); Escape or
   * Cancel closes it and gives the focus back to `opener`. */
  function openInline(tr, opener, build) {
    const tbody = tr.parentNode;
    tbody.querySelectorAll('tr.inline-row').forEach((r) => r.remove());
    let row = null;
    const close = () => { row.remove(); if (opener.isConnected) opener.focus(); };
    row = h('tr', { class: 'inline-row' }, h('td', { colspan: tr.children.length }, build(close)));
    row.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); close(); } });
    tr.after(row);
    const first = row.querySelector('input, button');
    if (first) first.focus();
  }

  /** A form whose destructive button stays disabled until `expected` is
   * typed exactly. */
  function typedConfirm({ label, expected, warning, action, run, close }) {
    const id = newId('confirm');
    const input = h('input', { id, type: 'text', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false',
      required: true, class: 'mono' });
    const go = h('button', { type: 'submit', class: 'danger', disabled: true }, action);
    const matches = () => input.value === expected;
    input.addEventListener('input', () => { go.disabled = !matches(); });
    const form = h('form', { class: 'inline-form confirm', 'aria-label': action },
      warning ? h('p', { class: 'warning' }, warning) : null,
      h('p', { class: 'hint' }, 'Expected: ', h('code', null, expected)),
      h('div', { class: 'field' }, h('label', { for: id }, label), input),
      h('div', { class: 'actions' }, go, h('button', { type: 'button', onclick: close }, 'Cancel')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!matches()) return;
      await busy(go, run);
      if (go.isConnected) go.disabled = !matches();
    });
    return form;
  }

  // ---- the key timeline ---------------------------------------------------

  const SEG_LABEL = { next: 'published (next)', current: 'signs (current)', retiring: 'retiring' };

  /** The SVG timeline of the signing keys, with an HTML legend. */
  function keyTimeline(keys, rotateEvery, t) {
    rotateEvery = Number(rotateEvery) || 0;
    const list = (keys || []).slice().sort((a, b) =>
      (a.created_at - b.created_at) || String(a.kid).localeCompare(String(b.kid)));
    if (!list.length) return h('p', { class: 'muted' }, 'No signing keys yet.');

    // A key signed if it had a signs_from and was not withdrawn before it.
    const signed = (k) => k.signs_from != null &&
      !(k.state === 'compromised' && k.leaves_jwks_at != null && k.leaves_jwks_at <= k.signs_from);
    const signers = list.filter(signed).sort((a, b) => a.signs_from - b.signs_from);
    const successor = (k) => signers.find((o) => o !== k && o.signs_from > k.signs_from);
    const nextKey = signers.find((k) => k.state === 'next');
    const current = signers.filter((k) => k.state === 'current').pop();
    let nextRotation = null;
    if (nextKey) nextRotation = nextKey.signs_from;
    else if (current && rotateEvery) nextRotation = current.signs_from + rotateEvery;

    function segments(k) {
      const cap = k.leaves_jwks_at;
      const out = [];
      let pubEnd = k.signs_from;
      if (pubEnd == null) pubEnd = cap != null ? cap : Math.max(t, nextRotation || t);
      out.push({ cls: 'next', a: k.created_at, b: pubEnd, open: false });
      if (signed(k) && k.state !== 'next') {
        const succ = successor(k);
        const open = !succ && k.state === 'current';
        let end = succ ? succ.signs_from : cap != null ? cap : t;
        if (open) end = t + rotateEvery;
        out.push({ cls: 'current', a: k.signs_from, b: end, open });
        if (cap != null && cap > end) out.push({ cls: 'retiring', a: end, b: cap, open: false });
      }
      return out
        .map((g) => Object.assign(g, { b: cap != null ? Math.min(g.b, cap) : g.b }))
        .filter((g) => isTime(g.a) && isTime(g.b) && g.b > g.a);
    }

    const rows = list.map((k) => ({ k, segs: segments(k) }));
    let t0 = Math.min(t, ...list.map((k) => k.created_at).filter(isTime));
    let t1 = Math.max(t, nextRotation || t, ...rows.flatMap((r) => r.segs.map((g) => g.b)));
    if (t1 - t0 < 3600) t1 = t0 + 3600;
    const pad = (t1 - t0) * 0.04;
    [t0, t1] = [t0 - pad, t1 + pad];

    const W = 960, L = 250, R = 24, TOP = 30, ROW = 28, BAR = 14;
    const H = TOP + rows.length * ROW + 40;
    const x = (v) => L + ((v - t0) / (t1 - t0)) * (W - L - R);
    const fx = (v) => x(v).toFixed(1);
    const anchor = (xv) => (xv > W - 110 ? 'end' : xv < L + 50 ? 'start' : 'middle');

    const summary = `Signing key timeline: ${list.length} key${list.length === 1 ? '' : 's'}` +
      `; current key ${current ? current.kid : 'none'}` +
      `; next rotation ${nextRotation != null ? utc(nextRotation) : 'not scheduled'}` +
      `; now ${utc(t)}.`;
    const svg = s('svg', {
      id: 'key-timeline', class: 'timeline', role: 'img', 'aria-label': summary,
      viewBox: `0 0 ${W} ${H}`, width: W, height: H, preserveAspectRatio: 'xMinYMin meet',
    }, s('title', null, 'Signing key timeline'), s('desc', null, summary),
    rows.map((_, i) => (i % 2 ? s('rect', { class: 'row-bg', x: 0, y: TOP + i * ROW, width: W, height: ROW }) : null)));

    // The time axis: ticks on whole hours / days / weeks (UTC).
    const steps = [3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
      14 * 86400, 30 * 86400, 91 * 86400, 365 * 86400];
    const step = steps.find((st) => (t1 - t0) / st <= 7) || Math.ceil((t1 - t0) / 7 / 86400) * 86400;
    const axis = s('g', { class: 'axis' });
    for (let v = Math.ceil(t0 / step) * step; v <= t1; v += step) {
      const xv = fx(v);
      const label = step >= 86400 ? utc(v).slice(0, 10) : utc(v).slice(5, 16);
      axis.append(
        s('line', { class: 'grid', x1: xv, x2: xv, y1: TOP - 4, y2: H - 34 }),
        s('text', { class: 'tick', x: xv, y: TOP - 12, 'text-anchor': 'middle' }, label,
          s('title', null, utc(v))));
    }
    svg.append(axis);

    rows.forEach(({ k, segs }, i) => {
      const y = TOP + i * ROW;
      const kid = String(k.kid);
      const short = kid.length > 14 ? `${kid.slice(0, 13)}…` : kid;
      const g = s('g', { class: `key-row state-${String(k.state).replace(/[^a-z]/g, '')}`, 'data-kid': kid });
      g.append(s('text', {
        class: 'key-label', x: L - 10, y: y + ROW / 2, 'text-anchor': 'end', 'dominant-baseline': 'middle',
      }, s('title', null, `${kid} (${k.state})`), `${short} `, s('tspan', { class: 'key-state' }, `(${k.state})`)));
      for (const seg of segs) {
        const x1 = x(seg.a);
        const w = Math.max(x(seg.b) - x1, 2);
        const cls = ['bar', seg.cls, k.state === 'compromised' ? 'compromised' : null, seg.open ? 'open' : null];
        const until = seg.open ? `${utc(seg.b)} or later (until the next rotation)` : utc(seg.b);
        g.append(s('rect', {
          class: cls.filter(Boolean).join(' '), x: x1.toFixed(1), y: y + (ROW - BAR) / 2,
          width: w.toFixed(1), height: BAR, rx: 3,
        }, s('title', null, `${kid} ${SEG_LABEL[seg.cls]}${k.state === 'compromised' ? ' (compromised key)' : ''}: ` +
          `${utc(seg.a)} → ${until}`)));
      }
      svg.append(g);
    });

    const xn = x(t);
    svg.append(s('g', { class: 'now' },
      s('title', null, `now: ${utc(t)}`),
      s('line', { x1: xn.toFixed(1), x2: xn.toFixed(1), y1: TOP - 4, y2: H - 30 }),
      s('text', { x: xn.toFixed(1), y: H - 18, 'text-anchor': anchor(xn) }, 'now')));
    if (nextRotation != null) {
      const xr = x(nextRotation);
      svg.append(s('g', { class: 'next-rotation' },
        s('title', null, `next rotation: ${utc(nextRotation)} (${rel(nextRotation, t)})`),
        s('line', { x1: xr.toFixed(1), x2: xr.toFixed(1), y1: TOP - 4, y2: H - 16 }),
        s('text', { x: xr.toFixed(1), y: H - 4, 'text-anchor': anchor(xr) }, 'next rotation')));
    }

    const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
      [['next', 'published (next)'], ['current', 'signs (current)'], ['retiring', 'retiring (still in the JWKS)'],
        ['compromised', 'compromised'], ['now', 'now'], ['next-rotation', 'next rotation']]
        .map(([cls, label]) => h('li', null, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), label)));
    const note = h('p', { class: 'hint' },
      `Next rotation: ${nextRotation != null ? `${utc(nextRotation)} (${rel(nextRotation, t)})` : 'not scheduled'}.`);
    return h('figure', { class: 'timeline-figure' }, h('div', { class: 'timeline-wrap' }, svg), legend, note);
  }

  // ---- overview ------------------------------------------------------------

  /** The nodes that reported themselves alive lately: a count, then each. */
  function nodesSeen(nodes, t) {
    const list = Array.isArray(nodes) ? nodes : [];
    if (!list.length) return h('span', { class: 'hint' }, 'none reported yet');
    return [String(list.length), h('ul', { id: 'nodes', class: 'plain' }, list.map((n) =>
      h('li', { 'data-node': text(n.id) },
        h('code', null, text(n.id)), ` ${text(n.version)}`,
        n.this ? h('span', { class: 'badge' }, 'this node') : null,
        h('span', { class: 'hint' }, ` — seen ${rel(n.seen_at, t)}, up since ${utc(n.started_at)}`))))];
  }

  async function overviewPage() {
    content.replaceChildren(loading());
    const keysCall = can('keys:read') ? api('GET', 'keys').then((ok) => ({ ok }), (err) => ({ err })) : null;
    const o = await load(content, 'overview');
    if (!o) return;
    if (isTime(o.now)) skew = o.now - Math.floor(Date.now() / 1000);
    const counts = o.counts || {};
    const count = (n, scope, href) => (n == null
      ? ['— ', h('span', { class: 'hint' }, `(this admin token lacks ${scope})`)]
      : h('a', { href }, String(n)));
    const facts = h('dl', { class: 'facts', id: 'overview' },
      fact('Issuer', h('code', null, text(o.issuer))),
      fact('Version', text(o.version)),
      fact('Store', text(o.store)),
      fact('Signing algorithm', text(o.signing_alg)),
      fact('Key rotation every', exact(o.rotate_every)),
      fact('JWKS cache lifetime', exact(o.jwks_max_age)),
      fact('Server time', when(o.now, o.now)),
      fact('Clients', count(counts.clients, 'clients:read', '/console/clients')),
      fact('Live sessions', count(counts.live_sessions, 'sessions:read', '/console/sessions')),
      fact('Nodes seen', nodesSeen(o.nodes, o.now)));
    const keys = section('Signing keys');
    content.replaceChildren(facts, keys);
    if (!keysCall) {
      return keys.append(h('p', { class: 'notice' }, 'This admin token cannot read signing keys (needs scope keys:read).'));
    }
    const r = await keysCall;
    if (r.err) return keys.append(h('p', { class: 'error' }, `The signing keys could not be read: ${r.err.message}`));
    keys.append(keyTimeline(r.ok.keys, r.ok.rotate_every != null ? r.ok.rotate_every : o.rotate_every, now()),
      h('p', null, h('a', { href: '/console/keys' }, 'Manage signing keys')));
  }

  // ---- keys ----------------------------------------------------------------

  let exposure = null; // the last compromise's message, until the page is left

  async function keysPage() {
    if (!can('keys:read')) return cannotRead('signing keys', 'keys:read');
    if (!content.firstChild) content.replaceChildren(loading());
    const data = await load(content, 'keys');
    if (!data) return;
    const t = now();
    const keys = data.keys || [];
    const parts = [];
    if (exposure) {
      parts.push(h('section', { id: 'exposure', class: 'exposure', tabindex: '-1', 'aria-labelledby': 'exposure-title' },
        h('h2', { id: 'exposure-title' }, 'Exposure window'), h('p', null, exposure)));
    }
    if (can('keys:write')) {
      const rotate = h('button', { type: 'button', id: 'rotate' }, 'Rotate now');
      rotate.addEventListener('click', () => busy(rotate, async () => {
        say('Rotating…');
        const r = await api('POST', 'keys/rotate');
        say(`Rotation: ${r.kid} signs from ${utc(r.signs_from)} (${rel(r.signs_from)}).`, 'ok');
        await keysPage();
        refocus('rotate');
      }));
      parts.push(h('div', { class: 'toolbar' }, rotate,
        h('span', { class: 'hint' }, 'A new key is published now and signs once every verifier can have fetched it.')));
    }
    parts.push(section('Timeline', keyTimeline(keys, data.rotate_every, t),
      h('p', { class: 'hint' }, `Keys rotate every ${exact(data.rotate_every)}; verifiers may cache the JWKS for ` +
        `${exact(data.jwks_max_age)}.`)));

    const write = can('keys:write');
    const heads = ['Key ID', 'Alg', 'State', 'Created', 'Signs from', 'Leaves JWKS', 'In JWKS'];
    if (write) heads.push('Actions');
    const rows = keys.map((k) => {
      const tr = h('tr', { 'data-kid': k.kid },
        h('td', null, h('code', null, k.kid)),
        h('td', null, text(k.alg)),
        h('td', null, h('span', { class: `state state-${String(k.state).replace(/[^a-z]/g, '')}` }, text(k.state))),
        h('td', null, when(k.created_at, t)),
        h('td', null, when(k.signs_from, t)),
        h('td', null, when(k.leaves_jwks_at, t)),
        h('td', null, k.in_jwks ? 'yes' : 'no'));
      if (write) {
        const cell = h('td', { class: 'actions' });
        if (k.state !== 'compromised' && k.state !== 'retired') {
          const btn = h('button', { type: 'button', class: 'danger', 'aria-label': `Mark ${k.kid} compromised` },
            'Mark compromised');
          btn.addEventListener('click', () => openInline(tr, btn, (close) => typedConfirm({
            label: 'Type the kid to confirm',
            expected: String(k.kid),
            warning: `A fresh key will sign from now on and ${k.kid} leaves the JWKS at once. ` +
              'Verifiers that cached the JWKS may still accept its tokens for a while.',
            action: `Mark ${k.kid} compromised`,
            close,
            run: () => markCompromised(k.kid),
          })));
          cell.append(btn);
        }
        tr.append(cell);
      }
      return tr;
    });
    parts.push(section('Keys', table('keys-table', heads, rows, 'No signing keys.')));
    content.replaceChildren(...parts);
  }

  async function markCompromised(kid) {
    const r = await api('POST', `keys/${enc(kid)}/compromised`);
    const until = r.verifiers_may_accept_until;
    const left = isTime(until) ? until - now() : null;
    const distance = left == null ? '' : left >= 0 ? ` (${left} s from now)` : ` (${-left} s ago)`;
    exposure = `Key ${r.kid} marked compromised; ${r.new_kid} signs now. Verifiers that cached the JWKS ` +
      `may accept tokens signed by ${r.kid} until ${utc(until)}${distance}.`;
    say(exposure, 'ok');
    await keysPage();
    const box = document.getElementById('exposure');
    if (box) box.focus();
  }

  // ---- clients -------------------------------------------------------------

  // The API's grant names (crate::clients::GRANTS), not the token endpoint's grant_type URIs.
  const GRANTS = [['client_credentials', 'client_credentials'], ['refresh_token', 'refresh_token'],
    ['token_exchange', 'token_exchange (urn:ietf:params:oauth:grant-type:token-exchange)'], ['sessions', 'sessions']];
  const words = (v) => v.split(/[\s,]+/).filter(Boolean);

  /** Shows a secret once, in the slot at the top of the clients page. */
  function showSecret(slot, clientId, secret, note) {
    const value = h('code', { id: 'new-secret-value' }, secret);
    const copy = h('button', { type: 'button', id: 'copy-secret' }, 'Copy');
    copy.addEventListener('click', () => {
      const byHand = (why) => {
        const range = document.createRange();
        range.selectNodeContents(value);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        say(`The secret was not copied${why ? ` (${why})` : ''}: it is selected, copy it with Ctrl+C / ⌘C.`, 'error');
      };
      if (!navigator.clipboard || !navigator.clipboard.writeText) return byHand('no clipboard access on this page');
      navigator.clipboard.writeText(secret).then(
        () => say('Secret copied to the clipboard.', 'ok'),
        (e) => byHand(e && e.message));
    });
    const done = h('button', { type: 'button' }, 'I have stored it');
    const box = h('section', { id: 'new-secret', class: 'secret-box', tabindex: '-1', 'aria-labelledby': 'new-secret-title' },
      h('h2', { id: 'new-secret-title' }, 'New client secret'),
      h('p', null, 'Client ID: ', h('code', { id: 'new-secret-client' }, clientId)),
      h('p', { class: 'secret-line' }, 'Secret: ', value, ' ', copy),
      h('p', { class: 'warning' }, 'This secret is shown once: store it now.'),
      note ? h('p', null, note) : null,
      done);
    done.addEventListener('click', () => { box.remove(); say(''); });
    slot.replaceChildren(box);
    box.focus();
  }

  async function clientsPage() {
    if (!can('clients:read')) return cannotRead('clients', 'clients:read');
    const write = can('clients:write');
    const slot = h('div', { id: 'secret-slot' });
    const list = h('div', { id: 'clients-list' }, loading());
    content.replaceChildren(slot, list);
    if (write) content.append(createClientForm(slot, reload));

    async function reload() {
      const data = await load(list, 'clients');
      if (!data) return;
      const t = now();
      const heads = ['Client ID', 'Name', 'Grants', 'Authentication', 'Audiences', 'Scopes', 'Delegation', 'Created'];
      if (write) heads.push('Actions');
      const rows = (data.clients || []).map((c) => clientRow(c, t, write, slot, reload));
      list.replaceChildren(section('Registered clients', table('clients-table', heads, rows, 'No clients yet.')));
    }
    await reload();
  }

  function clientRow(c, t, write, slot, reload) {
    const id = String(c.client_id);
    const tr = h('tr', { 'data-client-id': id },
      h('td', null, h('code', null, id)),
      h('td', null, text(c.name)),
      h('td', null, chips(c.grants)),
      h('td', null, c.public ? 'none (public client)' : text(c.auth), h('div', { class: 'hint' }, `DPoP ${text(c.dpop)}`),
        c.previous_secret_valid_until == null ? null
          : h('div', { class: 'hint' }, 'previous secret works until ', when(c.previous_secret_valid_until, t))),
      h('td', null, c.audiences == null ? h('span', { class: 'muted' }, 'default rule') : chips(c.audiences)),
      h('td', null, chips(c.scopes)),
      h('td', null, (c.may_act || []).length || (c.introspect || []).length
        ? [h('div', null, 'may act for: ', chips(c.may_act)), h('div', null, 'introspects: ', chips(c.introspect))]
        : h('span', { class: 'muted' }, '—')),
      h('td', null, when(c.created_at, t)));
    if (!write) return tr;
    const cell = h('td', { class: 'actions' });
    if (!c.public && c.auth !== 'private_key_jwt' && c.auth !== 'none') {
      const roll = h('button', { type: 'button', 'aria-label': `Roll the secret of ${id}` }, 'Roll secret');
      roll.addEventListener('click', () => openInline(tr, roll, (close) => rollForm(id, close, slot, reload)));
      cell.append(roll);
    }
    const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${id}` }, 'Delete');
    del.addEventListener('click', () => openInline(tr, del, (close) => typedConfirm({
      label: 'Type the client_id to confirm',
      expected: id,
      warning: `Deleting ${id} (${text(c.name)}) also deletes its sessions and tokens. This cannot be undone.`,
      action: `Delete ${id}`,
      close,
      run: async () => {
        await api('DELETE', `clients/${enc(id)}`);
        say(`Client ${id} deleted.`, 'ok');
        await reload();
      },
    })));
    cell.append(' ', del);
    tr.append(cell);
    return tr;
  }

  function rollForm(id, close, slot, reload) {
    const gid = newId('grace');
    const grace = h('input', { id: gid, type: 'number', min: '0', step: '1', value: '0', inputmode: 'numeric', required: true });
    const go = h('button', { type: 'submit', class: 'danger' }, `Roll the secret of ${id}`);
    const form = h('form', { class: 'inline-form', 'aria-label': `Roll the secret of ${id}` },
      h('p', { class: 'hint' }, 'A new secret is issued now. With a grace period of 0 the current secret stops working at once.'),
      h('div', { class: 'field' }, h('label', { for: gid }, 'Grace period in seconds (the current secret keeps working)'), grace),
      h('div', { class: 'actions' }, go, h('button', { type: 'button', onclick: close }, 'Cancel')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const seconds = Number(grace.value);
      if (grace.value.trim() === '' || !Number.isInteger(seconds) || seconds < 0) {
        grace.focus();
        return say('The grace period is a whole number of seconds, 0 or more.', 'error');
      }
      busy(go, async () => {
        const r = await api('POST', `clients/${enc(id)}/secret`, { grace_seconds: seconds });
        const until = r.previous_secret_valid_until;
        const note = until != null
          ? `The previous secret keeps working until ${utc(until)} (${rel(until)}).`
          : 'The previous secret no longer works.';
        await reload();
        say(`New secret issued for ${id}.`, 'ok');
        showSecret(slot, r.client_id || id, r.client_secret, note);
      });
    });
    return form;
  }

  function createClientForm(slot, reload) {
    const field = (id, label, input, hint) => {
      const hid = hint ? `${id}-hint` : null;
      if (hid) input.setAttribute('aria-describedby', hid);
      return h('div', { class: 'field' }, h('label', { for: id }, label), input,
        hint ? h('p', { class: 'hint', id: hid }, hint) : null);
    };
    const name = h('input', { id: 'client-name', name: 'name', type: 'text', required: true, autocomplete: 'off' });
    const audiences = h('input', { id: 'client-audiences', name: 'audiences', type: 'text', autocomplete: 'off' });
    const scopeIn = h('input', { id: 'client-scopes', name: 'scopes', type: 'text', autocomplete: 'off' });
    const checks = GRANTS.map(([value, label]) => {
      const id = `grant-${value}`;
      return h('div', { class: 'check' },
        h('input', { type: 'checkbox', id, name: 'grants', value, checked: value === 'client_credentials' }),
        h('label', { for: id }, label));
    });
    const go = h('button', { type: 'submit' }, 'Create client');
    const form = h('form', { id: 'create-client', class: 'stack card', 'aria-labelledby': 'create-client-title' },
      h('h2', { id: 'create-client-title' }, 'Register a client'),
      field('client-name', 'Name', name),
      h('fieldset', null, h('legend', null, 'Grants'), checks),
      field('client-audiences', 'Audiences', audiences,
        'Comma or space separated. Leave empty for the default audience rule.'),
      field('client-scopes', 'Scopes', scopeIn, 'Comma or space separated.'),
      h('div', { class: 'actions' }, go));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {
        name: name.value.trim(),
        grants: [...form.querySelectorAll('input[name="grants"]:checked')].map((i) => i.value),
      };
      if (!body.name) return say('A client needs a name.', 'error');
      if (!body.grants.length) return say('Choose at least one grant.', 'error');
      const aud = words(audiences.value);
      const sc = words(scopeIn.value);
      if (aud.length) body.audiences = aud;
      if (sc.length) body.scopes = sc;
      busy(go, async () => {
        const r = await api('POST', 'clients', body);
        form.reset();
        await reload();
        say(`Client ${r.client_id} created.`, 'ok');
        if (r.client_secret) showSecret(slot, r.client_id, r.client_secret, null);
      });
    });
    return form;
  }

  // ---- paging --------------------------------------------------------------

  /** Previous / Next buttons over `after` cursors; `state.trail` holds the
   * cursors of the pages before. */
  function pager(state, next, go, idPrefix) {
    const bar = h('div', { class: 'pager' });
    if (state.trail.length) {
      const prev = h('button', { type: 'button', id: `${idPrefix}-prev` }, '← Previous page');
      prev.addEventListener('click', () => {
        state.after = state.trail.pop();
        go(`${idPrefix}-prev`);
      });
      bar.append(prev);
    }
    if (next != null) {
      const more = h('button', { type: 'button', id: `${idPrefix}-next` }, 'Next page →');
      more.addEventListener('click', () => {
        state.trail.push(state.after);
        state.after = String(next);
        go(`${idPrefix}-next`);
      });
      bar.append(' ', more);
    }
    return bar.firstChild ? bar : null;
  }

  function refocus(id) {
    const el = id && document.getElementById(id);
    if (el) el.focus();
  }

  // ---- sessions ------------------------------------------------------------

  async function sessionsPage() {
    if (!can('sessions:read')) return cannotRead('sessions', 'sessions:read');
    const write = can('sessions:write');
    const state = { sub: '', client_id: '', after: '', trail: [] };
    const sub = h('input', { id: 'search-sub', name: 'sub', type: 'search', autocomplete: 'off' });
    const client = h('input', { id: 'search-client', name: 'client_id', type: 'search', autocomplete: 'off' });
    const form = h('form', { id: 'session-search', class: 'filters', role: 'search', 'aria-label': 'Search sessions' },
      h('div', { class: 'field' }, h('label', { for: 'search-sub' }, 'Subject (sub)'), sub),
      h('div', { class: 'field' }, h('label', { for: 'search-client' }, 'Client ID'), client),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')));
    const bulk = h('div', { id: 'bulk-revoke' });
    const results = h('div', { id: 'session-results' }, loading());
    content.replaceChildren(form, bulk, results);

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      Object.assign(state, { sub: sub.value.trim(), client_id: client.value.trim(), after: '', trail: [] });
      search();
    });

    async function search(focusId) {
      const data = await load(results,
        withQuery('sessions', { sub: state.sub, client_id: state.client_id, after: state.after }));
      if (!data) return;
      renderBulk();
      const t = now();
      const heads = ['Session', 'Subject', 'Client', 'Audience', 'Scope', 'AMR / ACR', 'Created', 'Expires', 'Status'];
      if (write) heads.push('Actions');
      const rows = (data.sessions || []).map((x) => {
        const status = x.active ? h('span', { class: 'badge ok' }, 'active')
          : x.revoked_at != null ? [h('span', { class: 'badge' }, 'revoked'), ' ', when(x.revoked_at, t)]
            : h('span', { class: 'badge' }, 'expired');
        const tr = h('tr', { 'data-session-id': x.id },
          h('td', null, h('code', null, text(x.id))),
          h('td', null, text(x.sub), x.org != null ? h('div', { class: 'hint' }, `org ${text(x.org)}`) : null),
          h('td', null, h('code', null, text(x.client_id))), h('td', null, text(x.audience)), h('td', null, text(x.scope)),
          h('td', null, text(x.amr), x.acr != null ? h('div', { class: 'hint' }, `acr ${text(x.acr)}`) : null),
          h('td', null, when(x.created_at, t)), h('td', null, when(x.expires_at, t)), h('td', null, status));
        if (write) {
          const cell = h('td', { class: 'actions' });
          if (x.active) {
            const btn = h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke session ${x.id}` }, 'Revoke');
            btn.addEventListener('click', () => busy(btn, async () => {
              await api('DELETE', `sessions/${enc(x.id)}`);
              say(`Session ${x.id} revoked.`, 'ok');
              await search();
            }));
            cell.append(btn);
          }
          tr.append(cell);
        }
        return tr;
      });
      const filters = [state.sub && `sub ${state.sub}`, state.client_id && `client ${state.client_id}`].filter(Boolean);
      results.replaceChildren(section('Sessions',
        h('p', { class: 'hint' }, `${rows.length} session${rows.length === 1 ? '' : 's'} on this page` +
          (filters.length ? ` (${filters.join(', ')})` : ' (no filter)') + '.'),
        table('sessions-table', heads, rows, 'No sessions match.'),
        pager(state, data.next, search, 'sessions')));
      refocus(focusId);
    }

    function renderBulk() {
      const target = state.sub;
      if (!write || !target) return bulk.replaceChildren();
      const open = h('button', { type: 'button', class: 'danger', id: 'revoke-all' }, `Revoke all sessions of ${target}`);
      open.addEventListener('click', () => {
        const yes = h('button', { type: 'button', class: 'danger', id: 'revoke-all-confirm' },
          `Yes, revoke all sessions of ${target}`);
        const no = h('button', { type: 'button' }, 'Cancel');
        const box = h('div', { class: 'confirm card', role: 'group', 'aria-label': `Revoke all sessions of ${target}` },
          h('p', { class: 'warning' }, `Every session of ${target} ends now, on every client; their tokens stop working.`),
          h('div', { class: 'actions' }, yes, ' ', no));
        no.addEventListener('click', () => { renderBulk(); refocus('revoke-all'); });
        yes.addEventListener('click', () => busy(yes, async () => {
          const r = await api('POST', 'revocations', { sub: target });
          const n = r && r.sessions_revoked;
          say(`Revoked ${n} session${n === 1 ? '' : 's'} of ${target}.`, 'ok');
          Object.assign(state, { after: '', trail: [] });
          await search();
        }));
        bulk.replaceChildren(box);
        yes.focus();
      });
      bulk.replaceChildren(h('div', { class: 'toolbar' }, open));
    }

    await search();
  }

  // ---- audit ---------------------------------------------------------------

  const AUDIT_KNOWN = new Set(['seq', 'at', 'time', 'action', 'actor', 'outcome', 'subject', 'target',
    'request_id', 'source_ip', 'details']);

  function actorText(a) {
    if (!a || typeof a !== 'object' || Array.isArray(a)) return text(a);
    return a.id != null && a.id !== '' ? `${a.type || 'actor'}: ${a.id}` : text(a.type);
  }

  function outcomeClass(o) {
    const v = String(o || '').toLowerCase();
    if (/^(ok|success|succeeded|allowed|granted)$/.test(v)) return 'badge ok';
    if (/fail|den|error|refus|reject|invalid/.test(v)) return 'badge error';
    return 'badge';
  }

  function keyValues(obj) {
    const entries = Object.entries(obj);
    if (!entries.length) return null;
    return h('dl', { class: 'kv' }, entries.map(([k, v]) =>
      h('div', null, h('dt', null, k), h('dd', null, typeof v === 'string' ? v : JSON.stringify(v)))));
  }

  function auditDetails(e) {
    const parts = [];
    if (e.details != null) {
      parts.push(typeof e.details === 'object' && !Array.isArray(e.details)
        ? keyValues(e.details) : h('span', null, text(e.details)));
    }
    const others = {};
    for (const [k, v] of Object.entries(e)) if (!AUDIT_KNOWN.has(k)) others[k] = v;
    const more = keyValues(others);
    if (more) parts.push(h('details', null, h('summary', null, 'More fields'), more));
    return parts.filter(Boolean).length ? parts : h('span', { class: 'muted' }, '—');
  }

  async function auditPage() {
    if (!can('audit:read')) return cannotRead('the audit trail', 'audit:read');
    const state = { action: '', actor: '', since: '', until: '', after: '', trail: [] };
    const chain = h('p', { id: 'chain-status', class: 'chain muted' }, 'Verifying the chain…');
    const input = (id, type, label) => {
      const el = h('input', { id, type, autocomplete: 'off', step: type === 'datetime-local' ? '1' : null });
      return [el, h('div', { class: 'field' }, h('label', { for: id }, label), el)];
    };
    const [action, actionField] = input('audit-action', 'text', 'Action');
    const [actor, actorField] = input('audit-actor', 'text', 'Actor (id or type)');
    const [since, sinceField] = input('audit-since', 'datetime-local', 'Since (UTC)');
    const [until, untilField] = input('audit-until', 'datetime-local', 'Until (UTC)');
    const clear = h('button', { type: 'button' }, 'Clear');
    const form = h('form', { id: 'audit-filter', class: 'filters', role: 'search', 'aria-label': 'Filter the audit trail' },
      actionField, actorField, sinceField, untilField,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter'), ' ', clear),
      h('p', { class: 'hint wide' }, 'Since and until are read as UTC, not your local time; both are inclusive.'));
    const results = h('div', { id: 'audit-results' }, loading());
    content.replaceChildren(chain, form, results);

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const from = since.value ? utcSeconds(since.value) : '';
      const to = until.value ? utcSeconds(until.value) : '';
      if (from === null || to === null) return say('A time could not be read: use the date and time picker.', 'error');
      if (from !== '' && to !== '' && from > to) return say('"Since" is after "until".', 'error');
      Object.assign(state, { action: action.value.trim(), actor: actor.value.trim(), since: from, until: to,
        after: '', trail: [] });
      say('');
      list();
    });
    clear.addEventListener('click', () => {
      form.reset();
      Object.assign(state, { action: '', actor: '', since: '', until: '', after: '', trail: [] });
      list();
    });

    async function verify() {
      try {
        const v = await api('GET', 'audit/verify');
        if (v.broken_at == null) {
          chain.textContent = `Chain verified through seq ${v.verified_through} (${v.events} events)`;
          chain.className = 'chain ok';
        } else {
          chain.textContent = `Chain broken at seq ${v.broken_at}: ${v.reason || 'no reason given'}`;
          chain.className = 'chain error';
        }
      } catch (e) {
        if (e.redirecting) return;
        chain.textContent = `The chain could not be verified: ${e.message}`;
        chain.className = 'chain error';
      }
    }

    async function list(focusId) {
      const { action: a, actor: who, since: from, until: to, after } = state;
      const data = await load(results, withQuery('audit', { action: a, actor: who, since: from, until: to, after }));
      if (!data) return;
      const t = now();
      const events = data.events || [];
      const rows = events.map((e) => h('tr', { 'data-seq': e.seq },
        h('td', { class: 'num' }, text(e.seq)),
        h('td', null, when(e.at != null ? e.at : e.time, t)),
        h('td', null, h('code', null, text(e.action))),
        h('td', null, actorText(e.actor)),
        h('td', null, h('span', { class: outcomeClass(e.outcome) }, text(e.outcome))),
        h('td', null, text(e.subject != null ? e.subject : e.target)),
        h('td', null, e.request_id ? h('code', null, e.request_id) : '—'),
        h('td', null, text(e.source_ip)),
        h('td', { class: 'details' }, auditDetails(e))));
      const filtered = a || who || from !== '' || to !== '';
      const empty = data.next != null
        ? 'No matching events in this stretch of the trail: the next page searches on.'
        : filtered ? 'No events match.' : 'No events.';
      results.replaceChildren(section('Events',
        h('p', { class: 'hint' }, `Oldest first, ${events.length} event${events.length === 1 ? '' : 's'} on this page` +
          (after ? `, after seq ${after}` : '') + '.'),
        table('audit-table', ['Seq', 'Time', 'Action', 'Actor', 'Outcome', 'Target', 'Request', 'Source IP', 'Details'],
          rows, empty),
        pager(state, data.next, list, 'audit')));
      refocus(focusId);
    }

    await Promise.all([verify(), list()]);
  }

  // ---- resources -----------------------------------------------------------

  const FORMATS = {
    jws: 'jws: signed, readable by any holder',
    jwe: 'jwe: encrypted to the resource',
    nested: 'nested: signed, then encrypted to the partner',
  };

  async function resourcesPage() {
    if (!can('clients:read')) return cannotRead('resources', 'clients:read');
    content.replaceChildren(loading());
    const data = await load(content, 'resources');
    if (!data) return;
    const list = data.resources || [];
    if (!list.length) {
      return content.replaceChildren(h('p', { class: 'notice' }, 'No resources are configured ([[resources]] in the configuration).'));
    }
    content.replaceChildren(h('div', { class: 'cards' }, list.map((r) => {
      const id = newId('resource');
      return h('section', { class: 'card resource', 'data-audience': r.audience, 'aria-labelledby': id },
        h('h2', { id }, h('code', null, text(r.audience))),
        h('p', { class: 'reader' }, text(r.readable_by)),
        h('dl', { class: 'facts' },
          fact('Format', FORMATS[r.format] || text(r.format)),
          fact('Algorithms', chips(r.algorithms)),
          fact('Declared claims', chips(r.claims)),
          fact('Released attributes', chips(r.release)),
          fact('DPoP', text(r.dpop))));
    })));
  }

  // ---- start ---------------------------------------------------------------

  const PAGES = { overview: overviewPage, keys: keysPage, clients: clientsPage, sessions: sessionsPage,
    audit: auditPage, resources: resourcesPage };

  function start() {
    const run = PAGES[document.body.dataset.page || ''];
    content = document.getElementById('content');
    statusBox = document.getElementById('status');
    if (!run || !content) return; // inspector (inspector.js), login, not-found
    scopes = (document.body.dataset.scopes || '').split(/\s+/).filter(Boolean);
    const meta = document.querySelector('meta[name="csrf-token"]');
    csrf = meta ? meta.getAttribute('content') || '' : '';
    Promise.resolve().then(run).catch(fail);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
