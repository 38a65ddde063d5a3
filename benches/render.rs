//! Generator benchmark: 10,000 inbound intents with 3 clients each, over 10 clusters (half in
//! cross-cluster mode `direct`, half `egressGateway`). Prints the object count and timings.
//!
//! Run with `cargo bench --bench render` (release build). Figures, not assertions: performance
//! targets live here, not in tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meshintent::domain::model::{ClientModel, InboundModel, IntentSetModel, SetAddress};
use meshintent::generate::{self, output};
use serde_json::json;

const CLUSTERS: usize = 10;
const INTENTS: usize = 10_000;
const CLIENTS_PER_INTENT: usize = 3;
const APPS: usize = 200;

fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid benchmark input")
}

fn model() -> IntentSetModel {
    let mut model = IntentSetModel::new(SetAddress {
        project: "bench".parse().unwrap(),
        composite_app: "fleet".parse().unwrap(),
        version: "v1".parse().unwrap(),
        set: "all".parse().unwrap(),
    });
    for c in 0..CLUSTERS {
        let mode = if c % 2 == 0 {
            "direct"
        } else {
            "egressGateway"
        };
        model.clusters.insert(
            format!("cluster{c:02}").parse().unwrap(),
            parse(json!({
                "identity": format!("cluster{c:02}.mesh.example.com"),
                "istio": {"ingressGateway": {"address": format!("198.51.100.{}", 10 + c)}},
                "crossCluster": {"mode": mode, "vipRange": "240.240.0.0/16"}
            })),
        );
    }
    for a in 0..APPS {
        let spec = parse::<meshintent::domain::app::AppSpec>(json!({
            "namespace": format!("ns{}", a % 20),
            "placement": {"clusters": [format!("cluster{:02}", a % CLUSTERS)]}
        }))
        .with_defaults(&format!("app{a}").parse().unwrap());
        model.apps.insert(format!("app{a}").parse().unwrap(), spec);
    }
    for i in 0..INTENTS {
        let spec = parse::<meshintent::domain::inbound::InboundIntentSpec>(json!({
            "app": format!("app{}", i % APPS),
            "serviceName": format!("svc{i}"),
            "port": 8000,
            "protocol": "HTTP",
            "trafficPolicy": {
                "connectionPool": {"maxConnections": 100, "connectTimeout": "5s"},
                "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "1m"}
            }
        }))
        .with_defaults();
        let mut clients = BTreeMap::new();
        for k in 0..CLIENTS_PER_INTENT {
            // Client apps land on other clusters than the server for two of three clients.
            let app = (i + 1 + k * 7) % APPS;
            clients.insert(
                format!("client{k}").parse().unwrap(),
                ClientModel {
                    spec: parse(json!({"app": format!("app{app}")})),
                    security_intents: BTreeMap::from([(
                        "read".parse().unwrap(),
                        parse(json!({"rules": [{"methods": ["GET"], "paths": ["/status", "/api/*"]}]})),
                    )]),
                },
            );
        }
        model.inbound.insert(
            format!("svc{i}").parse().unwrap(),
            InboundModel { spec, clients },
        );
    }
    model
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let started = Instant::now();
    let model = model();
    println!(
        "input: {INTENTS} inbound intents x {CLIENTS_PER_INTENT} clients over {CLUSTERS} clusters ({APPS} apps), built in {:.0?}",
        started.elapsed()
    );

    let t = Instant::now();
    let needs = generate::vip_needs(&model).expect("needs");
    let vips = generate::vips::allocate_offline(&model, &needs).expect("vips");
    let allocation = t.elapsed();
    println!("VIP allocation: {} VIPs in {allocation:.0?}", vips.len());

    let runs = 5;
    let mut timings = Vec::new();
    let mut manifests = None;
    for _ in 0..runs {
        let t = Instant::now();
        let rendered = generate::render(&model, &vips).expect("render");
        timings.push(t.elapsed());
        manifests = Some(rendered);
    }
    let manifests = manifests.expect("rendered");
    let objects: usize = manifests.values().map(Vec::len).sum();
    let render = median(timings.clone());
    println!(
        "render: {objects} objects over {} clusters; median {render:.0?} of {runs} runs (min {:.0?}, max {:.0?}); {:.0} objects/s",
        manifests.len(),
        timings.iter().min().unwrap(),
        timings.iter().max().unwrap(),
        objects as f64 / render.as_secs_f64()
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for object in manifests.values().flatten() {
        *kinds.entry(object.kind()).or_default() += 1;
    }
    println!("by kind: {kinds:?}");

    let t = Instant::now();
    let yaml = output::yaml(&output::list(&manifests, None));
    println!(
        "YAML serialization: {:.1} MiB in {:.0?}",
        yaml.len() as f64 / 1_048_576.0,
        t.elapsed()
    );
    let t = Instant::now();
    let json = output::json(&output::list(&manifests, None));
    println!(
        "JSON serialization: {:.1} MiB in {:.0?}",
        json.len() as f64 / 1_048_576.0,
        t.elapsed()
    );
}
