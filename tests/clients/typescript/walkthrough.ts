// The README's walk-through (httpbin and sleep) through the generated TypeScript client.
//
// Run by tests/clients/run.sh against a running server: MESHINTENT_URL is its base URL and
// MESHINTENT_TOKEN an admin token. Every call must answer with the documented success status and
// body; anything else fails the script. `tsc --strict` checks this file together with the
// generated code, so a schema change that breaks a typed client breaks the test.

import { createClient, createConfig } from './generated/client/index.js';
import {
  appCreate,
  clientCreate,
  clientGet,
  clusterCreate,
  compositeAppCreate,
  inboundIntentCreate,
  inboundIntentGet,
  projectCreate,
  securityIntentCreate,
  trafficIntentSetCreate,
  trafficIntentSetManifests,
} from './generated/index.js';
import type { InboundClientWritable, InboundIntentWritable, ManifestList } from './generated/index.js';

const baseUrl = required('MESHINTENT_URL');
const token = required('MESHINTENT_TOKEN');
const client = createClient(createConfig({ baseUrl, auth: () => token }));

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

type Outcome<T> = ({ data: T; error: undefined } | { data: undefined; error: unknown }) & {
  response: Response;
};

/** The body of a call that answered `status`; throws on any other answer. */
async function ok<T>(what: string, call: Promise<Outcome<T>>, status: number): Promise<T> {
  const { data, error, response } = await call;
  if (response.status !== status || data === undefined) {
    throw new Error(`${what}: expected ${status}, got ${response.status}: ${JSON.stringify(error)}`);
  }
  return data;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`walk-through check failed: ${what}`);
}

// Two clusters: httpbin runs on cluster02, sleep on cluster01.
for (const [name, address] of [['cluster01', '198.51.100.10'], ['cluster02', '198.51.100.20']] as const) {
  await ok(
    `cluster ${name}`,
    clusterCreate({
      client,
      body: {
        metadata: { name },
        spec: { identity: `${name}.mesh.example.com`, istio: { ingressGateway: { address } } },
      },
    }),
    201,
  );
}

await ok(
  'project',
  projectCreate({ client, body: { metadata: { name: 'shop' }, spec: { namespaces: ['default'] } } }),
  201,
);
await ok(
  'composite app',
  compositeAppCreate({
    client,
    path: { project: 'shop' },
    body: {
      metadata: { name: 'storefront', description: 'httpbin and its clients' },
      spec: { version: 'v1' },
    },
  }),
  201,
);
const composite = { project: 'shop', compositeApp: 'storefront', version: 'v1' };
for (const [name, cluster] of [['httpbin', 'cluster02'], ['sleep', 'cluster01']] as const) {
  const app = await ok(
    `app ${name}`,
    appCreate({
      client,
      path: composite,
      body: { metadata: { name }, spec: { namespace: 'default', placement: { clusters: [cluster] } } },
    }),
    201,
  );
  // The server fills in the defaults that derive from the name.
  check(app.spec.serviceAccount === name, `the app's service account: ${app.spec.serviceAccount}`);
}

await ok(
  'traffic intent set',
  trafficIntentSetCreate({ client, path: composite, body: { metadata: { name: 'default' } } }),
  201,
);
const set = { ...composite, set: 'default' };

// httpbin, exposed in the mesh on port 8000, with circuit breaking.
const httpbin: InboundIntentWritable = {
  metadata: { name: 'httpbin' },
  spec: {
    app: 'httpbin',
    serviceName: 'httpbin',
    port: 8000,
    protocol: 'HTTP',
    trafficPolicy: {
      loadBalancer: { consistentHash: { httpCookie: { name: 'user', ttl: '60s' } } },
      connectionPool: {
        maxConnections: 10,
        connectTimeout: '10s',
        http2MaxRequests: 1000,
        maxRequestsPerConnection: 100,
      },
      outlierDetection: { consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m' },
    },
  },
};
await ok('inbound intent', inboundIntentCreate({ client, path: set, body: httpbin }), 201);

// sleep may call httpbin, but only GET /status and GET /headers.
const sleep: InboundClientWritable = { metadata: { name: 'sleep' }, spec: { app: 'sleep' } };
await ok('client', clientCreate({ client, path: { ...set, intent: 'httpbin' }, body: sleep }), 201);
await ok(
  'security intent',
  securityIntentCreate({
    client,
    path: { ...set, intent: 'httpbin', client: 'sleep' },
    body: {
      metadata: { name: 'status-and-headers' },
      spec: { action: 'ALLOW', rules: [{ methods: ['GET'], paths: ['/status', '/headers'] }] },
    },
  }),
  201,
);

// Read back: defaults are filled in and the revision is the first.
const stored = await ok(
  'read the inbound intent',
  inboundIntentGet({ client, path: { ...set, intent: 'httpbin' } }),
  200,
);
check(stored.spec.mtls === 'ISTIO_MUTUAL', `mtls defaults to ISTIO_MUTUAL: ${stored.spec.mtls}`);
check(stored.metadata.revision === 1, `revision 1: ${stored.metadata.revision}`);
const storedClient = await ok(
  'read the client',
  clientGet({ client, path: { ...set, intent: 'httpbin', client: 'sleep' } }),
  200,
);
check(storedClient.spec.app === 'sleep', "the client's app");

const manifests: ManifestList = await ok(
  'manifests',
  trafficIntentSetManifests({ client, path: set, query: { format: 'json' } }),
  200,
);
type IstioObject = { kind?: unknown; spec?: Record<string, any> };
const objects = new Map<string, IstioObject[]>(
  manifests.clusters.map((c) => [c.cluster, c.objects as IstioObject[]]),
);
check(
  [...objects.keys()].sort().join() === 'cluster01,cluster02',
  `clusters rendered: ${[...objects.keys()]}`,
);
const onServer = objects.get('cluster02') ?? [];
const kinds = new Set(onServer.map((o) => o.kind));
for (const kind of ['AuthorizationPolicy', 'DestinationRule', 'PeerAuthentication', 'Gateway']) {
  check(kinds.has(kind), `cluster02 has a ${kind}: ${[...kinds]}`);
}
const policies = onServer.filter((o) => o.kind === 'AuthorizationPolicy');
const sleepMayGetStatusAndHeaders = policies.some((policy) =>
  (policy.spec?.rules ?? []).some(
    (rule: any) =>
      (rule.from ?? []).some((f: any) =>
        (f.source?.principals ?? []).some((p: string) => p.endsWith('/sa/sleep')),
      ) &&
      (rule.to ?? []).some(
        (t: any) =>
          JSON.stringify(t.operation?.methods) === '["GET"]' &&
          JSON.stringify(t.operation?.paths) === '["/status","/headers"]',
      ),
  ),
);
check(
  sleepMayGetStatusAndHeaders,
  `an AuthorizationPolicy lets sleep GET /status and /headers: ${JSON.stringify(policies)}`,
);
check(
  onServer.some(
    (o) =>
      o.kind === 'DestinationRule' &&
      o.spec?.trafficPolicy?.outlierDetection?.consecutive5xxErrors === 7,
  ),
  "httpbin's DestinationRule carries the circuit breaking",
);
check(
  (objects.get('cluster01') ?? []).some((o) => o.kind === 'ServiceEntry'),
  'cluster01 reaches httpbin through a ServiceEntry',
);
const total = [...objects.values()].reduce((n, list) => n + list.length, 0);
console.log(`typescript walk-through: ${total} objects rendered, checks passed`);
