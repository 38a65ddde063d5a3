//! Deploying to clusters, against fake Kubernetes API servers (real HTTP, kube's real client).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::fake_kube::{FailRule, FakeKube};
use crate::helpers::{CA, SET, TestApp, httpbin_intent};

/// Two clusters backed by fake API servers: httpbin on cluster01, sleep on cluster02 (direct).
pub(crate) async fn seed(app: &TestApp) -> (FakeKube, FakeKube) {
    let a = FakeKube::start().await;
    let b = FakeKube::start().await;
    app.seed_storefront_with(&[a.kubeconfig(), b.kubeconfig()])
        .await;
    app.add_httpbin_with_sleep_client().await;
    (a, b)
}

pub(crate) async fn deploy(app: &TestApp, action: &str) -> i64 {
    let reply = app
        .request(Method::POST, &format!("{SET}/{action}"), None, &[])
        .await
        .expect(202);
    let revision = reply.body["revision"].as_i64().unwrap();
    assert_eq!(
        reply.header("location"),
        Some(&*format!("{SET}/deployments/{revision}"))
    );
    assert_eq!(reply.body["state"], "Pending");
    revision
}

/// Polls a deployment of the set `default` until it ends.
pub(crate) async fn wait(app: &TestApp, revision: i64) -> Value {
    wait_at(app, &format!("{SET}/deployments/{revision}")).await
}

/// Polls the deployment at `url` until it ends.
pub(crate) async fn wait_at(app: &TestApp, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.get(url).await.expect(200).body;
        let state = status["state"].as_str().unwrap().to_owned();
        if !matches!(state.as_str(), "Pending" | "Applying" | "Terminating") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "deployment {url} did not end: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn cluster<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status:#}"))
}

/// The first object of `kind` in the status of `cluster`.
pub(crate) fn object_of_kind<'a>(status: &'a Value, cluster_name: &str, kind: &str) -> &'a Value {
    cluster(status, cluster_name)["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} on {cluster_name} in {status:#}"))
}

pub(crate) fn object_states(status: &Value, name: &str) -> BTreeMap<String, String> {
    cluster(status, name)["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["name"].as_str().unwrap()
                ),
                o["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// meshintent's objects on a fake cluster, as `Kind/name`.
pub(crate) fn managed(fake: &FakeKube) -> Vec<String> {
    let mut out: Vec<String> = fake
        .objects()
        .iter()
        .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshintent")
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

both_backends!(a_set_lands_on_both_clusters_in_parallel, |app| {
    let (a, b) = seed(&app).await;
    // cluster01 answers slowly: cluster02 must finish while cluster01 is still applying.
    a.set_delay(Some(Duration::from_millis(400)));
    let revision = deploy(&app, "deploy").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut overlapped = false;
    while Instant::now() < deadline {
        let status = app
            .get(&format!("{SET}/deployments/{revision}"))
            .await
            .expect(200)
            .body;
        if cluster(&status, "cluster02")["state"] == "Applied"
            && cluster(&status, "cluster01")["state"] == "Applying"
        {
            overlapped = true;
            break;
        }
        if status["state"] != "Applying" && status["state"] != "Pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(overlapped, "clusters were not applied in parallel");
    let status = wait(&app, revision).await;
    a.set_delay(None);
    assert_eq!(status["state"], "Applied", "{status:#}");
    assert_eq!(
        managed(&a),
        [
            "AuthorizationPolicy/httpbin-allow",
            "DestinationRule/httpbin-dr",
            "Gateway/httpbin-passthrough",
            "PeerAuthentication/httpbin-peer-authn"
        ]
    );
    assert_eq!(
        managed(&b),
        ["DestinationRule/httpbin-dr", "ServiceEntry/httpbin-remote"]
    );
    assert!(
        object_states(&status, "cluster01")
            .values()
            .all(|s| s == "applied")
    );
    // Server-side apply with meshintent's field manager, the content hash kept on the object.
    let patch = a
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        patch.query_param("fieldManager").as_deref(),
        Some("meshintent")
    );
    let dr = a
        .object(
            "networking.istio.io",
            "destinationrules",
            "default",
            "httpbin-dr",
        )
        .unwrap();
    assert_eq!(
        dr["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"],
        10
    );
    assert!(
        dr["metadata"]["annotations"]["meshintent.io/spec-hash"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    // Objects in dependency order: entries and rules before gateways, policies last.
    let kinds: Vec<String> = a
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.split('/').nth(6).unwrap_or("").to_owned())
        .collect();
    let position = |plural: &str| kinds.iter().position(|k| k == plural).unwrap();
    assert!(position("destinationrules") < position("gateways"));
    assert!(position("gateways") < position("authorizationpolicies"));
    // Lists and the latest status agree.
    let list = app
        .get(&format!("{SET}/deployments"))
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"][0]["revision"], revision);
    assert_eq!(
        app.get(&format!("{SET}/status")).await.expect(200).body["revision"],
        revision
    );
});

both_backends!(an_unchanged_redeploy_sends_no_write, |app| {
    let (a, b) = seed(&app).await;
    let first = wait(&app, deploy(&app, "deploy").await).await;
    assert_eq!(first["state"], "Applied");
    assert!(first["writes"].as_i64().unwrap() > 0);
    a.clear_requests();
    b.clear_requests();
    let again = wait(&app, deploy(&app, "deploy").await).await;
    assert_eq!(again["state"], "Applied");
    assert_eq!(again["writes"], 0, "{again:#}");
    assert!(
        again["message"].as_str().unwrap().contains("no changes"),
        "{again:#}"
    );
    assert!(
        object_states(&again, "cluster01")
            .values()
            .all(|s| s == "unchanged")
    );
    assert_eq!(
        (a.write_count(), b.write_count()),
        (0, 0),
        "an unchanged set writes nothing"
    );
});

both_backends!(
    a_cluster_that_is_down_waits_alone_and_resumes_when_it_answers,
    |app| {
        let (a, b) = seed(&app).await;
        b.stop().await;
        let revision = deploy(&app, "deploy").await;
        // cluster01 is done while cluster02 waits, marked unreachable, its objects still pending.
        let url = format!("{SET}/deployments/{revision}");
        let waiting = wait_until(&app, &url, |s| {
            cluster(s, "cluster01")["state"] == "Applied"
                && cluster(s, "cluster02")["state"] == "Unreachable"
        })
        .await;
        assert_eq!(waiting["state"], "Applying", "{waiting:#}");
        let down = cluster(&waiting, "cluster02");
        assert!(
            down["message"]
                .as_str()
                .unwrap()
                .contains("stopped answering"),
            "{down:#}"
        );
        assert!(
            object_states(&waiting, "cluster02")
                .values()
                .all(|s| s == "desired"),
            "{down:#}"
        );
        assert_eq!(down["writes"], 0, "refused connections are not writes");
        assert_eq!(managed(&a).len(), 4, "the healthy cluster was applied");

        b.restart().await;
        let status = wait(&app, revision).await;
        assert_eq!(status["state"], "Applied", "{status:#}");
        assert_eq!(
            managed(&b),
            ["DestinationRule/httpbin-dr", "ServiceEntry/httpbin-remote"]
        );
        assert_eq!(cluster(&status, "cluster02")["writes"], 2);
    }
);

/// Polls the deployment at `url` until `done` holds (at most 20 s).
pub(crate) async fn wait_until(app: &TestApp, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.get(url).await.expect(200).body;
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never reached: {status:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

both_backends!(
    transient_errors_are_retried_and_client_errors_reported,
    |app| {
        let (a, _b) = seed(&app).await;
        // Two 503s and a 429 are absorbed by retries.
        a.fail_next(FailRule {
            method: Some("PATCH"),
            path_contains: Some("destinationrules"),
            status: 503,
            times: 2,
        });
        a.fail_next(FailRule {
            method: Some("PATCH"),
            path_contains: Some("gateways"),
            status: 429,
            times: 1,
        });
        // A validation error is reported at once, with the API server's message.
        a.reject_apply("httpbin-peer-authn", "spec.mtls.mode: Unsupported value");
        let status = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(status["state"], "Degraded", "{status:#}");
        let states = object_states(&status, "cluster01");
        assert_eq!(states["DestinationRule/httpbin-dr"], "applied");
        assert_eq!(states["Gateway/httpbin-passthrough"], "applied");
        assert_eq!(states["PeerAuthentication/httpbin-peer-authn"], "failed");
        let failed = cluster(&status, "cluster01")["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "PeerAuthentication")
            .unwrap();
        assert!(
            failed["message"].as_str().unwrap().contains("422"),
            "{failed:#}"
        );
        assert!(
            failed["message"]
                .as_str()
                .unwrap()
                .contains("Unsupported value")
        );
        let attempts = a
            .requests()
            .iter()
            .filter(|r| {
                r.method == "PATCH" && r.path.ends_with("/peerauthentications/httpbin-peer-authn")
            })
            .count();
        assert_eq!(attempts, 1, "a 422 is not retried");
    }
);

both_backends!(
    a_forbidden_list_keeps_its_http_code_in_the_messages,
    |app| {
        let (a, _b) = seed(&app).await;
        // A token without permission to list Gateways (RBAC): 403, not retried.
        a.fail_next(FailRule {
            method: Some("GET"),
            path_contains: Some("/gateways"),
            status: 403,
            times: 1,
        });
        let status = wait(&app, deploy(&app, "deploy").await).await;
        let failed = cluster(&status, "cluster01");
        assert_eq!(failed["state"], "Failed", "{status:#}");
        let message = failed["message"].as_str().unwrap();
        assert!(
            message.starts_with("cannot list Gateway objects: 403"),
            "{failed:#}"
        );
        for object in failed["objects"].as_array().unwrap() {
            assert_eq!(object["state"], "failed", "{object:#}");
            assert_eq!(object["message"].as_str(), Some(message), "{object:#}");
        }
        assert_eq!(a.write_count(), 0);
    }
);

both_backends!(
    a_cluster_without_istio_fails_with_one_clear_message,
    |app| {
        let (a, _b) = seed(&app).await;
        // Discovery says the Istio group is not there (as without Istio's CRDs).
        a.fail_next(FailRule {
            method: Some("GET"),
            path_contains: Some("/apis/networking.istio.io/v1"),
            status: 404,
            times: 1,
        });
        let status = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(status["state"], "Degraded");
        let failed = cluster(&status, "cluster01");
        assert_eq!(failed["state"], "Failed");
        assert!(
            failed["message"].as_str().unwrap().contains("is Istio"),
            "{failed:#}"
        );
        assert_eq!(
            a.write_count(),
            0,
            "nothing is written to a cluster without Istio"
        );
    }
);

both_backends!(
    an_unmanaged_object_is_a_conflict_and_left_untouched,
    |app| {
        let (a, _b) = seed(&app).await;
        let theirs = a.insert_object(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "httpbin-dr", "namespace": "default", "labels": {"team": "platform"}},
        "spec": {"host": "httpbin.default.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
    }), "kubectl");
        let status = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(status["state"], "Degraded");
        let dr = cluster(&status, "cluster01")["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "DestinationRule")
            .unwrap()
            .clone();
        assert_eq!(dr["state"], "conflict");
        assert!(
            dr["message"]
                .as_str()
                .unwrap()
                .contains("not managed by meshintent"),
            "{dr:#}"
        );
        let after = a
            .object(
                "networking.istio.io",
                "destinationrules",
                "default",
                "httpbin-dr",
            )
            .unwrap();
        assert_eq!(after["spec"], theirs["spec"], "left untouched");
        assert_eq!(
            after["metadata"]["resourceVersion"],
            theirs["metadata"]["resourceVersion"]
        );
        assert!(
            !a.requests()
                .iter()
                .any(|r| r.is_write() && r.path.ends_with("/destinationrules/httpbin-dr"))
        );
        // The rest of the set still landed.
        assert_eq!(
            object_states(&status, "cluster01")["AuthorizationPolicy/httpbin-allow"],
            "applied"
        );
    }
);

both_backends!(objects_no_longer_desired_are_pruned, |app| {
    let (a, b) = seed(&app).await;
    wait(&app, deploy(&app, "deploy").await).await;
    assert!(managed(&b).contains(&"ServiceEntry/httpbin-remote".to_owned()));
    // sleep no longer calls httpbin: cluster02 needs nothing, and httpbin is deny-all.
    app.delete(&format!("{SET}/inbound-intents/httpbin/clients/sleep"))
        .await
        .expect(204);
    let status = wait(&app, deploy(&app, "deploy").await).await;
    assert_eq!(status["state"], "Applied", "{status:#}");
    assert_eq!(managed(&b), Vec::<String>::new(), "cluster02 is emptied");
    let pruned = object_states(&status, "cluster02");
    assert_eq!(
        pruned.values().filter(|s| *s == "pruned").count(),
        2,
        "{pruned:?}"
    );
    assert_eq!(
        managed(&a),
        [
            "AuthorizationPolicy/httpbin-deny-all",
            "DestinationRule/httpbin-dr",
            "PeerAuthentication/httpbin-peer-authn"
        ]
    );
    assert_eq!(
        object_states(&status, "cluster01")["AuthorizationPolicy/httpbin-allow"],
        "pruned"
    );
    // Pruning is tracked: the next deploy has nothing to remove.
    b.clear_requests();
    let again = wait(&app, deploy(&app, "deploy").await).await;
    assert_eq!(again["writes"], 0);
    assert_eq!(b.write_count(), 0);
});

both_backends!(
    terminate_removes_everything_and_then_the_set_may_go,
    |app| {
        let (a, b) = seed(&app).await;
        wait(&app, deploy(&app, "deploy").await).await;
        let refused = app.delete(&format!("{SET}?cascade=true")).await.expect(409);
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("terminate"),
            "{}",
            refused.body
        );
        let status = wait(&app, deploy(&app, "terminate").await).await;
        assert_eq!(status["state"], "Terminated", "{status:#}");
        assert_eq!(status["action"], "terminate");
        assert!(
            managed(&a).is_empty() && managed(&b).is_empty(),
            "{:?} {:?}",
            managed(&a),
            managed(&b)
        );
        let deletes: Vec<String> = a
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path.split('/').nth(6).unwrap_or("").to_owned())
            .collect();
        let position = |plural: &str| deletes.iter().position(|k| k == plural).unwrap();
        assert!(
            position("authorizationpolicies") < position("destinationrules"),
            "deletes in reverse order: {deletes:?}"
        );
        app.delete(&format!("{SET}?cascade=true")).await.expect(204);
    }
);

both_backends!(verify_reports_drift, |app| {
    let (a, _b) = seed(&app).await;
    wait(&app, deploy(&app, "deploy").await).await;
    let clean = app
        .get(&format!("{SET}/status?verify=true"))
        .await
        .expect(200)
        .body;
    assert_eq!(clean["drifted"], false, "{clean:#}");
    // Someone edits the DestinationRule and deletes the Gateway.
    let mut dr = a
        .object(
            "networking.istio.io",
            "destinationrules",
            "default",
            "httpbin-dr",
        )
        .unwrap();
    dr["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] = json!(999);
    a.insert_object(dr, "kubectl");
    assert!(a.remove_object(
        "networking.istio.io",
        "gateways",
        "istio-system",
        "httpbin-passthrough"
    ));
    let drifted = app
        .get(&format!("{SET}/status?verify=true"))
        .await
        .expect(200)
        .body;
    assert_eq!(drifted["drifted"], true);
    let drift: BTreeMap<String, String> = cluster(&drifted, "cluster01")["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            o["drift"]
                .as_str()
                .map(|d| (o["kind"].as_str().unwrap().to_owned(), d.to_owned()))
        })
        .collect();
    assert_eq!(
        drift,
        BTreeMap::from([
            ("DestinationRule".to_owned(), "changed".to_owned()),
            ("Gateway".to_owned(), "missing".to_owned())
        ])
    );
    // A redeploy repairs both.
    let repaired = wait(&app, deploy(&app, "deploy").await).await;
    assert_eq!(
        object_states(&repaired, "cluster01")["DestinationRule/httpbin-dr"],
        "applied"
    );
    assert_eq!(
        app.get(&format!("{SET}/status?verify=true"))
            .await
            .expect(200)
            .body["drifted"],
        false
    );
});

both_backends!(
    verify_reports_extra_objects_and_nobody_touches_a_listed_object_with_an_invalid_name,
    |app| {
        let (a, _b) = seed(&app).await;
        let first = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(first["state"], "Applied", "{first:#}");
        // Two copies of the set's DestinationRule that it does not want: one under another name,
        // one under a name the API server would never accept (a broken list answer).
        let group = "networking.istio.io";
        let dr = a
            .object(group, "destinationrules", "default", "httpbin-dr")
            .unwrap();
        for name in ["httpbin-extra", "Not_A_Name"] {
            let copy = json!({
                "apiVersion": dr["apiVersion"],
                "kind": dr["kind"],
                "metadata": {"name": name, "namespace": "default", "labels": dr["metadata"]["labels"]},
                "spec": dr["spec"],
            });
            a.insert_object(copy, "kubectl");
        }

        let verified = app
            .get(&format!("{SET}/status?verify=true"))
            .await
            .expect(200)
            .body;

        assert_eq!(verified["drifted"], true, "{verified:#}");
        assert_eq!(
            cluster(&verified, "cluster01")["extraObjects"],
            json!([{
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "namespace": "default",
                "name": "httpbin-extra",
                "operation": "none",
                "state": "extra",
                "message": "labelled as this set's but not desired",
                "drift": "extra",
            }])
        );
        // A redeploy prunes the extra object and leaves the one it cannot name alone.
        let second = wait(&app, deploy(&app, "deploy").await).await;
        assert_eq!(second["state"], "Applied", "{second:#}");
        assert_eq!(
            object_states(&second, "cluster01")["DestinationRule/httpbin-extra"],
            "pruned"
        );
        let dr = |name| a.object(group, "destinationrules", "default", name);
        assert!(dr("httpbin-extra").is_none());
        assert!(dr("Not_A_Name").is_some());
    }
);

both_backends!(
    a_server_killed_mid_deploy_resumes_without_applying_twice,
    |app| {
        let mut app = app;
        let (a, _b) = seed(&app).await;
        for i in 0..8 {
            let mut intent = httpbin_intent();
            intent["metadata"]["name"] = json!(format!("svc{i}"));
            intent["spec"]["serviceName"] = json!(format!("svc{i}"));
            app.post(&format!("{SET}/inbound-intents"), intent)
                .await
                .expect(201);
        }
        a.set_delay(Some(Duration::from_millis(150)));
        let revision = deploy(&app, "deploy").await;
        // Let some objects land, then crash.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = app
                .get(&format!("{SET}/deployments/{revision}"))
                .await
                .expect(200)
                .body;
            let applied = object_states(&status, "cluster01")
                .values()
                .filter(|s| *s == "applied")
                .count();
            if applied >= 3 {
                break;
            }
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.kill().await;
        a.set_delay(None);
        let restarted = app.another().await;
        let status = wait(&restarted, revision).await;
        assert_eq!(status["state"], "Applied", "{status:#}");
        // Every object is there, and none was written twice.
        let desired = object_states(&status, "cluster01").len();
        assert_eq!(managed(&a).len(), desired);
        let mut patches: BTreeMap<String, usize> = BTreeMap::new();
        for r in a
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.status.is_some_and(|s| s < 300))
        {
            *patches.entry(r.path.clone()).or_default() += 1;
        }
        assert!(
            patches.values().all(|n| *n == 1),
            "objects applied twice: {patches:?}"
        );
        assert_eq!(patches.len(), desired);
    }
);

both_backends!(two_workers_never_run_one_deployment_together, |app| {
    let (a, b) = seed(&app).await;
    let second = app.another().await;
    // More sets, all deployed at once, from both replicas.
    for i in 0..5 {
        app.post(
            &format!("{CA}/traffic-intent-sets"),
            json!({"metadata": {"name": format!("set{i}")}}),
        )
        .await
        .expect(201);
        let mut intent = httpbin_intent();
        intent["metadata"]["name"] = json!(format!("svc{i}"));
        intent["spec"]["serviceName"] = json!(format!("svc{i}"));
        app.post(
            &format!("{CA}/traffic-intent-sets/set{i}/inbound-intents"),
            intent,
        )
        .await
        .expect(201);
    }
    let mut queued = Vec::new();
    for i in 0..5 {
        let via = if i % 2 == 0 { &app } else { &second };
        let reply = via
            .request(
                Method::POST,
                &format!("{CA}/traffic-intent-sets/set{i}/deploy"),
                None,
                &[],
            )
            .await
            .expect(202);
        queued.push(format!(
            "{CA}/traffic-intent-sets/set{i}/deployments/{}",
            reply.body["revision"]
        ));
    }
    for url in &queued {
        let status = wait_at(&app, url).await;
        assert_eq!(status["state"], "Applied", "{status:#}");
    }
    // Each object of each set was written exactly once.
    let mut patches: BTreeMap<String, usize> = BTreeMap::new();
    for r in a
        .requests()
        .iter()
        .chain(b.requests().iter())
        .filter(|r| r.method == "PATCH")
    {
        *patches.entry(r.path.clone()).or_default() += 1;
    }
    assert_eq!(
        patches.len(),
        5 * 3,
        "svc0..4 each: DestinationRule, deny-all AuthorizationPolicy, PeerAuthentication"
    );
    assert!(patches.values().all(|n| *n == 1), "{patches:?}");
});

both_backends!(clusters_without_credentials_fail_with_a_reason, |app| {
    app.seed_storefront().await;
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let status = wait(&app, deploy(&app, "deploy").await).await;
    assert_eq!(status["state"], "Failed");
    assert!(
        cluster(&status, "cluster01")["message"]
            .as_str()
            .unwrap()
            .contains("no kubeconfig")
    );
    // inCluster uses the pod's service account; outside a pod that is a clear failure too.
    let in_cluster = json!({"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com",
        "inCluster": true, "istio": {"ingressGateway": {"address": "198.51.100.10"}}}});
    app.put("/v2/clusters/cluster01", in_cluster)
        .await
        .expect(200);
    let status = wait(&app, deploy(&app, "deploy").await).await;
    assert!(
        cluster(&status, "cluster01")["message"]
            .as_str()
            .unwrap()
            .contains("in-cluster"),
        "{status:#}"
    );
    let metrics = app.get("/metrics").await.expect(200).text;
    assert!(metrics.contains("meshintent_deploys_total"), "{metrics}");
    assert!(metrics.contains("meshintent_queue_depth"));
});

/// Claims race from many tasks directly on the store (apps without workers, so nothing else claims).
mod concurrent_claims_take_each_deployment_once {
    use super::*;

    async fn run(backend: crate::helpers::Backend, test: &str) {
        let Some(app) = crate::helpers::spawn_app_with(backend, test, false).await else {
            return;
        };
        app.seed_storefront().await;
        for i in 0..6 {
            app.post(
                &format!("{CA}/traffic-intent-sets"),
                json!({"metadata": {"name": format!("s{i}")}}),
            )
            .await
            .expect(201);
            app.request(
                Method::POST,
                &format!("{CA}/traffic-intent-sets/s{i}/deploy"),
                None,
                &[],
            )
            .await
            .expect(202);
        }
        let store = app.store().await;
        let until = chrono::Utc::now() + chrono::Duration::seconds(60);
        let claims = futures::future::join_all((0..24).map(|n| {
            let store = store.clone();
            async move {
                let worker = format!("worker-{}", n % 3);
                let mut tx = store.begin_write().await.unwrap();
                let claimed = tx.claim_deployment(&worker, until).await.unwrap();
                tx.commit().await.unwrap();
                claimed
            }
        }))
        .await;
        let mut claimed: Vec<_> = claims.into_iter().flatten().collect();
        assert_eq!(
            claimed.len(),
            6,
            "{backend:?}: every queued deployment is claimed once"
        );
        claimed.sort();
        claimed.dedup();
        assert_eq!(
            claimed.len(),
            6,
            "{backend:?}: no deployment is claimed twice"
        );
        let mut tx = store.begin_write().await.unwrap();
        assert_eq!(
            tx.claim_deployment("late", until).await.unwrap(),
            None,
            "a held lease is not taken"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        run(
            crate::helpers::Backend::Sqlite,
            concat!(module_path!(), "::sqlite"),
        )
        .await;
    }

    #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        run(
            crate::helpers::Backend::Postgres,
            concat!(module_path!(), "::postgres"),
        )
        .await;
    }
}
