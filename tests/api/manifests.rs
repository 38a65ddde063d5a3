//! Rendering through the API: the manifests endpoint, VIP allocation, documents.

use futures::future::join_all;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::both_backends;
use crate::crd_schema;
use crate::helpers::{CA, DatabaseLocation, SET, TestApp, httpbin_intent};

/// httpbin on cluster01, called by sleep on cluster02 (mode direct), GET /status only.
async fn seed_httpbin(app: &TestApp) {
    app.seed_storefront().await;
    app.add_httpbin_with_sleep_client().await;
    app.add_status_rule().await;
}

fn objects(body: &Value, cluster: &str) -> Vec<Value> {
    body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster)
        .map(|c| c["objects"].as_array().unwrap().clone())
        .unwrap_or_default()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {objects:#?}"))
}

fn vip_of(body: &Value, cluster: &str, name: &str) -> String {
    find(&objects(body, cluster), "ServiceEntry", name)["spec"]["addresses"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs one statement directly on the app's database and returns its single `i64`, if any.
async fn scalar(app: &TestApp, sql: &str) -> Option<i64> {
    match &app.database {
        DatabaseLocation::Sqlite(path) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_optional(&mut c)
                .await
                .unwrap()
        }
        DatabaseLocation::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_optional(&mut c)
                .await
                .unwrap()
        }
    }
}

async fn stored_vips(app: &TestApp) -> i64 {
    scalar(app, "SELECT COUNT(*) FROM vip_allocations")
        .await
        .unwrap()
}

async fn audit_events(app: &TestApp) -> i64 {
    scalar(app, "SELECT COUNT(*) FROM audit_events")
        .await
        .unwrap()
}

const BINDING: &str = "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents/httpbin/clients/sleep/binding";

both_backends!(manifests_render_every_cluster_in_json_and_yaml, |app| {
    seed_httpbin(&app).await;
    let url = format!("{SET}/manifests");
    let reply = app.get(&url).await.expect(200);
    let clusters: Vec<&str> = reply.body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["cluster01", "cluster02"]);
    let server = objects(&reply.body, "cluster01");
    let client = objects(&reply.body, "cluster02");
    let policy = find(&server, "AuthorizationPolicy", "httpbin-allow");
    assert_eq!(
        policy["spec"]["rules"][0]["from"][0]["source"]["principals"],
        json!(["cluster.local/ns/default/sa/sleep"])
    );
    assert_eq!(
        policy["spec"]["rules"][0]["to"][0]["operation"]["paths"],
        json!(["/status"])
    );
    assert_eq!(
        find(&server, "Gateway", "httpbin-passthrough")["spec"]["servers"][0]["tls"]["mode"],
        "AUTO_PASSTHROUGH"
    );
    assert_eq!(
        find(&server, "DestinationRule", "httpbin-dr")["spec"]["trafficPolicy"]["connectionPool"]["tcp"]
            ["maxConnections"],
        10
    );
    let entry = find(&client, "ServiceEntry", "httpbin-remote");
    assert_eq!(entry["spec"]["endpoints"][0]["address"], "198.51.100.10");
    assert_eq!(
        entry["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "meshintent"
    );
    assert_eq!(
        entry["metadata"]["annotations"]["meshintent.io/intent"],
        format!("{SET}/inbound-intents/httpbin")
    );
    let all: Vec<Value> = server.iter().chain(&client).cloned().collect();
    if let Err(errors) = crd_schema::validate_all(&all) {
        panic!(
            "rendered objects violate the Istio CRDs:\n{}",
            errors.join("\n")
        );
    }

    let one = app
        .get(&format!("{url}?cluster=cluster02"))
        .await
        .expect(200);
    assert_eq!(one.body["clusters"].as_array().unwrap().len(), 1);
    assert_eq!(objects(&one.body, "cluster02"), client);
    app.get(&format!("{url}?cluster=nowhere")).await.expect(404);

    let yaml = app.get(&format!("{url}?format=yaml")).await.expect(200);
    assert_eq!(yaml.header("content-type"), Some("application/yaml"));
    let text = yaml.text;
    assert!(text.starts_with("# cluster: cluster01"), "{text}");
    assert!(text.contains("\n# cluster: cluster02"));
    assert!(text.contains("kind: AuthorizationPolicy"));
    // Same intents, same bytes.
    let again = app.get(&format!("{url}?format=yaml")).await.expect(200);
    assert_eq!(text, again.text);
    app.get(&format!("{CA}/traffic-intent-sets/none/manifests"))
        .await
        .expect(404);
});

both_backends!(vips_are_stable_unique_and_released_with_the_intent, |app| {
    seed_httpbin(&app).await;
    let url = format!("{SET}/manifests");
    let first = vip_of(
        &app.get(&url).await.expect(200).body,
        "cluster02",
        "httpbin-remote",
    );
    assert!(first.starts_with("240.240."), "{first}");
    // More services reached from cluster02: each gets its own address, httpbin keeps its own.
    for i in 0..6 {
        let mut intent = httpbin_intent();
        intent["metadata"]["name"] = json!(format!("svc{i}"));
        intent["spec"]["serviceName"] = json!(format!("svc{i}"));
        app.post(&format!("{SET}/inbound-intents"), intent)
            .await
            .expect(201);
        app.add_sleep_client(&format!("svc{i}")).await;
    }
    let body = app.get(&url).await.expect(200).body;
    assert_eq!(
        vip_of(&body, "cluster02", "httpbin-remote"),
        first,
        "a re-render keeps the VIP"
    );
    let mut vips: Vec<String> = (0..6)
        .map(|i| vip_of(&body, "cluster02", &format!("svc{i}-remote")))
        .collect();
    vips.push(first.clone());
    let count = vips.len();
    vips.sort();
    vips.dedup();
    assert_eq!(vips.len(), count, "VIPs are unique per cluster");
    assert_eq!(stored_vips(&app).await, 7);

    // Concurrent renders agree on every address.
    let renders = join_all((0..4).map(|_| app.get(&url))).await;
    for r in renders {
        assert_eq!(
            vip_of(&r.expect(200).body, "cluster02", "httpbin-remote"),
            first
        );
    }
    assert_eq!(stored_vips(&app).await, 7);

    // Deleting an intent releases its VIP.
    app.delete(&format!("{SET}/inbound-intents/svc0?cascade=true"))
        .await
        .expect(204);
    assert_eq!(stored_vips(&app).await, 6);
    // A host no longer reached across clusters gives its VIP back on the next render.
    app.delete(&format!("{SET}/inbound-intents/svc1/clients/sleep"))
        .await
        .expect(204);
    app.get(&url).await.expect(200);
    assert_eq!(stored_vips(&app).await, 5);
});

both_backends!(sets_that_cannot_render_are_422_naming_the_resource, |app| {
    seed_httpbin(&app).await;
    // cluster01 loses its ingress gateway address, which sleep on cluster02 needs.
    let cluster = json!({"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com"}});
    app.put("/v2/clusters/cluster01", cluster).await.expect(200);
    let reply = app.get(&format!("{SET}/manifests")).await.expect_problem(
        422,
        "/v2/clusters/cluster01#/spec/istio/ingressGateway/address",
    );
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"sleep\" on cluster02"),
        "{}",
        reply.body
    );
});

both_backends!(
    a_set_exported_as_a_document_renders_offline_to_the_same_objects,
    |app| {
        seed_httpbin(&app).await;
        let api = app.get(&format!("{SET}/manifests")).await.expect(200).body;
        let document = app
            .get(&format!("{SET}?format=document"))
            .await
            .expect(200)
            .body;
        let text = document.to_string();
        assert!(
            !text.contains("uid") && !text.contains("revision") && !text.contains("kubeconfig"),
            "{text}"
        );
        assert_eq!(
            document["projects"][0]["compositeApps"][0]["trafficIntentSets"][0]["inboundIntents"]
                [0]["clients"][0]["securityIntents"][0]["metadata"]["name"],
            "status"
        );
        let manifests = meshintent::offline::render_document(&text).unwrap();
        let offline =
            serde_json::to_value(meshintent::generate::output::list(&manifests, None)).unwrap();
        assert_eq!(offline, api);
        // The resource form is still the default.
        let set = app.get(SET).await.expect(200);
        assert_eq!(set.body["metadata"]["name"], "default");
        assert_eq!(set.header("etag"), Some("\"1\""));
    }
);

both_backends!(a_write_allocates_the_vips_it_needs, |app| {
    app.seed_storefront().await;
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    assert_eq!(stored_vips(&app).await, 0, "no client, no VIP");
    // The client on another cluster makes a VIP needed: its write stores it, before any render.
    app.add_sleep_client("httpbin").await;
    assert_eq!(stored_vips(&app).await, 1);
    let body = app.get(&format!("{SET}/manifests")).await.expect(200).body;
    let vip = vip_of(&body, "cluster02", "httpbin-remote");
    let count = format!("SELECT COUNT(*) FROM vip_allocations WHERE address = '{vip}'");
    assert_eq!(
        scalar(&app, &count).await,
        Some(1),
        "the render shows the stored VIP"
    );
    // Moving the client next to the server: its write frees the VIP.
    let clients = format!("{SET}/inbound-intents/httpbin/clients");
    app.delete(&format!("{clients}/sleep")).await.expect(204);
    assert_eq!(
        stored_vips(&app).await,
        0,
        "the delete frees what is no longer needed"
    );
});

both_backends!(manifests_and_binding_gets_write_nothing, |app| {
    seed_httpbin(&app).await;
    let url = format!("{SET}/manifests");
    let vip = vip_of(
        &app.get(&url).await.expect(200).body,
        "cluster02",
        "httpbin-remote",
    );
    let (vips, audit) = (stored_vips(&app).await, audit_events(&app).await);
    assert_eq!(vips, 1);
    for get in [
        url.clone(),
        format!("{url}?format=yaml"),
        format!("{url}?cluster=cluster02"),
        format!("{url}?cluster=nowhere"),
        BINDING.to_owned(),
        format!("{BINDING}?cluster=cluster02"),
    ] {
        app.get(&get).await;
    }
    assert_eq!(stored_vips(&app).await, vips);
    assert_eq!(audit_events(&app).await, audit);

    // A database written before VIPs were allocated on write: the render computes the same
    // address the allocator would, and still stores nothing.
    scalar(&app, "DELETE FROM vip_allocations").await;
    let body = app.get(&url).await.expect(200).body;
    assert_eq!(vip_of(&body, "cluster02", "httpbin-remote"), vip);
    app.get(BINDING).await.expect(200);
    assert_eq!(stored_vips(&app).await, 0);
    assert_eq!(audit_events(&app).await, audit);
    // A write that does not change the intent's VIPs stores nothing; the next write to the
    // intent (here: its client) stores it.
    app.delete(&format!(
        "{SET}/inbound-intents/httpbin/clients/sleep/security-intents/status"
    ))
    .await
    .expect(204);
    assert_eq!(stored_vips(&app).await, 0);
    app.put(
        &format!("{SET}/inbound-intents/httpbin/clients/sleep"),
        json!({"metadata": {"name": "sleep", "description": "the caller"}, "spec": {"app": "sleep"}}),
    )
    .await
    .expect(200);
    assert_eq!(stored_vips(&app).await, 1);
    let body = app.get(&url).await.expect(200).body;
    assert_eq!(vip_of(&body, "cluster02", "httpbin-remote"), vip);
});

both_backends!(an_unknown_cluster_is_refused_before_rendering, |app| {
    seed_httpbin(&app).await;
    // cluster01 loses its ingress gateway address: the set no longer renders (422)...
    let cluster = json!({"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com"}});
    app.put("/v2/clusters/cluster01", cluster).await.expect(200);
    app.get(&format!("{SET}/manifests")).await.expect(422);
    // ...but an unknown cluster is refused first.
    for cluster in ["nowhere", "Not_A_Name"] {
        let reply = app
            .get(&format!("{SET}/manifests?cluster={cluster}"))
            .await
            .expect(404);
        assert_eq!(
            reply.body["detail"],
            format!("cluster \"{cluster}\" does not exist")
        );
        app.get(&format!("{BINDING}?cluster={cluster}"))
            .await
            .expect(404);
    }
});
