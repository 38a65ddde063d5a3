//! Plans (`GET`/`POST .../plan`, `meshintent plan`): what a deploy would do, found with reads
//! and `dryRun=All` applies against fake API servers, which must end up with nothing written.

use std::collections::BTreeMap;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::deploy::{deploy, managed, seed, wait};
use crate::fake_kube::FakeKube;
use crate::helpers::{SET, TestApp};

const NETWORKING: &str = "networking.istio.io";
const SECURITY_INTENT: &str = "inbound-intents/httpbin/clients/sleep/security-intents/status";

async fn plan(app: &TestApp) -> Value {
    app.get(&format!("{SET}/plan")).await.expect(200).body
}

/// `Kind/name` → action, of one cluster of a plan.
fn actions(plan: &Value, cluster: &str) -> BTreeMap<String, String> {
    planned(plan, cluster)
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["name"].as_str().unwrap()
                ),
                o["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn planned<'a>(plan: &'a Value, cluster: &str) -> &'a Vec<Value> {
    plan["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster)
        .unwrap_or_else(|| panic!("no {cluster} in {plan:#}"))["objects"]
        .as_array()
        .unwrap()
}

fn object<'a>(plan: &'a Value, cluster: &str, kind: &str, name: &str) -> &'a Value {
    planned(plan, cluster)
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} on {cluster} in {plan:#}"))
}

/// The fake received only reads and dry-run applies: nothing that could change its store.
fn assert_no_writes(fake: &FakeKube) {
    assert!(fake.writes().is_empty(), "writes: {:#?}", fake.writes());
    for r in fake.requests() {
        match r.method.as_str() {
            "GET" => {}
            // The cluster check after a cluster write asks questions; it stores nothing.
            "POST" if r.path.ends_with("/selfsubjectaccessreviews") => {}
            "PATCH" => {
                assert_eq!(r.query_param("dryRun").as_deref(), Some("All"), "{r:?}");
                assert_eq!(r.query_param("fieldManager").as_deref(), Some("meshintent"));
                assert_eq!(r.query_param("force").as_deref(), Some("true"));
            }
            other => panic!("a plan sent {other} {}", r.path),
        }
    }
}

/// The newest audit event's id (reads are not audited, and a plan changes nothing). Events
/// come oldest first; a test has far fewer than a page of them.
async fn newest_audit_event(app: &TestApp) -> Value {
    let page = app
        .get("/v2/audit-events?limit=1000")
        .await
        .expect(200)
        .body;
    let items = page["items"].as_array().unwrap();
    assert!(page["nextAfter"].is_null() && !items.is_empty(), "{page:#}");
    items[items.len() - 1]["id"].clone()
}

async fn deployed(app: &TestApp) {
    let revision = deploy(app, "deploy").await;
    let status = wait(app, revision).await;
    assert_eq!(status["state"], "Applied", "{status:#}");
}

both_backends!(
    a_plan_before_the_first_deploy_creates_everything_and_writes_nothing,
    |app| {
        let (a, b) = seed(&app).await;
        a.clear_requests();
        b.clear_requests();
        let audited = newest_audit_event(&app).await;

        let plan = plan(&app).await;
        let create = |names: &[&str]| -> BTreeMap<String, String> {
            names
                .iter()
                .map(|n| (n.to_string(), "create".to_owned()))
                .collect()
        };
        assert_eq!(
            actions(&plan, "cluster01"),
            create(&[
                "AuthorizationPolicy/httpbin-allow",
                "DestinationRule/httpbin-dr",
                "Gateway/httpbin-passthrough",
                "PeerAuthentication/httpbin-peer-authn"
            ])
        );
        assert_eq!(
            actions(&plan, "cluster02"),
            create(&["DestinationRule/httpbin-dr", "ServiceEntry/httpbin-remote"])
        );
        assert_eq!(plan["summary"]["create"], 6, "{plan:#}");
        assert_eq!(plan["summary"]["clusterErrors"], 0);
        // What the API server would store, reduced to what meshintent decides.
        let dr = object(&plan, "cluster01", "DestinationRule", "httpbin-dr");
        assert_eq!(
            dr["desired"]["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"],
            10
        );
        assert_eq!(
            dr["desired"]["metadata"]["labels"]["meshintent.io/intent-set"],
            "default"
        );
        assert!(dr["desired"]["metadata"].get("resourceVersion").is_none());
        assert!(dr["desired"]["metadata"].get("managedFields").is_none());
        assert!(dr.get("patch").is_none() && dr.get("live").is_none());

        // One dry-run apply per object, and nothing anywhere changed.
        let dry_runs = a.requests().iter().filter(|r| r.method == "PATCH").count();
        assert_eq!(dry_runs, 4);
        assert_no_writes(&a);
        assert_no_writes(&b);
        assert!(a.objects().is_empty() && b.objects().is_empty());
        app.get(&format!("{SET}/status")).await.expect(404);
        assert_eq!(
            newest_audit_event(&app).await,
            audited,
            "a plan is not audited"
        );
    }
);

both_backends!(
    a_plan_after_an_intent_change_has_one_update_with_its_json_patch,
    |app| {
        let (a, b) = seed(&app).await;
        app.add_status_rule().await;
        deployed(&app).await;
        a.clear_requests();
        b.clear_requests();

        let unchanged = plan(&app).await;
        assert_eq!(
            unchanged["summary"],
            json!({"create": 0, "update": 0, "unchanged": 6, "delete": 0, "conflict": 0,
               "invalid": 0, "clusterErrors": 0})
        );
        assert!(
            a.requests().iter().all(|r| r.method == "GET"),
            "unchanged objects need no dry run"
        );

        let rule = json!({"metadata": {"name": "status"},
                      "spec": {"rules": [{"methods": ["GET"], "paths": ["/headers"]}]}});
        app.put(&format!("{SET}/{SECURITY_INTENT}"), rule)
            .await
            .expect(200);
        let plan = plan(&app).await;
        let mut expected: BTreeMap<String, String> = actions(&unchanged, "cluster01");
        expected.insert("AuthorizationPolicy/httpbin-allow".into(), "update".into());
        assert_eq!(actions(&plan, "cluster01"), expected, "{plan:#}");
        assert!(
            actions(&plan, "cluster02")
                .values()
                .all(|a| a == "unchanged")
        );
        assert_eq!(plan["summary"]["update"], 1);
        let policy = object(&plan, "cluster01", "AuthorizationPolicy", "httpbin-allow");
        assert_eq!(
            policy["patch"],
            json!([{"op": "replace", "path": "/spec/rules/0/to/0/operation/paths/0", "value": "/headers"}]),
            "{policy:#}"
        );
        assert_eq!(
            policy["live"]["spec"]["rules"][0]["to"][0]["operation"]["paths"],
            json!(["/status"])
        );
        assert_eq!(
            policy["desired"]["spec"]["rules"][0]["to"][0]["operation"]["paths"],
            json!(["/headers"])
        );

        assert_no_writes(&a);
        assert_no_writes(&b);
        let live = a
            .object(
                "security.istio.io",
                "authorizationpolicies",
                "default",
                "httpbin-allow",
            )
            .unwrap();
        assert_eq!(
            live["spec"]["rules"][0]["to"][0]["operation"]["paths"],
            json!(["/status"])
        );
    }
);

both_backends!(a_plan_after_a_delete_lists_the_prune_candidates, |app| {
    let (a, b) = seed(&app).await;
    deployed(&app).await;
    let before = managed(&b);
    app.delete(&format!("{SET}/inbound-intents/httpbin/clients/sleep"))
        .await
        .expect(204);
    a.clear_requests();
    b.clear_requests();

    let plan = plan(&app).await;
    assert_eq!(
        actions(&plan, "cluster02"),
        BTreeMap::from([
            ("DestinationRule/httpbin-dr".to_owned(), "delete".to_owned()),
            (
                "ServiceEntry/httpbin-remote".to_owned(),
                "delete".to_owned()
            ),
        ]),
        "{plan:#}"
    );
    let gone = object(&plan, "cluster02", "ServiceEntry", "httpbin-remote");
    assert_eq!(gone["live"]["metadata"]["name"], "httpbin-remote");
    assert!(gone.get("desired").is_none());
    assert!(plan["summary"]["delete"].as_u64().unwrap() >= 2);
    assert_no_writes(&a);
    assert_no_writes(&b);
    assert_eq!(managed(&b), before, "nothing was pruned");
});

both_backends!(
    an_object_the_api_server_refuses_is_invalid_with_its_message,
    |app| {
        let (a, b) = seed(&app).await;
        let refusal = "spec.trafficPolicy.tls.mode: Unsupported value: \"SUPER_MUTUAL\": supported values: \"DISABLE\", \"SIMPLE\", \"MUTUAL\", \"ISTIO_MUTUAL\"";
        a.reject_apply("httpbin-dr", refusal);

        let plan = plan(&app).await;
        let dr = object(&plan, "cluster01", "DestinationRule", "httpbin-dr");
        assert_eq!(dr["action"], "invalid");
        let message = dr["message"].as_str().unwrap();
        assert!(message.contains(refusal), "{message}");
        assert!(message.contains("httpbin-dr"), "{message}");
        assert_eq!(plan["summary"]["invalid"], 1);
        assert_eq!(
            plan["summary"]["create"], 5,
            "the others are still planned: {plan:#}"
        );
        assert_eq!(
            actions(&plan, "cluster02")["DestinationRule/httpbin-dr"],
            "create"
        );
        assert_no_writes(&a);
        assert_no_writes(&b);
    }
);

both_backends!(
    conflicts_and_an_unreachable_cluster_are_reported_per_cluster,
    |app| {
        let (a, b) = seed(&app).await;
        // An object of the same name that meshintent does not manage: a deploy leaves it alone.
        a.insert_object(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
               "metadata": {"name": "httpbin-dr", "namespace": "default"},
               "spec": {"host": "httpbin.default.svc.cluster.local"}}),
            "kubectl",
        );
        b.stop().await;

        let plan = plan(&app).await;
        let dr = object(&plan, "cluster01", "DestinationRule", "httpbin-dr");
        assert_eq!(dr["action"], "conflict", "{dr:#}");
        assert!(
            dr["message"]
                .as_str()
                .unwrap()
                .contains("not managed by meshintent"),
            "{dr:#}"
        );
        let cluster02 = plan["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster"] == "cluster02")
            .unwrap();
        let error = cluster02["error"].as_str().expect("an error for cluster02");
        assert!(error.contains("cannot reach the API server"), "{error}");
        assert_eq!(plan["summary"]["clusterErrors"], 1);
        assert_eq!(plan["summary"]["conflict"], 1);
        assert_eq!(plan["summary"]["create"], 3);
        assert_no_writes(&a);
        let live = a
            .object(NETWORKING, "destinationrules", "default", "httpbin-dr")
            .unwrap();
        assert!(live["metadata"].get("labels").is_none(), "left as it was");
    }
);

both_backends!(a_plan_needs_a_caller_who_may_read_the_project, |app| {
    let (_a, _b) = seed(&app).await;
    let url = format!("{SET}/plan");
    app.request_as(None, Method::GET, &url, None)
        .await
        .expect(401);
    app.post(
        "/v2/projects",
        json!({"metadata": {"name": "other"}, "spec": {"namespaces": ["other-ns"]}}),
    )
    .await
    .expect(201);
    let other = app
        .create_token(
            "/v2/projects/other/tokens",
            json!({"metadata": {"name": "owner"}, "spec": {"role": "owner"}}),
        )
        .await;
    app.request_as(Some(&other), Method::GET, &url, None)
        .await
        .expect(404);
    let viewer = app
        .create_token(
            "/v2/projects/shop/tokens",
            json!({"metadata": {"name": "viewer"}, "spec": {"role": "viewer"}}),
        )
        .await;
    let plan = app
        .request_as(Some(&viewer), Method::GET, &url, None)
        .await
        .expect(200);
    assert_eq!(plan.body["summary"]["create"], 6);
    // Planning a proposed document is a trial write: a viewer may not.
    let document = app
        .get(&format!("{SET}?format=document"))
        .await
        .expect(200)
        .body;
    let set = &document["projects"][0]["compositeApps"][0]["trafficIntentSets"][0];
    app.request_as(Some(&viewer), Method::POST, &url, Some(set))
        .await
        .expect(403);
    app.request_as(Some(&other), Method::POST, &url, Some(set))
        .await
        .expect(404);
});

both_backends!(
    a_proposed_document_is_planned_and_nothing_of_it_is_kept,
    |app| {
        let (a, b) = seed(&app).await;
        app.add_status_rule().await;
        deployed(&app).await;
        a.clear_requests();
        b.clear_requests();
        let stored = app
            .get(&format!("{SET}?format=document"))
            .await
            .expect(200)
            .body;
        let audited = newest_audit_event(&app).await;
        let mut set = stored["projects"][0]["compositeApps"][0]["trafficIntentSets"][0].clone();
        set["inboundIntents"][0]["clients"][0]["securityIntents"][0]["spec"]["rules"][0]["paths"] =
            json!(["/headers"]);

        let plan = app
            .post(&format!("{SET}/plan"), set.clone())
            .await
            .expect(200)
            .body;
        assert_eq!(plan["summary"]["update"], 1, "{plan:#}");
        assert_eq!(
            object(&plan, "cluster01", "AuthorizationPolicy", "httpbin-allow")["patch"],
            json!([{"op": "replace", "path": "/spec/rules/0/to/0/operation/paths/0", "value": "/headers"}])
        );
        // Nothing of the trial write was kept.
        assert_eq!(
            app.get(&format!("{SET}?format=document"))
                .await
                .expect(200)
                .body,
            stored
        );
        assert_eq!(newest_audit_event(&app).await, audited);
        assert_eq!(
            app.get(&format!("{SET}/deployments"))
                .await
                .expect(200)
                .body["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_no_writes(&a);
        assert_no_writes(&b);

        // A document the write would refuse is refused the same way.
        set["inboundIntents"][0]["spec"]["app"] = json!("nowhere");
        app.post(&format!("{SET}/plan"), set)
            .await
            .expect_problem(422, "/inboundIntents/0/spec/app");
    }
);

/// Runs `meshintent plan -f FILE`; returns the exit code and standard output (then error).
async fn plan_cli(app: &TestApp, file: &std::path::Path) -> (i32, String, String) {
    let (file, server, token) = (file.to_owned(), app.address.clone(), app.token.clone());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_meshintent"))
            .env("MESHINTENT_TOKEN", token)
            .env_remove("NO_COLOR")
            .args(["plan", "-f"])
            .arg(&file)
            .args(["--server", &server])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

both_backends!(
    the_cli_prints_a_plain_diff_and_exits_as_kubectl_diff,
    |app| {
        let (_a, _b) = seed(&app).await;
        app.add_status_rule().await;
        deployed(&app).await;
        let dir = tempfile_dir();
        let file = dir.join("intents.json");
        let mut document = app
            .get(&format!("{SET}?format=document"))
            .await
            .expect(200)
            .body;
        std::fs::write(&file, document.to_string()).unwrap();

        let (code, out, err) = plan_cli(&app, &file).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("Plan: 0 to create, 0 to update, 0 to delete, 6 unchanged"),
            "{out}"
        );

        document["projects"][0]["compositeApps"][0]["trafficIntentSets"][0]["inboundIntents"][0]
            ["clients"][0]["securityIntents"][0]["spec"]["rules"][0]["paths"] = json!(["/headers"]);
        std::fs::write(&file, document.to_string()).unwrap();
        let (code, out, err) = plan_cli(&app, &file).await;
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains("--- a/cluster01/AuthorizationPolicy/default/httpbin-allow"),
            "{out}"
        );
        assert!(
            out.contains("+++ b/cluster01/AuthorizationPolicy/default/httpbin-allow"),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with('-') && l.contains("/status")),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with('+') && l.contains("/headers")),
            "{out}"
        );
        assert!(
            out.contains("Plan: 0 to create, 1 to update, 0 to delete, 5 unchanged"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'), "a pipe gets no colours: {out:?}");
        // The server still holds the old rule: plan applied nothing.
        let rule = app
            .get(&format!("{SET}/{SECURITY_INTENT}"))
            .await
            .expect(200)
            .body;
        assert_eq!(rule["spec"]["rules"][0]["paths"], json!(["/status"]));

        let _ = std::fs::remove_dir_all(dir);
    }
);

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("meshintent-plan-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
