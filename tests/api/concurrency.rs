//! Concurrent writers: the database, not a check-then-insert, decides.

use futures::future::join_all;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{SET, httpbin_intent};

both_backends!(exactly_one_concurrent_create_wins, |app| {
    app.seed_storefront().await;
    let attempts = 24;
    let replies = join_all((0..attempts).map(|i| {
        let mut body = httpbin_intent();
        body["metadata"]["description"] = json!(format!("attempt {i}"));
        let url = format!("{SET}/inbound-intents");
        let app = &app;
        async move { app.post(&url, body).await }
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let conflicts = replies.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        created,
        1,
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(conflicts, attempts - 1);
    let list = app.get(&format!("{SET}/inbound-intents")).await.expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
});

both_backends!(concurrent_replaces_with_if_match_let_one_win, |app| {
    app.seed_storefront().await;
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let path = format!("{SET}/inbound-intents/httpbin");
    let replies = join_all((0..10).map(|i| {
        let mut body = httpbin_intent();
        body["spec"]["port"] = json!(9000 + i);
        let (app, path) = (&app, &path);
        async move {
            app.request(
                reqwest::Method::PUT,
                path,
                Some(&body),
                &[("If-Match", "\"1\"")],
            )
            .await
        }
    }))
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let stale = replies.iter().filter(|r| r.status == 412).count();
    assert_eq!(
        (ok, stale),
        (1, 9),
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(app.get(&path).await.body["metadata"]["revision"], 2);
});

/// Exactly one reply is a 201; every other one is a 422 (a rule refused it).
#[track_caller]
fn one_created_rest_refused(replies: &[crate::helpers::Reply]) {
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 422).count();
    assert_eq!((created, refused), (1, replies.len() - 1), "{statuses:?}");
}

both_backends!(concurrent_writes_that_conflict_by_rule_let_one_win, |app| {
    app.seed_storefront().await;
    // Different intents exposing one Kubernetes Service: the rule compares them, so their
    // writes are serialized (a lock on the service) and only the first passes.
    let replies = join_all((0..12).map(|i| {
        let mut body = httpbin_intent();
        body["metadata"]["name"] = json!(format!("httpbin-{i}"));
        body["spec"]["subsets"] = json!([{"name": "v1", "labels": {"version": "v1"}}]);
        let url = format!("{SET}/inbound-intents");
        let app = &app;
        async move { app.post(&url, body).await }
    }))
    .await;
    one_created_rest_refused(&replies);
    let created = replies.iter().find(|r| r.status == 201).unwrap();
    let intent = created.body["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // Route intents on one target that both take every request: one wins.
    let replies = join_all((0..8).map(|i| {
        let body = json!({"metadata": {"name": format!("route-{i}")},
                              "spec": {"target": {"inboundIntent": intent},
                                       "http": [{"route": [{"subset": "v1", "weight": 100}]}]}});
        let url = format!("{SET}/route-intents");
        let app = &app;
        async move { app.post(&url, body).await }
    }))
    .await;
    one_created_rest_refused(&replies);
    // Meanwhile, writes that do not conflict all pass.
    let replies = join_all((0..8).map(|i| {
        let mut body = httpbin_intent();
        body["metadata"]["name"] = json!(format!("other-{i}"));
        body["spec"]["serviceName"] = json!(format!("other-{i}"));
        let url = format!("{SET}/inbound-intents");
        let app = &app;
        async move { app.post(&url, body).await }
    }))
    .await;
    assert!(replies.iter().all(|r| r.status == 201));
});
