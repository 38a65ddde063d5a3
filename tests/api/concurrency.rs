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
