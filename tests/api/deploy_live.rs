//! Deploying as a real API server sees it: numbers it normalises, fields other managers add,
//! an API server that dies mid-deploy, the requests sent per object, a worker that is stopped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use meshintent::istio::IstioKind;
use meshintent::push::kinds::api_resource;
use serde_json::{Value, json};

use crate::both_backends;
use crate::deploy::{cluster, deploy, managed, object_states, seed, wait, wait_until};
use crate::fake_kube::FakeKube;
use crate::helpers::{SET, TestApp, httpbin_intent};

const NETWORKING: &str = "networking.istio.io";

async fn verify(app: &TestApp) -> Value {
    app.get(&format!("{SET}/status?verify=true"))
        .await
        .expect(200)
        .body
}

/// Successful writes per object path on a fake cluster.
fn successful_writes(fake: &FakeKube) -> BTreeMap<String, usize> {
    let mut writes = BTreeMap::new();
    for r in fake
        .requests()
        .iter()
        .filter(|r| r.is_write() && r.status.is_some_and(|s| s < 300))
    {
        *writes.entry(r.path.clone()).or_default() += 1;
    }
    writes
}

/// Eight more inbound intents, so that a deploy to cluster01 takes a while.
async fn add_services(app: &TestApp) {
    for i in 0..8 {
        let mut intent = httpbin_intent();
        intent["metadata"]["name"] = json!(format!("svc{i}"));
        intent["spec"]["serviceName"] = json!(format!("svc{i}"));
        app.post(&format!("{SET}/inbound-intents"), intent)
            .await
            .expect(201);
    }
}

/// Waits until at least `n` objects of cluster01 are applied.
async fn until_applied(app: &TestApp, revision: i64, n: usize) {
    let url = format!("{SET}/deployments/{revision}");
    wait_until(app, &url, |s| {
        object_states(s, "cluster01")
            .values()
            .filter(|s| *s == "applied")
            .count()
            >= n
    })
    .await;
}

both_backends!(
    whole_number_floats_stored_as_integers_are_unchanged,
    |app| {
        let (a, b) = seed(&app).await;
        let hello = json!({"metadata": {"name": "hello"}, "spec": {
            "hosts": ["hello.external"],
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "resolution": "DNS",
            "endpoints": [{"address": "hello.apps.example.com", "labels": {"version": "v1"}, "ports": {"http": 443}}],
            "subsets": [{"name": "v1", "labels": {"version": "v1"}, "sni": "hello.apps.example.com"}],
            "tls": {"mode": "ORIGINATE_SIMPLE"}}});
        app.post(&format!("{SET}/outbound-intents"), hello)
            .await
            .expect(201);
        let shift = json!({"metadata": {"name": "hello-shift"}, "spec": {
            "target": {"outboundIntent": "hello"},
            "http": [{"name": "shift", "route": [{"subset": "v1", "weight": 100}],
                      "fault": {"abort": {"percentage": 10, "httpStatus": 418}}}]}});
        app.post(&format!("{SET}/route-intents"), shift)
            .await
            .expect(201);
        let first = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(first["state"], "Applied", "{first:#}");
        // What meshintent sent as 10.0 the API server keeps as 10.
        let percentages: Vec<Value> = a
            .objects()
            .into_iter()
            .chain(b.objects())
            .filter(|o| o["kind"] == "VirtualService")
            .filter_map(|o| {
                o.pointer("/spec/http/0/fault/abort/percentage/value")
                    .cloned()
            })
            .collect();
        assert!(!percentages.is_empty(), "no VirtualService with a fault");
        assert!(
            percentages.iter().all(|p| p.is_i64() && *p == json!(10)),
            "{percentages:?}"
        );
        assert_eq!(verify(&app).await["drifted"], false);
        let again = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(again["writes"], 0, "{again:#}");
        assert_eq!(
            a.write_count() + b.write_count(),
            first["writes"].as_u64().unwrap() as usize
        );
    }
);

both_backends!(
    fields_another_manager_added_are_removed_and_reported,
    |app| {
        let (a, _b) = seed(&app).await;
        wait(&app, deploy(&app, "deploy").await).await;
        // kubectl patch adds a field meshintent does not set.
        let api: Api<DynamicObject> = Api::namespaced_with(
            a.client().await,
            "default",
            &api_resource(IstioKind::DestinationRule),
        );
        let params = PatchParams {
            field_manager: Some("kubectl-patch".into()),
            ..PatchParams::default()
        };
        let added = json!({"spec": {"trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}});
        api.patch("httpbin-dr", &params, &Patch::Merge(&added))
            .await
            .unwrap();
        let drifted = verify(&app).await;
        assert_eq!(drifted["drifted"], true, "{drifted:#}");
        let found = cluster(&drifted, "cluster01")["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "DestinationRule")
            .unwrap()
            .clone();
        assert_eq!(found["drift"], "changed", "{found:#}");
        assert_eq!(
            found["message"],
            "fields other managers added (a redeploy removes them): .spec.trafficPolicy.loadBalancer (set by kubectl-patch)",
            "verify names who changed what"
        );

        let repaired = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(repaired["state"], "Applied", "{repaired:#}");
        let dr = cluster(&repaired, "cluster01")["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "DestinationRule")
            .unwrap()
            .clone();
        assert_eq!(dr["state"], "applied", "{dr:#}");
        let message = dr["message"].as_str().unwrap();
        assert!(
            message.contains(".spec.trafficPolicy.loadBalancer")
                && message.contains("kubectl-patch"),
            "{message}"
        );
        let live = a
            .object(NETWORKING, "destinationrules", "default", "httpbin-dr")
            .unwrap();
        assert_eq!(
            live["spec"]["trafficPolicy"].get("loadBalancer"),
            None,
            "{live:#}"
        );
        assert!(
            live["spec"]["trafficPolicy"].get("tls").is_some(),
            "meshintent's own fields stay"
        );
        assert_eq!(verify(&app).await["drifted"], false);
        a.clear_requests();
        let again = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(again["writes"], 0, "{again:#}");
        assert_eq!(a.write_count(), 0);
    }
);

both_backends!(
    a_first_deploy_sends_one_write_per_object_and_no_reads_of_its_own,
    |app| {
        let (a, _b) = seed(&app).await;
        let status = wait(&app, deploy(&app, "deploy").await).await;
        let objects = object_states(&status, "cluster01");
        assert!(objects.values().all(|s| s == "applied"), "{objects:?}");
        let requests = a.requests();
        // An object path is /apis/{group}/v1/namespaces/{ns}/{plural}/{name}.
        let object_reads: Vec<&str> = requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.split('/').count() == 8)
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(
            object_reads,
            Vec::<&str>::new(),
            "the LIST per kind decides"
        );
        let lists = requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.split('/').count() == 5)
            .count();
        assert_eq!(lists, IstioKind::ALL.len(), "one LIST per kind");
        assert_eq!(a.write_count(), objects.len(), "one write per object");
        assert_eq!(status["writes"], objects.len() + 2, "{status:#}");
    }
);

both_backends!(
    an_api_server_that_dies_mid_deploy_pauses_its_cluster_and_resumes_it,
    |app| {
        let (a, _b) = seed(&app).await;
        add_services(&app).await;
        a.set_delay(Some(Duration::from_millis(100)));
        let revision = deploy(&app, "deploy").await;
        until_applied(&app, revision, 3).await;
        let stopped = Instant::now();
        a.stop().await;
        let url = format!("{SET}/deployments/{revision}");
        let paused = wait_until(&app, &url, |s| {
            cluster(s, "cluster01")["state"] == "Unreachable"
        })
        .await;
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "noticed only after {:?}",
            stopped.elapsed()
        );
        assert_eq!(paused["state"], "Applying", "{paused:#}");
        let states = object_states(&paused, "cluster01");
        assert!(
            !states.values().any(|s| s == "failed"),
            "pending objects wait instead of failing one by one: {:#}",
            cluster(&paused, "cluster01")
        );
        assert!(states.values().any(|s| s == "desired"), "{states:?}");

        a.set_delay(None);
        a.restart().await;
        let status = wait(&app, revision).await;
        assert_eq!(status["state"], "Applied", "{status:#}");
        let objects = object_states(&status, "cluster01");
        assert_eq!(managed(&a).len(), objects.len());
        let writes = successful_writes(&a);
        assert!(
            writes.values().all(|n| *n == 1),
            "applied twice: {writes:?}"
        );
        // Writes are requests the server saw, not attempts against a dead one.
        let seen = a.requests().iter().filter(|r| r.is_write()).count();
        let counted = cluster(&status, "cluster01")["writes"].as_u64().unwrap() as usize;
        assert!(counted <= seen, "counted {counted}, the server saw {seen}");
        assert!(counted >= objects.len() - 4, "counted {counted}");
    }
);

both_backends!(
    a_cluster_that_never_answers_fails_after_the_give_up_time,
    configure = |settings: &mut meshintent::configuration::Settings, _: &std::path::Path| {
        settings.push.outage.give_up_after = Duration::from_secs(1);
    },
    |app| {
        let (a, b) = seed(&app).await;
        b.stop().await;
        let status = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(status["state"], "Degraded", "{status:#}");
        assert_eq!(cluster(&status, "cluster01")["state"], "Applied");
        let down = cluster(&status, "cluster02");
        assert_eq!(down["state"], "Failed", "{down:#}");
        assert!(
            down["message"]
                .as_str()
                .unwrap()
                .contains("gave up after 1s"),
            "{down:#}"
        );
        assert!(
            object_states(&status, "cluster02")
                .values()
                .all(|s| s == "failed")
        );
        assert_eq!(managed(&a).len(), 4);
    }
);

both_backends!(
    a_stopped_worker_hands_its_deployment_over_at_once,
    configure = |settings: &mut meshintent::configuration::Settings, _: &std::path::Path| {
        // A lease far longer than the test may wait: only a release lets the other replica in.
        if let Some(worker) = settings.worker.as_mut() {
            worker.lease = Duration::from_secs(60);
        }
    },
    |app| {
        let mut app = app;
        let (a, _b) = seed(&app).await;
        add_services(&app).await;
        a.set_delay(Some(Duration::from_millis(150)));
        let revision = deploy(&app, "deploy").await;
        until_applied(&app, revision, 3).await;
        app.stop().await;
        a.set_delay(None);
        let started = Instant::now();
        let other = app.another().await;
        let status = wait(&other, revision).await;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "resumed after {:?}",
            started.elapsed()
        );
        assert_eq!(status["state"], "Applied", "{status:#}");
        let writes = successful_writes(&a);
        assert!(
            writes.values().all(|n| *n == 1),
            "applied twice: {writes:?}"
        );
        assert_eq!(managed(&a).len(), object_states(&status, "cluster01").len());
    }
);
