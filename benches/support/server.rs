//! The API half of the scale benchmark: a release `meshintent serve` on PostgreSQL (a child
//! process, so its memory is its own), driven over HTTP. Prints write throughput at 32
//! connections into a small and a 10,000-intent set beside pgbench's single-row insert on the
//! same server, the bulk apply of a 10,000-intent document, the manifests GET of that set
//! (time and the server's peak RSS), and GET latency of one resource beside `/healthz`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use serde_json::json;

use super::documents;

/// Connections writing at once, as in the measurement.
const WRITERS: usize = 32;
/// Writes per measurement.
const WRITES: usize = 2_000;
/// Requests per second of the latency measurement, and its length.
const RATE: u64 = 200;
const LATENCY_SECONDS: u64 = 5;
const CA: &str = "/v2/projects/fleet/composite-apps/fleet/v1";

struct Server {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> u16 {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let response = req.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        status
    }

    /// The server's resident set: (now, peak since the last `reset_peak`), in bytes.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Resets the peak RSS the kernel reports (`/proc/<pid>/clear_refs`, value 5).
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn fresh_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base).await.expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

async fn start(binary: &Path, database: &str, dir: &Path) -> Server {
    let port = free_port();
    let token = meshintent::auth::token::generate();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new(binary)
        .arg("serve")
        .env("DATABASE_URL", database)
        .env("MESHINTENT_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "MESHINTENT_SECRET_KEY",
            meshintent::crypto::SecretBox::generate_key(),
        )
        .env("MESHINTENT_BOOTSTRAP_TOKEN", &token)
        .env("MESHINTENT_DEPLOY_WORKER", "false")
        .env("MESHINTENT_DB_MAX_CONNECTIONS", "32")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("meshintent serve starts");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        token,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(WRITERS * 2)
            .build()
            .unwrap(),
    };
    for _ in 0..300 {
        if let Ok(r) = server.http.get(server.url("/healthz")).send().await
            && r.status().is_success()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the server did not start; see {}",
        dir.join("server.log").display()
    );
}

/// pgbench's single-row JSONB insert with a unique key, `WRITERS` clients for 10 s: tps.
fn pgbench(database_base: &str, dir: &Path) -> Option<f64> {
    let script = dir.join("insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO bench_kv (id, doc) VALUES (gen_random_uuid()::text, '{\"kind\": \"inbound_intent\", \"spec\": {\"port\": 8000}}');\n",
    )
    .ok()?;
    let psql = |sql: &str| {
        Command::new("psql")
            .arg(database_base)
            .args(["-q", "-c", sql])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !psql(
        "DROP TABLE IF EXISTS bench_kv; CREATE TABLE bench_kv (id TEXT PRIMARY KEY, doc JSONB NOT NULL)",
    ) {
        return None;
    }
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &WRITERS.to_string(),
            "-j",
            "2",
            "-T",
            "10",
            "-f",
        ])
        .arg(&script)
        .arg(database_base)
        .output()
        .ok()?;
    psql("DROP TABLE IF EXISTS bench_kv");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
}

/// `WRITES` inbound intents POSTed into `set` by `WRITERS` connections: writes/s, p50, p99.
async fn writes(server: &Arc<Server>, set: &str, tag: &str) -> (f64, Duration, Duration) {
    let url = format!("{CA}/traffic-intent-sets/{set}/inbound-intents");
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..WRITES)
        .map(|i| {
            let (server, url) = (server.clone(), url.clone());
            async move {
                let name = format!("w-{tag}-{i}");
                let body = json!({"metadata": {"name": name},
                                  "spec": {"app": format!("app{}", i % documents::APPS), "serviceName": name,
                                           "port": 8000, "protocol": "HTTP"}});
                let t = Instant::now();
                let status = server.send(reqwest::Method::POST, &url, Some(&body)).await;
                assert_eq!(status, 201, "POST {url}");
                t.elapsed()
            }
        })
        .buffer_unordered(WRITERS)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    (
        WRITES as f64 / elapsed.as_secs_f64(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
    )
}

/// GETs of `path` at `RATE` per second for `LATENCY_SECONDS` (open loop): p50, p99.
async fn latency(server: &Arc<Server>, path: &str) -> (Duration, Duration) {
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut tasks = Vec::new();
    for _ in 0..RATE * LATENCY_SECONDS {
        ticks.tick().await;
        let (server, path) = (server.clone(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let status = server.send(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "GET {path}");
            t.elapsed()
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies.sort();
    (
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the API measurements and prints them. Needs `MESHINTENT_BENCH_POSTGRES`.
pub async fn figures(binary: &Path, intents: usize) {
    let Some(base) = std::env::var("MESHINTENT_BENCH_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        println!("\nAPI figures skipped: set MESHINTENT_BENCH_POSTGRES to a PostgreSQL URL");
        return;
    };
    let dir: PathBuf =
        std::env::temp_dir().join(format!("meshintent-bench-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = fresh_schema(&base).await;
    let server = Arc::new(start(binary, &database, &dir).await);
    println!("\nAPI on PostgreSQL ({base}), release server as a child process");
    let apply = |n: usize| {
        let document = dir.join(format!("document-{n}.yaml"));
        std::fs::write(&document, documents::intent_set(n)).unwrap();
        let started = Instant::now();
        let applied = Command::new(binary)
            .args(["apply", "-f"])
            .arg(&document)
            .args(["--server", &server.base, "--token", &server.token])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("meshintent apply runs");
        assert!(applied.success(), "meshintent apply failed");
        started.elapsed()
    };

    // A small set first: the document's set with 10 intents.
    apply(10);
    let (h50, h99) = latency(&server, "/healthz").await;
    let (g50, g99) = latency(
        &server,
        &format!("{CA}/traffic-intent-sets/all/inbound-intents/svc7"),
    )
    .await;
    println!(
        "  GET one inbound intent at {RATE}/s: p50 {:.1} ms, p99 {:.1} ms; /healthz p50 {:.1} ms, p99 {:.1} ms (p99 ratio {:.1}; target <= 2)",
        ms(g50),
        ms(g99),
        ms(h50),
        ms(h99),
        ms(g99) / ms(h99).max(0.001)
    );
    let pg = pgbench(&base, &dir);
    match pg {
        Some(tps) => {
            println!("  pgbench, single-row JSONB insert, {WRITERS} clients: {tps:.0} tps")
        }
        None => println!("  pgbench not available: no baseline"),
    }
    let ratio = |w: f64| pg.map_or("n/a".to_owned(), |pg| format!("{:.2}x", w / pg));
    let (small, small_p50, small_p99) = writes(&server, "all", "small").await;
    println!(
        "  POST inbound intent, {WRITERS} connections, into a set of 10 intents (growing to {}): {small:.0} writes/s ({} of pgbench; target >= 0.5x), p50 {:.1} ms, p99 {:.1} ms",
        10 + WRITES,
        ratio(small),
        ms(small_p50),
        ms(small_p99)
    );

    // Bulk apply: the whole document through `meshintent apply` (each set in one request).
    server.reset_peak();
    let apply_time = apply(intents);
    let (_, apply_peak) = server.memory();
    println!(
        "  bulk apply of a {intents}-intent document ({} clients each): {:.1} s (target < 20 s), server peak RSS {:.0} MiB",
        documents::CLIENTS_PER_INTENT,
        apply_time.as_secs_f64(),
        mib(apply_peak)
    );

    // The manifests of the large set.
    for attempt in ["first", "second"] {
        let (before, _) = server.memory();
        server.reset_peak();
        let started = Instant::now();
        let mut response = server
            .http
            .get(server.url(&format!("{CA}/traffic-intent-sets/all/manifests")))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "manifests GET");
        let mut bytes = 0usize;
        while let Some(chunk) = response.chunk().await.unwrap() {
            bytes += chunk.len();
        }
        let (now, peak) = server.memory();
        println!(
            "  manifests GET of {} intents ({attempt}): {:.2} s, {:.0} MiB of JSON, server RSS {:.0} MiB before, peak {:.0} MiB (target < 300), {:.0} MiB after",
            intents + WRITES,
            started.elapsed().as_secs_f64(),
            mib(bytes as u64),
            mib(before),
            mib(peak),
            mib(now)
        );
    }

    let (large, large_p50, large_p99) = writes(&server, "all", "large").await;
    println!(
        "  POST inbound intent, {WRITERS} connections, into a set of {} intents: {large:.0} writes/s ({} of pgbench), p50 {:.1} ms, p99 {:.1} ms",
        intents + WRITES,
        ratio(large),
        ms(large_p50),
        ms(large_p99)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
