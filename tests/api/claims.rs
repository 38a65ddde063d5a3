//! One owner per mesh name (SPEC 7): a host a set's objects decide on a cluster cannot be decided
//! by another set, in this project or another; the write that would do it is a 409 naming the
//! owner, and nothing is written.

use serde_json::{Value, json};

use crate::both_backends;
use crate::deploy::{deploy, object_of_kind, wait};
use crate::fake_kube::FakeKube;
use crate::helpers::{CA, SET, TestApp, httpbin_intent};

/// An external API reached straight from the sidecars of `clients`.
fn api(name: &str, clients: &[&str]) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "hosts": ["api.example.com"],
        "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}],
        "resolution": "DNS",
        "egressGateway": false,
        "clients": clients,
    }})
}

async fn new_set(app: &TestApp, ca: &str, name: &str) -> String {
    app.post(
        &format!("{ca}/traffic-intent-sets"),
        json!({"metadata": {"name": name}}),
    )
    .await
    .expect(201);
    format!("{ca}/traffic-intent-sets/{name}")
}

/// A second project, `other`, owning namespace `other`, with composite app `x` v1 and its app
/// `worker` on `cluster`.
async fn other_project(app: &TestApp, cluster: &str) -> String {
    app.post(
        "/v2/projects",
        json!({"metadata": {"name": "other"}, "spec": {"namespaces": ["other"]}}),
    )
    .await
    .expect(201);
    app.post(
        "/v2/projects/other/composite-apps",
        json!({"metadata": {"name": "x"}, "spec": {"version": "v1"}}),
    )
    .await
    .expect(201);
    let ca = "/v2/projects/other/composite-apps/x/v1";
    app.post(
        &format!("{ca}/apps"),
        json!({"metadata": {"name": "worker"}, "spec": {"namespace": "other", "placement": {"clusters": [cluster]}}}),
    )
    .await
    .expect(201);
    new_set(app, ca, "s").await
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

both_backends!(a_host_of_one_set_cannot_be_decided_by_another, |app| {
    app.seed_storefront().await;
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let other = new_set(&app, CA, "other").await;
    let refused = app
        .post(&format!("{other}/inbound-intents"), httpbin_intent())
        .await
        .expect(409);
    let message = detail(&refused.body);
    assert!(
        message.contains(
            "DestinationRule host httpbin.default.svc.cluster.local on cluster cluster01"
        ),
        "{message}"
    );
    assert!(
        message.contains("traffic intent set default")
            && message.contains(&format!("{SET}/inbound-intents/httpbin")),
        "names the owner: {message}"
    );
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    // Nothing was written.
    app.get(&format!("{other}/inbound-intents/httpbin"))
        .await
        .expect(404);
    // Deleting the owner's intent frees the host.
    app.delete(&format!("{SET}/inbound-intents/httpbin"))
        .await
        .expect(204);
    app.post(&format!("{other}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let back = app
        .post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(409);
    assert!(
        detail(&back.body).contains("traffic intent set other"),
        "{}",
        back.body
    );
});

both_backends!(two_projects_cannot_both_decide_an_external_host, |app| {
    app.seed_storefront().await;
    app.post(&format!("{SET}/outbound-intents"), api("api", &["httpbin"]))
        .await
        .expect(201);
    let other = other_project(&app, "cluster01").await;
    let refused = app
        .post(
            &format!("{other}/outbound-intents"),
            api("api", &["worker"]),
        )
        .await
        .expect(409);
    let message = detail(&refused.body);
    assert!(
        message.contains("api.example.com")
            && message.contains("project shop")
            && message.contains("composite app storefront v1"),
        "{message}"
    );
});

both_backends!(
    a_placement_change_onto_a_cluster_where_the_host_is_taken_is_refused,
    |app| {
        app.seed_storefront().await;
        app.post(&format!("{SET}/outbound-intents"), api("api", &["httpbin"]))
            .await
            .expect(201);
        // On another cluster the same host is another set's to decide.
        let other = other_project(&app, "cluster02").await;
        app.post(
            &format!("{other}/outbound-intents"),
            api("api", &["worker"]),
        )
        .await
        .expect(201);
        let worker = "/v2/projects/other/composite-apps/x/v1/apps/worker";
        let before = app.get(worker).await.expect(200).body;
        let mut moved = before.clone();
        moved["spec"]["placement"] = json!({"clusters": ["cluster01"]});
        let refused = app.put(worker, moved).await.expect(409);
        assert!(
            detail(&refused.body).contains("on cluster cluster01")
                && detail(&refused.body).contains("project shop"),
            "{}",
            refused.body
        );
        assert_eq!(
            app.get(worker).await.expect(200).body["spec"]["placement"],
            before["spec"]["placement"],
            "nothing written"
        );
    }
);

both_backends!(
    of_concurrent_writes_claiming_one_host_exactly_one_wins,
    |app| {
        app.seed_storefront().await;
        let mut sets = Vec::new();
        for i in 0..20 {
            sets.push(new_set(&app, CA, &format!("s{i}")).await);
        }
        let writes = sets.iter().map(|set| {
            let app = &app;
            async move {
                app.post(&format!("{set}/outbound-intents"), api("api", &["httpbin"]))
                    .await
                    .status
                    .as_u16()
            }
        });
        let mut statuses = futures::future::join_all(writes).await;
        statuses.sort();
        let created = statuses.iter().filter(|s| **s == 201).count();
        assert_eq!(created, 1, "{statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 409),
            "{statuses:?}"
        );
    }
);

both_backends!(
    a_users_destination_rule_for_a_host_meshintent_writes_is_a_conflict,
    |app| {
        let a = FakeKube::start().await;
        let b = FakeKube::start().await;
        app.seed_storefront_with(&[a.kubeconfig(), b.kubeconfig()])
            .await;
        app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
            .await
            .expect(201);
        let theirs = a.insert_object(
            json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "their-rule", "namespace": "default"},
                "spec": {"host": "httpbin.default.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
            }),
            "kubectl",
        );
        let status = wait(&app, deploy(&app, "deploy").await).await;
        let dr = object_of_kind(&status, "cluster01", "DestinationRule");
        assert_eq!(dr["state"], "conflict", "{dr:#}");
        assert!(
            dr["message"]
                .as_str()
                .unwrap()
                .contains("DestinationRule/default/their-rule"),
            "{dr:#}"
        );
        let after = a
            .object(
                "networking.istio.io",
                "destinationrules",
                "default",
                "their-rule",
            )
            .unwrap();
        assert_eq!(after["spec"], theirs["spec"], "left alone");
        assert!(
            a.object(
                "networking.istio.io",
                "destinationrules",
                "default",
                "httpbin-dr"
            )
            .is_none(),
            "meshintent's rule for the same host was not applied"
        );
    }
);

/// Forgets every claim, as data stored before claims existed has none.
async fn forget_claims(app: &TestApp) {
    crate::on_db!(app, |conn| {
        for table in ["mesh_claim_sources", "mesh_claims", "mesh_claims_derived"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
}

fn collision_findings(analysis: &Value) -> Vec<&Value> {
    analysis["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "MI1004")
        .collect()
}

both_backends!(
    a_stored_collision_is_reported_by_the_analysis_and_status_of_both_sets,
    |app| {
        let kube = FakeKube::start().await;
        app.seed_storefront_with(&[kube.kubeconfig()]).await;
        app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
            .await
            .expect(201);
        // Two sets deciding one host, as stored before claims existed: the API would refuse
        // the second intent, so the claims are forgotten before it and derived again after.
        forget_claims(&app).await;
        let other = new_set(&app, CA, "other").await;
        app.post(&format!("{other}/inbound-intents"), httpbin_intent())
            .await
            .expect(201);
        forget_claims(&app).await;
        let mut restarted = app.another().await;

        let host = "DestinationRule host httpbin.default.svc.cluster.local on cluster cluster01";
        let (mine, theirs) = (
            restarted
                .get(&format!("{SET}/analysis"))
                .await
                .expect(200)
                .body,
            restarted
                .get(&format!("{other}/analysis"))
                .await
                .expect(200)
                .body,
        );
        let (mine, theirs) = (collision_findings(&mine), collision_findings(&theirs));
        assert!(
            !mine.is_empty() && !theirs.is_empty(),
            "{mine:#?} {theirs:#?}"
        );
        // Which set owns the name depends on the order it was derived in; each side says which.
        let all: Vec<&Value> = mine.iter().chain(theirs.iter()).copied().collect();
        assert!(
            all.iter()
                .all(|f| f["severity"] == "error" && f["cluster"] == "cluster01"),
            "{all:#?}"
        );
        assert!(
            all.iter()
                .any(|f| f["message"].as_str().unwrap().contains(host)),
            "{all:#?}"
        );
        let intent_of = |set: &str| format!("{set}/inbound-intents/httpbin");
        for f in &mine {
            let intent = f["intent"].as_str().unwrap();
            assert!(
                intent == intent_of(SET) || intent == intent_of(&other),
                "{f:#}"
            );
        }

        for set in [SET.to_owned(), other.clone()] {
            let reply = restarted
                .request(reqwest::Method::POST, &format!("{set}/deploy"), None, &[])
                .await
                .expect(202);
            let revision = reply.body["revision"].as_i64().unwrap();
            crate::deploy::wait_at(&restarted, &format!("{set}/deployments/{revision}")).await;
        }
        let (mine, theirs) = (
            restarted
                .get(&format!("{SET}/status"))
                .await
                .expect(200)
                .body,
            restarted
                .get(&format!("{other}/status"))
                .await
                .expect(200)
                .body,
        );
        let owned = |status: &Value| {
            status["collisions"]
                .as_array()
                .unwrap_or_else(|| panic!("no collisions in {status:#}"))
                .iter()
                .map(|c| c["ownedHere"].as_bool().unwrap())
                .collect::<Vec<_>>()
        };
        let (mine_owned, theirs_owned) = (owned(&mine), owned(&theirs));
        assert!(!mine_owned.is_empty() && !theirs_owned.is_empty());
        // Exactly one side owns each name.
        assert_ne!(mine_owned[0], theirs_owned[0], "{mine:#} {theirs:#}");
        let loser = if mine_owned[0] { &theirs } else { &mine };
        let winner_path = if mine_owned[0] { SET } else { other.as_str() };
        let c = &loser["collisions"][0];
        assert_eq!(c["owner"], winner_path, "{c:#}");
        assert!(
            c["claim"] == host
                || c["claim"]
                    .as_str()
                    .unwrap()
                    .contains("on cluster cluster01"),
            "{c:#}"
        );
        // The losing set's DestinationRule for the host is a conflict, not applied.
        let dr = object_of_kind(loser, "cluster01", "DestinationRule");
        assert_eq!(dr["state"], "conflict", "{dr:#}");

        // Removing the losing set's intent ends the collision for both.
        let loser_set = if mine_owned[0] {
            other.clone()
        } else {
            SET.to_owned()
        };
        restarted
            .delete(&format!("{loser_set}/inbound-intents/httpbin"))
            .await
            .expect(204);
        for set in [SET.to_owned(), other.clone()] {
            let analysis = restarted
                .get(&format!("{set}/analysis"))
                .await
                .expect(200)
                .body;
            assert!(collision_findings(&analysis).is_empty(), "{analysis:#}");
            let status = restarted
                .get(&format!("{set}/status"))
                .await
                .expect(200)
                .body;
            assert!(status.get("collisions").is_none(), "{status:#}");
        }
        restarted.stop().await;
    }
);
