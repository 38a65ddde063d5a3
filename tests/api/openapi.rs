//! The OpenAPI document: served, committed, complete.

use serde_json::Value;

use crate::both_backends;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

both_backends!(served_document_matches_the_committed_file, |app| {
    let served = app.get("/api-docs/openapi.json").await.expect(200).body;
    let committed: Value = serde_json::from_str(COMMITTED).unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is out of date; regenerate it with:\n  cargo run -- openapi > openapi/openapi.json"
    );
    assert_eq!(served["openapi"], "3.1.0");
});

#[test]
fn committed_file_is_what_the_code_generates() {
    assert!(
        meshintent::api::openapi_json() == COMMITTED,
        "openapi/openapi.json is out of date; regenerate it with:\n  cargo run -- openapi > openapi/openapi.json"
    );
}

#[test]
fn every_operation_is_named_documented_and_has_error_schemas() {
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let mut operation_ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let declared: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            operation_ids.push(id.to_owned());
            assert!(op["summary"].is_string(), "{id} has no summary");
            assert_eq!(
                op["tags"].as_array().map(Vec::len),
                Some(1),
                "{id} has one tag"
            );
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(params, declared, "{id} documents its path parameters");
            // Every PUT has a body; every body names its schema (deploy and terminate take none).
            assert!(
                method != "put" || op.get("requestBody").is_some(),
                "{id} has a request body"
            );
            if let Some(body) = op.get("requestBody") {
                let schema = &body["content"]["application/json"]["schema"]["$ref"];
                assert!(schema.is_string(), "{id} names its request schema");
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/Problem",
                        "{id} {status} is a Problem"
                    );
                } else if status != "204" {
                    let named = response["content"].as_object().is_some_and(|c| {
                        !c.is_empty() && c.values().all(|m| m["schema"].is_object())
                    });
                    assert!(named, "{id} {status} names its schema");
                }
            }
        }
    }
    let mut unique = operation_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        operation_ids.len(),
        "operation ids are unique"
    );
    for id in [
        "cluster_create",
        "inbound_intent_replace",
        "security_intent_delete",
        "health_ready",
    ] {
        assert!(operation_ids.iter().any(|o| o == id), "{id} is documented");
    }
    // The write-only kubeconfig is marked so in the schema.
    let kubeconfig = &doc["components"]["schemas"]["ClusterSpec"]["properties"]["kubeconfig"];
    assert_eq!(kubeconfig["writeOnly"], true, "{kubeconfig}");
}

both_backends!(probes_and_swagger_ui, |app| {
    assert_eq!(app.get("/healthz").await.expect(200).body["status"], "ok");
    let ready = app.get("/readyz").await.expect(200);
    let expected = match app.backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    assert_eq!(ready.body["database"], expected);
    let ui = app
        .client
        .get(app.url("/swagger-ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/swagger-ui"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/swagger-ui/");
});
