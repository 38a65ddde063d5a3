//! `GET .../analysis` against fake API servers: each finding is present when the cluster lacks
//! the thing and absent when it has it.

use serde_json::{Value, json};

use crate::both_backends;
use crate::fake_kube::FakeKube;
use crate::helpers::{SET, TestApp};

/// The storefront with httpbin (cluster01) called by sleep (cluster02) through the gateways
/// (cross-cluster mode egressGateway: a MUTUAL ingress server and an egress origination, both
/// with a credentialName).
async fn seed(app: &TestApp) -> (FakeKube, FakeKube) {
    let a = FakeKube::start().await;
    let b = FakeKube::start().await;
    app.seed_storefront_with(&[a.kubeconfig(), b.kubeconfig()])
        .await;
    app.put(
        "/v2/clusters/cluster02",
        json!({"metadata": {"name": "cluster02"},
               "spec": {"identity": "cluster02.mesh.example.com",
                        "istio": {"ingressGateway": {"address": "198.51.100.20"}},
                        "crossCluster": {"mode": "egressGateway"}}}),
    )
    .await
    .expect(200);
    app.add_httpbin_with_sleep_client().await;
    healthy(&a, "ingressgateway");
    healthy(&b, "egressgateway");
    (a, b)
}

fn pod(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "istio-system", "labels": labels},
           "spec": {"containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"}]}})
}

fn istiod(tag: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod"}},
           "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                    "template": {"metadata": {"labels": {"app": "istiod"}},
                                 "spec": {"containers": [{"name": "discovery", "image": format!("docker.io/istio/pilot:{tag}")}]}}}})
}

fn namespace(labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": labels}})
}

fn service(port: u16) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "httpbin", "namespace": "default"},
           "spec": {"ports": [{"name": "http", "port": port}]}})
}

fn secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": name, "namespace": "istio-system"},
           "data": {"tls.crt": "c2VjcmV0", "tls.key": "c2VjcmV0"}})
}

/// Everything a set may need, on one fake cluster.
fn healthy(fake: &FakeKube, gateway: &str) {
    fake.insert_builtin(namespace(json!({"istio-injection": "enabled"})));
    fake.insert_builtin(service(8000));
    fake.insert_builtin(pod(
        &format!("istio-{gateway}-1"),
        json!({"istio": gateway}),
    ));
    fake.insert_builtin(istiod("1.24.0"));
    fake.insert_builtin(secret("meshintent-ingress-cert"));
    fake.insert_builtin(secret("meshintent-egress-cert"));
}

async fn findings(app: &TestApp) -> Vec<Value> {
    let body = app.get(&format!("{SET}/analysis")).await.expect(200).body;
    body["findings"].as_array().unwrap().clone()
}

/// `code object` of each finding on `cluster`.
async fn codes(app: &TestApp, cluster: &str) -> Vec<String> {
    findings(app)
        .await
        .iter()
        .filter(|f| f["cluster"] == cluster)
        .map(|f| {
            format!(
                "{} {}",
                f["code"].as_str().unwrap(),
                f["object"].as_str().unwrap_or("")
            )
        })
        .collect()
}

both_backends!(a_cluster_that_has_everything_has_no_findings, |app| {
    let (a, b) = seed(&app).await;
    let before = (a.write_count(), b.write_count());
    assert_eq!(findings(&app).await, Vec::<Value>::new());
    assert_eq!(
        (a.write_count(), b.write_count()),
        before,
        "an analysis writes nothing"
    );
    // Secrets are read as metadata only, by name.
    let secret_reads: Vec<_> = a
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/secrets"))
        .collect();
    assert!(!secret_reads.is_empty());
    assert!(secret_reads.iter().all(|r| {
        r.method == "GET"
            && r.path.ends_with("-cert")
            && r.header("accept")
                .is_some_and(|a| a.contains("PartialObjectMetadata"))
    }));
});

both_backends!(a_missing_secret_is_ist0101_with_what_to_do, |app| {
    let (a, _b) = seed(&app).await;
    a.remove_builtin("secrets", "istio-system", "meshintent-ingress-cert");
    let all = findings(&app).await;
    let finding = all
        .iter()
        .find(|f| f["object"] == "Secret/istio-system/meshintent-ingress-cert")
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert_eq!(finding["code"], "IST0101");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["cluster"], "cluster01");
    assert_eq!(
        finding["intent"],
        format!("{SET}/inbound-intents/httpbin").as_str()
    );
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("kubectl create secret")
    );
    assert_eq!(all.len(), 1, "{all:#?}");
});

both_backends!(each_missing_thing_is_its_own_finding, |app| {
    let (a, b) = seed(&app).await;

    a.remove_builtin("services", "default", "httpbin");
    assert_eq!(
        codes(&app, "cluster01").await,
        ["IST0101 Service/default/httpbin"]
    );
    a.insert_builtin(service(9999));
    assert_eq!(
        codes(&app, "cluster01").await,
        ["MI1001 Service/default/httpbin"]
    );
    a.insert_builtin(service(8000));

    b.insert_builtin(namespace(json!({})));
    assert_eq!(
        codes(&app, "cluster02").await,
        ["IST0102 Namespace/default"]
    );
    b.insert_builtin(namespace(json!({"istio.io/rev": "1-24"})));
    assert_eq!(codes(&app, "cluster02").await, Vec::<String>::new());
    b.remove_builtin("namespaces", "", "default");
    assert_eq!(
        codes(&app, "cluster02").await,
        ["IST0101 Namespace/default"]
    );
    b.insert_builtin(namespace(json!({"istio-injection": "enabled"})));

    a.remove_builtin("pods", "istio-system", "istio-ingressgateway-1");
    let found = codes(&app, "cluster01").await;
    assert!(
        !found.is_empty()
            && found
                .iter()
                .all(|c| c.starts_with("IST0101 Gateway/istio-system/")),
        "{found:?}"
    );
    a.insert_builtin(pod(
        "istio-ingressgateway-1",
        json!({"istio": "ingressgateway"}),
    ));

    b.insert_builtin(istiod("1.21.2"));
    assert_eq!(codes(&app, "cluster02").await, ["MI1003 Deployment/istiod"]);
    b.insert_builtin(istiod("1.22.0"));
    assert_eq!(codes(&app, "cluster02").await, Vec::<String>::new());
});

both_backends!(
    unmanaged_overlaps_and_tls_disabled_towards_strict_are_found,
    |app| {
        let (a, b) = seed(&app).await;
        let manifests = app
            .get(&format!("{SET}/manifests?cluster=cluster01"))
            .await
            .expect(200)
            .body;
        let dr = manifests["clusters"][0]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "DestinationRule")
            .unwrap()
            .clone();
        let host = dr["spec"]["host"].as_str().unwrap().to_owned();
        // A hand-made rule for the same host, disabling TLS towards httpbin (STRICT).
        a.insert_object(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
               "metadata": {"name": "httpbin-by-hand", "namespace": "default"},
               "spec": {"host": host, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}}),
            "kubectl",
        );
        let found = codes(&app, "cluster01").await;
        assert!(
            found.contains(&format!(
                "MI1002 DestinationRule/default/{}",
                dr["metadata"]["name"].as_str().unwrap()
            )),
            "{found:?}"
        );
        assert!(
            found.contains(&"IST0113 DestinationRule/default/httpbin-by-hand".to_owned()),
            "{found:?}"
        );
        let all = findings(&app).await;
        let overlap = all.iter().find(|f| f["code"] == "MI1002").unwrap();
        assert!(
            overlap["message"]
                .as_str()
                .unwrap()
                .contains("DestinationRule/default/httpbin-by-hand"),
            "{overlap:#}"
        );
        b.insert_object(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
               "metadata": {"name": "elsewhere", "namespace": "default"},
               "spec": {"host": "unrelated.example.com"}}),
            "kubectl",
        );
        assert!(
            codes(&app, "cluster02").await.is_empty(),
            "an unrelated object is no overlap"
        );
    }
);

both_backends!(
    an_unreachable_cluster_is_one_finding_and_the_others_are_analysed,
    |app| {
        let (a, b) = seed(&app).await;
        b.stop().await;
        a.remove_builtin("services", "default", "httpbin");
        let all = findings(&app).await;
        let c2: Vec<&Value> = all.iter().filter(|f| f["cluster"] == "cluster02").collect();
        assert_eq!(c2.len(), 1, "{all:#?}");
        assert_eq!(c2[0]["code"], "MI1000");
        assert_eq!(c2[0]["severity"], "error");
        assert!(
            all.iter()
                .any(|f| f["cluster"] == "cluster01" && f["object"] == "Service/default/httpbin"),
            "{all:#?}"
        );
    }
);
