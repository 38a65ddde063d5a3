//! Golden tests of the generator: each scenario is an intent document (`<name>.input.yaml`) and
//! the manifests it must render to (`<name>.expected.yaml`). Every expected object is parsed back
//! into the typed Istio structs and validated against the Istio 1.30 CRD schemas.
//!
//! After an intended change of the output, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden`
//! and review the diff.

#[path = "support/crd_schema.rs"]
mod crd_schema;
#[path = "support/golden_files.rs"]
mod golden_files;

use golden_files::dir;
use meshintent::generate::output;
use meshintent::istio::IstioObject;
use meshintent::offline::render_document;
use serde_json::Value;

fn render_yaml(input: &str) -> String {
    let manifests = render_document(input).unwrap_or_else(|e| panic!("render failed: {e:?}"));
    output::yaml(&output::list(&manifests, None))
}

/// The objects of a rendered YAML file (comment lines are YAML comments).
fn objects_of(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .flat_map(|doc| doc.split("---\n"))
        .map(|doc| {
            doc.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            serde_saphyr::from_str::<Value>(&doc)
                .unwrap_or_else(|e| panic!("expected output is not YAML: {e}\n{doc}"))
        })
        .collect()
}

fn check(name: &str) {
    let input = golden_files::read(name, "input.yaml");
    let expected_path = dir().join(format!("{name}.expected.yaml"));
    let rendered = render_yaml(&input);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; create it with UPDATE_GOLDEN=1",
            expected_path.display()
        )
    });
    if rendered != expected {
        let first = rendered
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(rendered.lines().count().min(expected.lines().count()));
        panic!(
            "{name}: the output differs from {} at line {}:\n  rendered: {:?}\n  expected: {:?}\nIf the change is intended, run UPDATE_GOLDEN=1 cargo test --test golden and review the diff.",
            expected_path.display(),
            first + 1,
            rendered.lines().nth(first),
            expected.lines().nth(first),
        );
    }
    let objects = objects_of(&expected);
    assert!(!objects.is_empty(), "{name} renders no objects");
    for object in &objects {
        let typed: IstioObject = serde_json::from_value(object.clone()).unwrap_or_else(|e| {
            panic!("{name}: expected object does not parse into the typed structs: {e}\n{object:#}")
        });
        assert_eq!(
            &serde_json::to_value(&typed).unwrap(),
            object,
            "{name}: typed round trip changes the object"
        );
    }
    if let Err(errors) = crd_schema::validate_all(&objects) {
        panic!(
            "{name}: objects violate the Istio CRD schemas:\n{}",
            errors.join("\n")
        );
    }
}

macro_rules! golden {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($file);
            }
        )*

        const SCENARIOS: &[&str] = &[$($file),*];
    };
}

golden! {
    http_service_with_circuit_breaking_and_a_client_on_the_same_cluster => "http-same-cluster",
    http_service_with_a_client_on_another_cluster_direct => "http-direct",
    consumer_and_provider_through_egress_and_ingress_gateways => "egress-gateway",
    tcp_service_with_a_ports_only_rule => "tcp-ports-only",
    service_with_no_clients_is_deny_all => "no-clients",
    external_access_with_mutual_tls => "external-access-mutual",
    headless_service_across_clusters => "headless-cross-cluster",
    deny_security_intent => "deny-security-intent",
    tls_passthrough_to_two_labelled_endpoints_by_sni => "tls-passthrough-sni",
    internal_name_for_two_external_versions_with_origination_and_a_shift => "external-traffic-shift",
    edge_route_with_header_regex_and_canary_rules => "edge-canary",
    egress_without_a_gateway => "egress-without-gateway",
    mutual_tls_origination => "mutual-origination",
    egress_gateway_admits_only_the_clients_of_an_http_intent => "egress-http-two-clients",
    egress_gateway_admits_tls_clients_by_server_name => "egress-tls-sni",
    provider_gateways_admit_only_consumers_with_clients => "egress-gateway-cross-cluster-clients",
}

#[test]
fn every_scenario_file_has_a_test() {
    let files = golden_files::scenarios();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "add new scenario files to the golden! list");
}

/// Reverses every list of resources in a document (not lists inside specs, whose order matters).
fn reverse_resources(value: &mut Value) {
    const RESOURCE_LISTS: &[&str] = &[
        "clusters",
        "projects",
        "compositeApps",
        "apps",
        "trafficIntentSets",
        "inboundIntents",
        "clients",
        "securityIntents",
        "outboundIntents",
        "routeIntents",
    ];
    if let Value::Object(map) = value {
        for (key, child) in map.iter_mut() {
            if RESOURCE_LISTS.contains(&key.as_str())
                && let Value::Array(items) = child
            {
                items.reverse();
                items.iter_mut().for_each(reverse_resources);
            }
        }
    }
}

#[test]
fn rendering_is_deterministic_and_independent_of_input_order() {
    for name in SCENARIOS {
        let input = golden_files::read(name, "input.yaml");
        let first = render_yaml(&input);
        assert_eq!(first, render_yaml(&input), "{name}: two renders differ");
        let mut shuffled: Value = serde_saphyr::from_str(&input).unwrap();
        reverse_resources(&mut shuffled);
        let shuffled = serde_saphyr::to_string(&shuffled).unwrap();
        assert_ne!(shuffled, input);
        assert_eq!(
            first,
            render_yaml(&shuffled),
            "{name}: the order of resources in the input changes the output"
        );
    }
}

/// Every scenario's objects per cluster, as JSON.
fn rendered_clusters(name: &str) -> Vec<(String, Vec<Value>)> {
    let manifests = render_document(&golden_files::read(name, "input.yaml"))
        .unwrap_or_else(|e| panic!("{name}: render failed: {e:?}"));
    manifests
        .iter()
        .map(|(cluster, objects)| {
            (
                cluster.to_string(),
                objects
                    .iter()
                    .map(|o| serde_json::to_value(o).unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// SPEC section 7: once an ALLOW policy selects the egress gateway, whatever no ALLOW policy
/// matches is denied. So every Gateway server meshintent puts on an egress gateway (the servers
/// that end the sidecars' ISTIO_MUTUAL) must be admitted, host by host, by an ALLOW policy
/// selecting that gateway: by `to.operation.hosts` where the gateway sees HTTP, by
/// `connection.sni` where it sees TLS; and always for named principals only.
#[test]
fn every_egress_gateway_server_is_admitted_by_an_allow_policy_for_named_principals() {
    let mut servers_seen = 0;
    for name in SCENARIOS {
        for (cluster, objects) in rendered_clusters(name) {
            let of_kind = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == kind);
            for gateway in of_kind("Gateway") {
                let namespace = &gateway["metadata"]["namespace"];
                let selector = &gateway["spec"]["selector"];
                let policies: Vec<&Value> = of_kind("AuthorizationPolicy")
                    .filter(|p| {
                        &p["metadata"]["namespace"] == namespace
                            && p["spec"]["action"] == "ALLOW"
                            && &p["spec"]["selector"]["matchLabels"] == selector
                    })
                    .collect();
                for server in gateway["spec"]["servers"].as_array().unwrap() {
                    if server["tls"]["mode"] != "ISTIO_MUTUAL" {
                        continue;
                    }
                    servers_seen += 1;
                    let http = server["port"]["protocol"] == "HTTPS";
                    for host in strings(&server["hosts"]) {
                        let admitted = policies.iter().any(|p| {
                            p["spec"]["rules"].as_array().unwrap().iter().any(|rule| {
                                let named = rule["from"].as_array().is_some_and(|from| {
                                    !from.is_empty()
                                        && from.iter().all(|f| {
                                            !strings(&f["source"]["principals"]).is_empty()
                                        })
                                });
                                let covers = if http {
                                    rule["to"].as_array().is_some_and(|to| {
                                        to.iter().any(|t| {
                                            strings(&t["operation"]["hosts"]).contains(&host)
                                        })
                                    })
                                } else {
                                    rule["when"].as_array().is_some_and(|when| {
                                        when.iter().any(|c| {
                                            c["key"] == "connection.sni"
                                                && strings(&c["values"]).contains(&host)
                                        })
                                    })
                                };
                                named && covers
                            })
                        });
                        assert!(
                            admitted,
                            "{name}: on {cluster}, {host} of Gateway {namespace}/{} is admitted by no ALLOW policy",
                            gateway["metadata"]["name"]
                        );
                    }
                }
            }
        }
    }
    assert!(
        servers_seen > 0,
        "no scenario goes through an egress gateway"
    );
}

/// SPEC section 2: what istiod's validating webhook rejects although the CRD schemas accept it
/// (Istio 1.30 `pkg/config/validation`) is never emitted. The CRD schemas themselves are checked
/// on every expected file by `check`.
#[test]
fn no_scenario_trips_istiods_validating_webhook() {
    let is_ip = |s: &str| s.parse::<std::net::IpAddr>().is_ok();
    let is_cidr = |s: &str| {
        s.split_once('/')
            .is_some_and(|(ip, bits)| is_ip(ip) && bits.parse::<u8>().is_ok_and(|b| b <= 128))
    };
    let is_fqdn = |s: &str| {
        !s.starts_with("*.")
            && s.contains('.')
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    };
    for name in SCENARIOS {
        for (cluster, objects) in rendered_clusters(name) {
            // Subset names of the rules Istio merges (one host, one namespace).
            let mut subsets: std::collections::BTreeSet<(String, String, String)> =
                Default::default();
            for o in &objects {
                let id = format!(
                    "{name}: {cluster} {} {}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["namespace"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                );
                let spec = &o["spec"];
                match o["kind"].as_str().unwrap() {
                    "AuthorizationPolicy" => {
                        let rules = spec["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                        match spec["action"].as_str() {
                            Some("DENY") | Some("CUSTOM") | Some("AUDIT") => {
                                assert!(!rules.is_empty(), "{id}: a policy without rules")
                            }
                            _ => assert!(
                                !rules.is_empty()
                                    || o["metadata"]["name"]
                                        .as_str()
                                        .unwrap()
                                        .ends_with("-deny-all"),
                                "{id}: an ALLOW policy without rules denies everything"
                            ),
                        }
                        for rule in rules {
                            for (field, entry) in [("from", "source"), ("to", "operation")] {
                                if let Some(list) = rule.get(field) {
                                    let list = list.as_array().unwrap();
                                    assert!(!list.is_empty(), "{id}: empty {field}");
                                    for e in list {
                                        assert!(
                                            e[entry].as_object().is_some_and(|m| !m.is_empty()),
                                            "{id}: an empty {field} entry"
                                        );
                                    }
                                }
                            }
                            for c in rule["when"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                                assert!(!strings(&c["values"]).is_empty(), "{id}: empty when");
                            }
                        }
                    }
                    "Gateway" => {
                        assert!(
                            !o["metadata"]["name"].as_str().unwrap().contains('.'),
                            "{id}: dots in a Gateway name"
                        );
                        let servers = spec["servers"].as_array().unwrap();
                        assert!(!servers.is_empty(), "{id}: no servers");
                        let mut names = std::collections::BTreeSet::new();
                        for s in servers {
                            assert!(
                                names.insert(s["port"]["name"].as_str().unwrap()),
                                "{id}: duplicate server port name"
                            );
                        }
                    }
                    "VirtualService" => {
                        for kind in ["http", "tcp", "tls"] {
                            for route in spec[kind].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                                let weights: Vec<i64> = route["route"]
                                    .as_array()
                                    .unwrap()
                                    .iter()
                                    .filter_map(|d| d["weight"].as_i64())
                                    .collect();
                                assert!(
                                    weights.is_empty() || weights.iter().sum::<i64>() > 0,
                                    "{id}: weights total 0"
                                );
                            }
                        }
                        let export = strings(&spec["exportTo"]);
                        assert!(!export.is_empty(), "{id}: exported to every namespace");
                    }
                    "DestinationRule" => {
                        if let Some(pool) = spec.pointer("/trafficPolicy/connectionPool") {
                            assert!(
                                pool.as_object().is_some_and(|m| !m.is_empty()),
                                "{id}: empty connectionPool"
                            );
                        }
                        let namespace = o["metadata"]["namespace"].as_str().unwrap();
                        let host = spec["host"].as_str().unwrap();
                        for s in spec["subsets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                            let subset = s["name"].as_str().unwrap();
                            assert!(
                                subsets.insert((
                                    namespace.to_owned(),
                                    host.to_owned(),
                                    subset.to_owned()
                                )),
                                "{id}: subset {subset} of {host} defined twice in {namespace}"
                            );
                        }
                    }
                    "ServiceEntry" => {
                        let endpoints = spec["endpoints"]
                            .as_array()
                            .map(Vec::as_slice)
                            .unwrap_or(&[]);
                        if spec["resolution"] == "DNS" && endpoints.is_empty() {
                            for host in strings(&spec["hosts"]) {
                                assert!(is_fqdn(host), "{id}: DNS without endpoints for {host}");
                            }
                        }
                        let ports: Vec<&str> = spec["ports"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter_map(|p| p["name"].as_str())
                            .collect();
                        for e in endpoints {
                            let address = e["address"].as_str().unwrap();
                            assert!(
                                is_ip(address) || is_fqdn(address),
                                "{id}: endpoint address {address}"
                            );
                            for key in e["ports"].as_object().into_iter().flatten().map(|p| p.0) {
                                assert!(ports.contains(&key.as_str()), "{id}: endpoint port {key}");
                            }
                        }
                        for address in strings(&spec["addresses"]) {
                            assert!(
                                is_ip(address) || is_cidr(address),
                                "{id}: address {address}"
                            );
                        }
                        let tcp = spec["ports"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["protocol"] == "TCP");
                        assert!(
                            !tcp || !strings(&spec["addresses"]).is_empty(),
                            "{id}: a TCP ServiceEntry without a VIP"
                        );
                        assert!(
                            !strings(&spec["exportTo"]).is_empty(),
                            "{id}: exported to every namespace"
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

// ---- The graph and the access query on golden scenarios (SPEC section 9) ------------------

/// The first set of a scenario, with its rendered manifests (as `render_document` renders it).
fn rendered_set(
    name: &str,
) -> (
    meshintent::domain::model::IntentSetModel,
    meshintent::generate::Manifests,
) {
    use meshintent::domain::document::IntentDocument;
    use meshintent::generate::{SetPlan, render_plan, vips};
    let mut document = IntentDocument::parse(&golden_files::read(name, "input.yaml")).unwrap();
    let mut sets = document.resolve().unwrap();
    let set = sets.remove(0);
    let plan = SetPlan::new(&set.model);
    let table = vips::allocate_offline(&set.model, &plan.vip_needs().unwrap()).unwrap();
    let manifests = render_plan(&plan, &table).unwrap();
    (set.model, manifests)
}

/// Compares `actual` with `tests/golden/<name>.<suffix>` (written with UPDATE_GOLDEN=1).
fn compare_golden(name: &str, suffix: &str, actual: &str) {
    let path = dir().join(format!("{name}.{suffix}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; create it with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{name}: the {suffix} differs from {}; if intended, run UPDATE_GOLDEN=1 cargo test --test golden and review the diff",
        path.display()
    );
}

const GRAPH_SCENARIOS: &[&str] = &[
    "deny-security-intent",
    "egress-gateway-cross-cluster-clients",
];

#[test]
fn graphs_of_two_scenarios_match_their_golden_json_and_svg() {
    for name in GRAPH_SCENARIOS {
        let (model, _) = rendered_set(name);
        let graph = meshintent::graph::build(&model);
        let json = graph.to_json();
        let svg = meshintent::graph::svg::render(&graph);
        // Deterministic: a second build and layout give the same bytes.
        assert_eq!(
            json,
            meshintent::graph::build(&model).to_json(),
            "{name}: JSON"
        );
        assert_eq!(svg, meshintent::graph::svg::render(&graph), "{name}: SVG");
        assert!(
            svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        compare_golden(name, "graph.json", &json);
        compare_golden(name, "graph.svg", &svg);
    }
}

#[test]
fn graph_edges_carry_rules_deny_edges_and_gateways() {
    let (model, _) = rendered_set("deny-security-intent");
    let graph = meshintent::graph::build(&model);
    let edge = |id: &str| {
        graph.edges.iter().find(|e| e.id == id).unwrap_or_else(|| {
            panic!(
                "no edge {id}: {:?}",
                graph.edges.iter().map(|e| &e.id).collect::<Vec<_>>()
            )
        })
    };
    let read_only = edge("allow:app:frontend@cluster01->app:catalog@cluster01:catalog:frontend");
    assert_eq!(read_only.label, "GET,HEAD");
    let deny = edge("deny:app:admin-ui@cluster01->app:catalog@cluster01:catalog:admin-ui");
    assert_eq!(deny.label, "DELETE /admin/*");
    assert_eq!(
        edge("allow:app:admin-ui@cluster01->app:catalog@cluster01:catalog:admin-ui").label,
        "any request"
    );
    assert!(graph.nodes.iter().any(|n| n.id == "namespace:monitoring"));
    let svg = meshintent::graph::svg::render(&graph);
    assert!(
        svg.contains("class=\"edge deny\""),
        "DENY edges are drawn as such"
    );

    let (model, _) = rendered_set("egress-gateway-cross-cluster-clients");
    let graph = meshintent::graph::build(&model);
    let through = graph
        .edges
        .iter()
        .find(|e| e.from == "app:storefront@consumer-a" && e.to == "app:orders@provider")
        .unwrap();
    assert_eq!(through.via, ["egress:consumer-a", "ingress:provider"]);
    let direct = graph
        .edges
        .iter()
        .find(|e| e.from == "app:reporter@consumer-c")
        .unwrap();
    assert_eq!(direct.via, ["ingress:provider"]);
}

fn ask(
    name: &str,
    from: &str,
    to: &str,
    method: Option<&str>,
    path: Option<&str>,
) -> meshintent::authz::access::AccessAnswer {
    let (model, manifests) = rendered_set(name);
    meshintent::authz::access::query(
        &model,
        &manifests,
        &meshintent::authz::access::AccessQuery {
            from: from.into(),
            to: to.into(),
            method: method.map(str::to_owned),
            path: path.map(str::to_owned),
            port: None,
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e:?}"))
}

#[test]
fn the_access_query_answers_from_the_rendered_policies() {
    use meshintent::authz::AuthzReason;
    use meshintent::authz::access::AccessVerdict;
    let s = "deny-security-intent";
    let answer = ask(
        s,
        "admin-ui",
        "catalog",
        Some("DELETE"),
        Some("/admin/users"),
    );
    assert_eq!(answer.decision, AccessVerdict::Deny);
    assert_eq!(answer.decided_by.decision.reason, AuthzReason::DenyMatched);
    let rule = answer.decided_by.decision.rule.as_ref().unwrap();
    assert_eq!(
        (rule.policy.as_str(), rule.rule_index),
        ("catalog-deny", Some(0))
    );
    assert!(
        rule.intent
            .as_deref()
            .unwrap()
            .ends_with("/traffic-intent-sets/default/inbound-intents/catalog")
    );
    assert_eq!(answer.from.principal, "prod.example.com/ns/ops/sa/admin-ui");
    // The same client elsewhere is allowed by its rule of the ALLOW policy.
    let answer = ask(s, "admin-ui", "catalog", Some("DELETE"), Some("/orders"));
    assert_eq!(answer.decision, AccessVerdict::Allow);
    assert_eq!(
        answer.decided_by.decision.rule.as_ref().unwrap().policy,
        "catalog-allow"
    );
    // The frontend client's service account overrides the app's; it may only read.
    let answer = ask(s, "frontend", "catalog", Some("GET"), Some("/"));
    assert_eq!(answer.decision, AccessVerdict::Allow);
    assert_eq!(
        answer.from.principal,
        "prod.example.com/ns/web/sa/web-frontend"
    );
    let answer = ask(s, "frontend", "catalog", Some("POST"), Some("/"));
    assert_eq!(answer.decision, AccessVerdict::Deny);
    assert_eq!(
        answer.decided_by.decision.reason,
        AuthzReason::NoAllowMatched
    );

    let s = "egress-gateway-cross-cluster-clients";
    // Through the egress gateway: two hops, the service sees the provider's ingress gateway.
    let answer = ask(s, "storefront", "orders", None, None);
    assert_eq!(answer.decision, AccessVerdict::Allow, "{answer:#?}");
    assert_eq!(answer.hops.len(), 2);
    assert_eq!(answer.hops[0].cluster, "consumer-a");
    assert!(answer.hops[0].decision.allowed);
    assert_eq!(
        answer.hops[1].principal.as_deref(),
        Some("cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account")
    );
    // lurker runs on consumer-a but is no client: its egress gateway refuses it.
    let answer = ask(s, "lurker", "orders", None, None);
    assert_eq!(answer.decision, AccessVerdict::Deny);
    assert_eq!(answer.decided_by.cluster, "consumer-a");
    assert_eq!(
        answer.decided_by.decision.reason,
        AuthzReason::NoAllowMatched
    );
    // Mode direct: end-to-end mTLS, the client's own principal decides at the service.
    let answer = ask(s, "reporter", "orders", None, None);
    assert_eq!(answer.decision, AccessVerdict::Allow);
    assert_eq!(answer.hops.len(), 1);
    assert_eq!(
        answer.hops[0].principal.as_deref(),
        Some("cluster.local/ns/ops/sa/reporter")
    );
    // A client of one service is not one of another.
    assert_eq!(
        ask(s, "reporter", "billing", None, None).decision,
        AccessVerdict::Deny
    );
}

/// A set of 50 apps on three clusters (one in mode `egressGateway`), 25 services with two
/// clients each (some with rules, some with DENY intents) and two outbound intents.
fn fifty_apps() -> String {
    let mut doc = String::from(
        "clusters:
  - metadata: {name: east}
    spec: {identity: east.mesh.example.com, istio: {ingressGateway: {address: 198.51.100.1}}}
  - metadata: {name: west}
    spec: {identity: west.mesh.example.com, istio: {ingressGateway: {address: 198.51.100.2}}}
  - metadata: {name: edge}
    spec: {identity: edge.mesh.example.com, crossCluster: {mode: egressGateway}, istio: {ingressGateway: {address: 198.51.100.3}}}
projects:
  - metadata: {name: big}
    spec: {namespaces: [ns0, ns1, ns2, ns3, ns4]}
    compositeApps:
      - metadata: {name: many}
        spec: {version: v1}
        apps:
",
    );
    let clusters = ["east", "west", "edge"];
    for i in 0..50 {
        doc.push_str(&format!(
            "          - metadata: {{name: app{i:02}}}\n            spec: {{namespace: ns{}, placement: {{clusters: [{}]}}}}\n",
            i % 5,
            clusters[i % 3]
        ));
    }
    doc.push_str("        trafficIntentSets:\n          - metadata: {name: all}\n            inboundIntents:\n");
    for i in 0..25 {
        doc.push_str(&format!(
            "              - metadata: {{name: svc{i:02}}}\n                spec: {{app: app{i:02}, serviceName: svc{i:02}, port: 8080, protocol: HTTP}}\n                clients:\n"
        ));
        for c in [25 + i, 25 + (i + 7) % 25] {
            doc.push_str(&format!(
                "                  - metadata: {{name: app{c:02}}}\n                    spec: {{app: app{c:02}}}\n"
            ));
            if c % 3 == 0 {
                doc.push_str("                    securityIntents:\n                      - metadata: {name: reads}\n                        spec: {rules: [{methods: [GET], paths: [/api/*]}]}\n");
            } else if c % 4 == 0 {
                doc.push_str("                    securityIntents:\n                      - metadata: {name: no-admin}\n                        spec: {action: DENY, rules: [{paths: [/admin*]}]}\n");
            }
        }
    }
    doc.push_str(
        "            outboundIntents:
              - metadata: {name: payments}
                spec: {hosts: [api.payments.example.com], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS, clients: [app30, app31, app32]}
              - metadata: {name: maps}
                spec: {hosts: [maps.example.org], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS, egressGateway: false, clients: [app40]}
",
    );
    doc
}

/// Readable at 50 apps: every node is drawn once and no two node boxes overlap.
#[test]
fn a_graph_of_fifty_apps_is_laid_out_without_overlapping_nodes() {
    use meshintent::domain::document::IntentDocument;
    let mut document = IntentDocument::parse(&fifty_apps()).unwrap();
    let set = document.resolve().unwrap().remove(0);
    let graph = meshintent::graph::build(&set.model);
    assert_eq!(
        graph
            .nodes
            .iter()
            .filter(|n| n.kind == meshintent::graph::GraphNodeKind::App)
            .count(),
        50
    );
    let svg = meshintent::graph::svg::render(&graph);
    assert_eq!(svg, meshintent::graph::svg::render(&graph), "deterministic");
    if let Some(out) = std::env::var_os("GRAPH_SVG_OUT") {
        std::fs::write(out, &svg).unwrap(); // to look at it
    }
    let attr = |tag: &str, name: &str| -> f64 {
        let start = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[start..].split('"').next().unwrap().parse().unwrap()
    };
    let boxes: Vec<(f64, f64, f64, f64)> = svg
        .split("<g class=\"node")
        .skip(1)
        .map(|g| {
            let rect = &g[g.find("<rect").unwrap()..];
            (
                attr(rect, "x"),
                attr(rect, "y"),
                attr(rect, "width"),
                attr(rect, "height"),
            )
        })
        .collect();
    assert_eq!(boxes.len(), graph.nodes.len());
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart =
                a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
            assert!(apart, "nodes overlap: {a:?} {b:?}");
        }
    }
}
