//! The mesh names a rendered object decides on its cluster (SPEC 7). Istio resolves
//! configuration per host, not per intent set: two DestinationRules for one host, two
//! VirtualServices for one host on one gateway, or two Gateway servers for one host and port on
//! one gateway workload are undefined (istiod keeps one). Within a set the generator merges; a
//! name is owned by one set.

use std::collections::BTreeSet;
use std::fmt;

use crate::domain::names::Name;
use serde_json::Value;

use crate::istio::{IstioKind, IstioObject};

/// What kind of name an object claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClaimKind {
    /// A DestinationRule's host (not one scoped to workloads by a `workloadSelector`).
    DestinationRuleHost,
    /// A VirtualService's host on one gateway (`mesh` for sidecars).
    VirtualServiceHost,
    /// A Gateway server: the gateway workload (selector), the port and one host.
    GatewayServer,
    /// A ServiceEntry's host.
    ServiceEntryHost,
}

impl ClaimKind {
    pub const ALL: [ClaimKind; 4] = [
        ClaimKind::DestinationRuleHost,
        ClaimKind::VirtualServiceHost,
        ClaimKind::GatewayServer,
        ClaimKind::ServiceEntryHost,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::DestinationRuleHost => "destination-rule-host",
            ClaimKind::VirtualServiceHost => "virtual-service-host",
            ClaimKind::GatewayServer => "gateway-server",
            ClaimKind::ServiceEntryHost => "service-entry-host",
        }
    }

    pub fn parse(raw: &str) -> Option<ClaimKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// How a person reads the name: `DestinationRule host`.
    fn noun(self) -> &'static str {
        match self {
            ClaimKind::DestinationRuleHost => "DestinationRule host",
            ClaimKind::VirtualServiceHost => "VirtualService host (gateway|host)",
            ClaimKind::GatewayServer => "Gateway server (selector|port|host)",
            ClaimKind::ServiceEntryHost => "ServiceEntry host",
        }
    }
}

/// One name on one cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Claim {
    pub cluster: Name,
    pub kind: ClaimKind,
    pub name: String,
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} on cluster {}",
            self.kind.noun(),
            self.name,
            self.cluster
        )
    }
}

/// The names `object` claims on `cluster`.
pub fn claims_of(cluster: &Name, object: &IstioObject) -> BTreeSet<Claim> {
    match serde_json::to_value(object) {
        Ok(value) => claims_of_value(cluster, object.istio_kind(), &value),
        Err(_) => BTreeSet::new(),
    }
}

/// The names an object of `kind`, as the API server returns it, claims on `cluster` (also for
/// objects meshintent did not write, which need not parse as its typed model).
pub fn claims_of_value(cluster: &Name, kind: IstioKind, object: &Value) -> BTreeSet<Claim> {
    let claim = |kind, name: String| Claim {
        cluster: cluster.clone(),
        kind,
        name,
    };
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let spec = &object["spec"];
    let mut out = BTreeSet::new();
    match kind {
        IstioKind::DestinationRule if spec.get("workloadSelector").is_none() => {
            if let Some(host) = spec["host"].as_str() {
                out.insert(claim(ClaimKind::DestinationRuleHost, host.to_owned()));
            }
        }
        IstioKind::VirtualService => {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let mut gateways = strings(&spec["gateways"]);
            if gateways.is_empty() {
                gateways.push("mesh".to_owned());
            }
            for gateway in gateways {
                let gateway = match gateway.as_str() {
                    "mesh" => gateway,
                    g if g.contains('/') => gateway,
                    g => format!("{namespace}/{g}"),
                };
                for host in strings(&spec["hosts"]) {
                    out.insert(claim(
                        ClaimKind::VirtualServiceHost,
                        format!("{gateway}|{host}"),
                    ));
                }
            }
        }
        IstioKind::Gateway => {
            let selector: Vec<String> = spec["selector"]
                .as_object()
                .map(|m| {
                    let mut pairs: Vec<String> = m
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    pairs.sort();
                    pairs
                })
                .unwrap_or_default();
            let selector = selector.join(",");
            for server in spec["servers"].as_array().into_iter().flatten() {
                let port = server["port"]["number"].as_u64().unwrap_or_default();
                for host in strings(&server["hosts"]) {
                    out.insert(claim(
                        ClaimKind::GatewayServer,
                        format!("{selector}|{port}|{host}"),
                    ));
                }
            }
        }
        IstioKind::ServiceEntry => {
            for host in strings(&spec["hosts"]) {
                out.insert(claim(ClaimKind::ServiceEntryHost, host));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> Name {
        "cluster01".parse().unwrap()
    }

    #[test]
    fn each_kind_claims_the_names_istio_resolves_it_by() {
        let names = |kind, object: Value| -> Vec<String> {
            claims_of_value(&cluster(), kind, &object)
                .into_iter()
                .map(|c| format!("{}:{}", c.kind.as_str(), c.name))
                .collect()
        };
        assert_eq!(
            names(
                IstioKind::DestinationRule,
                json!({"spec": {"host": "reviews"}})
            ),
            ["destination-rule-host:reviews"]
        );
        assert!(
            names(
                IstioKind::DestinationRule,
                json!({"spec": {"host": "reviews", "workloadSelector": {"matchLabels": {"app": "a"}}}})
            )
            .is_empty(),
            "a DestinationRule scoped to workloads decides nothing mesh-wide"
        );
        assert_eq!(
            names(
                IstioKind::VirtualService,
                json!({"metadata": {"namespace": "shop"}, "spec": {"hosts": ["a", "b"], "gateways": ["mesh", "edge", "istio-system/in"]}})
            ),
            [
                "virtual-service-host:istio-system/in|a",
                "virtual-service-host:istio-system/in|b",
                "virtual-service-host:mesh|a",
                "virtual-service-host:mesh|b",
                "virtual-service-host:shop/edge|a",
                "virtual-service-host:shop/edge|b"
            ]
        );
        assert_eq!(
            names(
                IstioKind::VirtualService,
                json!({"metadata": {"namespace": "shop"}, "spec": {"hosts": ["a"]}})
            ),
            ["virtual-service-host:mesh|a"]
        );
        assert_eq!(
            names(
                IstioKind::Gateway,
                json!({"spec": {"selector": {"istio": "ingressgateway", "app": "x"}, "servers": [
                    {"port": {"number": 443, "name": "tls", "protocol": "TLS"}, "hosts": ["shop.example.com"]}]}})
            ),
            ["gateway-server:app=x,istio=ingressgateway|443|shop.example.com"]
        );
        assert_eq!(
            names(
                IstioKind::ServiceEntry,
                json!({"spec": {"hosts": ["api.example.com"]}})
            ),
            ["service-entry-host:api.example.com"]
        );
        assert!(names(IstioKind::AuthorizationPolicy, json!({"spec": {}})).is_empty());
    }
}

/// A mesh name two sets decide on one cluster, as one of them sees it. The API refuses to create
/// such a pair; data stored before claims existed may hold one (start-up lists them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeshNameCollision {
    pub cluster: String,
    /// The name, as a person reads it.
    #[schema(
        example = "DestinationRule host httpbin.default.svc.cluster.local on cluster cluster01"
    )]
    pub claim: String,
    /// True when this set owns the name (its objects deciding it are applied); false when the
    /// other set does (this set's objects deciding it are `conflict` and not applied).
    pub owned_here: bool,
    /// The URL path of the set that owns the name.
    pub owner: String,
    /// The URL path of the intent, in the set that does not own the name, that also decides it.
    pub intent: String,
    /// What it means and what to do.
    pub message: String,
}
