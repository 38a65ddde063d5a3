//! Deploy benchmark: a set of about 1,000 objects deployed through the service and its worker to
//! the fake Kubernetes API server (over HTTP, through kube's client), then deployed again
//! unchanged. Prints objects per second and the write count of the unchanged redeploy.
//!
//! `cargo bench --bench deploy` (embedded SQLite; set MESHINTENT_BENCH_POSTGRES to a PostgreSQL
//! URL to use a fresh schema there instead).

#[path = "../tests/support/fake_kube/mod.rs"]
mod fake_kube;
mod support;

use support::{authenticated_client, database};

use std::time::{Duration, Instant};

use meshintent::configuration::Settings;
use meshintent::startup::Application;
use serde_json::{Value, json};

/// Inbound intents without clients render 3 objects each (DestinationRule, deny-all
/// AuthorizationPolicy, PeerAuthentication).
const INTENTS: usize = 334;
const SET: &str = "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets/all";

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn wait(client: &reqwest::Client, base: &str, revision: i64) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let status: Value = client
            .get(format!("{base}{SET}/deployments/{revision}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !matches!(status["state"].as_str(), Some("Pending" | "Applying")) {
            return (status, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() {
    let fake = fake_kube::FakeKube::start().await;
    let dir = std::env::temp_dir().join(format!("meshintent-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (db, key, backend) = database(&dir).await;
    let token = meshintent::auth::token::generate();
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        database: db,
        secret_key: key,
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
        bootstrap_token: Some(token.clone()),
        metrics_listen: None,
    };
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let running = app.spawn();
    let client = authenticated_client(&token);

    let t = Instant::now();
    post(
        &client,
        &base,
        "/v2/clusters",
        json!({"metadata": {"name": "cluster01"},
        "spec": {"identity": "cluster01.mesh.example.com", "kubeconfig": fake.kubeconfig()}}),
    )
    .await;
    post(
        &client,
        &base,
        "/v2/projects",
        json!({"metadata": {"name": "bench"}, "spec": {"namespaces": ["fleet"]}}),
    )
    .await;
    post(
        &client,
        &base,
        "/v2/projects/bench/composite-apps",
        json!({"metadata": {"name": "fleet"}, "spec": {"version": "v1"}}),
    )
    .await;
    post(
        &client,
        &base,
        "/v2/projects/bench/composite-apps/fleet/v1/apps",
        json!({"metadata": {"name": "app"},
        "spec": {"namespace": "fleet", "placement": {"clusters": ["cluster01"]}}}),
    )
    .await;
    post(
        &client,
        &base,
        "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets",
        json!({"metadata": {"name": "all"}}),
    )
    .await;
    for i in 0..INTENTS {
        post(&client, &base, &format!("{SET}/inbound-intents"), json!({"metadata": {"name": format!("svc{i}")},
            "spec": {"app": "app", "serviceName": format!("svc{i}"), "port": 8080, "protocol": "HTTP",
                     "trafficPolicy": {"connectionPool": {"maxConnections": 100}}}})).await;
    }
    println!(
        "backend: {backend}; {INTENTS} inbound intents written through the API in {:.1?}",
        t.elapsed()
    );

    let queued = post(&client, &base, &format!("{SET}/deploy"), json!({})).await;
    let (status, elapsed) = wait(&client, &base, queued["revision"].as_i64().unwrap()).await;
    let objects = status["clusters"][0]["objects"].as_array().unwrap().len();
    let patches = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    println!(
        "deploy: {objects} objects {} in {:.2?} = {:.0} objects/s ({patches} apply PATCHes, {} writes recorded)",
        status["state"],
        elapsed,
        objects as f64 / elapsed.as_secs_f64(),
        status["writes"]
    );

    fake.clear_requests();
    let queued = post(&client, &base, &format!("{SET}/deploy"), json!({})).await;
    let (status, elapsed) = wait(&client, &base, queued["revision"].as_i64().unwrap()).await;
    println!(
        "unchanged redeploy: {} in {:.2?}; writes sent to the cluster: {} (fake API server count: {}); reads: {}",
        status["state"],
        elapsed,
        status["writes"],
        fake.write_count(),
        fake.requests().len()
    );
    running.kill().await;
    let _ = std::fs::remove_dir_all(dir);
}
