//! Bad input: 400 for what cannot be read, 422 for what breaks a rule; nothing is written.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{CA, SET, httpbin_intent};

both_backends!(malformed_json_and_unknown_fields_are_400, |app| {
    app.seed_storefront().await;
    let url = format!("{SET}/inbound-intents");
    let reply = app
        .raw(Method::POST, &url, "application/json", "{\"metadata\": ")
        .await
        .expect(400);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let mut body = httpbin_intent();
    body["spec"]["serviceNmae"] = json!("typo");
    let reply = app
        .post(&url, body.clone())
        .await
        .expect_problem(400, "/spec/serviceNmae");
    assert!(reply.message("/spec/serviceNmae").contains("unknown field"));
    // PUT rejects unknown fields as well.
    app.post(&url, httpbin_intent()).await.expect(201);
    app.put(&format!("{url}/httpbin"), body)
        .await
        .expect_problem(400, "/spec/serviceNmae");
    let mut nested = httpbin_intent();
    nested["spec"]["trafficPolicy"]["connectionPool"]["maxConections"] = json!(5);
    app.put(&format!("{url}/httpbin"), nested)
        .await
        .expect_problem(400, "/spec/trafficPolicy/connectionPool/maxConections");
    app.post(
        "/v2/projects",
        json!({"metadata": {"name": "x", "owner": "me"}}),
    )
    .await
    .expect_problem(400, "/metadata/owner");

    // Wrong JSON types and missing required fields are structural too.
    let mut wrong = httpbin_intent();
    wrong["spec"]["port"] = json!("8000");
    app.put(&format!("{url}/httpbin"), wrong)
        .await
        .expect_problem(400, "/spec/port");
    let mut missing = httpbin_intent();
    missing["spec"].as_object_mut().unwrap().remove("protocol");
    app.put(&format!("{url}/httpbin"), missing)
        .await
        .expect_problem(400, "/spec/protocol");
    app.raw(Method::POST, "/v2/projects", "text/plain", "{}")
        .await
        .expect(415);
    // Nothing was changed by the failed writes.
    assert_eq!(
        app.get(&format!("{url}/httpbin")).await.body["metadata"]["revision"],
        1
    );
});

both_backends!(values_out_of_range_are_422_naming_the_field, |app| {
    app.seed_storefront().await;
    let url = format!("{SET}/inbound-intents");
    let cases = [
        ("/spec/port", json!(0)),
        ("/spec/port", json!(65536)),
        ("/spec/protocol", json!("SMTP")),
        ("/spec/serviceName", json!("Http_Bin")),
        ("/spec/mtls", json!("SUPER_MUTUAL")),
    ];
    for (field, value) in cases {
        let mut body = httpbin_intent();
        let key = field.rsplit('/').next().unwrap();
        body["spec"][key] = value;
        app.post(&url, body).await.expect_problem(422, field);
    }
    let mut short = httpbin_intent();
    short["spec"]["trafficPolicy"]["connectionPool"]["connectTimeout"] = json!("500us");
    let reply = app
        .post(&url, short)
        .await
        .expect_problem(422, "/spec/trafficPolicy/connectionPool/connectTimeout");
    assert!(
        reply
            .message("/spec/trafficPolicy/connectionPool/connectTimeout")
            .contains("at least 1ms")
    );
    let mut bad_name = httpbin_intent();
    bad_name["metadata"]["name"] = json!("HttpBin");
    app.post(&url, bad_name)
        .await
        .expect_problem(422, "/metadata/name");
    app.post("/v2/clusters", json!({"metadata": {"name": "c"}, "spec": {"identity": "c.example", "crossCluster": {"vipRange": "10.0.0.1/8"}}}))
        .await
        .expect_problem(422, "/spec/crossCluster/vipRange");
    app.post("/v2/clusters", json!({"metadata": {"name": "c"}, "spec": {"identity": "c.example", "labels": {"Bad Key": "x"}}}))
        .await
        .expect_problem(422, "/spec/labels/Bad Key");
    assert_eq!(
        app.get(&url).await.body["items"],
        json!([]),
        "no partial write"
    );
});

both_backends!(cross_field_rules_list_every_violation, |app| {
    app.seed_storefront().await;
    let mut body = httpbin_intent();
    body["spec"]["sidecar"] = json!(false);
    body["spec"]["mtls"] = json!("ISTIO_MUTUAL");
    body["spec"]["subsets"] = json!([{"name": "v1", "labels": {"version": "v1"}}, {"name": "v1", "labels": {"version": "v2"}}]);
    let reply = app
        .post(&format!("{SET}/inbound-intents"), body)
        .await
        .expect(422);
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["/spec/mtls", "/spec/trafficPolicy", "/spec/subsets/1/name"]
    );
});

both_backends!(references_to_missing_resources_are_422, |app| {
    app.seed_storefront().await;
    let mut body = httpbin_intent();
    body["spec"]["app"] = json!("ghost");
    let reply = app
        .post(&format!("{SET}/inbound-intents"), body)
        .await
        .expect_problem(422, "/spec/app");
    assert!(
        reply
            .message("/spec/app")
            .contains("app \"ghost\" does not exist")
    );
    app.post(&format!("{SET}/inbound-intents"), httpbin_intent())
        .await
        .expect(201);
    let clients = format!("{SET}/inbound-intents/httpbin/clients");
    app.post(
        &clients,
        json!({"metadata": {"name": "c"}, "spec": {"app": "ghost"}}),
    )
    .await
    .expect_problem(422, "/spec/app");
    app.post(
        &format!("{CA}/apps"),
        json!({"metadata": {"name": "x"},
        "spec": {"namespace": "default", "placement": {"clusters": ["cluster01", "nowhere"]}}}),
    )
    .await
    .expect_problem(422, "/spec/placement/clusters/1");
});

both_backends!(methods_and_paths_do_not_fit_tcp_or_tls, |app| {
    app.seed_storefront().await;
    let mut tcp = httpbin_intent();
    tcp["metadata"]["name"] = json!("echo");
    tcp["spec"]["protocol"] = json!("TCP");
    tcp["spec"]["serviceName"] = json!("tcp-echo");
    tcp["spec"]["trafficPolicy"] = json!({"connectionPool": {"maxConnections": 10}});
    app.post(&format!("{SET}/inbound-intents"), tcp)
        .await
        .expect(201);
    let client = app.add_sleep_client("echo").await;
    let rules = format!("{client}/sleep/security-intents");
    let reply = app
        .post(&rules, json!({"metadata": {"name": "r"}, "spec": {"rules": [{"methods": ["GET"], "paths": ["/x"]}]}}))
        .await
        .expect_problem(422, "/spec/rules/0/methods");
    assert!(
        reply
            .message("/spec/rules/0/paths")
            .contains("protocol is TCP")
    );
    app.post(
        &rules,
        json!({"metadata": {"name": "r"}, "spec": {"rules": [{"ports": [9000]}]}}),
    )
    .await
    .expect(201);

    // Turning an HTTP service with path rules into TCP is refused, naming the security intent.
    app.add_httpbin_with_sleep_client().await;
    app.add_status_rule().await;
    let mut to_tcp = httpbin_intent();
    to_tcp["spec"]["protocol"] = json!("TCP");
    to_tcp["spec"]["trafficPolicy"] = json!({"connectionPool": {"maxConnections": 10}});
    let reply = app
        .put(&format!("{SET}/inbound-intents/httpbin"), to_tcp)
        .await
        .expect_problem(422, "/spec/protocol");
    assert!(
        reply
            .message("/spec/protocol")
            .contains("security intent \"status\"")
    );
});
