//! Request examples for the OpenAPI document, one or more per operation with a body.
//!
//! Swagger UI prefills "Try it out" from them, and generators copy them into client docs. Built
//! from schema examples alone, a body would combine alternatives that exclude each other
//! (`kubeconfig` with `inCluster`, `clusters` with `clusterSelector`), so every body is written
//! out here as one consistent scenario: the walk-through's httpbin and sleep in project `shop`, a
//! TCP service, and an external API reached through the egress gateway. They build on each other
//! in the tree's order (`tests/api/examples.rs` sends each to a fresh server and requires 2xx).
//! Replacements are the first example of the kind with a new description.

use serde_json::{Value, json};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::{OpenApi, RefOr};

/// The named examples of the operation's request body, in the order they are meant to be sent.
pub fn request_examples(operation_id: &str) -> Vec<(&'static str, &'static str, Value)> {
    match operation_id {
        "cluster_create" => vec![
            (
                "cluster01",
                "A cluster reached through its ingress gateway",
                json!({
                    "metadata": {"name": "cluster01", "description": "Where sleep runs"},
                    "spec": {
                        "identity": "cluster01.mesh.example.com",
                        "labels": {"region": "eu-west"},
                        "istio": {"ingressGateway": {"address": "198.51.100.10"}},
                    }
                }),
            ),
            (
                "cluster02",
                "A second cluster with its own trust domain",
                json!({
                    "metadata": {"name": "cluster02", "description": "Where httpbin runs"},
                    "spec": {
                        "identity": "cluster02.mesh.example.com",
                        "trustDomain": "cluster02.local",
                        "labels": {"region": "eu-central"},
                        "istio": {"ingressGateway": {"address": "198.51.100.20"}},
                    }
                }),
            ),
        ],
        "project_create" => vec![(
            "shop",
            "A tenant owning two namespaces",
            json!({"metadata": {"name": "shop", "description": "The web shop team"},
                   "spec": {"namespaces": ["default", "payments"]}}),
        )],
        "composite_app_create" => vec![(
            "storefront",
            "A versioned group of apps",
            json!({"metadata": {"name": "storefront", "description": "httpbin and its clients"},
                   "spec": {"version": "v1"}}),
        )],
        "app_create" => vec![
            (
                "httpbin",
                "An app on a named cluster",
                json!({"metadata": {"name": "httpbin"},
                       "spec": {"namespace": "default", "placement": {"clusters": ["cluster02"]}}}),
            ),
            (
                "sleep",
                "An app on every cluster with a label, with its own service account",
                json!({"metadata": {"name": "sleep"},
                       "spec": {"namespace": "default", "serviceAccount": "sleep",
                                "placement": {"clusterSelector": {"matchLabels": {"region": "eu-west"}}}}}),
            ),
        ],
        "traffic_intent_set_create" => vec![(
            "default",
            "A set of intents deployed together",
            json!({"metadata": {"name": "default", "description": "Everything storefront needs"}}),
        )],
        "inbound_intent_create" => vec![
            (
                "httpbin",
                "An HTTP service with circuit breaking and two subsets",
                json!({
                    "metadata": {"name": "httpbin"},
                    "spec": {
                        "app": "httpbin", "serviceName": "httpbin", "port": 8000, "protocol": "HTTP",
                        "trafficPolicy": {
                            "connectionPool": {"maxConnections": 10, "connectTimeout": "10s"},
                            "outlierDetection": {"consecutive5xxErrors": 7, "interval": "5m",
                                                 "baseEjectionTime": "15m"}
                        },
                        "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                    {"name": "v2", "labels": {"version": "v2"}}]
                    }
                }),
            ),
            (
                "tcp-echo",
                "A plain TCP service",
                json!({"metadata": {"name": "tcp-echo"},
                       "spec": {"app": "httpbin", "serviceName": "tcp-echo", "port": 9000,
                                "protocol": "TCP"}}),
            ),
        ],
        "client_create" => vec![(
            "sleep",
            "An app allowed to call the service",
            json!({"metadata": {"name": "sleep"}, "spec": {"app": "sleep"}}),
        )],
        "security_intent_create" => vec![(
            "status-and-headers",
            "Only some methods and paths",
            json!({"metadata": {"name": "status-and-headers"},
                   "spec": {"action": "ALLOW",
                            "rules": [{"methods": ["GET"], "paths": ["/status/*", "/headers"]}]}}),
        )],
        "outbound_intent_create" => vec![(
            "partner-api",
            "An external HTTPS API reached through the egress gateway (TLS passthrough)",
            json!({
                "metadata": {"name": "partner-api"},
                "spec": {
                    "hosts": ["api.partner.example"],
                    "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                    "resolution": "DNS",
                    "tls": {"mode": "PASSTHROUGH"},
                    "clients": ["sleep"]
                }
            }),
        )],
        "route_intent_create" => vec![(
            "httpbin-canary",
            "Testers to v2, everyone else 90/10, with retries",
            json!({
                "metadata": {"name": "httpbin-canary"},
                "spec": {
                    "target": {"inboundIntent": "httpbin"},
                    "http": [
                        {"name": "testers", "match": [{"headers": {"x-user": {"exact": "tester"}}}],
                         "route": [{"subset": "v2"}]},
                        {"name": "canary",
                         "route": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}],
                         "timeout": "5s",
                         "retries": {"attempts": 2, "perTryTimeout": "2s", "retryOn": "5xx,reset"}}
                    ]
                }
            }),
        )],
        "global_role_binding_create" => vec![(
            "auditors",
            "A group that may read everything",
            json!({"metadata": {"name": "auditors"},
                   "spec": {"subject": {"kind": "Group", "name": "auditors"}, "role": "reader"}}),
        )],
        "project_role_binding_create" => vec![(
            "alice-edits",
            "A user who may change the project's intents",
            json!({"metadata": {"name": "alice-edits"},
                   "spec": {"subject": {"kind": "User", "name": "alice"}, "role": "editor"}}),
        )],
        "global_token_create" => vec![(
            "ci-reader",
            "A token for a CI job that reads everything",
            json!({"metadata": {"name": "ci-reader", "description": "nightly drift report"},
                   "spec": {"roles": ["reader"], "expiresAt": "2030-01-01T00:00:00Z"}}),
        )],
        "project_token_create" => vec![(
            "deployer",
            "A token that may deploy the project's sets",
            json!({"metadata": {"name": "deployer"}, "spec": {"role": "editor"}}),
        )],
        "credentials_adapt" => vec![(
            "service-binding",
            "Point a service binding's credentials at the mesh",
            json!({
                "credentials": {"host": "my-cf-service", "port": 1234,
                                "uri": "http://my-cf-service:1234"},
                "endpoint_mappings": [{"source": {"host": "my-cf-service", "port": 1234},
                                       "target": {"host": "my-k8s-service", "port": 6789}}]
            }),
        )],
        "traffic_intent_set_replace_document" => vec![(
            "default",
            "The whole set at once",
            json!({
                "metadata": {"name": "default", "description": "Everything storefront needs"},
                "inboundIntents": [{
                    "metadata": {"name": "httpbin"},
                    "spec": {"app": "httpbin", "serviceName": "httpbin", "port": 8000,
                             "protocol": "HTTP"},
                    "clients": [{
                        "metadata": {"name": "sleep"},
                        "spec": {"app": "sleep"},
                        "securityIntents": [{
                            "metadata": {"name": "status-and-headers"},
                            "spec": {"action": "ALLOW",
                                     "rules": [{"methods": ["GET"], "paths": ["/status/*", "/headers"]}]}
                        }]
                    }]
                }]
            }),
        )],
        // What applying the document would do: the same body as the document PUT.
        "traffic_intent_set_plan_document" => {
            request_examples("traffic_intent_set_replace_document")
        }
        other => match replaced_by(other) {
            Some(create) => request_examples(create)
                .into_iter()
                .take(1)
                .map(|(name, _, mut body)| {
                    body["metadata"]["description"] = json!("Changed with PUT");
                    (name, "The resource with a new description", body)
                })
                .collect(),
            None => Vec::new(),
        },
    }
}

/// `app_replace` -> `app_create`.
fn replaced_by(operation_id: &str) -> Option<&'static str> {
    let kind = operation_id.strip_suffix("_replace")?;
    let create = format!("{kind}_create");
    CREATES.iter().copied().find(|c| *c == create)
}

const CREATES: &[&str] = &[
    "cluster_create",
    "project_create",
    "composite_app_create",
    "app_create",
    "traffic_intent_set_create",
    "inbound_intent_create",
    "client_create",
    "security_intent_create",
    "outbound_intent_create",
    "route_intent_create",
    "global_role_binding_create",
    "project_role_binding_create",
];

/// Puts the examples into every JSON request body of the document.
pub fn document_request_examples(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.post, &mut item.put, &mut item.patch]
            .into_iter()
            .flatten()
        {
            let Some(id) = op.operation_id.clone() else {
                continue;
            };
            let Some(RefOr::T(body)) = op.request_body.as_mut() else {
                continue;
            };
            let Some(RefOr::T(content)) = body.content.get_mut("application/json") else {
                continue;
            };
            for (name, summary, value) in request_examples(&id) {
                content.examples.insert(
                    name.to_owned(),
                    RefOr::T(
                        ExampleBuilder::new()
                            .summary(summary)
                            .value(Some(value))
                            .build(),
                    ),
                );
            }
        }
    }
}

/// "Get a app" -> "Get an app": summaries built by `crud_endpoints!` from the noun.
pub fn fix_articles(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(summary) = op.summary.as_mut() {
                *summary = with_article(summary);
            }
        }
    }
}

fn with_article(summary: &str) -> String {
    let Some((verb, rest)) = summary.split_once(" a ") else {
        return summary.to_owned();
    };
    // "an" before a vowel sound: app, inbound, outbound, API token.
    if rest.starts_with(['a', 'e', 'i', 'o', 'u']) || rest.starts_with("API") {
        format!("{verb} an {rest}")
    } else {
        summary.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_follow_the_sound() {
        assert_eq!(with_article("Get a app"), "Get an app");
        assert_eq!(
            with_article("Create a inbound intent"),
            "Create an inbound intent"
        );
        assert_eq!(
            with_article("Delete a project API token"),
            "Delete a project API token"
        );
        assert_eq!(with_article("Delete a API token"), "Delete an API token");
        assert_eq!(with_article("Get a cluster"), "Get a cluster");
    }

    #[test]
    fn every_replacement_has_the_first_example_of_its_create() {
        for create in CREATES {
            let replace = create.replace("_create", "_replace");
            let examples = request_examples(&replace);
            assert_eq!(examples.len(), 1, "{replace}");
            assert_eq!(examples[0].2["metadata"]["description"], "Changed with PUT");
        }
    }
}
