//! Plan benchmark (issue 12): `GET .../plan` of a set of about 1,000 objects on one cluster, the
//! fake Kubernetes API server answering every request after a fixed latency (as a real API
//! server would). Three plans, each printed with its time and the requests the API server
//! received (dry-run PATCHes apart from real writes, which must be 0):
//! - before the first deploy: every object `create`, one dry-run apply each;
//! - after the deploy, unchanged: every object `unchanged`, no PATCH at all;
//! - after one intent changed: one `update` (one dry-run apply).
//!
//! `cargo bench --bench plan` (embedded SQLite; MESHINTENT_BENCH_POSTGRES for PostgreSQL;
//! MESHINTENT_BENCH_KUBE_LATENCY_MS sets the latency, default 2 ms).

#[path = "../tests/support/fake_kube/mod.rs"]
mod fake_kube;
mod support;

use std::time::{Duration, Instant};

use fake_kube::FakeKube;
use meshintent::configuration::{DatabaseSettings, SecretKeySource, Settings};
use meshintent::startup::Application;
use serde_json::{Value, json};
use support::kube_requests::RequestCounts;
use support::{authenticated_client, database};

/// Inbound intents without clients render 3 objects each.
const INTENTS: usize = 334;
const CLUSTER: &str = "cluster01";
const SET: &str = "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets/all";
const LATENCY_VAR: &str = "MESHINTENT_BENCH_KUBE_LATENCY_MS";
const DEFAULT_LATENCY_MS: f64 = 2.0;

fn kube_latency() -> Duration {
    let ms = std::env::var(LATENCY_VAR)
        .ok()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .unwrap_or(DEFAULT_LATENCY_MS);
    Duration::from_secs_f64(ms / 1000.0)
}

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

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

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
            self.post(&format!("{SET}/inbound-intents"), intent(i, 100))
                .await;
        }
    }

    async fn deploy(&self) {
        let queued = self.post(&format!("{SET}/deploy"), json!({})).await;
        let revision = queued["revision"].as_i64().unwrap();
        loop {
            let page = self.get(&format!("{SET}/deployments?limit=1")).await;
            let newest = &page["items"][0];
            let running = matches!(newest["state"].as_str(), Some("Pending" | "Applying"));
            if newest["revision"].as_i64() == Some(revision) && !running {
                assert_eq!(newest["state"], "Applied", "{newest}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn intent(i: usize, max_connections: u32) -> Value {
    json!({"metadata": {"name": format!("svc{i}")},
        "spec": {"app": "app", "serviceName": format!("svc{i}"), "port": 8080, "protocol": "HTTP",
                 "trafficPolicy": {"connectionPool": {"maxConnections": max_connections}}}})
}

/// Plans the set once and prints what it took.
async fn plan(api: &Api, fake: &FakeKube, label: &str) -> Value {
    fake.clear_requests();
    let started = Instant::now();
    let plan = api.get(&format!("{SET}/plan")).await;
    let elapsed = started.elapsed();
    let requests = fake.requests();
    let counts = RequestCounts::of(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str())),
    );
    let dry_runs = requests.iter().filter(|r| r.is_dry_run()).count();
    let objects: usize = plan["clusters"][0]["objects"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "plan {label}: {objects} objects ({}) in {:.3} s; requests: {} = {dry_runs} dry-run PATCHes + {} \
         reads ({counts}); real writes: {}",
        plan["summary"],
        elapsed.as_secs_f64(),
        counts.total(),
        counts.reads(),
        fake.writes().len(),
    );
    plan
}

#[tokio::main]
async fn main() {
    let latency = kube_latency();
    let fake = FakeKube::start().await;
    fake.set_delay((!latency.is_zero()).then_some(latency));
    let dir = std::env::temp_dir().join(format!("meshintent-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (db, key, backend) = database(&dir).await;
    let token = meshintent::auth::token::generate();
    let app = Application::build(&settings(db, key, &token))
        .await
        .unwrap();
    let api = Api {
        client: authenticated_client(&token),
        base: format!("http://127.0.0.1:{}", app.port()),
    };
    let running = app.spawn();
    println!(
        "backend: {backend}; fake API server latency per request: {:.1} ms ({LATENCY_VAR})",
        latency.as_secs_f64() * 1000.0
    );
    api.seed(&fake).await;

    plan(&api, &fake, "before the first deploy").await;
    api.deploy().await;
    plan(&api, &fake, "after the deploy (unchanged)").await;
    api.send(
        reqwest::Method::PUT,
        &format!("{SET}/inbound-intents/svc0"),
        Some(intent(0, 200)),
    )
    .await;
    plan(&api, &fake, "after one intent changed").await;

    running.kill().await;
    let _ = std::fs::remove_dir_all(dir);
}
