//! Deploy benchmark (issue 10): a set of about 1,000 objects deployed through the service and its
//! worker to the fake Kubernetes API server (over HTTP, through kube's client), beside the floor,
//! then deployed again unchanged. Every answer of the fake waits a fixed latency, as a real API
//! server's would. Prints, each with its target:
//! - the floor: the same objects applied by a bare parallel server-side apply loop written with
//!   kube (`support::deploy_floor`) into a second, fresh fake with the same latency;
//! - meshintent's first deploy: elapsed, objects/s, the ratio to the floor, requests per object;
//! - the unchanged redeploy: elapsed and writes.
//!
//! `cargo bench --bench deploy` (embedded SQLite; set MESHINTENT_BENCH_POSTGRES to a PostgreSQL
//! URL to use a fresh schema there instead; MESHINTENT_BENCH_KUBE_LATENCY_MS sets the latency,
//! default 2 ms).

#[path = "../tests/support/fake_kube/mod.rs"]
mod fake_kube;
mod support;

use support::deploy_floor::{self, FLOOR_CONCURRENCY, FLOOR_FIELD_MANAGER};
use support::kube_requests::RequestCounts;
use support::{authenticated_client, database};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fake_kube::FakeKube;
use meshintent::configuration::{DatabaseSettings, SecretKeySource, Settings};
use meshintent::startup::Application;
use serde_json::{Value, json};

/// Inbound intents without clients render 3 objects each (DestinationRule, deny-all
/// AuthorizationPolicy, PeerAuthentication).
const INTENTS: usize = 334;
const CLUSTER: &str = "cluster01";
const SET: &str = "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets/all";

const LATENCY_VAR: &str = "MESHINTENT_BENCH_KUBE_LATENCY_MS";
/// Within the 1-3 ms the issue asks for: a nearby API server under little load.
const DEFAULT_LATENCY_MS: f64 = 2.0;

// The targets of issue 10.
const MAX_FLOOR_RATIO: f64 = 1.3;
const MAX_REDEPLOY: Duration = Duration::from_millis(300);

/// The fake API server's latency per request, from `MESHINTENT_BENCH_KUBE_LATENCY_MS`.
fn kube_latency() -> Duration {
    let ms = match std::env::var(LATENCY_VAR) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .unwrap_or_else(|| panic!("{LATENCY_VAR}={text:?}: want milliseconds, e.g. 2 or 0.5")),
        _ => DEFAULT_LATENCY_MS,
    };
    Duration::from_secs_f64(ms / 1000.0)
}

/// A fresh fake API server whose every answer waits `latency` (the fake sleeps asynchronously,
/// so requests in flight wait side by side, as on a real server).
async fn fake_with_latency(latency: Duration) -> FakeKube {
    let fake = FakeKube::start().await;
    fake.set_delay((!latency.is_zero()).then_some(latency));
    fake
}

/// The requests `fake` recorded, by kind.
fn request_counts(fake: &FakeKube) -> RequestCounts {
    let requests = fake.requests();
    RequestCounts::of(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str())),
    )
}

/// The service's settings: meshintent's defaults, except a quick worker poll (local deploys
/// wake the worker at once anyway) and the bootstrap token the benchmark authenticates with.
fn settings(database: DatabaseSettings, secret_key: SecretKeySource, token: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        database,
        secret_key,
        handle_signals: false,
        shutdown_timeout: 1,
        workers: Some(2),
        worker: Some(meshintent::worker::WorkerSettings {
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        }),
        push: meshintent::push::PushSettings::default(),
        auth: meshintent::auth::AuthSettings::default(),
        max_body_bytes: meshintent::configuration::DEFAULT_MAX_BODY_BYTES,
        max_document_bytes: meshintent::configuration::DEFAULT_MAX_DOCUMENT_BYTES,
        bootstrap_token: Some(token.to_owned()),
        metrics_listen: None,
        events: Default::default(),
    }
}

/// The running service's API, as a client sees it.
struct Meshintent {
    client: reqwest::Client,
    base: String,
}

impl Meshintent {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// A cluster (the fake), a project, a composite app, an app placed on the cluster, and a
    /// set of `INTENTS` inbound intents, one request each.
    async fn seed(&self, fake: &FakeKube) {
        self.post(
            "/v2/clusters",
            json!({"metadata": {"name": CLUSTER},
            "spec": {"identity": "cluster01.mesh.example.com", "kubeconfig": fake.kubeconfig()}}),
        )
        .await;
        self.post(
            "/v2/projects",
            json!({"metadata": {"name": "bench"}, "spec": {"namespaces": ["fleet"]}}),
        )
        .await;
        self.post(
            "/v2/projects/bench/composite-apps",
            json!({"metadata": {"name": "fleet"}, "spec": {"version": "v1"}}),
        )
        .await;
        self.post(
            "/v2/projects/bench/composite-apps/fleet/v1/apps",
            json!({"metadata": {"name": "app"},
            "spec": {"namespace": "fleet", "placement": {"clusters": [CLUSTER]}}}),
        )
        .await;
        self.post(
            "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets",
            json!({"metadata": {"name": "all"}}),
        )
        .await;
        for i in 0..INTENTS {
            self.post(&format!("{SET}/inbound-intents"), json!({"metadata": {"name": format!("svc{i}")},
                "spec": {"app": "app", "serviceName": format!("svc{i}"), "port": 8080, "protocol": "HTTP",
                         "trafficPolicy": {"connectionPool": {"maxConnections": 100}}}})).await;
        }
    }

    /// The set's rendered objects for the cluster (`GET .../manifests`), the input of the floor.
    async fn rendered_objects(&self) -> Vec<Value> {
        let body = self
            .get(&format!("{SET}/manifests?cluster={CLUSTER}"))
            .await;
        body["clusters"][0]["objects"]
            .as_array()
            .expect("manifests: clusters[0].objects")
            .clone()
    }

    /// Queues a deploy and waits for it to end; elapsed runs from the POST (which renders the
    /// set and stores its objects) to the first poll that sees the deployment finished.
    async fn deploy(&self) -> (Value, Duration) {
        let started = Instant::now();
        let queued = self.post(&format!("{SET}/deploy"), json!({})).await;
        let revision = queued["revision"].as_i64().unwrap();
        self.wait_finished(revision).await;
        let elapsed = started.elapsed();
        let status = self.get(&format!("{SET}/deployments/{revision}")).await;
        (status, elapsed)
    }

    /// Polls the deployment list, not the deployment, while it runs: a deployment's status
    /// lists every object, and reading that every 10 ms would compete with the worker.
    async fn wait_finished(&self, revision: i64) {
        loop {
            let page = self.get(&format!("{SET}/deployments?limit=1")).await;
            let newest = &page["items"][0];
            let running = matches!(newest["state"].as_str(), Some("Pending" | "Applying"));
            if newest["revision"].as_i64() == Some(revision) && !running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What a deploy came to, from its status and the fake's request log.
struct DeployRun {
    state: String,
    elapsed: Duration,
    /// The worker's part: the deployment's startedAt to finishedAt.
    worker: Option<Duration>,
    /// Objects per state (`applied`, `unchanged`, ...).
    objects: BTreeMap<String, usize>,
    /// Writes as the deployment reports them.
    reported_writes: i64,
    /// Requests as the API server received them.
    requests: RequestCounts,
}

impl DeployRun {
    fn of(status: &Value, elapsed: Duration, fake: &FakeKube) -> Self {
        let mut objects = BTreeMap::new();
        for object in status["clusters"][0]["objects"].as_array().unwrap() {
            let state = object["state"].as_str().unwrap_or("?").to_owned();
            *objects.entry(state).or_default() += 1;
        }
        Self {
            state: status["state"].as_str().unwrap_or("?").to_owned(),
            elapsed,
            worker: worker_span(status),
            objects,
            reported_writes: status["writes"].as_i64().unwrap_or(-1),
            requests: request_counts(fake),
        }
    }

    fn object_count(&self) -> usize {
        self.objects.values().sum()
    }

    /// `999 applied, 3 unchanged`
    fn states(&self) -> String {
        let states: Vec<String> = self
            .objects
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect();
        states.join(", ")
    }

    fn worker_text(&self) -> String {
        self.worker.map_or("?".to_owned(), |span| {
            format!("{:.3} s", span.as_secs_f64())
        })
    }
}

fn worker_span(status: &Value) -> Option<Duration> {
    let at = |field: &str| serde_json::from_value::<DateTime<Utc>>(status[field].clone()).ok();
    (at("finishedAt")? - at("startedAt")?).to_std().ok()
}

/// The floor's run.
struct FloorRun {
    objects: usize,
    elapsed: Duration,
    requests: RequestCounts,
}

impl FloorRun {
    /// The same objects into a fresh fake with the same latency, so neither side finds the
    /// other's objects or request log.
    async fn run(objects: &[Value], latency: Duration) -> Self {
        let fake = fake_with_latency(latency).await;
        let client = fake.client().await;
        let elapsed = deploy_floor::apply_all(&client, objects).await;
        Self {
            objects: objects.len(),
            elapsed,
            requests: request_counts(&fake),
        }
    }

    fn print(&self) {
        println!(
            "floor (kube Api<DynamicObject>, forced server-side apply as {FLOOR_FIELD_MANAGER:?}, \
             concurrency {FLOOR_CONCURRENCY}): {} objects in {:.3} s = {:.0} objects/s; \
             requests: {} writes + {}",
            self.objects,
            self.elapsed.as_secs_f64(),
            per_second(self.objects, self.elapsed),
            self.requests.writes,
            self.requests,
        );
    }
}

fn per_second(objects: usize, elapsed: Duration) -> f64 {
    objects as f64 / elapsed.as_secs_f64()
}

fn print_first_deploy(first: &DeployRun, floor: &FloorRun, concurrency: usize) {
    let n = first.object_count();
    println!(
        "meshintent first deploy (PushSettings::default(), object_concurrency {concurrency}): \
         {n} objects {} ({}) in {:.3} s (POST to finished; worker {}) = {:.0} objects/s = {:.2}x the floor",
        first.state,
        first.states(),
        first.elapsed.as_secs_f64(),
        first.worker_text(),
        per_second(n, first.elapsed),
        ratio(first, floor),
    );
    if n != floor.objects {
        println!(
            "  warning: the deployment has {n} objects, the rendered manifests {}",
            floor.objects
        );
    }
    let requests = &first.requests;
    println!(
        "  requests: {} = {:.2} per object; writes: {} = {:.2} per object ({} reported); other: {requests}",
        requests.total(),
        requests.total() as f64 / n as f64,
        requests.writes,
        requests.writes as f64 / n as f64,
        first.reported_writes,
    );
}

fn print_redeploy(again: &DeployRun) {
    println!(
        "meshintent unchanged redeploy: {} objects {} ({}) in {:.3} s (POST to finished; worker {}); \
         writes: {} received by the API server, {} reported; other: {}",
        again.object_count(),
        again.state,
        again.states(),
        again.elapsed.as_secs_f64(),
        again.worker_text(),
        again.requests.writes,
        again.reported_writes,
        again.requests,
    );
}

/// meshintent's first deploy time over the floor's.
fn ratio(first: &DeployRun, floor: &FloorRun) -> f64 {
    first.elapsed.as_secs_f64() / floor.elapsed.as_secs_f64()
}

fn print_targets(first: &DeployRun, again: &DeployRun, floor: &FloorRun) {
    let target = |name: String, ok: bool| {
        println!("  {name}  {}", if ok { "MET" } else { "NOT MET" });
    };
    let n = first.object_count();
    let ratio = ratio(first, floor);
    println!("targets (issue 10):");
    target(
        format!("first deploy within {MAX_FLOOR_RATIO}x of the floor: {ratio:.2}x"),
        ratio <= MAX_FLOOR_RATIO,
    );
    target(
        format!(
            "exactly one write per object on a first deploy: {} writes for {n} objects",
            first.requests.writes
        ),
        first.requests.writes == n,
    );
    // The "nothing else per object": discovery and one LIST per kind are constant.
    target(
        format!(
            "no other request per object on a first deploy: {} GETs of single objects",
            first.requests.gets
        ),
        first.requests.gets == 0,
    );
    target(
        format!(
            "unchanged redeploy under {:.1} s: {:.3} s",
            MAX_REDEPLOY.as_secs_f64(),
            again.elapsed.as_secs_f64()
        ),
        again.elapsed < MAX_REDEPLOY,
    );
    target(
        format!(
            "unchanged redeploy sends 0 writes: {} received, {} reported",
            again.requests.writes, again.reported_writes
        ),
        again.requests.writes == 0 && again.reported_writes == 0,
    );
}

#[tokio::main]
async fn main() {
    let latency = kube_latency();
    let fake = fake_with_latency(latency).await;
    let dir = std::env::temp_dir().join(format!("meshintent-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (db, key, backend) = database(&dir).await;
    let token = meshintent::auth::token::generate();
    let settings = settings(db, key, &token);
    let concurrency = settings.push.object_concurrency;
    let app = Application::build(&settings).await.unwrap();
    let api = Meshintent {
        client: authenticated_client(&token),
        base: format!("http://127.0.0.1:{}", app.port()),
    };
    let running = app.spawn();

    println!(
        "backend: {backend}; fake API server latency per request: {:.1} ms \
         ({LATENCY_VAR}, default {DEFAULT_LATENCY_MS} ms)",
        latency.as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    api.seed(&fake).await;
    println!(
        "seed: {INTENTS} inbound intents written through the API in {:.1?}",
        t.elapsed()
    );

    let floor = FloorRun::run(&api.rendered_objects().await, latency).await;
    floor.print();

    fake.clear_requests();
    let (status, elapsed) = api.deploy().await;
    let first = DeployRun::of(&status, elapsed, &fake);
    print_first_deploy(&first, &floor, concurrency);

    fake.clear_requests();
    let (status, elapsed) = api.deploy().await;
    let again = DeployRun::of(&status, elapsed, &fake);
    print_redeploy(&again);

    print_targets(&first, &again, &floor);

    running.kill().await;
    let _ = std::fs::remove_dir_all(dir);
}
