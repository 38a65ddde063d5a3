//! Every request example of the served OpenAPI document is accepted by a fresh server: what
//! Swagger UI's "Try it out" prefills, and what generated clients document, works as it is.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::TestApp;

struct Operation {
    method: Method,
    template: String,
    id: String,
    examples: Vec<(String, Value)>,
}

/// The operations with a JSON request body, with their named examples in document order.
fn operations_with_bodies(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op.pointer("/requestBody/content/application~1json") else {
                continue;
            };
            let examples = content["examples"]
                .as_object()
                .map(|e| {
                    e.iter()
                        .map(|(name, ex)| (name.clone(), ex["value"].clone()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                template: template.clone(),
                id: op["operationId"].as_str().unwrap().to_owned(),
                examples,
            });
        }
    }
    out
}

/// The template with each `{param}` replaced by the name created in the collection it follows
/// (keyed by the collection's template; `{version}` after `{compositeApp}`: that composite app's
/// version).
fn fill(template: &str, created: &HashMap<String, Value>) -> String {
    let segments: Vec<&str> = template.split('/').collect();
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        if !seg.starts_with('{') {
            out.push((*seg).to_owned());
            continue;
        }
        let (collection, field) = if segments[i - 1].starts_with('{') {
            (segments[..i - 1].join("/"), "/spec/version")
        } else {
            (segments[..i].join("/"), "/metadata/name")
        };
        let body = created
            .get(&collection)
            .unwrap_or_else(|| panic!("{template}: nothing was created in {collection} first"));
        out.push(body.pointer(field).unwrap().as_str().unwrap().to_owned());
    }
    out.join("/")
}

async fn send(app: &TestApp, method: Method, path: &str, body: &Value, what: &str) {
    let reply = app.request(method.clone(), path, Some(body), &[]).await;
    assert!(
        reply.status.is_success(),
        "{what}: {method} {path} answered {}: {}",
        reply.status,
        reply.text
    );
}

both_backends!(every_request_example_is_accepted, |app| {
    let doc: Value = app
        .client
        .get(format!("{}/api-docs/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = operations_with_bodies(&doc);
    let missing: Vec<&str> = operations
        .iter()
        .filter(|op| op.examples.is_empty())
        .map(|op| op.id.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "request bodies without an example: {missing:?}"
    );

    // Parents before children: creates by depth, then replacements, then the rest.
    let rank = |op: &Operation| {
        let is_create =
            op.method == Method::POST && !op.template.ends_with('}') && op.id.ends_with("_create");
        let is_replace = op.method == Method::PUT && op.template.ends_with('}');
        let stage = if is_create {
            0
        } else if is_replace {
            1
        } else {
            2
        };
        (stage, op.template.split('/').count(), op.template.clone())
    };
    operations.sort_by_key(rank);
    let mut created: HashMap<String, Value> = HashMap::new();
    let mut sent = 0;
    for op in &operations {
        let path = fill(&op.template, &created);
        for (name, body) in &op.examples {
            send(
                &app,
                op.method.clone(),
                &path,
                body,
                &format!("{} example {name}", op.id),
            )
            .await;
            sent += 1;
        }
        if rank(op).0 == 0 {
            created
                .entry(op.template.clone())
                .or_insert_with(|| op.examples[0].1.clone());
        }
    }
    assert!(sent >= 30, "only {sent} examples were sent");
    // The examples are varied: not every name is httpbin, and the walk-through's apps are there.
    let names: Vec<String> = operations
        .iter()
        .flat_map(|op| op.examples.iter().map(|(n, _)| n.clone()))
        .collect();
    for expected in ["httpbin", "sleep", "tcp-echo", "partner-api"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
});
