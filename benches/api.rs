//! API benchmark: write throughput (creating inbound intents) and read latency (getting one),
//! with authentication off, with an API token and with an OIDC JWT, on the same database kind.
//! Prints requests per second, latency percentiles and the cost of authentication.
//!
//! `cargo bench --bench api` (embedded SQLite; set MESHINTENT_BENCH_POSTGRES to a PostgreSQL URL
//! to use fresh schemas there instead).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use meshintent::auth::oidc::{JwksSource, OidcSettings};
use meshintent::auth::{AuthSettings, token};
use meshintent::configuration::{DEFAULT_MAX_BODY_BYTES, Settings};
use meshintent::startup::Application;
use serde_json::json;
use support::{authenticated_client, database};

const WRITES: usize = 600;
const READS: usize = 4000;
const CONCURRENCY: usize = 16;
const ROUNDS: usize = 3;
const SET: &str = "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets/all";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    ApiToken,
    Jwt,
}

struct Figures {
    writes_per_second: f64,
    reads_per_second: f64,
    read_p50: Duration,
    read_p99: Duration,
}

fn jwt() -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc");
    let key = std::fs::read(fixtures.join("rsa1-private.pem")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": "https://idp.example.com", "aud": "meshintent", "sub": "bench",
                        "groups": ["platform"], "iat": now, "exp": now + 3600});
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&key).unwrap(),
    )
    .unwrap()
}

async fn run(mode: Mode) -> Figures {
    let dir = std::env::temp_dir().join(format!("meshintent-bench-api-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (db, key, _) = database(&dir).await;
    let admin = token::generate();
    let jwks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc/jwks.json");
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        database: db,
        secret_key: key,
        handle_signals: false,
        shutdown_timeout: 1,
        workers: Some(2),
        worker: None,
        push: meshintent::push::PushSettings::default(),
        auth: AuthSettings {
            enabled: mode != Mode::Off,
            failures_per_minute: 20,
            oidc: Some(OidcSettings::new(
                "https://idp.example.com",
                "meshintent",
                JwksSource::File(jwks),
            )),
        },
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        max_document_bytes: meshintent::configuration::DEFAULT_MAX_DOCUMENT_BYTES,
        bootstrap_token: Some(admin.clone()),
        metrics_listen: None,
        events: Default::default(),
    };
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let running = app.spawn();
    let setup = authenticated_client(&admin);
    for (path, body) in [
        (
            "/v2/clusters",
            json!({"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com"}}),
        ),
        (
            "/v2/projects",
            json!({"metadata": {"name": "bench"}, "spec": {"namespaces": ["fleet"]}}),
        ),
        (
            "/v2/projects/bench/composite-apps",
            json!({"metadata": {"name": "fleet"}, "spec": {"version": "v1"}}),
        ),
        (
            "/v2/projects/bench/composite-apps/fleet/v1/apps",
            json!({"metadata": {"name": "app"}, "spec": {"namespace": "fleet", "placement": {"clusters": ["cluster01"]}}}),
        ),
        (
            "/v2/projects/bench/composite-apps/fleet/v1/traffic-intent-sets",
            json!({"metadata": {"name": "all"}}),
        ),
        (
            "/v2/role-bindings",
            json!({"metadata": {"name": "platform"}, "spec": {"subject": {"kind": "Group", "name": "platform"}, "role": "admin"}}),
        ),
    ] {
        let r = setup
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let client = Arc::new(match mode {
        Mode::Off => reqwest::Client::new(),
        Mode::ApiToken => authenticated_client(&admin),
        Mode::Jwt => authenticated_client(&jwt()),
    });

    let started = Instant::now();
    let writes = futures::stream::iter(0..WRITES)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let body = json!({"metadata": {"name": format!("svc{i}")},
                    "spec": {"app": "app", "serviceName": format!("svc{i}"), "port": 8080, "protocol": "HTTP"}});
                let r = client
                    .post(format!("{base}{SET}/inbound-intents"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "{mode:?}: {}", r.text().await.unwrap());
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>();
    writes.await;
    let writes_per_second = WRITES as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..READS)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let t = Instant::now();
                let r = client
                    .get(format!("{base}{SET}/inbound-intents/svc{}", i % WRITES))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let reads_per_second = READS as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    running.kill().await;
    std::fs::remove_dir_all(&dir).ok();
    Figures {
        writes_per_second,
        reads_per_second,
        read_p50: latencies[latencies.len() / 2],
        read_p99: latencies[latencies.len() * 99 / 100],
    }
}

#[tokio::main]
async fn main() {
    meshintent::tls::install_crypto_provider();
    let backend = if std::env::var("MESHINTENT_BENCH_POSTGRES").is_ok_and(|s| !s.is_empty()) {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "backend: {backend}; {WRITES} writes and {READS} reads per run, {CONCURRENCY} in flight, best of {ROUNDS} runs per mode"
    );
    let mut results = Vec::new();
    for mode in [Mode::Off, Mode::ApiToken, Mode::Jwt] {
        let mut best: Option<Figures> = None;
        for _ in 0..ROUNDS {
            let f = run(mode).await;
            best = Some(match best {
                Some(b)
                    if b.writes_per_second + b.reads_per_second
                        >= f.writes_per_second + f.reads_per_second =>
                {
                    b
                }
                _ => f,
            });
        }
        let f = best.unwrap();
        println!(
            "{:<10} writes {:>7.0}/s   reads {:>7.0}/s   read p50 {:>6.2} ms  p99 {:>6.2} ms",
            format!("{mode:?}"),
            f.writes_per_second,
            f.reads_per_second,
            f.read_p50.as_secs_f64() * 1000.0,
            f.read_p99.as_secs_f64() * 1000.0
        );
        results.push((mode, f));
    }
    let off = &results[0].1;
    for (mode, f) in &results[1..] {
        println!(
            "cost of {mode:?} authentication: writes {:+.1}%, reads {:+.1}%",
            (off.writes_per_second - f.writes_per_second) / off.writes_per_second * 100.0,
            (off.reads_per_second - f.reads_per_second) / off.reads_per_second * 100.0
        );
    }
}
