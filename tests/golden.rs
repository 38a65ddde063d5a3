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
