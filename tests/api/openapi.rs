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
    let ui = app.get("/swagger-ui/").await.expect(200);
    assert!(ui.text.contains("swagger-ui"));
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

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_query_errors_are_documented() {
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50, "the document uses references");
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve (inline the parameter or register the schema)"
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let has_query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["in"] == "query");
            if has_query {
                assert!(
                    op["responses"].get("400").is_some(),
                    "{method} {path} takes query parameters but does not document 400"
                );
            }
        }
    }
}

/// The length limits in the schema are the parsers' limits (utoipa once emitted `maxLength: 1`
/// for every string newtype, which made generated clients reject every valid name).
#[test]
fn string_limits_in_the_schema_match_the_parsers() {
    use meshintent::domain::names::{DnsName, Name};
    use meshintent::domain::resource::Description;
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let schemas = &doc["components"]["schemas"];
    let limits = |name: &str| {
        (
            schemas[name]["minLength"].as_u64().unwrap(),
            schemas[name]["maxLength"].as_u64().unwrap(),
        )
    };

    let (min, max) = limits("Name");
    assert_eq!((min, max), (1, 63));
    assert!("a".repeat(max as usize).parse::<Name>().is_ok());
    assert!("a".repeat(max as usize + 1).parse::<Name>().is_err());
    assert!("".parse::<Name>().is_err());

    let (min, max) = limits("DnsName");
    assert_eq!((min, max), (1, 253));
    let long = |n: usize| {
        let mut s = "a".repeat(n);
        for i in (63..n).step_by(64) {
            s.replace_range(i..=i, ".");
        }
        s
    };
    assert!(long(max as usize).parse::<DnsName>().is_ok());
    assert!(long(max as usize + 1).parse::<DnsName>().is_err());

    let (min, max) = limits("Description");
    assert_eq!((min, max), (0, 1024));
    assert!("".parse::<Description>().is_ok());
    assert!("x".repeat(max as usize).parse::<Description>().is_ok());
    assert!("x".repeat(max as usize + 1).parse::<Description>().is_err());
}

/// utoipa names a component after the Rust type, so two types with one name silently share a
/// schema (the credential adapter's `Endpoint` once replaced the outbound `Endpoint`). Every type
/// deriving `ToSchema` must have a component name of its own.
#[test]
fn schema_component_names_are_unique() {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut count = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if !(line.starts_with("#[derive(") && line.contains("ToSchema")) {
                continue;
            }
            let mut alias = None;
            let mut name = None;
            for next in &lines[i + 1..] {
                if let Some(rest) = next.strip_prefix("#[schema(as = ") {
                    alias = rest.split([')', ',']).next();
                } else if let Some(rest) = next
                    .strip_prefix("pub struct ")
                    .or_else(|| next.strip_prefix("pub enum "))
                {
                    name = rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                        .next();
                    break;
                } else if !next.starts_with("#[") && !next.starts_with("///") {
                    break;
                }
            }
            let Some(name) = alias.or(name) else { continue };
            if name.starts_with('$') {
                continue; // a macro's parameter; its invocations carry distinct names
            }
            count += 1;
            let place = format!("{}:{}", file.display(), i + 1);
            if let Some(first) = seen.insert(name.to_owned(), place.clone()) {
                panic!(
                    "schema name {name} is used by {first} and {place}; add #[schema(as = ...)]"
                );
            }
        }
    }
    assert!(count > 50, "found {count} schema types");
}

/// Generators and Swagger UI show an operation's description and a property's description
/// beside its `oneOf`, not one inside a branch (they drop those).
#[test]
fn every_operation_has_a_description_and_no_branch_hides_one() {
    let api = serde_json::to_value(meshintent::api::openapi()).unwrap();
    let mut undescribed = Vec::new();
    for (path, item) in api["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str())
                && op["description"].as_str().is_none_or(str::is_empty)
            {
                undescribed.push(format!("{method} {path}"));
            }
        }
    }
    assert!(undescribed.is_empty(), "no description: {undescribed:#?}");
    fn branch_descriptions(value: &Value, at: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(branches)) = map.get("oneOf") {
                    for (i, b) in branches.iter().enumerate() {
                        if b.get("description").is_some() {
                            out.push(format!("{at}/oneOf/{i}"));
                        }
                    }
                }
                for (k, v) in map {
                    branch_descriptions(v, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    branch_descriptions(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut hidden = Vec::new();
    branch_descriptions(&api["components"], "#/components", &mut hidden);
    assert!(
        hidden.is_empty(),
        "descriptions inside oneOf branches: {hidden:#?}"
    );
}
