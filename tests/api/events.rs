//! Event streams (SSE) of sets and projects: order, resumption with `Last-Event-ID` across a
//! restart, project scope, authorization, heartbeats.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::deploy::{deploy, seed, wait};
use crate::helpers::{CA, SET, TestApp};

/// One received event: id, type, data.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Received {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) data: Value,
}

pub(crate) type Events = std::pin::Pin<Box<dyn futures::Stream<Item = Received> + Send>>;

/// Opens `path` as an event stream with the admin token, resuming after `last_id`.
pub(crate) async fn open(app: &TestApp, path: &str, last_id: Option<i64>) -> Events {
    let mut req = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.token)
        .header("accept", "text/event-stream");
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let response = req.send().await.expect("the stream opens");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    Box::pin(
        response
            .bytes_stream()
            .eventsource()
            .filter_map(|e| async move {
                let e = e.ok()?;
                Some(Received {
                    id: e.id.parse().expect("every event has a numeric id"),
                    kind: e.event,
                    data: serde_json::from_str(&e.data).expect("data is JSON"),
                })
            }),
    )
}

/// Reads events until one satisfies `last` (included), failing after 30 s.
pub(crate) async fn until(events: &mut Events, last: impl Fn(&Received) -> bool) -> Vec<Received> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no final event within 30 s; got {out:#?}"))
            .expect("the stream does not end");
        let done = last(&next);
        out.push(next);
        if done {
            return out;
        }
    }
}

fn finished(revision: i64) -> impl Fn(&Received) -> bool {
    move |e| e.kind == "deploy-finished" && e.data["revision"] == revision
}

fn ids_increase(events: &[Received]) {
    assert!(
        events.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase: {:?}",
        events.iter().map(|e| e.id).collect::<Vec<_>>()
    );
}

both_backends!(a_deploy_streams_its_events_in_order, |app| {
    let (_a, _b) = seed(&app).await;
    let mut events = open(&app, &format!("{SET}/events"), None).await;
    let revision = deploy(&app, "deploy").await;
    let got = until(&mut events, finished(revision)).await;
    ids_increase(&got);

    let kinds: Vec<&str> = got.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[0], "deploy-queued", "{kinds:?}");
    assert_eq!(got[0].data["set"], SET);
    assert_eq!(got[0].data["revision"], revision);
    assert_eq!(
        got[0].data["clusters"],
        json!([{"cluster": "cluster01", "objects": 4}, {"cluster": "cluster02", "objects": 2}])
    );
    let objects: Vec<&Received> = got.iter().filter(|e| e.kind == "object-applied").collect();
    assert_eq!(objects.len(), 6, "one event per object: {kinds:?}");
    for o in &objects {
        assert_eq!(o.data["state"], "applied");
        assert_eq!(o.data["revision"], revision);
        assert!(
            o.data["kind"].is_string() && o.data["name"].is_string(),
            "{o:?}"
        );
        assert!(o.data["namespace"].is_string(), "{o:?}");
    }
    let clusters: Vec<&Received> = got
        .iter()
        .filter(|e| e.kind == "cluster-finished")
        .collect();
    assert_eq!(clusters.len(), 2, "{kinds:?}");
    for c in &clusters {
        assert_eq!(c.data["state"], "Applied");
        let cluster = c.data["cluster"].as_str().unwrap();
        let before = got.iter().take_while(|e| e.id < c.id);
        assert_eq!(
            before
                .filter(|e| e.kind == "object-applied" && e.data["cluster"] == cluster)
                .count(),
            if cluster == "cluster01" { 4 } else { 2 },
            "a cluster finishes after its objects"
        );
        assert!(c.data["writes"].as_i64().unwrap() >= 1);
    }
    let last = got.last().unwrap();
    assert_eq!(last.data["state"], "Applied");
    assert_eq!(kinds.len(), 1 + 6 + 2 + 1, "nothing else: {kinds:?}");

    // An intent write is an event of its set, carrying the resource's URL and revision.
    let mut events = open(&app, &format!("{SET}/events"), Some(last.id)).await;
    app.add_status_rule().await;
    let written = until(&mut events, |e| e.kind == "intent-written").await;
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        written[0].data["resource"],
        format!("{SET}/inbound-intents/httpbin/clients/sleep/security-intents/status")
    );
    assert_eq!(written[0].data["operation"], "create");
    assert_eq!(written[0].data["revision"], 1);
});

both_backends!(
    a_client_that_reconnects_to_a_restarted_server_gets_every_event_once,
    |app| {
        let mut app = app;
        let (a, b) = seed(&app).await;
        // Slow clusters, so that the server stops in the middle of the deploy.
        a.set_delay(Some(Duration::from_millis(150)));
        b.set_delay(Some(Duration::from_millis(150)));
        let mut events = open(&app, &format!("{SET}/events"), None).await;
        let revision = deploy(&app, "deploy").await;
        let first = until(&mut events, |e| e.kind == "object-applied").await;
        drop(events);
        app.stop().await;

        let restarted = app.another().await;
        a.set_delay(None);
        b.set_delay(None);
        let last_seen = first.last().unwrap().id;
        let mut events = open(&restarted, &format!("{SET}/events"), Some(last_seen)).await;
        let rest = until(&mut events, finished(revision)).await;
        let seen: Vec<Received> = first.into_iter().chain(rest).collect();
        ids_increase(&seen);

        // Exactly what the table holds for the deploy, from its first event on.
        let queued = seen[0].id;
        assert_eq!(seen[0].kind, "deploy-queued");
        let mut all = open(&restarted, &format!("{SET}/events"), Some(queued - 1)).await;
        let stored = until(&mut all, finished(revision)).await;
        assert_eq!(seen, stored, "every event once, in order");
        assert_eq!(
            seen.iter().filter(|e| e.kind == "object-applied").count(),
            6
        );
        assert_eq!(wait(&restarted, revision).await["state"], "Applied");
    }
);

both_backends!(a_project_stream_sees_every_set, |app| {
    app.seed_storefront().await;
    let mut project = open(&app, "/v2/projects/shop/events", None).await;
    let mut set = open(&app, &format!("{SET}/events"), None).await;
    app.post(
        &format!("{CA}/traffic-intent-sets"),
        json!({"metadata": {"name": "canary"}}),
    )
    .await
    .expect(201);
    app.add_httpbin_with_sleep_client().await;
    let canary = format!("{CA}/traffic-intent-sets/canary");
    let got = until(&mut project, |e| e.data["set"] == SET).await;
    assert_eq!(got[0].data["set"], canary, "{got:?}");
    assert_eq!(got[0].data["resource"], canary);
    assert_eq!(got[0].data["operation"], "create");
    assert!(got.iter().all(|e| e.kind == "intent-written"));
    ids_increase(&got);
    let mine = until(&mut set, |_| true).await;
    assert_eq!(
        mine[0].data["set"], SET,
        "a set's stream has only its own events"
    );
    assert_eq!(mine[0].id, got.last().unwrap().id, "one id in both streams");
});

both_backends!(callers_who_may_not_read_the_set_are_refused, |app| {
    app.seed_storefront().await;
    app.post(
        "/v2/projects",
        json!({"metadata": {"name": "other"}, "spec": {"namespaces": ["other"]}}),
    )
    .await
    .expect(201);
    let other = app
        .create_token(
            "/v2/tokens",
            json!({"metadata": {"name": "other-viewer"}, "spec": {"roles": [{"project": "other", "role": "viewer"}]}}),
        )
        .await;
    let viewer = app
        .create_token(
            "/v2/tokens",
            json!({"metadata": {"name": "shop-viewer"}, "spec": {"roles": [{"project": "shop", "role": "viewer"}]}}),
        )
        .await;
    for path in [
        format!("{SET}/events"),
        "/v2/projects/shop/events".to_owned(),
    ] {
        app.request_as(None, Method::GET, &path, None)
            .await
            .expect(401);
        app.request_as(Some(&other), Method::GET, &path, None)
            .await
            .expect(404);
        // A viewer of the project may: the stream starts (read its head only).
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    app.request(
        Method::GET,
        &format!("{SET}/events"),
        None,
        &[("last-event-id", "yesterday")],
    )
    .await
    .expect_problem(400, "Last-Event-ID");
    app.get(&format!("{CA}/traffic-intent-sets/nope/events"))
        .await
        .expect(404);
});

both_backends!(
    an_idle_stream_sends_heartbeats,
    configure = |settings: &mut meshintent::configuration::Settings, _: &std::path::Path| {
        settings.events.heartbeat = Duration::from_millis(200);
    },
    |app| {
        app.seed_storefront().await;
        let response = app
            .client
            .get(app.url(&format!("{SET}/events")))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        let mut body = response.bytes_stream();
        let mut text = String::new();
        let read = tokio::time::timeout(Duration::from_secs(3), async {
            while let Some(chunk) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                if text.lines().filter(|l| l.starts_with(':')).count() >= 2 {
                    return;
                }
            }
        })
        .await;
        assert!(read.is_ok(), "two heartbeat comments within 3 s: {text:?}");
        assert!(!text.contains("data:"), "no event, only comments: {text:?}");
    }
);
