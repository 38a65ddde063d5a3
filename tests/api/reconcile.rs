//! Reconciliation (SPEC 8): deployed sets checked against their clusters on `spec.sync.interval`,
//! drift repaired by a deploy of the same revision with `selfHeal`, only reported without it.
//! Test servers allow intervals down to 1s (`--reconcile-min-interval`, see `helpers`).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::deploy::{deploy, seed, wait, wait_until};
use crate::fake_kube::{FailRule, FakeKube};
use crate::helpers::{Backend, Reply, SET, TestApp, spawn_app};

trait ThenProblem {
    fn then_problem(self, status: u16) -> Reply;
}

impl ThenProblem for Reply {
    /// Asserts an RFC 9457 problem with this status.
    #[track_caller]
    fn then_problem(self, status: u16) -> Reply {
        let reply = self.expect(status);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        reply
    }
}

const NETWORKING: &str = "networking.istio.io";

async fn set_sync(app: &TestApp, sync: Value) {
    app.put(
        SET,
        json!({"metadata": {"name": "default"}, "spec": {"sync": sync}}),
    )
    .await
    .expect(200);
}

async fn status(app: &TestApp) -> Value {
    app.get(&format!("{SET}/status")).await.expect(200).body
}

/// Someone raises the DestinationRule's connection limit and deletes the Gateway.
fn make_drift(fake: &FakeKube) {
    let mut dr = fake
        .object(NETWORKING, "destinationrules", "default", "httpbin-dr")
        .expect("the DestinationRule was deployed");
    dr["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] = json!(999);
    fake.insert_object(dr, "kubectl");
    assert!(fake.remove_object(
        NETWORKING,
        "gateways",
        "istio-system",
        "httpbin-passthrough"
    ));
}

fn repaired(fake: &FakeKube) -> bool {
    let dr = fake.object(NETWORKING, "destinationrules", "default", "httpbin-dr");
    let gateway = fake.object(
        NETWORKING,
        "gateways",
        "istio-system",
        "httpbin-passthrough",
    );
    dr.is_some_and(|dr| {
        dr["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] == 10
    }) && gateway.is_some()
}

/// Deployments of the set triggered by the reconciler.
async fn repairs(app: &TestApp) -> Vec<Value> {
    let list = app
        .get(&format!("{SET}/deployments"))
        .await
        .expect(200)
        .body;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["trigger"] == "reconciler")
        .cloned()
        .collect()
}

/// Waits until the first check of the deployed revision is stored.
async fn first_check(app: &TestApp, revision: i64) -> Value {
    wait_until(app, &format!("{SET}/status"), |s| {
        s["sync"]["checkedRevision"] == revision
    })
    .await
}

both_backends!(self_heal_repairs_a_changed_and_a_deleted_object, |app| {
    let (a, b) = seed(&app).await;
    set_sync(&app, json!({"selfHeal": true, "interval": "1s"})).await;
    let revision = deploy(&app, "deploy").await;
    let first = wait(&app, revision).await;
    assert_eq!(first["state"], "Applied", "{first:#}");
    assert_eq!(first["trigger"], "user");
    // A check of an unchanged set writes nothing: LISTs only.
    a.clear_requests();
    b.clear_requests();
    let clean = first_check(&app, revision).await;
    assert_eq!(clean["sync"]["drifted"], false, "{clean:#}");
    assert_eq!(clean["sync"]["selfHeal"], true);
    assert_eq!(clean["sync"]["interval"], "1s");
    assert!(clean["sync"]["lastCheckedAt"].is_string(), "{clean:#}");
    let requests: Vec<_> = a.requests().into_iter().chain(b.requests()).collect();
    assert!(!requests.is_empty(), "the check read the clusters");
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "a check of an unchanged set only lists: {requests:#?}"
    );

    make_drift(&a);
    let drifted_at = Instant::now();
    let deadline = drifted_at + Duration::from_secs(20);
    while !repaired(&a) {
        assert!(
            Instant::now() < deadline,
            "never repaired: {:#}",
            status(&app).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One interval (1s) plus a poll and a deploy; generous for a loaded machine.
    assert!(
        drifted_at.elapsed() < Duration::from_secs(10),
        "repaired only after {:?}",
        drifted_at.elapsed()
    );
    let repairs = repairs(&app).await;
    let [repair] = repairs.as_slice() else {
        panic!("one repair expected: {repairs:#?}");
    };
    assert_eq!(repair["repairOf"], revision, "{repair:#}");
    assert_eq!(repair["action"], "deploy");
    let repair_revision = repair["revision"].as_i64().unwrap();
    let done = wait(&app, repair_revision).await;
    assert_eq!(done["state"], "Applied", "{done:#}");
    assert_eq!(done["trigger"], "reconciler");
    assert_eq!(done["repairOf"], revision);
    // The next check confirms the repair.
    let confirmed = wait_until(&app, &format!("{SET}/status"), |s| {
        s["sync"]["checkedRevision"] == repair_revision
    })
    .await;
    assert_eq!(confirmed["sync"]["drifted"], false, "{confirmed:#}");
    assert_eq!(confirmed["sync"]["lastRepairRevision"], repair_revision);
    // The set's event stream told the story: drift found on cluster01, then repaired.
    let mut stream = crate::events::open(&app, &format!("{SET}/events"), Some(0)).await;
    let story = crate::events::until(&mut stream, |e| e.kind == "drift-repaired").await;
    let found = story
        .iter()
        .find(|e| e.kind == "drift-found")
        .unwrap_or_else(|| panic!("no drift-found before the repair: {story:#?}"));
    assert_eq!(found.data["cluster"], "cluster01", "{found:#?}");
    assert_eq!(found.data["revision"], revision);
    assert_eq!(found.data["selfHeal"], true);
    let repaired_event = story.last().unwrap();
    assert_eq!(repaired_event.data["revision"], repair_revision);
    assert_eq!(repaired_event.data["repairOf"], revision);
    // Audited as the reconciler's deploy.
    let audit = app
        .get("/v2/audit-events?actor=system:reconciler")
        .await
        .expect(200)
        .body;
    let events = audit["items"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["action"] == "deploy"
            && e["resource"] == SET
            && e["revisionAfter"] == repair_revision),
        "{audit:#}"
    );
    let metrics = app.get("/metrics").await.expect(200).text;
    for line in [
        "meshintent_drift_found_total{cluster=\"cluster01\"}",
        "meshintent_drift_repaired_total{cluster=\"cluster01\"}",
        "meshintent_reconcile_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(line), "no {line} in {metrics}");
    }
});

both_backends!(without_self_heal_drift_is_only_reported, |app| {
    let (a, _b) = seed(&app).await;
    set_sync(&app, json!({"interval": "1s"})).await;
    let revision = deploy(&app, "deploy").await;
    wait(&app, revision).await;
    first_check(&app, revision).await;
    a.clear_requests();
    make_drift(&a);
    let reported = wait_until(&app, &format!("{SET}/status"), |s| {
        s["sync"]["drifted"] == true
    })
    .await;
    assert_eq!(reported["sync"]["selfHeal"], false);
    assert_eq!(
        reported["sync"]["drift"],
        json!({"changed": 1, "missing": 1, "extra": 0}),
        "{reported:#}"
    );
    let message = reported["sync"]["message"].as_str().unwrap();
    assert!(
        message.contains("cluster01: 1 changed, 1 missing, 0 extra"),
        "{message}"
    );
    assert!(message.contains("selfHeal is off"), "{message}");
    // A few more intervals: still reported, never repaired.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = status(&app).await;
    assert_eq!(later["sync"]["drifted"], true);
    assert_ne!(
        later["sync"]["lastCheckedAt"],
        reported["sync"]["lastCheckedAt"]
    );
    assert_eq!(
        a.write_count(),
        0,
        "no write reached the cluster: {:#?}",
        a.requests()
    );
    assert!(repairs(&app).await.is_empty());
    assert!(!repaired(&a));

    // On demand: the same check now, audited.
    let now = app
        .request(Method::POST, &format!("{SET}/reconcile"), None, &[])
        .await
        .expect(200)
        .body;
    assert_eq!(now["drifted"], true, "{now:#}");
    assert_eq!(now["drift"]["missing"], 1);
    assert_eq!(now["checkedRevision"], revision);
    assert_eq!(a.write_count(), 0);
    let audit = app.get("/v2/audit-events").await.expect(200).body;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "reconcile" && e["resource"] == SET),
        "{audit:#}"
    );
});

both_backends!(reconcile_on_demand_needs_an_applied_deploy, |app| {
    let (_a, _b) = seed(&app).await;
    app.request(Method::POST, &format!("{SET}/reconcile"), None, &[])
        .await
        .then_problem(404);
    let revision = deploy(&app, "deploy").await;
    wait(&app, revision).await;
    let clean = app
        .request(Method::POST, &format!("{SET}/reconcile"), None, &[])
        .await
        .expect(200)
        .body;
    assert_eq!(clean["drifted"], false, "{clean:#}");
    // The default: report only, every 5 minutes.
    assert_eq!(clean["selfHeal"], false);
    assert_eq!(clean["interval"], "5m");
    wait(&app, deploy(&app, "terminate").await).await;
    let refused = app
        .request(Method::POST, &format!("{SET}/reconcile"), None, &[])
        .await
        .then_problem(409);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("terminate"),
        "{:#}",
        refused.body
    );
});

both_backends!(a_failing_cluster_is_backed_off, |app| {
    let (a, b) = seed(&app).await;
    set_sync(&app, json!({"interval": "1s"})).await;
    let revision = deploy(&app, "deploy").await;
    wait(&app, revision).await;
    first_check(&app, revision).await;
    // cluster02 answers every request with 503 from now on.
    b.fail_next(FailRule {
        method: None,
        path_contains: None,
        status: 503,
        times: 1_000_000,
    });
    b.clear_requests();
    a.clear_requests();
    let window = Duration::from_secs(8);
    tokio::time::sleep(window).await;
    let failed = b.requests().len();
    let healthy = a.requests().len();
    // Each check retries a failing LIST 3 times (test retry policy). One check per interval
    // would be 8 checks (24 requests); backed off (2s, 4s, 8s after failures) it is 3 or 4.
    assert!(failed > 0, "cluster02 was tried");
    assert!(
        failed <= 4 * 3,
        "cluster02 was not backed off: {failed} requests in {window:?}"
    );
    // cluster01 is still checked every interval (6 LISTs a check).
    assert!(
        healthy >= 5 * 6,
        "cluster01 checked too rarely: {healthy} requests"
    );
    let s = status(&app).await;
    let message = s["sync"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("cluster02"), "{s:#}");
    assert_eq!(
        s["sync"]["drifted"], false,
        "a cluster that cannot be read is not drift"
    );
    // It answers again: an on-demand check reads it (backed off or not) and resets the backoff.
    b.clear_failures();
    let now = app
        .request(Method::POST, &format!("{SET}/reconcile"), None, &[])
        .await
        .expect(200)
        .body;
    assert!(
        !now["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cluster02"),
        "{now:#}"
    );
});

both_backends!(a_bad_sync_is_refused_naming_the_field, |app| {
    app.seed_storefront().await;
    for interval in ["0s", "500ms", "25h", "often", ""] {
        let reply = app
            .put(
                SET,
                json!({"metadata": {"name": "default"}, "spec": {"sync": {"selfHeal": true, "interval": interval}}}),
            )
            .await
            .expect_problem(422, "/spec/sync/interval");
        assert!(!reply.message("/spec/sync/interval").is_empty());
    }
    app.put(
        SET,
        json!({"metadata": {"name": "default"}, "spec": {"sync": {"selfHeal": "yes"}}}),
    )
    .await
    .then_problem(400);
    app.put(
        SET,
        json!({"metadata": {"name": "default"}, "spec": {"sync": {"heal": true}}}),
    )
    .await
    .then_problem(400);
    // A good one is stored with its defaults.
    let stored = app
        .put(
            SET,
            json!({"metadata": {"name": "default"}, "spec": {"sync": {"selfHeal": true}}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        stored["spec"]["sync"],
        json!({"selfHeal": true, "interval": "5m"})
    );
});

/// Two replicas (each with a worker and a reconciler) on one PostgreSQL database: each drift
/// is repaired by exactly one deployment.
mod two_replicas_never_heal_one_set_at_once {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
    async fn postgres() {
        let Some(app) = spawn_app(
            Backend::Postgres,
            "reconcile::two_replicas_never_heal_one_set_at_once::postgres",
        )
        .await
        else {
            return;
        };
        let other = app.another().await;
        let (a, _b) = seed(&app).await;
        set_sync(&app, json!({"selfHeal": true, "interval": "1s"})).await;
        let revision = deploy(&app, "deploy").await;
        wait(&app, revision).await;
        first_check(&app, revision).await;
        for round in 1..=2 {
            make_drift(&a);
            let deadline = Instant::now() + Duration::from_secs(20);
            while !repaired(&a) {
                assert!(Instant::now() < deadline, "round {round}: never repaired");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Let both replicas check a few more times.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let found = repairs(&other).await;
            assert_eq!(found.len(), round, "round {round}: {found:#?}");
            assert!(found.iter().all(|d| d["state"] == "Applied"), "{found:#?}");
        }
    }
}
