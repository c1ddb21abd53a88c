// Nodewright UI: renders the view the URL names from the server's JSON, and renders it again when
// /events says something changed. No framework, no build step: the file is served as written.
'use strict';

// h('tag', {attr: value}, child, ...): an element; text children are text nodes, never HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function time(t) {
  if (!t) return '—';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function badge(text, kind) {
  return h('span', { class: 'badge ' + (kind || String(text)) }, text);
}

// A table: rows, and columns as [header, row => cell content].
function table(caption, rows, columns) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty' }, caption + ': none.');
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map(([name]) => h('th', { scope: 'col' }, name)))),
    h('tbody', {}, rows.map(r => h('tr', {}, columns.map(([, f]) => h('td', {}, f(r)))))));
}

function conditions(list, caption) {
  return table(caption || 'Conditions', list || [], [
    ['Type', c => c.type],
    ['Status', c => badge(c.status, 'cond-' + c.status)],
    ['Reason', c => c.reason],
    ['Message', c => c.message],
    ['Since', c => time(c.lastTransitionTime)],
  ]);
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

const main = () => document.getElementById('main');
// Replaces the view's content; null and false children (absent sections) are left out.
function setMain(...children) {
  main().replaceChildren(...children.flat().filter(c => c !== null && c !== undefined && c !== false));
}
let rendered = 0;
function done() {
  rendered += 1;
  document.body.dataset.rendered = String(rendered);
}

function showError(e) {
  setMain(h('h1', {}, 'Error'), h('p', { role: 'alert' }, String(e.message || e)));
  done();
}

// ---- Sites ---------------------------------------------------------------------------------

const STATES = ['NetworkDegraded', 'StorageDegraded', 'NotReady', 'Stale', 'Upgrading', 'Ready', 'Unknown'];

function sitesQuery() {
  const p = new URLSearchParams(location.search);
  return { site: p.get('site') || '', state: p.get('state') || '', q: p.get('q') || '',
    sort: p.get('sort') || 'name', dir: p.get('dir') || 'asc', page: Number(p.get('page') || 1) };
}

function setSitesQuery(changes) {
  const q = Object.assign(sitesQuery(), changes);
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v !== '' && !(k === 'page' && v === 1) && !(k === 'sort' && v === 'name') && !(k === 'dir' && v === 'asc')) p.set(k, v);
  }
  const s = p.toString();
  history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
  refresh();
}

function sitesSkeleton() {
  const q = sitesQuery();
  let typing;
  const form = h('form', { class: 'filters', role: 'search', onsubmit: e => e.preventDefault() },
    h('label', { for: 'f-q' }, 'Node name'),
    h('input', { id: 'f-q', type: 'search', value: q.q, autocomplete: 'off',
      oninput: e => { clearTimeout(typing); typing = setTimeout(() => setSitesQuery({ q: e.target.value, page: 1 }), 200); } }),
    h('label', { for: 'f-state' }, 'State'),
    h('select', { id: 'f-state', onchange: e => setSitesQuery({ state: e.target.value, page: 1 }) },
      h('option', { value: '' }, 'any'),
      STATES.map(s => h('option', { value: s, selected: s === q.state }, s))),
    h('label', { for: 'f-site' }, 'Site'),
    h('select', { id: 'f-site', onchange: e => setSitesQuery({ site: e.target.value, page: 1 }) },
      h('option', { value: '' }, 'any')));
  setMain(
    h('h1', {}, 'Sites'),
    h('div', { id: 'sites' }),
    h('h2', {}, 'Nodes'),
    form,
    h('div', { id: 'nodes' }));
}

function renderSites(view) {
  const q = sitesQuery();
  const siteSelect = document.getElementById('f-site');
  const keep = siteSelect.value || q.site;
  siteSelect.replaceChildren(h('option', { value: '' }, 'any'),
    view.sites.map(s => { const k = s.namespace + '/' + s.name; return h('option', { value: k, selected: k === keep }, k); }));
  document.getElementById('sites').replaceChildren(...(view.sites.length === 0
    ? [h('p', { class: 'empty' }, 'No EdgeCluster yet.')]
    : view.sites.map(s => {
      const ready = (s.conditions || []).find(c => c.type === 'Ready');
      const key = s.namespace + '/' + s.name;
      return h('section', { class: 'card', 'aria-labelledby': 'site-' + key },
        h('h3', { id: 'site-' + key }, key, ' ', badge(ready ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown')),
        h('p', {}, s.topology, ' · ', s.nodes, ' nodes · legacy ', s.legacyVersion || '—',
          ' · last heartbeat ', time(s.lastLegacyHeartbeat)),
        h('ul', { class: 'counts', 'aria-label': 'Nodes of ' + key + ' by state' },
          s.states.filter(([, n]) => n > 0).map(([state, n]) =>
            h('li', {}, h('a', { href: '/sites?site=' + encodeURIComponent(key) + '&state=' + state,
              onclick: e => { e.preventDefault(); setSitesQuery({ site: key, state, page: 1 }); } },
            badge(state), ' ', n)))),
        conditions(s.conditions, 'Conditions of ' + key));
    })));
  const page = view.nodes;
  const sortButton = (label, key) => {
    const active = q.sort === key;
    return h('th', { scope: 'col', 'aria-sort': active ? (q.dir === 'desc' ? 'descending' : 'ascending') : 'none' },
      h('button', { type: 'button', class: 'sort',
        onclick: () => setSitesQuery({ sort: key, dir: active && q.dir === 'asc' ? 'desc' : 'asc', page: 1 }) },
      label, active ? (q.dir === 'desc' ? ' ▼' : ' ▲') : ''));
  };
  const rows = page.items.map(n => h('tr', {},
    h('td', {}, h('a', { href: '/nodes/' + encodeURIComponent(n.namespace) + '/' + encodeURIComponent(n.name) }, n.nodeName)),
    h('td', {}, n.site || '—'),
    h('td', {}, badge(n.state)),
    h('td', {}, n.network || '—'),
    h('td', {}, n.storage || '—'),
    h('td', {}, time(n.lastRun))));
  document.getElementById('nodes').replaceChildren(
    h('table', { id: 'node-table' },
      h('caption', {}, page.total + ' nodes match'),
      h('thead', {}, h('tr', {}, sortButton('Node', 'name'), sortButton('Site', 'site'), sortButton('State', 'state'),
        h('th', { scope: 'col' }, 'Network'), h('th', { scope: 'col' }, 'Storage'), sortButton('Last legacy run', 'lastRun'))),
      h('tbody', {}, rows)),
    h('nav', { class: 'pager', 'aria-label': 'Pages of nodes' },
      h('button', { type: 'button', disabled: page.page <= 1, onclick: () => setSitesQuery({ page: page.page - 1 }) }, 'Previous'),
      h('span', {}, 'Page ' + page.page + ' of ' + page.pages),
      h('button', { type: 'button', disabled: page.page >= page.pages, onclick: () => setSitesQuery({ page: page.page + 1 }) }, 'Next')));
}

// ---- Node ----------------------------------------------------------------------------------

function renderNode(view) {
  const n = view.node, s = n.status || {};
  const sat = s.linstorSatellite;
  setMain(
    h('h1', {}, n.spec.nodeName, ' ', badge(view.state)),
    h('p', {}, 'EdgeNode ', n.metadata.namespace + '/' + n.metadata.name, ' · site ',
      view.site ? h('a', { href: '/sites?site=' + encodeURIComponent(view.site) }, view.site) : '—'),
    conditions(s.conditions),
    h('h2', {}, 'Network'),
    (s.bonds || []).length === 0 ? h('p', { class: 'empty' }, 'Bonds: none.') :
      s.bonds.map(b => h('div', {},
        h('h3', {}, 'Bond ', b.name, ' ', badge(b.linkState, 'link-' + b.linkState)),
        h('p', {}, 'mode ', b.mode, ' · active slave ', b.activeSlave || '—'),
        table('Slaves of ' + b.name, b.slaves, [
          ['Slave', x => x.name], ['Link', x => badge(x.linkState, 'link-' + x.linkState)],
          ['Failures', x => x.linkFailures], ['Speed (Mb/s)', x => x.speedMbps ?? '—']]))),
    table('VLANs', s.vlans, [
      ['VLAN', v => v.name], ['ID', v => v.id], ['Parent', v => v.parent], ['Purpose', v => v.purpose],
      ['Link', v => badge(v.linkState, 'link-' + v.linkState)], ['Addresses', v => (v.addresses || []).join(', ') || '—']]),
    h('h2', {}, 'Storage'),
    sat ? h('p', {}, 'LINSTOR satellite ', badge(sat.state), ' version ', sat.version || '—') : h('p', { class: 'empty' }, 'LINSTOR satellite: not seen.'),
    sat ? table('Storage pools', sat.storagePools, [
      ['Pool', p => p.name], ['Driver', p => p.driver], ['Free bytes', p => p.freeBytes ?? '—'], ['Total bytes', p => p.totalBytes ?? '—']]) : null,
    table('DRBD resources', s.drbdResources, [
      ['Resource', r => r.name], ['Role', r => r.role], ['Disk', r => r.diskState],
      ['Quorum', r => r.quorum === undefined ? '—' : (r.quorum ? 'yes' : 'no')], ['Suspended', r => r.suspended ? 'yes' : 'no'],
      ['Peers', r => h('ul', { class: 'plain' }, (r.peers || []).map(p => h('li', {},
        p.node, ': ', p.connection, ', ', p.role, ', disk ', p.peerDisk, ', ', p.replication,
        p.syncPercent !== undefined ? ', synced ' + p.syncPercent + ' %' : '')))]]),
    resyncPlots(view.resync || [], view.upgrades || []),
    h('h2', {}, 'Legacy script'),
    s.lastLegacyRun ? h('p', {}, 'Last run ', time(s.lastLegacyRun.time), ' · version ', s.lastLegacyRun.scriptVersion || '—',
      ' · outcome ', s.lastLegacyRun.outcome || '—') : h('p', { class: 'empty' }, 'No legacy run seen.'),
    table('Managed taints', s.managedTaints, [
      ['Key', t => t.key], ['Value', t => t.value || '—'], ['Effect', t => t.effect], ['Since', t => time(t.since)]]),
    s.bootRecovery ? h('p', {}, 'Boot recovery ', badge(s.bootRecovery.phase), ' since ', time(s.bootRecovery.phaseSince),
      ' ', s.bootRecovery.message || '') : null,
    table('Storage upgrades', view.upgrades, [
      ['Upgrade', u => u.name], ['State', u => badge(u.state)], ['Since', u => time(u.since)]]),
    table('Parse diagnostics', s.parseDiagnostics, [
      ['Source', d => d.source], ['Line', d => d.line], ['Column', d => d.column], ['Message', d => d.message], ['First seen', d => time(d.firstSeen)]]));
}

// Resync progress over time, one inline SVG plot per resource and peer, from the samples the
// server kept as the watch saw the EdgeNode change (the EdgeNode holds only the current %).
function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
function resyncPlots(samples, upgrades) {
  if (samples.length === 0) return null;
  const series = {};
  for (const s of samples) (series[s.resource + ' with ' + s.peer] ||= []).push(s);
  const waiting = upgrades.filter(u => u.state === 'WaitResync').map(u => u.name);
  const W = 320, H = 120, P = 24;
  return h('section', { id: 'resync' },
    h('h2', {}, 'Resync progress'),
    waiting.length ? h('p', {}, 'In WaitResync of ', waiting.join(', '), '.') : null,
    Object.entries(series).map(([name, pts]) => {
      const t0 = pts[0].at, t1 = pts[pts.length - 1].at, span = Math.max(t1 - t0, 1);
      // One sample so far: it sits at the right, where the next ones will follow.
      const x = t => pts.length === 1 ? W - P : P + (W - 2 * P) * (t - t0) / span;
      const y = p => P / 2 + (H - P) * (100 - p) / 100;
      const label = 'Resync of ' + name + ': ' + pts[0].percent + ' % to ' + pts[pts.length - 1].percent +
        ' % over ' + Math.round((t1 - t0) / 1000) + ' s, ' + pts.length + ' samples';
      return h('figure', { class: 'resync' },
        svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': label },
          svg('title', {}, label),
          svg('line', { x1: P, y1: y(100), x2: W - P, y2: y(100), stroke: '#d0d4da' }),
          svg('line', { x1: P, y1: y(0), x2: W - P, y2: y(0), stroke: '#4a5058' }),
          svg('text', { x: 2, y: y(100) + 4, 'font-size': 10, fill: '#4a5058' }, '100'),
          svg('text', { x: 10, y: y(0) + 4, 'font-size': 10, fill: '#4a5058' }, '0'),
          svg('polyline', { class: 'series', fill: 'none', stroke: '#0b5cad', 'stroke-width': 2,
            points: pts.map(s => x(s.at).toFixed(1) + ',' + y(s.percent).toFixed(1)).join(' ') }),
          pts.map(s => svg('circle', { cx: x(s.at).toFixed(1), cy: y(s.percent).toFixed(1), r: 2.5, fill: '#0b5cad' }))),
        h('figcaption', {}, label, ' (', time(new Date(t0).toISOString()), ' – ', time(new Date(t1).toISOString()), ')'));
    }));
}

// ---- Workflows -----------------------------------------------------------------------------

function upgradeGrid(u, states) {
  const st = u.status || {};
  const nodes = (st.order && st.order.length ? st.order : (u.spec.nodeOrder && u.spec.nodeOrder.length ? u.spec.nodeOrder : (st.nodes || []).map(n => n.node)));
  const byNode = Object.fromEntries((st.nodes || []).map(n => [n.node, n]));
  const id = 'grid-' + u.metadata.namespace + '-' + u.metadata.name;
  return h('div', { class: 'scroll', role: 'region', 'aria-labelledby': id + '-cap', tabindex: '0' },
    h('table', { class: 'grid', id },
      h('caption', { id: id + '-cap' }, 'Nodes of ', u.metadata.name, ' by state: when each state was entered'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Node'), states.map(s => h('th', { scope: 'col' }, h('span', { class: 'vert' }, s))))),
      h('tbody', {}, nodes.map(name => {
        const n = byNode[name] || { history: [] };
        const entered = {};
        for (const t of n.history || []) entered[t.phase] = t;
        return h('tr', {}, h('th', { scope: 'row' }, name), states.map(s => {
          const current = n.state === s;
          const t = entered[s];
          const cls = current ? 'cell current' : (t ? 'cell past' : 'cell');
          const step = current && n.step ? [h('br'), n.step.step, ': ', n.step.result || 'running'] : [];
          return h('td', { class: cls, title: t && t.message ? t.message : null },
            t ? time(t.at).slice(11) : (current ? time(n.since).slice(11) : ''), current ? h('span', { class: 'sr' }, ' (current)') : '', step);
        }));
      }))));
}

function renderWorkflows(view, sites) {
  setMain(
    h('h1', {}, 'Workflows'),
    h('h2', {}, 'Storage upgrades'),
    sites.length > 0 ? upgradePanel(sites) : null,
    view.upgrades.length === 0 ? h('p', { class: 'empty' }, 'No StorageUpgrade.') : view.upgrades.map(u => {
      const st = u.status || {};
      return h('section', { class: 'card' },
        h('h3', {}, u.metadata.namespace + '/' + u.metadata.name, ' ', badge(st.state || 'Pending')),
        h('p', {}, u.spec.fromVersion, ' → ', u.spec.toVersion, ' · owner ', u.spec.owner,
          ' · node ', st.currentNode || '—',
          st.progress ? ' · ' + st.progress.done + ' of ' + st.progress.total + ' nodes done' : '',
          u.spec.rollback ? ' · rollback requested' : '',
          st.failedState ? ' · failed in ' + st.failedState + ' on ' + (st.failedNode || '?') : ''),
        st.message ? h('p', {}, st.message) : null,
        upgradeGrid(u, view.states),
        conditions(st.conditions, 'Conditions of ' + u.metadata.name),
        u.spec.owner === 'operator' && !u.spec.rollback ? rollbackPanel(u) : null);
    }),
    h('h2', {}, 'Migrations'),
    view.migrations.length === 0 ? h('p', { class: 'empty' }, 'No Migration.') : view.migrations.map(m => {
      const st = m.status || {};
      const rollback = st.phase === 'RollingBack' ? 'rolling back' : st.phase === 'RolledBack' ? 'rolled back'
        : m.spec.rollback ? 'rollback requested' : 'none';
      return h('section', { class: 'card' },
        h('h3', {}, m.metadata.namespace + '/' + m.metadata.name, ' ', badge(st.phase || 'Pending')),
        h('p', {}, 'owner ', m.spec.owner, ' · ', m.spec.sourceNode, ' + ', (m.spec.joiningNodes || []).join(', '),
          ' · replicas ', m.spec.replicas ?? '—', ' · rollback: ', rollback),
        h('ol', { class: 'timeline', 'aria-label': 'Phases of ' + m.metadata.name },
          (st.history || []).map(t => h('li', {}, h('time', { datetime: t.at }, time(t.at)), ' ', badge(t.phase), ' ', t.message || ''))),
        conditions(st.conditions, 'Conditions of ' + m.metadata.name));
    }));
}

// ---- Takeover ------------------------------------------------------------------------------

function renderTakeover(sites) {
  setMain(
    h('h1', {}, 'Takeover'),
    sites.length === 0 ? h('p', { class: 'empty' }, 'No EdgeCluster yet.') : sites.map(s => {
      const key = s.namespace + '/' + s.name;
      return h('section', { class: 'card' },
        h('h2', {}, key),
        h('p', {}, 'Takeover generation ', s.generation ?? '—'),
        table('Workflows of ' + key, s.workflows, [
          ['Workflow', w => w.workflow], ['Requested', w => badge(w.requested, 'mode-' + w.requested)],
          ['In effect', w => w.effective ? badge(w.effective, 'mode-' + w.effective) : '—'],
          ['Acknowledged', w => w.acknowledged === null || w.acknowledged === undefined ? '—' : (w.acknowledged ? 'yes' : 'no')],
          ['Divergences', w => w.divergences], ['Why', w => w.message || '']]),
        table('Acknowledgements of ' + key, s.nodes, [
          ['Node', n => n.node], ['Acknowledged generation', n => n.acknowledged ?? '—'],
          ['Current', n => badge(n.current ? 'yes' : 'no', n.current ? 'ack-yes' : 'ack-no')]]),
        table('Shadow divergences of ' + key, s.divergences, [
          ['At', d => time(d.at)], ['Workflow', d => d.workflow], ['Node', d => d.node || '—'],
          ['Script did', d => d.script], ['Operator would', d => d.operator], ['Facts', d => h('pre', {}, d.observed)]]),
        modePanel(s));
    }));
}

// ---- Audit ---------------------------------------------------------------------------------
// The audit trail's entries, selected as `nodewright audit log` selects them (by object, user,
// time, or from an entry along its links), and whether the log verifies against the checkpoint
// published to the cluster.

const AUDIT_FIELDS = ['object', 'user', 'since', 'from'];
function auditQuery() {
  const p = new URLSearchParams(location.search);
  const q = {};
  for (const k of AUDIT_FIELDS) q[k] = p.get(k) || '';
  return q;
}
function auditHref(changes) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(changes)) if (v) p.set(k, v);
  const s = p.toString();
  return '/audit' + (s ? '?' + s : '');
}

function verificationPanel(v) {
  if (!v) return null;
  let body;
  if (v.result === 'verified') {
    body = [badge('verified', 'verified'), ' ', v.entries + ' entries; the log\u2019s checkpoint covers ' + v.checkpointSize +
      (v.publishedSize !== null && v.publishedSize !== undefined ? ', consistent with the checkpoint of ' + v.publishedSize + ' published to the cluster' : '') +
      (v.unsignedEntries ? '; ' + v.unsignedEntries + ' entries not yet covered by a signature' : '') + '.'];
  } else if (v.result === 'notVerified') {
    body = [badge('not verified', 'not-verified'), ' ',
      v.index !== null && v.index !== undefined ? h('span', {}, 'first bad index: ', h('strong', { id: 'first-bad' }, v.index), ' — ') : null,
      v.location + ': ' + v.message];
  } else {
    body = [badge('not verified', 'not-verified'), ' ', 'nothing to verify against: ' + v.reason];
  }
  return h('section', { class: 'card', id: 'verification', 'aria-label': 'Verification' },
    h('h2', {}, 'Against the published checkpoint'), h('p', {}, body));
}

function renderAudit(view) {
  if (!view.enabled) {
    setMain(h('h1', {}, 'Audit'), h('p', { id: 'audit-off' }, view.howToEnable));
    return;
  }
  const q = auditQuery();
  const input = (k, label, hint) => [h('label', { for: 'a-' + k }, label),
    h('input', { id: 'a-' + k, name: k, type: 'text', value: q[k], placeholder: hint, autocomplete: 'off' })];
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Select entries', method: 'get', action: '/audit' },
    input('object', 'Object', 'Kind/name'), input('user', 'User', 'user name'),
    input('since', 'Since', '2026-12-07T18:00:00Z'),
    q.from ? h('input', { type: 'hidden', name: 'from', value: q.from }) : null,
    h('button', { type: 'submit' }, 'Select'),
    AUDIT_FIELDS.some(k => q[k]) ? h('a', { href: '/audit' }, 'All entries') : null);
  const link = l => h('a', { href: auditHref({ from: l.id }), title: 'this entry and what follows from it' },
    l.index !== null && l.index !== undefined ? '#' + l.index : l.id + ' (not in the log)');
  setMain(
    h('h1', {}, 'Audit'),
    verificationPanel(view.verification),
    form,
    q.from ? h('p', {}, 'Entry ', h('code', {}, q.from), ' and everything that follows from it.') : null,
    h('p', { id: 'audit-count' }, view.selected + ' of ' + view.total + ' entries' +
      (view.selected > view.entries.length ? ', the newest ' + view.entries.length + ' shown' : '') + ', newest first.'),
    table('Entries', view.entries, [
      ['#', e => h('span', { id: 'entry-' + e.index }, e.index)],
      ['Time', e => time(e.time)],
      ['Kind', e => badge(e.kind, 'kind-' + e.kind)],
      ['User', e => [e.user || '—', e.impersonator ? h('div', {}, 'by ' + e.impersonator) : null]],
      ['Object', e => e.object || '—'],
      ['Entry', e => h('pre', {}, e.text)],
      ['Caused by', e => e.causedBy.length === 0 ? '—' : h('ul', { class: 'plain' }, e.causedBy.map(l => h('li', {}, link(l))))],
      ['Follows', e => h('a', { href: auditHref({ from: e.id }), 'aria-label': 'what follows from entry ' + e.index }, 'what follows')],
    ]));
}

// ---- Actions -------------------------------------------------------------------------------
// Every action is shown as its exact kubectl command (from /api/actions/preview). With actions on
// (nodewright ui --enable-actions), a person can also run it here: their bearer token, kept in this
// tab only (sessionStorage), goes in the Authorization header; the server checks it and acts as them.

let actionsEnabled = false;
const TOKEN_KEY = 'nodewright.token';
// What a person typed in the action forms, kept across re-renders (the views re-render live).
const formState = {};

async function postJSON(url, body, token) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), credentials: 'omit' });
  let answer = {};
  try { answer = await r.json(); } catch (_) { /* an empty body */ }
  return { status: r.status, body: answer };
}

// A labelled control whose value is kept in formState[id].
function field(id, label, control) {
  if (formState[id] !== undefined) control.value = formState[id];
  else formState[id] = control.value;
  control.id = id;
  return h('label', { for: id }, label, ' ', control);
}

function choice(id, label, values, initial) {
  const el = h('select', {}, values.map(v => h('option', { value: v, selected: v === initial }, v)));
  return field(id, label, el);
}

function text(id, label, initial) {
  return field(id, label, h('input', { type: 'text', value: initial || '', size: 14 }));
}

// A panel for one action: its controls, the command, and (actions on) the token and a Run button.
// build(value) makes the action from the controls' values (value(id) reads one).
function actionPanel(id, title, controls, build) {
  const command = h('pre', { class: 'command', id: id + '-command' }, '…');
  const result = h('p', { role: 'status', id: id + '-result' });
  const value = k => formState[id + '-' + k];
  const update = async () => {
    const action = build(value);
    if (Object.values(action).some(v => v === undefined || v === '')) {
      command.textContent = 'Fill in every field to see the command.';
      return;
    }
    const answer = await postJSON('/api/actions/preview', build(value));
    command.textContent = answer.status === 200 ? answer.body.command : 'Not a valid action: ' + answer.body.error;
  };
  const form = h('form', { class: 'act filters', 'aria-label': title, 'data-action': id },
    controls,
    actionsEnabled ? [
      field(id + '-token', 'Your bearer token', h('input', { type: 'password', autocomplete: 'off', size: 16,
        value: sessionStorage.getItem(TOKEN_KEY) || '' })),
      h('button', { type: 'submit' }, 'Run as you'),
    ] : null);
  form.addEventListener('input', e => {
    const k = e.target.id;
    formState[k] = e.target.value;
    if (k === id + '-token') sessionStorage.setItem(TOKEN_KEY, e.target.value);
    else update();
  });
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const token = sessionStorage.getItem(TOKEN_KEY) || '';
    const answer = await postJSON('/api/actions', build(value), token);
    result.textContent = answer.status === 200
      ? 'Done, as ' + answer.body.user + '.'
      : 'Refused (' + answer.status + '): ' + (answer.body.error || 'no answer');
  });
  update();
  return h('section', { class: 'card' }, h('h3', {}, title),
    actionsEnabled ? null : h('p', { class: 'empty' }, 'Actions are off in this UI: run the command with your own credentials.'),
    form, h('p', {}, 'The same with kubectl:'), command, result);
}

const WORKFLOW_KEYS = ['bootstrap', 'migration', 'storageUpgrade', 'bondFlip', 'taints', 'bootRecovery', 'network', 'storage'];

function modePanel(site) {
  const id = 'mode-' + site.namespace + '-' + site.name;
  return actionPanel(id, 'Change a workflow\'s mode on ' + site.namespace + '/' + site.name, [
    choice(id + '-workflow', 'Workflow', WORKFLOW_KEYS, 'storageUpgrade'),
    choice(id + '-mode', 'Mode', ['legacy', 'shadow', 'operator'], 'shadow'),
  ], v => ({ action: 'setMode', namespace: site.namespace, cluster: site.name, workflow: v('workflow'), mode: v('mode') }));
}

function rollbackPanel(u) {
  const ns = u.metadata.namespace, name = u.metadata.name;
  return actionPanel('rollback-' + ns + '-' + name, 'Roll back ' + ns + '/' + name, [],
    () => ({ action: 'rollback', namespace: ns, name }));
}

function upgradePanel(sites) {
  const id = 'upgrade';
  const keys = sites.map(s => s.namespace + '/' + s.name);
  return actionPanel(id, 'Request a storage upgrade', [
    choice(id + '-site', 'Site', keys, keys[0]),
    text(id + '-name', 'Name', 'storage-upgrade'),
    text(id + '-from', 'From version', ''),
    text(id + '-to', 'To version', ''),
  ], v => {
    const [namespace, cluster] = (v('site') || '/').split('/');
    return { action: 'requestUpgrade', namespace, cluster, name: v('name'), fromVersion: v('from'), toVersion: v('to') };
  });
}

// ---- Routing and live updates --------------------------------------------------------------

function route() {
  const p = location.pathname;
  let m;
  if (p === '/' || p === '/sites') return { view: 'sites', title: 'Sites' };
  if ((m = p.match(/^\/nodes\/([^/]+)\/([^/]+)$/))) return { view: 'node', ns: decodeURIComponent(m[1]), name: decodeURIComponent(m[2]), title: decodeURIComponent(m[2]) };
  if (p === '/workflows') return { view: 'workflows', title: 'Workflows' };
  if (p === '/takeover') return { view: 'takeover', title: 'Takeover' };
  if (p === '/audit') return { view: 'audit', title: 'Audit' };
  return { view: 'missing', title: 'Not found' };
}

let inFlight = false, again = false;
async function refresh() {
  if (inFlight) { again = true; return; }
  inFlight = true;
  const r = route();
  try {
    if (r.view === 'sites') {
      const q = sitesQuery();
      const p = new URLSearchParams({ sort: q.sort, dir: q.dir, page: q.page });
      for (const k of ['site', 'state', 'q']) if (q[k]) p.set(k, q[k]);
      renderSites(await getJSON('/api/sites?' + p));
    } else if (r.view === 'node') {
      renderNode(await getJSON('/api/nodes/' + encodeURIComponent(r.ns) + '/' + encodeURIComponent(r.name)));
    } else if (r.view === 'workflows') {
      const [view, sites] = await Promise.all([getJSON('/api/workflows'), getJSON('/api/takeover')]);
      renderWorkflows(view, sites);
    } else if (r.view === 'takeover') {
      renderTakeover(await getJSON('/api/takeover'));
    } else if (r.view === 'audit') {
      const q = auditQuery();
      const p = new URLSearchParams();
      for (const k of AUDIT_FIELDS) if (q[k]) p.set(k, q[k]);
      renderAudit(await getJSON('/api/audit?' + p));
    } else {
      setMain(h('h1', {}, 'Not found'), h('p', {}, 'No view at ' + location.pathname + '.'));
    }
    done();
  } catch (e) {
    showError(e);
  } finally {
    inFlight = false;
    if (again) { again = false; refresh(); }
  }
}

let pending, deferred = false;
function changed() {
  clearTimeout(pending);
  pending = setTimeout(() => {
    // Re-rendering under a person's hands would take their focus: wait until they leave the form.
    if (document.activeElement && document.activeElement.closest('form.act')) { deferred = true; return; }
    refresh();
  }, 150);
}
document.addEventListener('focusout', e => {
  if (deferred && e.target.closest && e.target.closest('form.act') && !(e.relatedTarget && e.relatedTarget.closest && e.relatedTarget.closest('form.act'))) {
    deferred = false;
    changed();
  }
});

function live() {
  const status = document.getElementById('live');
  const events = new EventSource('/events');
  events.addEventListener('open', () => { status.textContent = 'live'; status.className = 'on'; });
  events.addEventListener('error', () => { status.textContent = 'reconnecting…'; status.className = 'off'; });
  events.addEventListener('change', changed);
  // A page kept in the back/forward cache would hold its stream open, and a browser opens only a
  // few connections to one server: close it when the page is left, open another on return.
  window.addEventListener('pagehide', () => events.close(), { once: true });
}
window.addEventListener('pageshow', e => { if (e.persisted) { live(); refresh(); } });

document.addEventListener('DOMContentLoaded', () => {
  const r = route();
  document.title = r.title + ' · Nodewright';
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    if (a.dataset.view === r.view || (r.view === 'node' && a.dataset.view === 'sites')) a.setAttribute('aria-current', 'page');
  }
  if (r.view === 'sites') sitesSkeleton();
  live();
  getJSON('/api/actions').then(a => { actionsEnabled = a.enabled; }, () => {}).finally(refresh);
});
