//! HTTP semantics of the resource tree: create, read, list, replace, delete.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{CA, SET, httpbin_intent};

both_backends!(create_returns_201_location_etag_and_defaults, |app| {
    app.seed_storefront().await;
    let created = app
        .post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    assert_eq!(
        created.header("location"),
        Some(&*format!("{SET}/inbound-intents/httpbin"))
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    let meta = &created.body["metadata"];
    assert_eq!(meta["revision"], 1);
    assert!(meta["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert_eq!(meta["createdAt"], meta["updatedAt"]);
    assert_eq!(meta["description"], "httpbin with circuit breaking");
    // Defaults are applied and shown.
    let spec = &created.body["spec"];
    assert_eq!(spec["mtls"], "ISTIO_MUTUAL");
    assert_eq!(spec["sidecar"], true);
    assert_eq!(spec["headless"], false);
    assert_eq!(spec["trafficPolicy"]["outlierDetection"]["interval"], "5m");

    let fetched = app
        .get(&format!("{SET}/inbound-intents/httpbin"))
        .await
        .expect(200);
    assert_eq!(fetched.body, created.body);
    assert_eq!(fetched.header("etag"), Some("\"1\""));

    let app_resource = app.get(&format!("{CA}/apps/sleep")).await.expect(200);
    assert_eq!(app_resource.body["spec"]["serviceAccount"], "sleep");
    assert_eq!(
        app_resource.body["spec"]["workloadLabels"],
        json!({"app": "sleep"})
    );

    let cluster = app.get("/v2/clusters/cluster01").await.expect(200);
    assert_eq!(cluster.body["spec"]["trustDomain"], "cluster.local");
    assert_eq!(
        cluster.body["spec"]["istio"]["ingressGateway"]["port"],
        15443
    );
    assert_eq!(
        cluster.body["spec"]["crossCluster"]["vipRange"],
        "240.240.0.0/16"
    );
});

both_backends!(every_kind_round_trips, |app| {
    app.seed_storefront().await;
    let client = app.add_httpbin_with_sleep_client().await;
    let rules = format!("{client}/sleep/security-intents");
    let created = app
        .post(
            &rules,
            json!({"metadata": {"name": "status-only"},
            "spec": {"rules": [{"methods": ["GET"], "paths": ["/status", "/headers"]}]}}),
        )
        .await
        .expect(201);
    assert_eq!(created.body["spec"]["action"], "ALLOW");
    let listed = app.get(&rules).await.expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["nextPage"], json!(null));
    for path in [
        "/v2/clusters",
        "/v2/projects",
        "/v2/projects/shop/composite-apps",
        &format!("{CA}/apps"),
        &format!("{CA}/traffic-intent-sets"),
        &format!("{SET}/inbound-intents"),
        &client,
    ] {
        let list = app.get(path).await.expect(200);
        assert!(!list.body["items"].as_array().unwrap().is_empty(), "{path}");
    }
    let ca = app.get(CA).await.expect(200);
    assert_eq!(ca.body["spec"]["version"], "v1");
});

both_backends!(empty_lists_have_empty_items, |app| {
    let list = app.get("/v2/projects").await.expect(200);
    assert_eq!(list.body, json!({"items": [], "nextPage": null}));
});

both_backends!(put_replaces_and_bumps_revision, |app| {
    app.seed_storefront().await;
    let path = format!("{SET}/inbound-intents/httpbin");
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let mut body = httpbin_intent();
    body["spec"]["port"] = json!(9000);
    body["metadata"]["description"] = json!(null);
    let replaced = app.put(&path, body.clone()).await.expect(200);
    assert_eq!(replaced.body["metadata"]["revision"], 2);
    assert_eq!(replaced.header("etag"), Some("\"2\""));
    assert_eq!(replaced.body["spec"]["port"], 9000);
    assert!(
        replaced.body["metadata"].get("description").is_none(),
        "full replace drops the description"
    );
    // An identical PUT is not a change.
    let again = app.put(&path, body).await.expect(200);
    assert_eq!(again.body["metadata"]["revision"], 2);
    // A fetched resource can be sent back as it is (read-only fields are ignored).
    let fetched = app.get(&path).await.expect(200);
    let echoed = app.put(&path, fetched.body.clone()).await.expect(200);
    assert_eq!(echoed.body, fetched.body);
});

both_backends!(put_cannot_rename_or_create, |app| {
    app.seed_storefront().await;
    let mut body = httpbin_intent();
    app.post(&format!("{SET}/inbound-intents"), body.clone())
        .await
        .expect(201);
    body["metadata"]["name"] = json!("other");
    app.put(&format!("{SET}/inbound-intents/httpbin"), body.clone())
        .await
        .expect_problem(422, "/metadata/name");
    app.put(&format!("{SET}/inbound-intents/other"), body)
        .await
        .expect(404);
    let ca = json!({"metadata": {"name": "storefront"}, "spec": {"version": "v2"}});
    app.put(CA, ca).await.expect_problem(422, "/spec/version");
});

both_backends!(delete_is_204_then_404, |app| {
    app.seed_storefront().await;
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let path = format!("{SET}/inbound-intents/httpbin");
    let deleted = app.delete(&path).await.expect(204);
    assert_eq!(deleted.body, json!(null));
    app.get(&path).await.expect(404);
    app.delete(&path).await.expect(404);
});

both_backends!(missing_ancestors_are_404_for_every_operation, |app| {
    app.seed_storefront().await;
    let missing_project = "/v2/projects/nope/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents";
    for reply in [
        app.get(missing_project).await,
        app.post(missing_project, httpbin_intent()).await,
        app.get(&format!("{missing_project}/httpbin")).await,
        app.put(&format!("{missing_project}/httpbin"), httpbin_intent())
            .await,
        app.delete(&format!("{missing_project}/httpbin")).await,
    ] {
        let reply = reply.expect(404);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("project \"nope\" does not exist"),
            "{}",
            reply.body
        );
    }
    let wrong_version = "/v2/projects/shop/composite-apps/storefront/v9/apps";
    let reply = app.get(wrong_version).await.expect(404);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("composite app \"storefront\" version \"v9\"")
    );
    let missing_set = format!("{CA}/traffic-intent-sets/none/inbound-intents");
    let reply = app.get(&missing_set).await.expect(404);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("traffic intent set \"none\"")
    );
    // A path segment that cannot be a name names nothing.
    app.get("/v2/projects/NOT_A_NAME").await.expect(404);
});

both_backends!(duplicates_are_409, |app| {
    app.seed_storefront().await;
    app.post("/v2/projects", json!({"metadata": {"name": "shop"}}))
        .await
        .expect(409);
    let dup = app
        .post(
            "/v2/projects/shop/composite-apps",
            json!({"metadata": {"name": "storefront"}, "spec": {"version": "v1"}}),
        )
        .await
        .expect(409);
    assert!(
        dup.body["detail"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    // Another version of the same composite app is a different resource.
    app.post(
        "/v2/projects/shop/composite-apps",
        json!({"metadata": {"name": "storefront"}, "spec": {"version": "v2"}}),
    )
    .await
    .expect(201);
    // Inbound, outbound and route intents share names (generated objects derive from them).
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let clash = app
        .post(&format!("{SET}/outbound-intents"), json!({"metadata": {"name": "httpbin"},
            "spec": {"hosts": ["httpbin.org"], "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
                     "tls": {"mode": "PASSTHROUGH"}}}))
        .await
        .expect(409);
    assert!(
        clash.body["detail"]
            .as_str()
            .unwrap()
            .contains("share one set of names")
    );
    // The same name under another parent is fine (for another Service: the same one would be
    // a second set deciding its host, see claims.rs).
    app.post(
        &format!("{CA}/traffic-intent-sets"),
        json!({"metadata": {"name": "second"}}),
    )
    .await
    .expect(201);
    let mut same_name = httpbin_intent();
    same_name["spec"]["serviceName"] = json!("httpbin-v2");
    app.post(
        &format!("{CA}/traffic-intent-sets/second/inbound-intents"),
        same_name,
    )
    .await
    .expect(201);
});

both_backends!(deleting_a_parent_needs_cascade, |app| {
    app.seed_storefront().await;
    app.add_httpbin_with_sleep_client().await;
    let refused = app.delete("/v2/projects/shop").await.expect(409);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("cascade=true"),
        "{}",
        refused.body
    );
    app.get(&format!("{SET}/inbound-intents/httpbin/clients/sleep"))
        .await
        .expect(200);

    app.delete("/v2/projects/shop?cascade=true")
        .await
        .expect(204);
    app.get("/v2/projects/shop").await.expect(404);
    assert_eq!(app.get("/v2/projects").await.body["items"], json!([]));
    // The clusters the apps referenced are free again.
    app.delete("/v2/clusters/cluster01").await.expect(204);
});

both_backends!(referenced_resources_cannot_be_deleted, |app| {
    app.seed_storefront().await;
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let reply = app.delete(&format!("{CA}/apps/httpbin")).await.expect(409);
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("inbound intent \"httpbin\" (/spec/app)"),
        "{detail}"
    );
    let reply = app.delete("/v2/clusters/cluster02").await.expect(409);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("app \"sleep\"")
    );
    // A referenced app inside a subtree being deleted is fine: both go.
    app.delete(&format!("{CA}?cascade=true")).await.expect(204);
});

both_backends!(etag_preconditions, |app| {
    app.seed_storefront().await;
    let path = format!("{SET}/inbound-intents/httpbin");
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let mut body = httpbin_intent();
    body["spec"]["port"] = json!(8001);
    app.request(Method::PUT, &path, Some(&body), &[("If-Match", "\"1\"")])
        .await
        .expect(200);
    // The first writer won; a second writer holding revision 1 is stopped.
    body["spec"]["port"] = json!(8002);
    let stale = app
        .request(Method::PUT, &path, Some(&body), &[("If-Match", "\"1\"")])
        .await
        .expect(412);
    assert_eq!(
        stale.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        stale.body["detail"]
            .as_str()
            .unwrap()
            .contains("revision 2")
    );
    assert_eq!(app.get(&path).await.body["spec"]["port"], 8001);
    app.request(Method::PUT, &path, Some(&body), &[("If-Match", "W/\"2\"")])
        .await
        .expect(412);
    app.request(Method::PUT, &path, Some(&body), &[("If-Match", "*")])
        .await
        .expect(200);
    app.request(Method::DELETE, &path, None, &[("If-Match", "\"1\"")])
        .await
        .expect(412);
    app.request(Method::DELETE, &path, None, &[("If-Match", "\"3\"")])
        .await
        .expect(204);
});

both_backends!(pagination_walks_every_item_once, |app| {
    for i in 0..7 {
        app.post(
            "/v2/projects",
            json!({"metadata": {"name": format!("p{i}")}}),
        )
        .await
        .expect(201);
    }
    let mut seen = Vec::new();
    let mut next = Some(String::new());
    let mut pages = 0;
    while let Some(token) = next {
        let url = if token.is_empty() {
            "/v2/projects?limit=3".to_owned()
        } else {
            format!("/v2/projects?limit=3&pageToken={token}")
        };
        let page = app.get(&url).await.expect(200);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        next = page.body["nextPage"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    app.get("/v2/projects?pageToken=bogus")
        .await
        .expect_problem(400, "pageToken");
    app.get("/v2/projects?limit=0")
        .await
        .expect_problem(400, "limit");
    let bad = app.get("/v2/projects?limit=many").await.expect(400);
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));
});

both_backends!(undeclared_methods_are_405_with_allow, |app| {
    let reply = app
        .request(Method::PATCH, "/v2/projects/shop", None, &[])
        .await
        .expect(405);
    assert_eq!(reply.header("allow"), Some("GET, PUT, DELETE, HEAD"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let reply = app
        .request(Method::DELETE, "/v2/projects", None, &[])
        .await
        .expect(405);
    assert_eq!(reply.header("allow"), Some("GET, POST, HEAD"));
    app.get("/v2/nothing-here").await.expect(404);
});
