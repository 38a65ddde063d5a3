//! A write's cost does not depend on the size of its set: each kind of write sends the same
//! number of SQL statements into a set of 10 inbound intents and into one of 1,000 (counted
//! at the service layer, where the write runs in one task).

use meshintent::domain::envelopes::{
    Client, InboundIntent, OutboundIntent, RouteIntent, SecurityIntent,
};
use meshintent::domain::model::SetAddress;
use meshintent::domain::resource::{Key, Kind, ResourcePath};
use meshintent::service::{Caller, Service};
use meshintent::store::count_statements;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::SET;

fn parse<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid resource")
}

fn set_path() -> ResourcePath {
    SetAddress {
        project: "shop".parse().unwrap(),
        composite_app: "storefront".parse().unwrap(),
        version: "v1".parse().unwrap(),
        set: "default".parse().unwrap(),
    }
    .path()
}

fn child(parent: &ResourcePath, kind: Kind, name: &str) -> ResourcePath {
    parent.child(kind, Key::named(name.parse().unwrap()))
}

fn inbound(name: &str, port: u16) -> InboundIntent {
    parse(json!({"metadata": {"name": name},
                 "spec": {"app": "httpbin", "serviceName": name, "port": port, "protocol": "HTTP",
                          "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}))
}

fn sleep_client() -> Client {
    parse(json!({"metadata": {"name": "sleep"}, "spec": {"app": "sleep"}}))
}

/// Adds inbound intents `svc-{from}` .. `svc-{to - 1}`, each called by client sleep from the
/// other cluster (so each holds VIPs).
async fn grow(service: &Service, caller: &Caller, from: usize, to: usize) {
    let set = set_path();
    for i in from..to {
        let name = format!("svc-{i}");
        let intents = set.clone();
        service
            .create(&intents, inbound(&name, 8000), caller)
            .await
            .expect("seed intent");
        let intent = child(&set, Kind::InboundIntent, &name);
        service
            .create(&intent, sleep_client(), caller)
            .await
            .expect("seed client");
    }
}

/// The statements of one write of each kind into the set as it is, named.
async fn write_costs(service: &Service, caller: &Caller, tag: &str) -> Vec<(&'static str, u64)> {
    let set = set_path();
    let name = format!("probe-{tag}");
    let intent = child(&set, Kind::InboundIntent, &name);
    let client = child(&intent, Kind::Client, "sleep");
    let mut costs = Vec::new();

    let (r, n) = count_statements(service.create(&set, inbound(&name, 8000), caller)).await;
    r.expect("create inbound intent");
    costs.push(("create inbound intent", n));
    let (r, n) = count_statements(service.create(&intent, sleep_client(), caller)).await;
    r.expect("create client");
    costs.push(("create client", n));
    let rule: SecurityIntent = parse(json!({"metadata": {"name": "status"},
        "spec": {"rules": [{"methods": ["GET"], "paths": ["/status"]}]}}));
    let (r, n) = count_statements(service.create(&client, rule, caller)).await;
    r.expect("create security intent");
    costs.push(("create security intent", n));
    let route: RouteIntent = parse(json!({"metadata": {"name": format!("route-{tag}")},
        "spec": {"target": {"inboundIntent": name},
                 "http": [{"route": [{"subset": "v1", "weight": 100}]}]}}));
    let (r, n) = count_statements(service.create(&set, route, caller)).await;
    r.expect("create route intent");
    costs.push(("create route intent", n));
    let (r, n) =
        count_statements(service.replace(&intent, inbound(&name, 9000), None, caller)).await;
    r.expect("replace inbound intent");
    costs.push(("replace inbound intent", n));
    let host = format!("{tag}.example.org");
    let outbound: OutboundIntent = parse(json!({"metadata": {"name": format!("ext-{tag}")},
        "spec": {"hosts": [host], "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                 "clients": ["sleep"]}}));
    let (r, n) = count_statements(service.create(&set, outbound, caller)).await;
    r.expect("create outbound intent");
    costs.push(("create outbound intent", n));
    let (r, n) = count_statements(service.delete(&client, true, None, caller)).await;
    r.expect("delete client");
    costs.push(("delete client", n));
    costs
}

both_backends!(a_write_costs_the_same_in_a_set_of_10_and_of_1000, |app| {
    app.seed_storefront().await;
    let service = app.service().await;
    let caller = Caller::system("write-cost-test");
    grow(&service, &caller, 0, 10).await;
    let small = write_costs(&service, &caller, "small").await;
    grow(&service, &caller, 10, 1000).await;
    let large = write_costs(&service, &caller, "large").await;
    eprintln!("statements per write ({:?}): {large:?}", app.backend);
    assert_eq!(
        small, large,
        "statements per write into 10 intents (left) and 1,000 (right)"
    );
    // About half of it re-derives the intent's mesh-name claims (its rows again, then the
    // claim tables): constant too.
    assert!(
        small.iter().all(|(_, n)| *n <= 26),
        "a write is a handful of statements: {small:?}"
    );
    // The writes were real: the set renders, and a client on the other cluster reaches an
    // intent written among the last through the VIP its write stored.
    let binding = app
        .get(&format!(
            "{SET}/inbound-intents/svc-999/clients/sleep/binding"
        ))
        .await
        .expect(200);
    assert!(
        binding.text.contains("240."),
        "a VIP from the default range: {}",
        binding.body
    );
});
