//! One owner per mesh name (SPEC 7): a host a set's objects decide on a cluster cannot be decided
//! by another set, in this project or another; the write that would do it is a 409 naming the
//! owner, and nothing is written.

use serde_json::{Value, json};

use crate::both_backends;
use crate::deploy::{cluster, deploy, wait};
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
        let dr = cluster(&status, "cluster01")["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "DestinationRule")
            .unwrap()
            .clone();
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
