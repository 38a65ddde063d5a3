//! Outbound and route intents through the API: CRUD, and every write-time rule as a 422 naming
//! the field.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{SET, TestApp, httpbin_intent};

fn outbound(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

fn hello() -> Value {
    outbound(
        "hello",
        json!({
            "hosts": ["hello.external"],
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "resolution": "DNS",
            "endpoints": [
                {"address": "hello-v1.apps.example.com", "labels": {"version": "v1"}, "ports": {"http": 443}},
                {"address": "hello-v2.apps.example.com", "labels": {"version": "v2"}, "ports": {"http": 443}}],
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}, "sni": "hello-v1.apps.example.com"},
                {"name": "v2", "labels": {"version": "v2"}, "sni": "hello-v2.apps.example.com"}],
            "tls": {"mode": "ORIGINATE_SIMPLE"}
        }),
    )
}

fn route(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

fn shift() -> Value {
    json!({"target": {"outboundIntent": "hello"},
           "http": [{"route": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 50}]}]})
}

async fn seed(app: &TestApp) {
    app.seed_storefront().await;
    app.post(&format!("{SET}/outbound-intents"), hello())
        .await
        .expect(201);
}

/// POSTs a route intent with `spec` changed by `edit`, expecting a 422 on `field`.
async fn route_rejected(app: &TestApp, edit: impl FnOnce(&mut Value), field: &str) -> String {
    let mut spec = shift();
    edit(&mut spec);
    let reply = app
        .post(&format!("{SET}/route-intents"), route("bad", spec))
        .await
        .expect_problem(422, field);
    reply.message(field)
}

async fn outbound_rejected(app: &TestApp, edit: impl FnOnce(&mut Value), field: &str) -> String {
    let mut body = hello();
    body["metadata"]["name"] = json!("other");
    body["spec"]["hosts"] = json!(["other.example.org"]);
    edit(&mut body["spec"]);
    let reply = app
        .post(&format!("{SET}/outbound-intents"), body)
        .await
        .expect_problem(422, field);
    reply.message(field)
}

both_backends!(outbound_and_route_intents_round_trip, |app| {
    seed(&app).await;
    let created = app
        .post(
            &format!("{SET}/route-intents"),
            route("hello-shift", shift()),
        )
        .await
        .expect(201);
    assert_eq!(
        created.header("location"),
        Some(&*format!("{SET}/route-intents/hello-shift"))
    );
    assert_eq!(
        created.body["spec"]["gateways"],
        json!(["mesh"]),
        "the default is shown"
    );
    let outbound = app
        .get(&format!("{SET}/outbound-intents/hello"))
        .await
        .expect(200);
    assert_eq!(outbound.body["spec"]["egressGateway"], true);
    let mut changed = shift();
    changed["http"][0]["route"] =
        json!([{"subset": "v1", "weight": 80}, {"subset": "v2", "weight": 20}]);
    let replaced = app
        .put(
            &format!("{SET}/route-intents/hello-shift"),
            route("hello-shift", changed),
        )
        .await
        .expect(200);
    assert_eq!(replaced.body["metadata"]["revision"], 2);
    // The outbound intent cannot go while a route targets it, nor lose a subset the route uses.
    let refused = app
        .delete(&format!("{SET}/outbound-intents/hello"))
        .await
        .expect(409);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("route intent \"hello-shift\"")
    );
    let mut without_v2 = hello();
    without_v2["spec"]["subsets"] = json!([{"name": "v1", "labels": {"version": "v1"}}]);
    let reply = app
        .put(&format!("{SET}/outbound-intents/hello"), without_v2)
        .await
        .expect_problem(422, "/spec/subsets");
    assert!(
        reply
            .message("/spec/subsets")
            .contains("used by route intent \"hello-shift\"")
    );
    app.delete(&format!("{SET}/route-intents/hello-shift"))
        .await
        .expect(204);
    app.delete(&format!("{SET}/outbound-intents/hello"))
        .await
        .expect(204);
});

both_backends!(route_rules_are_checked_on_write, |app| {
    seed(&app).await;
    let m = route_rejected(
        &app,
        |s| s["http"][0]["route"][1]["weight"] = json!(40),
        "/spec/http/0/route",
    )
    .await;
    assert!(m.contains("sum to 100 (they sum to 90)"), "{m}");
    let m = route_rejected(
        &app,
        |s| s["http"][0]["route"][1]["subset"] = json!("v3"),
        "/spec/http/0/route/1/subset",
    )
    .await;
    assert!(
        m.contains("subset \"v3\" is not defined on outbound intent \"hello\" (defined: v1, v2)"),
        "{m}"
    );
    let m = route_rejected(
        &app,
        |s| {
            s["http"] =
                json!([{"match": [{"uri": {"regex": "(?x) /api"}}], "route": [{"subset": "v1"}]}])
        },
        "/spec/http/0/match/0/uri/regex",
    )
    .await;
    assert!(m.contains("not valid RE2"), "{m}");
    route_rejected(
        &app,
        |s| s["http"][0]["match"] = json!([{"headers": {"x": {"regex": "a(?=b)"}}}]),
        "/spec/http/0/match/0/headers/x/regex",
    )
    .await;
    let m = route_rejected(
        &app,
        |s| s["http"][0]["timeout"] = json!("200us"),
        "/spec/http/0/timeout",
    )
    .await;
    assert!(m.contains("at least 1ms"));
    route_rejected(
        &app,
        |s| s["http"][0]["retries"] = json!({"attempts": 2, "perTryTimeout": "0ms"}),
        "/spec/http/0/retries/perTryTimeout",
    )
    .await;
    route_rejected(
        &app,
        |s| s["http"][0]["fault"] = json!({"abort": {"percentage": 10, "httpStatus": 99}}),
        "/spec/http/0/fault/abort/httpStatus",
    )
    .await;
    let m = route_rejected(
        &app,
        |s| s["target"] = json!({"outboundIntent": "nothing"}),
        "/spec/target/outboundIntent",
    )
    .await;
    assert!(m.contains("does not exist"));
    route_rejected(
        &app,
        |s| s["target"] = json!({"inboundIntent": "nothing"}),
        "/spec/target/inboundIntent",
    )
    .await;
    route_rejected(
        &app,
        |s| s["gateways"] = json!(["ingress"]),
        "/spec/gateways/0",
    )
    .await;
    route_rejected(
        &app,
        |s| {
            s["tls"] =
                json!([{"match": {"sniHosts": ["hello.external"]}, "route": [{"subset": "v1"}]}])
        },
        "/spec/tls",
    )
    .await;
    assert_eq!(
        app.get(&format!("{SET}/route-intents")).await.body["items"],
        json!([]),
        "nothing was written"
    );
});

both_backends!(conflicting_route_intents_are_named, |app| {
    seed(&app).await;
    app.post(&format!("{SET}/route-intents"), route("first", shift()))
        .await
        .expect(201);
    // A second rule without match for the same host: one of them would never apply.
    let reply = app
        .post(&format!("{SET}/route-intents"), route("second", shift()))
        .await
        .expect_problem(422, "/spec/http");
    assert!(
        reply
            .message("/spec/http")
            .contains("conflicts with route intent \"first\""),
        "{}",
        reply.body
    );
    // The same match twice.
    let canary = json!({"target": {"outboundIntent": "hello"},
        "http": [{"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": [{"subset": "v2"}]}]});
    app.post(
        &format!("{SET}/route-intents"),
        route("canary", canary.clone()),
    )
    .await
    .expect(201);
    let reply = app
        .post(&format!("{SET}/route-intents"), route("canary-2", canary))
        .await
        .expect_problem(422, "/spec/http/0/match");
    assert!(
        reply
            .message("/spec/http/0/match")
            .contains("route intent \"canary\"")
    );
    // Different matches merge into one VirtualService, in name order, the catch-all last.
    let other = json!({"target": {"outboundIntent": "hello"},
        "http": [{"match": [{"uri": {"prefix": "/beta"}}], "route": [{"subset": "v2"}]}]});
    app.post(&format!("{SET}/route-intents"), route("beta", other))
        .await
        .expect(201);
    // Every app is a client by default; on cluster01 that is httpbin in namespace default.
    let manifests = app
        .get(&format!("{SET}/manifests?cluster=cluster01"))
        .await
        .expect(200)
        .body;
    let objects = manifests["clusters"][0]["objects"].as_array().unwrap();
    let gateway_vs = objects
        .iter()
        .find(|o| o["kind"] == "VirtualService" && o["metadata"]["name"] == "hello-egress")
        .unwrap();
    let names: Vec<&str> = gateway_vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["beta-0", "canary-0", "first-0"]);
    let vs_count = objects
        .iter()
        .filter(|o| {
            o["kind"] == "VirtualService" && o["spec"]["hosts"] == json!(["hello.external"])
        })
        .count();
    // One in the client's namespace (mesh, to the egress gateway) and one at the gateway.
    assert_eq!(vs_count, 2, "never two mesh VirtualServices for one host");
});

both_backends!(outbound_rules_are_checked_on_write, |app| {
    seed(&app).await;
    let m = outbound_rejected(
        &app,
        |s| {
            s["resolution"] = json!("STATIC");
        },
        "/spec/endpoints/0/address",
    )
    .await;
    assert!(m.contains("STATIC needs an IP address"), "{m}");
    let m = outbound_rejected(
        &app,
        |s| s["endpoints"][0]["address"] = json!("10.1.2.3"),
        "/spec/endpoints/0/address",
    )
    .await;
    assert!(m.contains("DNS needs a host name"), "{m}");
    outbound_rejected(
        &app,
        |s| {
            s["resolution"] = json!("STATIC");
            s.as_object_mut().unwrap().remove("endpoints");
            s.as_object_mut().unwrap().remove("subsets");
        },
        "/spec/endpoints",
    )
    .await;
    let m = outbound_rejected(
        &app,
        |s| s["hosts"] = json!(["*.a.example.org", "*.b.example.org"]),
        "/spec/hosts/1",
    )
    .await;
    assert!(m.contains("only one wildcard"), "{m}");
    outbound_rejected(&app, |s| s["hosts"] = json!(["*"]), "/spec/hosts/0").await;
    let m = outbound_rejected(
        &app,
        |s| s["tls"] = json!({"mode": "PASSTHROUGH"}),
        "/spec/tls/mode",
    )
    .await;
    assert!(m.contains("PASSTHROUGH needs a TLS or HTTPS port"), "{m}");
    let m = outbound_rejected(
        &app,
        |s| s["tls"] = json!({"mode": "ORIGINATE_MUTUAL"}),
        "/spec/tls/credentialName",
    )
    .await;
    assert!(m.contains("required with ORIGINATE_MUTUAL"), "{m}");
    outbound_rejected(
        &app,
        |s| s["ports"] = json!([{"number": 0, "name": "http", "protocol": "HTTP"}]),
        "/spec/ports/0/number",
    )
    .await;
    outbound_rejected(
        &app,
        |s| s["endpoints"][0]["ports"] = json!({"grpc": 443}),
        "/spec/endpoints/0/ports/grpc",
    )
    .await;
    outbound_rejected(
        &app,
        |s| s["hosts"] = json!(["hello.external"]),
        "/spec/hosts/0",
    )
    .await;
    outbound_rejected(&app, |s| s["clients"] = json!(["ghost"]), "/spec/clients/0").await;
    // TCP is told apart by a VIP, so it needs resolution DNS or STATIC (NONE would forward to the VIP).
    let tcp = outbound(
        "db",
        json!({"hosts": ["db.example.org"], "ports": [{"number": 5432, "name": "pg", "protocol": "TCP"}],
        "resolution": "NONE"}),
    );
    let reply = app
        .post(&format!("{SET}/outbound-intents"), tcp)
        .await
        .expect_problem(422, "/spec/ports/0/protocol");
    assert!(
        reply
            .message("/spec/ports/0/protocol")
            .contains("resolution DNS or STATIC")
    );
});

both_backends!(edge_routes_need_external_access, |app| {
    app.seed_storefront().await;
    let mut intent = httpbin_intent();
    intent["spec"]["subsets"] = json!([{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]);
    app.post(&format!("{SET}/inbound-intents"), intent.clone())
        .await
        .expect(201);
    let edge = json!({"target": {"inboundIntent": "httpbin"}, "gateways": ["ingress"],
        "http": [{"route": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}]}]});
    let reply = app
        .post(&format!("{SET}/route-intents"), route("edge", edge.clone()))
        .await
        .expect_problem(422, "/spec/gateways/0");
    assert!(reply.message("/spec/gateways/0").contains("externalAccess"));
    intent["spec"]["externalAccess"] = json!({"hosts": ["httpbin.example.com"], "tls": {"mode": "SIMPLE", "credentialName": "httpbin-cert"}});
    app.put(&format!("{SET}/inbound-intents/httpbin"), intent.clone())
        .await
        .expect(200);
    app.post(&format!("{SET}/route-intents"), route("edge", edge))
        .await
        .expect(201);
    // Removing the exposure now would strand the route: refused, naming it.
    intent["spec"]
        .as_object_mut()
        .unwrap()
        .remove("externalAccess");
    let reply = app
        .put(&format!("{SET}/inbound-intents/httpbin"), intent)
        .await
        .expect_problem(422, "/spec/externalAccess");
    assert!(
        reply
            .message("/spec/externalAccess")
            .contains("route intent \"edge\"")
    );
});
