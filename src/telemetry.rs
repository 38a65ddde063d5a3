//! Logging, set up once per process.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `MESHINTENT_LOG` (or `RUST_LOG`), default `info`; JSON lines
/// when `json` is set.
pub fn init(json: bool) {
    let filter = std::env::var("MESHINTENT_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (e.g. several servers in one test process) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

static METRICS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

/// Installs the Prometheus recorder once per process (later calls reuse it).
pub fn init_metrics() {
    METRICS.get_or_init(|| {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("meshintent_apply_seconds".into()),
                &[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            )
            .expect("valid buckets")
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(
                    "meshintent_reconcile_duration_seconds".into(),
                ),
                &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            )
            .expect("valid buckets")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        metrics::describe_counter!(
            "meshintent_deploys_total",
            "Finished deployments by action and outcome"
        );
        metrics::describe_counter!(
            "meshintent_objects_total",
            "Objects handled by deploys, by cluster and result"
        );
        metrics::describe_histogram!(
            "meshintent_apply_seconds",
            metrics::Unit::Seconds,
            "Latency of server-side apply requests, retries included"
        );
        metrics::describe_gauge!("meshintent_queue_depth", "Deployments waiting or running");
        metrics::describe_counter!(
            "meshintent_drift_found_total",
            "Reconcile checks that found drift on a cluster, by cluster"
        );
        metrics::describe_counter!(
            "meshintent_drift_repaired_total",
            "Drift repaired by a reconciler deployment, by cluster"
        );
        metrics::describe_histogram!(
            "meshintent_reconcile_duration_seconds",
            metrics::Unit::Seconds,
            "Duration of one reconcile check of a set (all its clusters)"
        );
        handle
    });
}

/// The metrics in the Prometheus text format.
pub fn render_metrics() -> String {
    METRICS.get().map(|h| h.render()).unwrap_or_default()
}
