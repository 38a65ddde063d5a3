//! How meshintent scales, in one run (issue 15): `meshintent render -f` of generated documents
//! of 1,000, 10,000 and 30,000 inbound intents (time and peak RSS of the process), then the API
//! on PostgreSQL (`support::server`): writes at 32 connections beside pgbench, the bulk apply of
//! a 10,000-intent document, the manifests GET of that set, and GET latency beside `/healthz`.
//!
//! `cargo bench --bench scale`; set MESHINTENT_BENCH_POSTGRES to a PostgreSQL URL for the API
//! half, MESHINTENT_BENCH_SIZES (e.g. `1000,10000`) to change the render sizes. Figures, not
//! assertions: the targets are printed beside them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::documents;

/// Wall time and peak RSS of `meshintent render -f document` (RSS polled from /proc while it
/// runs), and the objects it printed.
fn render(binary: &Path, document: &Path, output: &Path) -> (Duration, u64, usize) {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("render")
        .arg("-f")
        .arg(document)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(output).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("meshintent starts");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let hwm = std::fs::read_to_string(&status_file)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0);
        peak = peak.max(hwm * 1024);
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    assert!(
        status.success(),
        "meshintent render -f {} failed",
        document.display()
    );
    let objects = std::fs::read_to_string(output)
        .unwrap()
        .lines()
        .filter(|l| *l == "---")
        .count();
    (wall, peak, objects)
}

fn sizes() -> Vec<usize> {
    std::env::var("MESHINTENT_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 30_000])
}

#[tokio::main]
async fn main() {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_meshintent"));
    let dir = std::env::temp_dir().join(format!("meshintent-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "meshintent render -f: {} clients per intent, {} apps on {} clusters",
        documents::CLIENTS_PER_INTENT,
        documents::APPS,
        documents::CLUSTERS
    );
    let mut times = Vec::new();
    for n in sizes() {
        let document = dir.join(format!("intents-{n}.yaml"));
        std::fs::write(&document, documents::intent_set(n)).unwrap();
        let (wall, peak, objects) = render(&binary, &document, &dir.join("out.yaml"));
        println!(
            "  {n:>6} intents: {:>6.2} s, peak RSS {:>5.0} MiB, {objects} objects",
            wall.as_secs_f64(),
            peak as f64 / 1_048_576.0
        );
        times.push((n, wall));
    }
    let at = |n: usize| {
        times
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, t)| t.as_secs_f64())
    };
    if let (Some(t10), Some(t30)) = (at(10_000), at(30_000)) {
        println!(
            "  30k/10k time ratio {:.2} (target <= 3.5); targets: 10k < 2 s, 30k < 6 s",
            t30 / t10
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    support::server::figures(&binary, 10_000).await;
}
