//! Event delivery (issue 12): 1,000 events, each published in its own transaction, delivered to
//! 50 SSE subscribers of one set through real HTTP. Prints the latency from the commit to each
//! subscriber's receipt (p50, p99, max) and the total time.
//!
//! `cargo bench --bench events` (SQLite); with `MESHINTENT_BENCH_POSTGRES=postgres://...` on a
//! fresh PostgreSQL schema.

mod support;

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use meshintent::configuration::Settings;
use meshintent::domain::model::SetAddress;
use meshintent::service::events::{Event, EventType};
use meshintent::startup::Application;
use serde_json::json;
use support::{authenticated_client, database};

const EVENTS: usize = 1_000;
const SUBSCRIBERS: usize = 50;
const SET: &str = "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets/all";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

#[tokio::main]
async fn main() {
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
        worker: None,
        push: meshintent::push::PushSettings::default(),
        auth: meshintent::auth::AuthSettings::default(),
        max_body_bytes: meshintent::configuration::DEFAULT_MAX_BODY_BYTES,
        max_document_bytes: meshintent::configuration::DEFAULT_MAX_DOCUMENT_BYTES,
        bootstrap_token: Some(token.clone()),
        metrics_listen: None,
        events: Default::default(),
    };
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let service = app.service().clone();
    let running = app.spawn();
    let client = authenticated_client(&token);
    for (path, body) in [
        (
            "/v2/projects",
            json!({"metadata": {"name": "bench"}, "spec": {"namespaces": ["default"]}}),
        ),
        (
            "/v2/projects/bench/composite-apps",
            json!({"metadata": {"name": "fleet"}, "spec": {"version": "v1"}}),
        ),
        (
            "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets",
            json!({"metadata": {"name": "all"}}),
        ),
    ] {
        let r = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{path}");
    }

    // Every subscriber connected and past its first read before the first event.
    let epoch = Instant::now();
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let response = client
            .get(format!("{base}{SET}/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        subscribers.push(tokio::spawn(async move {
            let mut events = response.bytes_stream().eventsource();
            let mut latencies = Vec::with_capacity(EVENTS);
            while latencies.len() < EVENTS {
                let event = events.next().await.expect("the stream goes on").unwrap();
                let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
                let sent = Duration::from_micros(data["sentMicros"].as_u64().unwrap());
                latencies.push(epoch.elapsed().saturating_sub(sent));
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let set = SetAddress {
        project: "bench".parse().unwrap(),
        composite_app: "fleet".parse().unwrap(),
        version: "v1".parse().unwrap(),
        set: "all".parse().unwrap(),
    }
    .path();
    let t = Instant::now();
    for n in 0..EVENTS {
        let mut tx = service.store().begin_write().await.unwrap();
        let event = Event::new(
            &set,
            EventType::IntentWritten,
            json!({"n": n, "sentMicros": epoch.elapsed().as_micros() as u64}),
        );
        service.publish(&mut tx, vec![event]).await.unwrap();
        tx.commit().await.unwrap();
        service.events_committed();
    }
    let published = t.elapsed();
    let mut all = Vec::with_capacity(EVENTS * SUBSCRIBERS);
    for s in subscribers {
        all.extend(s.await.unwrap());
    }
    let delivered = t.elapsed();
    all.sort();
    println!(
        "backend: {backend}; {EVENTS} events (one transaction each) to {SUBSCRIBERS} SSE subscribers over HTTP"
    );
    println!(
        "published in {published:.1?} ({:.0} events/s); all {} deliveries done after {delivered:.1?}",
        EVENTS as f64 / published.as_secs_f64(),
        all.len()
    );
    println!(
        "latency from the insert (before its commit) to receipt: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all[all.len() - 1]
    );
    running.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
