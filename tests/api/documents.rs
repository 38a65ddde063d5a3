//! `PUT .../traffic-intent-sets/{set}/document`: a whole set's members in one transaction,
//! checked with the item writes' rules, errors naming fields of the body.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{SET, TestApp};

fn document_url() -> String {
    format!("{SET}/document")
}

fn intent(name: &str, app: &str) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"app": app, "serviceName": name, "port": 8000, "protocol": "HTTP",
                    "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
           "clients": [{"metadata": {"name": "sleep"}, "spec": {"app": "sleep"},
                        "securityIntents": [{"metadata": {"name": "status"},
                                             "spec": {"rules": [{"methods": ["GET"], "paths": ["/status"]}]}}]}]})
}

fn set_document(intents: Vec<Value>) -> Value {
    json!({"metadata": {"name": "default"}, "inboundIntents": intents,
           "routeIntents": [{"metadata": {"name": "a-timeout"},
                             "spec": {"target": {"inboundIntent": "a"}, "http": [{"route": [{"subset": "v1", "weight": 100}], "timeout": "2s"}]}}]})
}

async fn names(app: &TestApp) -> Vec<String> {
    let list = app.get(&format!("{SET}/inbound-intents")).await.expect(200);
    list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_count(app: &TestApp, action: &str) -> usize {
    let events = app.get("/v2/audit-events?limit=500").await.expect(200);
    events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

both_backends!(
    a_set_document_creates_replaces_and_prunes_in_one_write,
    |app| {
        app.seed_storefront().await;
        let body = set_document(vec![intent("a", "httpbin"), intent("b", "httpbin")]);
        let reply = app.put(&document_url(), body.clone()).await.expect(200);
        assert_eq!(
            (
                reply.body["created"].as_u64(),
                reply.body["deleted"].as_u64()
            ),
            (Some(7), Some(0)),
            "2 intents, 2 clients, 2 security intents, 1 route: {}",
            reply.body
        );
        assert_eq!(names(&app).await, ["a", "b"]);
        assert_eq!(audit_count(&app, "document.replace").await, 1);
        // What item writes store: the same defaults, references and VIPs (sleep runs elsewhere).
        let stored = app
            .get(&format!("{SET}/inbound-intents/a"))
            .await
            .expect(200);
        assert_eq!(stored.body["spec"]["serviceName"], "a");
        app.delete(&format!("{SET}/inbound-intents/a?cascade=true"))
            .await
            .expect(409);
        let manifests = app.get(&format!("{SET}/manifests")).await.expect(200);
        assert!(manifests.text.contains("a-remote"), "{}", manifests.text);

        // The same document again changes nothing and is not audited.
        let again = app.put(&document_url(), body).await.expect(200);
        assert_eq!(again.body["unchanged"].as_u64(), Some(7), "{}", again.body);
        assert_eq!(audit_count(&app, "document.replace").await, 1);

        // b goes (with its client and security intent), a changes.
        let mut changed = intent("a", "httpbin");
        changed["spec"]["port"] = json!(9000);
        let reply = app
            .put(&document_url(), set_document(vec![changed.clone()]))
            .await
            .expect(200);
        assert_eq!(reply.body["replaced"].as_u64(), Some(1), "{}", reply.body);
        assert_eq!(reply.body["deleted"].as_u64(), Some(3), "{}", reply.body);
        assert_eq!(names(&app).await, ["a"]);
        let a = app
            .get(&format!("{SET}/inbound-intents/a"))
            .await
            .expect(200);
        assert_eq!(a.body["spec"]["port"], 9000);
        assert_eq!(a.body["metadata"]["revision"], 2);

        // Without pruning, members the document leaves out stay.
        let reply = app
        .request(
            Method::PUT,
            &format!("{}?prune=false", document_url()),
            Some(&json!({"metadata": {"name": "default"}, "inboundIntents": [intent("c", "httpbin")]})),
            &[],
        )
        .await
        .expect(200);
        assert_eq!(reply.body["deleted"].as_u64(), Some(0), "{}", reply.body);
        assert_eq!(names(&app).await, ["a", "c"]);
    }
);

both_backends!(
    a_bad_set_document_names_the_field_and_writes_nothing,
    |app| {
        app.seed_storefront().await;
        app.put(&document_url(), set_document(vec![intent("a", "httpbin")]))
            .await
            .expect(200);
        let before = audit_count(&app, "document.replace").await;
        let reply = app
            .put(
                &document_url(),
                set_document(vec![intent("a", "httpbin"), intent("b", "nowhere")]),
            )
            .await
            .expect_problem(422, "/inboundIntents/1/spec/app");
        assert!(
            reply
                .message("/inboundIntents/1/spec/app")
                .contains("nowhere"),
            "{}",
            reply.body
        );
        // A route targeting an intent the document drops.
        app.put(
        &document_url(),
        json!({"metadata": {"name": "default"}, "inboundIntents": [intent("b", "httpbin")],
               "routeIntents": [{"metadata": {"name": "a-timeout"},
                                 "spec": {"target": {"inboundIntent": "a"}, "http": [{"route": [{"subset": "v1", "weight": 100}], "timeout": "2s"}]}}]}),
    )
    .await
    .expect_problem(422, "/routeIntents/0/spec/target/inboundIntent");
        app.put(&document_url(), json!({"metadata": {"name": "other"}}))
            .await
            .expect_problem(422, "/metadata/name");
        app.put(
            &document_url(),
            json!({"metadata": {"name": "default"}, "bogus": 1}),
        )
        .await
        .expect(400);
        assert_eq!(names(&app).await, ["a"]);
        assert_eq!(audit_count(&app, "document.replace").await, before);
        // A project viewer may read the set but not replace it.
        let viewer = app
            .create_token(
                "/v2/projects/shop/tokens",
                json!({"metadata": {"name": "viewer"}, "spec": {"role": "viewer"}}),
            )
            .await;
        app.request_as(
            Some(&viewer),
            Method::PUT,
            &document_url(),
            Some(&set_document(vec![])),
        )
        .await
        .expect(403);
        assert_eq!(names(&app).await, ["a"]);
    }
);
