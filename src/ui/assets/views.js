// The console's pages. Each renders into `main` from API calls; the resource tree itself (which
// collections an item has, what can be done to it) is read from the served OpenAPI document, so
// new endpoints show up without changes here.

import { h, fill, badge, alertBox, formatTime, highlightYaml } from './dom.js';
import { ApiError, apiShape, blobUrl, call, deref, get, getAll, matchRoute, session } from './api.js';
import { labelOf, resourceForm } from './forms.js';

const FINAL_STATES = new Set(['Applied', 'Degraded', 'Failed', 'Terminated']);

export const link = (path, text, attrs = {}) => h('a', { href: `#${path}`, ...attrs }, text);

function title(main, text, ...extra) {
  document.title = `${text} · meshintent`;
  main.append(h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', id: 'page-title' }, text), ...extra));
}

function errorView(main, error) {
  const message = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error.message || error);
  main.append(alertBox(message));
}

/** "inbound-intents" -> "Inbound intent". */
function singular(tag) {
  const label = labelOf(tag || 'resource');
  return label.endsWith('s') ? label.slice(0, -1) : label;
}

/** Breadcrumbs: every prefix of the path that is itself a page. */
async function crumbs(path) {
  const shape = await apiShape();
  const parts = path.split('/').filter(Boolean);
  const items = [link('/', 'Home')];
  for (let i = 1; i < parts.length; i += 1) {
    const prefix = `/${parts.slice(0, i).join('/')}`;
    const matched = matchRoute(shape, prefix);
    if (!matched || !matched.route.ops.get) continue;
    const template = matched.route.template;
    let label = labelOf(decodeURIComponent(parts[i - 1]));
    if (template.endsWith('}')) {
      const params = template.split('/').slice(-2).filter((seg) => seg.startsWith('{')).length;
      label = parts.slice(i - params, i).map(decodeURIComponent).join(' ');
    }
    items.push(link(prefix, label));
  }
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumbs' }, items.flatMap((a, i) => (i ? [' / ', a] : [a])));
}

/** The page above an item: the nearest ancestor that is an item page, or home. */
function parentPage(shape, path) {
  const parts = path.split('/').filter(Boolean);
  for (let i = parts.length - 1; i > 0; i -= 1) {
    const prefix = `/${parts.slice(0, i).join('/')}`;
    const matched = matchRoute(shape, prefix);
    if (matched && matched.route.template.endsWith('}') && matched.route.ops.get) return prefix;
  }
  return '/';
}

// --- Sign in --------------------------------------------------------------------------------

export async function signIn(main, { config, onSignedIn }) {
  title(main, 'Sign in');
  const id = 'token-input';
  const error = h('div', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
  const input = h('input', {
    id, type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': `${id}-hint ${id}-error`,
  });
  const form = h('form', { class: 'signin', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: id }, 'API token'),
      input,
      h('small', { class: 'hint', id: `${id}-hint` },
        'A meshintent token (mi_…). The embedded server writes an admin token to meshintent.admin-token at its first start.')),
    error,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.replaceChildren();
    input.removeAttribute('aria-invalid');
    const token = input.value.trim();
    if (!token) { error.append('Paste a token.'); input.setAttribute('aria-invalid', 'true'); return; }
    session.signIn(token);
    try {
      await get('/projects?limit=1');
      onSignedIn();
    } catch (e) {
      session.signOut();
      input.setAttribute('aria-invalid', 'true');
      error.append(e.status === 401 ? 'This token is not valid (unknown, revoked or expired).' : e.message);
      input.focus();
    }
  });
  main.append(form);
  if (config.oidc) {
    main.append(h('p', {}, h('button', { type: 'button', class: 'btn', id: 'oidc-signin', onclick: () => oidcStart(config.oidc) },
      `Sign in with ${new URL(config.oidc.issuer).host}`)));
  }
  input.focus();
}

// OIDC authorization code flow with PKCE (RFC 7636) as a public client; the ID token becomes the
// bearer token. Hashing and randomness come from the browser's Web Crypto.
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

async function discovery(issuer) {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`OIDC discovery failed: HTTP ${res.status}`);
  return res.json();
}

async function oidcStart(oidc) {
  const meta = await discovery(oidc.issuer);
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem('meshintent.pkce', JSON.stringify({ verifier, state }));
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: oidc.clientId, redirect_uri: `${location.origin}/ui/`,
    scope: oidc.scopes, state, code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/** Finishes a sign-in redirect (`/ui/?code=…&state=…`); true when it signed someone in. */
export async function oidcFinish(config) {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const saved = JSON.parse(sessionStorage.getItem('meshintent.pkce') || 'null');
  if (!code || !config.oidc || !saved) return false;
  sessionStorage.removeItem('meshintent.pkce');
  history.replaceState(null, '', '/ui/');
  if (params.get('state') !== saved.state) throw new Error('The sign-in answer does not belong to this browser (state mismatch).');
  const meta = await discovery(config.oidc.issuer);
  const res = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: `${location.origin}/ui/`,
      client_id: config.oidc.clientId, code_verifier: saved.verifier,
    }),
  });
  if (!res.ok) throw new Error(`The identity provider refused the sign-in: HTTP ${res.status}`);
  const tokens = await res.json();
  if (!tokens.id_token) throw new Error('The identity provider sent no ID token.');
  session.signIn(tokens.id_token);
  return true;
}

// --- Home -----------------------------------------------------------------------------------

export async function home(main) {
  title(main, 'meshintent');
  const [projects, clusters] = await Promise.allSettled([getAll('/projects'), getAll('/clusters')]);
  main.append(listSection('Projects', '/projects', projects, (p) => `/projects/${p.metadata.name}`));
  main.append(listSection('Clusters', '/clusters', clusters, (c) => `/clusters/${c.metadata.name}`));
}

function listSection(heading, collection, settled, pathOf, extraColumns = []) {
  const id = `list-${collection.replace(/[^a-z0-9]/gi, '-')}`;
  const section = h('section', { class: 'list', 'aria-labelledby': id },
    h('div', { class: 'section-head' }, h('h2', { id }, heading), link(`/new${collection}`, `New ${singular(collection.split('/').pop()).toLowerCase()}`, { class: 'btn' })));
  if (settled.status === 'rejected') {
    section.append(alertBox(settled.reason.message));
    return section;
  }
  const items = settled.value;
  if (!items.length) {
    section.append(h('p', { class: 'empty' }, 'None yet.'));
    return section;
  }
  section.append(h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), extraColumns.map((c) => h('th', { scope: 'col' }, c.label)), h('th', { scope: 'col' }, 'Description'), h('th', { scope: 'col' }, 'Updated'))),
    h('tbody', {}, items.map((item) => h('tr', {},
      h('td', {}, link(pathOf(item), item.metadata.name)),
      extraColumns.map((c) => h('td', {}, c.value(item))),
      h('td', {}, item.metadata.description || ''),
      h('td', {}, formatTime(item.metadata.updatedAt))))))));
  return section;
}

// --- Any resource, by its API path ----------------------------------------------------------

export async function resource(main, path) {
  const shape = await apiShape();
  const matched = matchRoute(shape, path);
  if (!matched) { title(main, 'Not found'); main.append(alertBox(`No page for ${path}.`)); return; }
  main.append(await crumbs(path));
  const { route } = matched;
  const last = route.template.split('/').pop();
  if (!last.startsWith('{') && route.ops.get && route.ops.post) {
    title(main, labelOf(last));
    const items = await Promise.allSettled([getAll(path)]);
    main.append(listSection(labelOf(last), path, items[0], (item) => itemPath(shape, route, path, item)));
    return;
  }
  if (!route.ops.get) { title(main, path); return; }
  const { data, etag } = await get(path);
  const kind = singular(route.ops.get.tags?.[0]);
  const actions = [];
  if (route.ops.put) actions.push(link(`/edit${path}`, 'Edit', { class: 'btn' }));
  if (route.ops.delete) {
    actions.push(h('button', {
      type: 'button', class: 'btn danger',
      onclick: async () => {
        if (!window.confirm(`Delete ${kind.toLowerCase()} ${data.metadata.name}?`)) return;
        try {
          await call('DELETE', path, undefined, etag ? { 'If-Match': etag } : {});
          location.hash = `#${parentPage(shape, path)}`;
        } catch (e) { main.prepend(alertBox(e.message)); }
      },
    }, 'Delete'));
  }
  title(main, `${kind} ${data.metadata?.name ?? ''}`, h('div', { class: 'head-actions' }, actions));
  if (data.metadata?.description) main.append(h('p', { class: 'lead' }, data.metadata.description));

  const children = shape.routes.filter((r) => r.template.startsWith(`${route.template}/`)
    && !r.template.slice(route.template.length + 1).includes('/'));
  const isSet = route.ops.get.operationId === 'traffic_intent_set_get';
  if (isSet) await setPanels(main, shape, path, children);

  main.append(h('section', { 'aria-labelledby': 'spec-h' }, h('h2', { id: 'spec-h' }, 'Fields'), valueView(data.spec ?? {})));
  if (data.status && Object.keys(data.status).length) {
    main.append(h('section', { 'aria-labelledby': 'status-h' }, h('h2', { id: 'status-h' }, 'Status'), valueView(data.status)));
  }
  main.append(h('p', { class: 'meta' },
    `Revision ${data.metadata?.revision ?? '?'} · created ${formatTime(data.metadata?.createdAt)} by ${data.metadata?.createdBy ?? '?'} · updated ${formatTime(data.metadata?.updatedAt)} by ${data.metadata?.updatedBy ?? '?'}`));

  for (const child of children) {
    const seg = child.template.split('/').pop();
    if (child.ops.get && child.ops.post && !seg.startsWith('{')) {
      const childPath = `${path}/${seg}`;
      const settled = await Promise.allSettled([getAll(childPath)]);
      main.append(listSection(labelOf(seg), childPath, settled[0], (item) => itemPath(shape, child, childPath, item)));
    } else if (!isSet && child.ops.get && !seg.startsWith('{') && seg !== 'audit-events') {
      main.append(h('p', {}, link(`/json${path}/${seg}`, labelOf(seg))));
    }
  }
  main.append(await auditSection(shape, path, data));
}

/** The page of one item of a collection: `…/name`, or `…/name/version` for composite apps. */
function itemPath(shape, collection, collectionPath, item) {
  const itemRoute = shape.routes.find((r) => r.template.startsWith(`${collection.template}/{`) && r.ops.get && !r.template.slice(collection.template.length + 1).replace(/\{[^}]+\}/g, 'x').match(/[^x/]/));
  const extra = itemRoute ? itemRoute.template.slice(collection.template.length + 1).split('/').length : 1;
  const name = encodeURIComponent(item.metadata.name);
  return extra === 2 ? `${collectionPath}/${name}/${encodeURIComponent(item.spec.version)}` : `${collectionPath}/${name}`;
}

/** A JSON value as nested definition lists. */
export function valueView(value) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, '—');
  if (Array.isArray(value)) {
    if (!value.length) return h('span', { class: 'muted' }, '[]');
    if (value.every((v) => typeof v !== 'object' || v === null)) return h('span', {}, value.join(', '));
    return h('ol', { class: 'values' }, value.map((v) => h('li', {}, valueView(v))));
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value);
    if (!entries.length) return h('span', { class: 'muted' }, '{}');
    return h('dl', { class: 'fields' }, entries.flatMap(([k, v]) => [h('dt', {}, labelOf(k)), h('dd', {}, valueView(v))]));
  }
  return h('span', {}, String(value));
}

async function auditSection(shape, path, data) {
  const section = h('section', { 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h' }, 'Audit trail'));
  // Project members read their project's trail; the global one needs a global role.
  const project = path.match(/^\/projects\/([^/]+)/)?.[1];
  const template = project ? '/v2/projects/{project}/audit-events' : '/v2/audit-events';
  const params = shape.doc.paths[template]?.get?.parameters || [];
  if (!params.some((p) => p.name === 'resource')) return section;
  const base = project ? `/projects/${project}/audit-events` : '/audit-events';
  try {
    const { data: page } = await get(`${base}?resource=${encodeURIComponent(`/v2${path}`)}&limit=50`);
    if (!page.items.length) { section.append(h('p', { class: 'empty' }, 'No events.')); return section; }
    section.append(h('div', { class: 'table-wrap' }, h('table', { class: 'audit' },
      h('thead', {}, h('tr', {}, ['Time', 'Actor', 'Action', 'Resource', 'Revision', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, page.items.map((e) => h('tr', {},
        h('td', {}, formatTime(e.time)), h('td', {}, e.actor), h('td', {}, e.action),
        h('td', { class: 'path' }, e.resource.replace(`/v2${path}`, '.') || '.'),
        h('td', {}, e.revisionAfter ?? ''), h('td', {}, e.status)))))));
  } catch (e) {
    section.append(alertBox(e.status === 403 ? 'Reading the audit trail needs the auditor role.' : e.message, 'info'));
  }
  void data;
  return section;
}

// --- A traffic intent set: graph, deploy, progress ------------------------------------------

async function setPanels(main, shape, path, children) {
  const segs = new Set(children.map((c) => c.template.split('/').pop()));
  const tools = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Set actions' });
  if (segs.has('deploy')) tools.append(h('button', { type: 'button', class: 'btn primary', id: 'deploy', onclick: () => startDeployment(main, path, 'deploy') }, 'Deploy'));
  if (segs.has('terminate')) tools.append(h('button', { type: 'button', class: 'btn danger', id: 'terminate', onclick: () => startDeployment(main, path, 'terminate') }, 'Terminate'));
  if (segs.has('manifests')) tools.append(link(`/manifests${path}`, 'Manifests', { class: 'btn' }));
  if (segs.has('plan')) tools.append(link(`/plan${path}`, 'Plan', { class: 'btn', id: 'plan-link' }));
  if (segs.has('analysis')) tools.append(link(`/analysis${path}`, 'Analysis', { class: 'btn', id: 'analysis-link' }));
  if (segs.has('deployments')) tools.append(link(`/json${path}/deployments`, 'Deployments', { class: 'btn' }));
  main.append(tools);

  if (segs.has('graph')) {
    const figure = h('figure', { class: 'graph', id: 'graph' }, h('figcaption', {}, 'Who may call whom'));
    main.append(figure);
    try {
      const url = await blobUrl(`${path}/graph?format=svg`, 'image/svg+xml');
      figure.prepend(h('img', { src: url, alt: 'Graph of the apps of this set and the calls their intents allow (listed in the table below)', id: 'graph-image' }));
      const { data: graph } = await get(`${path}/graph?format=json`);
      main.append(edgeTable(graph));
    } catch (e) {
      figure.append(alertBox(e.message, 'info'));
    }
  }
  const progress = h('section', { id: 'progress', 'aria-labelledby': 'progress-h', 'aria-live': 'polite' });
  main.append(progress);
  if (segs.has('status')) followStatus(progress, path, { once: true });
}

/** The graph's edges as a table: the text alternative of the picture. */
function edgeTable(graph) {
  const labels = new Map(graph.nodes.map((n) => [n.id, n.label.split('\n')[0]]));
  const name = (id) => labels.get(id) || id;
  const section = h('section', { 'aria-labelledby': 'edges-h', id: 'edges' }, h('h2', { id: 'edges-h' }, 'Calls the intents allow'));
  if (!graph.edges.length) {
    section.append(h('p', { class: 'empty' }, 'No calls: the set has no clients yet.'));
    return section;
  }
  section.append(h('div', { class: 'table-wrap' }, h('table', { class: 'edges' },
    h('thead', {}, h('tr', {}, ['From', 'To', 'Kind', 'What', 'Through'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, graph.edges.map((e) => h('tr', { dataset: { edge: `${name(e.from)}->${name(e.to)}` } },
      h('td', {}, name(e.from)), h('td', {}, name(e.to)), h('td', {}, badge(e.kind)),
      h('td', {}, e.label), h('td', {}, (e.via || []).map(name).join(', '))))))));
  return section;
}

async function startDeployment(main, path, action) {
  const progress = main.querySelector('#progress');
  try {
    await call('POST', `${path}/${action}`);
    followStatus(progress, path, { once: false });
  } catch (e) {
    progress.prepend(alertBox(e.message));
  }
}

let following = null;

/** Shows the latest deployment, refreshing until it is final. Rows are updated in place. */
async function followStatus(progress, path, { once }) {
  const token = {};
  following = token;
  const rows = new Map();
  fill(progress, h('h2', { id: 'progress-h' }, 'Deployment'));
  const head = h('p', { class: 'deploy-head' });
  const clusters = h('div', { class: 'clusters' });
  progress.append(head, clusters);
  for (;;) {
    if (following !== token || !progress.isConnected) return;
    let status;
    try {
      ({ data: status } = await get(`${path}/status`));
    } catch (e) {
      fill(head, e.status === 404 ? 'Not deployed yet.' : e.message);
      return;
    }
    fill(head, `Revision ${status.revision} · ${status.action} · `, badge(status.state), status.message ? ` ${status.message}` : '');
    for (const cluster of status.clusters) renderCluster(clusters, rows, cluster);
    if (FINAL_STATES.has(status.state)) return;
    // The next refresh comes with the set's next event (or after 5 s at the latest).
    await nextEvent(path, token);
  }
}

let stream = null;

/** Resolves at the set's next event on its SSE stream (read with the token, which EventSource
 * cannot send), or after 5 s. One stream per page; it resumes after the last id it saw. */
function nextEvent(path, token) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    const done = () => { clearTimeout(timer); resolve(); };
    if (!stream || stream.path !== path || stream.closed) stream = openStream(path);
    stream.waiters.push(done);
    if (following !== token) done();
  });
}

function openStream(path) {
  const state = { path, waiters: [], closed: false, lastId: null };
  const wake = () => { const w = state.waiters.splice(0); w.forEach((f) => f()); };
  (async () => {
    try {
      const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${session.token}` };
      const res = await fetch(`/v2${path}/events?since=${state.lastId ?? 0}`, { headers, cache: 'no-store' });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = block.split('\n').find((l) => l.startsWith('id:'));
          if (id) { state.lastId = Number(id.slice(3).trim()); wake(); }
        }
        if (!stream || stream !== state || !document.getElementById('progress')) { reader.cancel(); break; }
      }
    } catch { /* polling every 5 s continues */ }
    state.closed = true;
    wake();
  })();
  return state;
}

function renderCluster(container, rows, cluster) {
  const key = `cluster:${cluster.cluster}`;
  let entry = rows.get(key);
  if (!entry) {
    const counter = h('span', { class: 'counter' });
    const state = h('span', {});
    const body = h('tbody', {});
    const section = h('div', { class: 'cluster', dataset: { cluster: cluster.cluster } },
      h('h3', {}, cluster.cluster, ' ', state, ' ', counter),
      h('div', { class: 'table-wrap' }, h('table', { class: 'objects' },
        h('thead', {}, h('tr', {}, ['Kind', 'Namespace', 'Name', 'State', 'Message'].map((c) => h('th', { scope: 'col' }, c)))), body)));
    container.append(section);
    entry = { counter, state, body };
    rows.set(key, entry);
  }
  const done = cluster.objects.filter((o) => o.state !== 'desired').length;
  fill(entry.counter, `${done}/${cluster.objects.length} objects done`);
  fill(entry.state, badge(cluster.state));
  for (const object of cluster.objects) {
    const id = `${cluster.cluster}/${object.kind}/${object.namespace}/${object.name}`;
    let row = rows.get(id);
    if (!row) {
      const state = h('td', {});
      const message = h('td', { class: 'message' });
      entry.body.append(h('tr', { dataset: { object: id } }, h('td', {}, object.kind), h('td', {}, object.namespace), h('td', {}, object.name), state, message));
      row = { state, message };
      rows.set(id, row);
    }
    if (row.state.textContent !== object.state) fill(row.state, badge(object.state));
    if (row.message.textContent !== (object.message || '')) fill(row.message, object.message || '');
  }
}

// --- Create and edit ------------------------------------------------------------------------

export async function create(main, collectionPath) {
  const shape = await apiShape();
  const matched = matchRoute(shape, collectionPath);
  const op = matched?.route.ops.post;
  if (!op) { title(main, 'Not found'); main.append(alertBox(`Nothing can be created at ${collectionPath}.`)); return; }
  main.append(await crumbs(`${collectionPath}/x`));
  const kind = singular(op.tags?.[0]);
  title(main, `New ${kind.toLowerCase()}`);
  const schema = op.requestBody?.content?.['application/json']?.schema;
  main.append(resourceForm(shape, schema, null, {
    submitLabel: `Create ${kind.toLowerCase()}`,
    onSubmit: async (body) => {
      await call('POST', collectionPath, body);
      location.hash = `#${itemPath(shape, matched.route, collectionPath, body)}`;
    },
  }));
  main.querySelector('input, select, textarea')?.focus();
}

export async function edit(main, path) {
  const shape = await apiShape();
  const matched = matchRoute(shape, path);
  const op = matched?.route.ops.put;
  if (!op) { title(main, 'Not found'); main.append(alertBox(`${path} cannot be edited.`)); return; }
  main.append(await crumbs(path));
  const { data, etag } = await get(path);
  const kind = singular(op.tags?.[0]);
  title(main, `Edit ${kind.toLowerCase()} ${data.metadata.name}`);
  const schema = op.requestBody?.content?.['application/json']?.schema;
  main.append(resourceForm(shape, schema, data, {
    submitLabel: 'Save',
    onSubmit: async (body) => {
      await call('PUT', path, body, etag ? { 'If-Match': etag } : {});
      location.hash = `#${path}`;
    },
  }));
}

// --- Manifests and other read-only documents ------------------------------------------------

export async function manifests(main, setPath) {
  main.append(await crumbs(`${setPath}/x`));
  title(main, 'Manifests');
  const { data } = await get(`${setPath}/manifests`);
  const clusters = (data.items || data.clusters || []).map((c) => c.cluster);
  if (!clusters.length) main.append(h('p', { class: 'empty' }, 'This set renders no objects.'));
  for (const cluster of clusters) {
    const { data: yaml } = await get(`${setPath}/manifests?format=yaml&cluster=${encodeURIComponent(cluster)}`, { Accept: 'application/yaml' });
    main.append(h('section', { class: 'manifest', dataset: { cluster } }, h('h2', {}, cluster), highlightYaml(yaml)));
  }
}

export async function json(main, path) {
  main.append(await crumbs(path));
  title(main, labelOf(path.split('/').pop()));
  const { data } = await get(path);
  main.append(valueView(data));
}

/** What a deploy would do: per cluster and object, the action and the JSON Patch of updates. */
export async function plan(main, setPath) {
  main.append(await crumbs(`${setPath}/x`));
  title(main, 'Plan');
  const { data } = await get(`${setPath}/plan`);
  const s = data.summary || {};
  main.append(h('p', { class: 'lead', id: 'plan-summary' },
    Object.entries(s).map(([k, v]) => `${v} ${labelOf(k).toLowerCase()}`).join(' · ')));
  for (const cluster of data.clusters) {
    const section = h('section', { class: 'plan-cluster', dataset: { cluster: cluster.cluster } }, h('h2', {}, cluster.cluster));
    if (cluster.error) section.append(alertBox(cluster.error));
    if (cluster.objects.length) {
      section.append(h('div', { class: 'table-wrap' }, h('table', { class: 'plan' },
        h('thead', {}, h('tr', {}, ['Action', 'Kind', 'Namespace', 'Name', 'Change'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, cluster.objects.map((o) => h('tr', { dataset: { action: o.action } },
          h('td', {}, badge(o.action)), h('td', {}, o.kind), h('td', {}, o.namespace), h('td', {}, o.name),
          h('td', {}, o.patch ? patchView(o.patch) : (o.message || ''))))))));
    }
    main.append(section);
  }
}

function patchView(patch) {
  return h('pre', { class: 'code patch' }, patch.map((op) => {
    const sign = op.op === 'remove' ? '-' : op.op === 'add' ? '+' : '~';
    const value = op.value === undefined ? '' : ` ${JSON.stringify(op.value)}`;
    return h('span', { class: `line patch-${op.op}` }, `${sign} ${op.path}${value}\n`);
  }));
}

/** Why the set may not work on its clusters: the analysis findings. */
export async function analysis(main, setPath) {
  main.append(await crumbs(`${setPath}/x`));
  title(main, 'Analysis');
  const { data } = await get(`${setPath}/analysis`);
  if (!data.findings.length) {
    main.append(h('p', { class: 'empty', id: 'no-findings' }, 'No findings: the clusters have what the set needs.'));
    return;
  }
  main.append(h('div', { class: 'table-wrap' }, h('table', { class: 'findings' },
    h('thead', {}, h('tr', {}, ['Severity', 'Code', 'Cluster', 'Object', 'Message', 'Intent'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, data.findings.map((f) => h('tr', { dataset: { code: f.code } },
      h('td', {}, badge(f.severity)), h('td', {}, f.code), h('td', {}, f.cluster), h('td', {}, f.object || ''),
      h('td', { class: 'message' }, f.message),
      h('td', {}, f.intent ? link(f.intent.replace(/^\/v2/, ''), f.intent.split('/').pop()) : '')))))));
}

export { errorView };
