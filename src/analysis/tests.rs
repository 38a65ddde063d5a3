use serde_json::json;

use super::*;
use crate::domain::model::{InboundModel, SetAddress};
use crate::istio::IstioObject;

const SET: &str = "/v2/projects/p/composite-apps/ca/v1/traffic-intent-sets/s";

fn name(s: &str) -> Name {
    s.parse().unwrap()
}

fn model() -> IntentSetModel {
    let mut model = IntentSetModel::new(SetAddress {
        project: name("p"),
        composite_app: name("ca"),
        version: "v1".parse().unwrap(),
        set: name("s"),
    });
    model.clusters.insert(
        name("c1"),
        serde_json::from_value(json!({"identity": "c1.example.com"})).unwrap(),
    );
    model.apps.insert(
        name("web"),
        serde_json::from_value(json!({"namespace": "shop", "placement": {"clusters": ["c1"]}}))
            .unwrap(),
    );
    model.inbound.insert(
        name("web"),
        InboundModel {
            spec: serde_json::from_value(
                json!({"app": "web", "serviceName": "web", "port": 8080, "protocol": "HTTP"}),
            )
            .unwrap(),
            clients: BTreeMap::new(),
        },
    );
    model
}

fn object(value: Value) -> IstioObject {
    serde_json::from_value(value).unwrap()
}

fn annotations() -> Value {
    json!({"meshintent.io/intent": format!("{SET}/inbound-intents/web")})
}

fn manifests() -> Manifests {
    BTreeMap::from([(
        name("c1"),
        vec![
            object(json!({
                "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                "metadata": {"name": "web-gw", "namespace": "istio-system", "annotations": annotations()},
                "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                    "port": {"number": 443, "name": "tls", "protocol": "TLS"}, "hosts": ["web.example.com"],
                    "tls": {"mode": "MUTUAL", "credentialName": "meshintent-ingress-cert"}}]}
            })),
            object(json!({
                "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                "metadata": {"name": "web-peer-authn", "namespace": "shop", "annotations": annotations()},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "mtls": {"mode": "STRICT"}}
            })),
            object(json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "web-dr", "namespace": "shop", "annotations": annotations()},
                "spec": {"host": "web.shop.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
            })),
        ],
    )])
}

/// A cluster that has everything the set needs.
fn healthy() -> ClusterSnapshot {
    ClusterSnapshot {
        namespaces: BTreeMap::from([(
            "shop".to_owned(),
            BTreeMap::from([("istio-injection".to_owned(), "enabled".to_owned())]),
        )]),
        services: BTreeMap::from([(("shop".to_owned(), "web".to_owned()), vec![8080])]),
        workloads: BTreeMap::from([(
            "istio-system".to_owned(),
            vec![BTreeMap::from([(
                "istio".to_owned(),
                "ingressgateway".to_owned(),
            )])],
        )]),
        secrets: BTreeMap::from([(
            (
                "istio-system".to_owned(),
                "meshintent-ingress-cert".to_owned(),
            ),
            true,
        )]),
        istio_version: Some("1.24.1".to_owned()),
        ..ClusterSnapshot::default()
    }
}

fn codes(snapshot: Result<ClusterSnapshot, String>) -> Vec<String> {
    let snapshots = BTreeMap::from([(name("c1"), snapshot)]);
    analyse(&model(), &manifests(), &snapshots, &[])
        .findings
        .into_iter()
        .map(|f| format!("{} {}", f.code, f.object.unwrap_or_default()))
        .collect()
}

#[test]
fn a_healthy_cluster_has_no_findings() {
    assert_eq!(codes(Ok(healthy())), Vec::<String>::new());
}

#[test]
fn needs_name_namespaces_gateways_and_secrets() {
    let needs = needs(&model(), &manifests());
    let c1 = &needs[&name("c1")];
    assert!(c1.namespaces.contains("shop"));
    assert!(c1.service_namespaces.contains("shop"));
    assert!(c1.gateway_namespaces.contains("istio-system"));
    assert!(c1.secrets.contains(&(
        "istio-system".to_owned(),
        "meshintent-ingress-cert".to_owned()
    )));
    assert_eq!(c1.istio_namespace, "istio-system");
}

#[test]
fn each_missing_thing_is_a_finding() {
    let mut s = healthy();
    s.secrets.insert(
        (
            "istio-system".to_owned(),
            "meshintent-ingress-cert".to_owned(),
        ),
        false,
    );
    assert_eq!(
        codes(Ok(s)),
        ["IST0101 Secret/istio-system/meshintent-ingress-cert"]
    );

    let mut s = healthy();
    s.services.clear();
    assert_eq!(codes(Ok(s)), ["IST0101 Service/shop/web"]);

    let mut s = healthy();
    s.services
        .insert(("shop".to_owned(), "web".to_owned()), vec![80]);
    assert_eq!(codes(Ok(s)), ["MI1001 Service/shop/web"]);

    let mut s = healthy();
    s.namespaces.clear();
    assert_eq!(codes(Ok(s)), ["IST0101 Namespace/shop"]);

    let mut s = healthy();
    s.namespaces.insert("shop".to_owned(), BTreeMap::new());
    assert_eq!(codes(Ok(s)), ["IST0102 Namespace/shop"]);
    let mut s = healthy();
    s.namespaces.insert(
        "shop".to_owned(),
        BTreeMap::from([("istio.io/rev".to_owned(), "1-24".to_owned())]),
    );
    assert_eq!(
        codes(Ok(s)),
        Vec::<String>::new(),
        "a revision label injects"
    );

    let mut s = healthy();
    s.workloads.clear();
    assert_eq!(codes(Ok(s)), ["IST0101 Gateway/istio-system/web-gw"]);

    let mut s = healthy();
    s.istio_version = Some("1.21.4".to_owned());
    assert_eq!(codes(Ok(s)), ["MI1003 Deployment/istiod"]);

    let mut s = healthy();
    s.unmanaged_objects.insert((
        IstioKind::DestinationRule,
        "shop".to_owned(),
        "web-dr".to_owned(),
    ));
    assert_eq!(codes(Ok(s)), ["MI1002 DestinationRule/shop/web-dr"]);

    let mut s = healthy();
    s.tls_disabled.push(TlsDisabledRule {
        object: "DestinationRule/other/no-tls".to_owned(),
        host: "web.shop.svc.cluster.local".to_owned(),
    });
    assert_eq!(codes(Ok(s)), ["IST0113 DestinationRule/other/no-tls"]);

    assert_eq!(codes(Err("connection refused".into())), ["MI1000 "]);
}

#[test]
fn an_unmanaged_object_deciding_the_same_name_overlaps() {
    let mut s = healthy();
    let claim = claims_of_value(
        &name("c1"),
        IstioKind::DestinationRule,
        &serde_json::to_value(&manifests()[&name("c1")][2]).unwrap(),
    )
    .into_iter()
    .next()
    .unwrap();
    s.unmanaged_claims
        .insert(claim, "DestinationRule/shop/theirs".to_owned());
    let snapshots = BTreeMap::from([(name("c1"), Ok(s))]);
    let findings = analyse(&model(), &manifests(), &snapshots, &[]).findings;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, UNMANAGED_OVERLAP);
    assert!(findings[0].message.contains("DestinationRule/shop/theirs"));
    assert_eq!(
        findings[0].intent.as_deref(),
        Some(format!("{SET}/inbound-intents/web").as_str())
    );
}

#[test]
fn versions_come_from_image_tags() {
    assert_eq!(
        image_tag("docker.io/istio/pilot:1.22.3").as_deref(),
        Some("1.22.3")
    );
    assert_eq!(
        image_tag("localhost:5000/istio/pilot:1.23.0-distroless@sha256:abc").as_deref(),
        Some("1.23.0-distroless")
    );
    assert_eq!(image_tag("localhost:5000/istio/pilot"), None);
    assert_eq!(major_minor("1.23.0-distroless"), Some((1, 23)));
    assert_eq!(major_minor("v1.9.1"), Some((1, 9)));
    assert!(major_minor("1.9.1").unwrap() < MIN_ISTIO);
    assert_eq!(major_minor("latest"), None);
}

#[test]
fn tls_disabled_anywhere_in_a_rule_counts() {
    assert!(disables_tls(
        &json!({"spec": {"trafficPolicy": {"tls": {"mode": "DISABLE"}}}})
    ));
    assert!(disables_tls(&json!({"spec": {"trafficPolicy": {
        "portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "DISABLE"}}]}}})));
    assert!(disables_tls(
        &json!({"spec": {"subsets": [{"name": "v1", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}]}})
    ));
    assert!(!disables_tls(
        &json!({"spec": {"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}})
    ));
}
