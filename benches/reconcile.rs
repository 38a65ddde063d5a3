//! Reconciliation benchmark (issue 12): a sweep over 100 deployed sets without drift. Each set
//! is checked the way the reconciler checks it (`POST .../reconcile` runs the same check as the
//! periodic loop: one labelled LIST per kind per cluster, compared with the deployed revision),
//! one set after another as one replica's reconciler does, then 4 at a time. Prints the time,
//! the requests the fake Kubernetes API server received by kind, and the writes (which must be 0).
//!
//! `cargo bench --bench reconcile` (embedded SQLite; MESHINTENT_BENCH_POSTGRES for PostgreSQL;
//! MESHINTENT_BENCH_KUBE_LATENCY_MS sets the fake's latency per request, default 2 ms).

#[path = "../tests/support/fake_kube/mod.rs"]
mod fake_kube;
mod support;

use std::time::{Duration, Instant};

use fake_kube::FakeKube;
use futures::StreamExt;
use meshintent::configuration::Settings;
use meshintent::startup::Application;
use serde_json::{Value, json};
use support::kube_requests::RequestCounts;
use support::{authenticated_client, database};

const SETS: usize = 100;
/// Inbound intents per set (3 objects each).
const INTENTS: usize = 2;
const CLUSTER: &str = "cluster01";
const CA: &str = "/v2/projects/bench/composite-apps/fleet/v1";

fn latency() -> Duration {
    let ms = std::env::var("MESHINTENT_BENCH_KUBE_LATENCY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .unwrap_or(2.0);
    Duration::from_secs_f64(ms / 1000.0)
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
}

fn set_path(i: usize) -> String {
    format!("{CA}/traffic-intent-sets/set{i}")
}

fn counts(fake: &FakeKube) -> RequestCounts {
    let requests = fake.requests();
    RequestCounts::of(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str())),
    )
}

/// Checks every set, `parallel` at a time; returns the elapsed time and whether any drifted.
async fn sweep(api: &Api, parallel: usize) -> (Duration, usize) {
    let started = Instant::now();
    let drifted = futures::stream::iter(0..SETS)
        .map(|i| async move {
            let result = api
                .post(&format!("{}/reconcile", set_path(i)), json!({}))
                .await;
            usize::from(result["drifted"] != false)
        })
        .buffer_unordered(parallel)
        .collect::<Vec<usize>>()
        .await
        .into_iter()
        .sum();
    (started.elapsed(), drifted)
}

#[tokio::main]
async fn main() {
    let latency = latency();
    let fake = FakeKube::start().await;
    fake.set_delay((!latency.is_zero()).then_some(latency));
    let dir = std::env::temp_dir().join(format!("meshintent-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (database, secret_key, backend) = database(&dir).await;
    let token = meshintent::auth::token::generate();
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        database,
        secret_key,
        handle_signals: false,
        shutdown_timeout: 1,
        workers: Some(2),
        // The periodic loop stays off: the sweep is driven below, set by set.
        worker: Some(meshintent::worker::WorkerSettings {
            poll_interval: Duration::from_millis(50),
            reconcile: None,
            ..Default::default()
        }),
        push: meshintent::push::PushSettings::default(),
        auth: meshintent::auth::AuthSettings::default(),
        max_body_bytes: meshintent::configuration::DEFAULT_MAX_BODY_BYTES,
        max_document_bytes: meshintent::configuration::DEFAULT_MAX_DOCUMENT_BYTES,
        bootstrap_token: Some(token.clone()),
        metrics_listen: None,
        events: Default::default(),
    };
    let app = Application::build(&settings).await.unwrap();
    let api = Api {
        client: authenticated_client(&token),
        base: format!("http://127.0.0.1:{}", app.port()),
    };
    let running = app.spawn();
    println!(
        "backend: {backend}; fake API server latency per request: {:.1} ms",
        latency.as_secs_f64() * 1000.0
    );

    let t = Instant::now();
    api.post(
        "/v2/clusters",
        json!({"metadata": {"name": CLUSTER},
               "spec": {"identity": "cluster01.mesh.example.com", "kubeconfig": fake.kubeconfig()}}),
    )
    .await;
    api.post(
        "/v2/projects",
        json!({"metadata": {"name": "bench"}, "spec": {"namespaces": ["fleet"]}}),
    )
    .await;
    api.post(
        "/v2/projects/bench/composite-apps",
        json!({"metadata": {"name": "fleet"}, "spec": {"version": "v1"}}),
    )
    .await;
    api.post(
        &format!("{CA}/apps"),
        json!({"metadata": {"name": "app"},
               "spec": {"namespace": "fleet", "placement": {"clusters": [CLUSTER]}}}),
    )
    .await;
    for i in 0..SETS {
        api.post(
            &format!("{CA}/traffic-intent-sets"),
            json!({"metadata": {"name": format!("set{i}")}, "spec": {"sync": {"interval": "24h"}}}),
        )
        .await;
        for j in 0..INTENTS {
            let name = format!("svc{i}-{j}");
            api.post(
                &format!("{}/inbound-intents", set_path(i)),
                json!({"metadata": {"name": name},
                       "spec": {"app": "app", "serviceName": name, "port": 8080, "protocol": "HTTP"}}),
            )
            .await;
        }
    }
    for i in 0..SETS {
        api.post(&format!("{}/deploy", set_path(i)), json!({}))
            .await;
    }
    for i in 0..SETS {
        loop {
            let status = api.get(&format!("{}/status", set_path(i))).await;
            match status["state"].as_str() {
                Some("Applied") => break,
                Some("Pending" | "Applying") => tokio::time::sleep(Duration::from_millis(20)).await,
                other => panic!("set{i}: deploy ended {other:?}"),
            }
        }
    }
    let objects = fake.objects().len();
    println!(
        "seed: {SETS} sets x {INTENTS} inbound intents written and deployed ({objects} objects on {CLUSTER}) in {:.1?}",
        t.elapsed()
    );

    for parallel in [1, 4] {
        fake.clear_requests();
        let (elapsed, drifted) = sweep(&api, parallel).await;
        let requests = counts(&fake);
        println!(
            "sweep of {SETS} sets without drift, {parallel} at a time: {:.3} s ({:.1} ms a set); \
             {} requests: {requests}, {} writes; {drifted} drifted",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / SETS as f64,
            requests.total(),
            requests.writes,
        );
        assert_eq!(requests.writes, 0, "a sweep without drift must not write");
        assert_eq!(drifted, 0);
    }

    running.kill().await;
    let _ = std::fs::remove_dir_all(dir);
}
