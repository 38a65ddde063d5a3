// The console's only way to the server: the /v2 API with the signed-in caller's bearer token.

const TOKEN_KEY = 'meshintent.token';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  signIn(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  signOut() { sessionStorage.removeItem(TOKEN_KEY); },
};

/** A refused request: `problem` is the RFC 9457 body when the server sent one. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && typeof problem === 'object'
      ? (problem.detail || problem.title)
      : (problem || `HTTP ${status}`);
    super(detail);
    this.status = status;
    this.problem = problem && typeof problem === 'object' ? problem : null;
  }
  /** `[{field, message}]` with JSON pointers into the request body. */
  get fieldErrors() { return this.problem?.errors || []; }
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

/** Calls `/v2{path}`; resolves to `{status, etag, data}` or throws ApiError. */
export async function call(method, path, body, headers = {}) {
  const sent = { Accept: 'application/json', ...headers };
  if (session.token) sent.Authorization = `Bearer ${session.token}`;
  let payload;
  if (body !== undefined) {
    sent['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(`/v2${path}`, { method, headers: sent, body: payload, cache: 'no-store' });
  const type = res.headers.get('Content-Type') || '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json() : await res.text();
  if (res.status === 401) onUnauthorized();
  if (!res.ok) throw new ApiError(res.status, data);
  return { status: res.status, etag: res.headers.get('ETag'), data };
}

export const get = (path, headers) => call('GET', path, undefined, headers);

/** Every page of a list (`nextPage` tokens), up to `max` items. */
export async function getAll(path, max = 2000) {
  const items = [];
  let next = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(next ? `${path}${sep}pageToken=${encodeURIComponent(next)}` : path);
    items.push(...(page.data.items || []));
    next = page.data.nextPage || null;
  } while (next && items.length < max);
  return items;
}

/** Fetches a binary body (the graph SVG) as an object URL for an <img>. */
export async function blobUrl(path, accept) {
  const res = await fetch(`/v2${path}`, {
    headers: { Accept: accept, Authorization: `Bearer ${session.token}` },
    cache: 'no-store',
  });
  if (!res.ok) {
    const type = res.headers.get('Content-Type') || '';
    throw new ApiError(res.status, type.includes('json') ? await res.json() : await res.text());
  }
  return URL.createObjectURL(await res.blob());
}

// --- The API's shape, read from its own OpenAPI document -------------------------------------

let described = null;

/** The served OpenAPI document, compiled into path templates. */
export async function apiShape() {
  if (described) return described;
  const res = await fetch('/api-docs/openapi.json');
  const doc = await res.json();
  const routes = Object.entries(doc.paths)
    .filter(([path]) => path.startsWith('/v2/'))
    .map(([path, ops]) => {
      const template = path.slice(3);
      return {
        template,
        ops,
        regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
        params: [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]),
      };
    });
  described = { doc, routes };
  return described;
}

/** The route whose template matches `path`, with its parameter values. */
export function matchRoute(shape, path) {
  for (const route of shape.routes) {
    const m = route.regex.exec(path);
    if (m) return { route, values: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

/** Follows `$ref`s into the document's components. */
export function deref(shape, schema) {
  let s = schema;
  for (let i = 0; s && s.$ref && i < 20; i += 1) {
    s = shape.doc.components.schemas[s.$ref.split('/').pop()];
  }
  return s || {};
}
