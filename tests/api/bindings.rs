//! The service-broker flow: a client's binding, then credential adaptation with its mappings.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{CA, SET};

const BINDING: &str = "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents/httpbin/clients/sleep/binding";

both_backends!(the_original_design_example_adapts, |app| {
    let reply = app
        .post("/v2/adapt-credentials", json!({
            "credentials": {"host": "my-cf-service", "port": 1234, "uri": "http://my-cf-service:1234"},
            "endpoint_mappings": [{"source": {"host": "my-cf-service", "port": 1234},
                                   "target": {"host": "my-k8s-service", "port": 6789}}]
        }))
        .await
        .expect(200);
    assert_eq!(
        reply.body,
        json!({"credentials": {"host": "my-k8s-service", "port": 6789, "uri": "http://my-k8s-service:6789"}})
    );
});

both_backends!(adapt_credentials_rejects_bad_requests, |app| {
    let credentials = json!({"host": "a", "port": 1});
    app.post(
        "/v2/adapt-credentials",
        json!({"credentials": credentials, "endpoint_mappings": []}),
    )
    .await
    .expect_problem(422, "/endpoint_mappings");
    app.post("/v2/adapt-credentials", json!({"credentials": credentials}))
        .await
        .expect_problem(400, "/endpoint_mappings");
    app.post(
        "/v2/adapt-credentials",
        json!({"credentials": credentials, "endpoint_mappings": [], "extra": 1}),
    )
    .await
    .expect_problem(400, "/extra");
    app.post(
        "/v2/adapt-credentials",
        json!({"credentials": "postgres://a:1", "endpoint_mappings": [
        {"source": {"host": "a", "port": 1}, "target": {"host": "b", "port": 2}}]}),
    )
    .await
    .expect_problem(422, "/credentials");
    app.post(
        "/v2/adapt-credentials",
        json!({"credentials": credentials, "endpoint_mappings": [
        {"source": {"host": "a", "port": 1}, "target": {"host": "b", "port": 2}},
        {"source": {"host": "a", "port": 1}, "target": {"host": "c", "port": 2}}]}),
    )
    .await
    .expect_problem(422, "/endpoint_mappings/1/source");
});

both_backends!(
    a_remote_clients_binding_rewrites_its_credentials_to_the_vip,
    |app| {
        app.seed_storefront().await;
        app.add_httpbin_with_sleep_client().await;
        let binding = app.get(BINDING).await.expect(200).body;
        assert_eq!(binding["cluster"], "cluster02");
        assert_eq!(binding["reach"], "direct");
        let manifests = app
            .get(&format!("{SET}/manifests?cluster=cluster02"))
            .await
            .expect(200)
            .body;
        let vip = manifests["clusters"][0]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "ServiceEntry")
            .unwrap()["spec"]["addresses"][0]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            binding["endpoints"],
            json!([
                {"host": "httpbin.default.svc.cluster.local", "port": 8000},
                {"host": vip, "port": 8000}
            ])
        );
        let target = json!({"host": vip, "port": 8000});
        let mappings = binding["endpointMappings"].as_array().unwrap();
        assert!(mappings.iter().all(|m| m["target"] == target));
        let sources: Vec<&str> = mappings
            .iter()
            .map(|m| m["source"]["host"].as_str().unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                "httpbin",
                "httpbin.default",
                "httpbin.default.svc",
                "httpbin.default.svc.cluster.local"
            ]
        );

        // Credentials the provider issued, in every common shape.
        let credentials = json!({
            "uri": "postgres://app:s3cr%40t@httpbin.default:8000/orders?sslmode=require",
            "jdbcUrl": "jdbc:postgresql://httpbin.default.svc.cluster.local:8000/orders",
            "host": "httpbin", "port": 8000,
            "messaging": {"url": "amqp://guest:guest@httpbin:8000/vhost"},
            "replicas": [{"hostname": "httpbin.default.svc", "port": "8000"}],
            "unrelated": {"host": "other.example.com", "port": 8000, "url": "https://other.example.com/x"}
        });
        let adapted = app
        .post("/v2/adapt-credentials", json!({"credentials": credentials, "endpoint_mappings": binding["endpointMappings"]}))
        .await
        .expect(200)
        .body["credentials"]
        .clone();
        assert_eq!(
            adapted,
            json!({
                "uri": format!("postgres://app:s3cr%40t@{vip}:8000/orders?sslmode=require"),
                "jdbcUrl": format!("jdbc:postgresql://{vip}:8000/orders"),
                "host": vip, "port": 8000,
                "messaging": {"url": format!("amqp://guest:guest@{vip}:8000/vhost")},
                "replicas": [{"hostname": vip, "port": "8000"}],
                "unrelated": {"host": "other.example.com", "port": 8000, "url": "https://other.example.com/x"}
            })
        );
    }
);

both_backends!(local_bindings_and_cluster_choice, |app| {
    app.seed_storefront().await;
    // sleep also runs on cluster01, next to httpbin.
    app.put(
        &format!("{CA}/apps/sleep"),
        json!({"metadata": {"name": "sleep"},
        "spec": {"namespace": "default", "placement": {"clusters": ["cluster01", "cluster02"]}}}),
    )
    .await
    .expect(200);
    app.add_httpbin_with_sleep_client().await;
    let reply = app.get(BINDING).await.expect_problem(422, "cluster");
    assert!(reply.message("cluster").contains("cluster01, cluster02"));
    let local = app
        .get(&format!("{BINDING}?cluster=cluster01"))
        .await
        .expect(200)
        .body;
    assert_eq!(local["reach"], "local");
    assert_eq!(
        local["endpoints"],
        json!([{"host": "httpbin.default.svc.cluster.local", "port": 8000}])
    );
    assert_eq!(
        local["endpointMappings"][0],
        json!({"source": {"host": "httpbin", "port": 8000},
        "target": {"host": "httpbin.default.svc.cluster.local", "port": 8000}})
    );
    assert_eq!(
        app.get(&format!("{BINDING}?cluster=cluster02"))
            .await
            .expect(200)
            .body["reach"],
        "direct"
    );
    app.get(&format!("{BINDING}?cluster=cluster09"))
        .await
        .expect(404);
    app.get(&BINDING.replace("clients/sleep", "clients/nobody"))
        .await
        .expect(404);
});
