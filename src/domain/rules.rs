//! Rules between resources, checked when a resource is written: references that must exist,
//! and rules that depend on another resource (a parent's protocol, a target's subsets).
//!
//! Each function checks one resource as it sits in an `IntentSetModel` (the write applied) and
//! returns violations with pointers relative to that resource (`/spec/...`). The API calls the
//! function of the written resource; the intent document calls all of them, through one
//! `SetRules` so that the look-ups between resources (which intents expose a service, which
//! routes target an intent, which outbound intents claim a host) are built once per set rather
//! than searched for every resource.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use super::app::AppSpec;
use super::cluster::ClusterSpec;
use super::hosts::HostPattern;
use super::inbound::InboundIntentSpec;
use super::model::IntentSetModel;
use super::names::{Name, ServiceName};
use super::outbound::OutboundIntentSpec;
use super::route::{RouteGateway, RouteIntentSpec, RouteTarget};
use super::violations::{FieldError, Violations};

/// Route intents by name, in name order.
type Routes<'m> = Vec<(&'m Name, &'m RouteIntentSpec)>;

/// The rules of one set with the look-ups between its resources, each built on first use and
/// then shared by every check: checking all resources of a set is linear in its size (up to
/// logarithms). The `check_*` functions are the same checks for one resource.
pub struct SetRules<'m> {
    model: &'m IntentSetModel,
    /// Inbound intents by service name and namespace of their app, for those whose app exists.
    services: OnceCell<BTreeMap<&'m ServiceName, BTreeMap<&'m Name, Vec<&'m Name>>>>,
    routes_to_inbound: OnceCell<BTreeMap<&'m Name, Routes<'m>>>,
    routes_to_outbound: OnceCell<BTreeMap<&'m Name, Routes<'m>>>,
    routes_by_target: OnceCell<BTreeMap<&'m RouteTarget, Routes<'m>>>,
    outbound_hosts: OnceCell<HostIndex<'m>>,
}

/// The hosts of every outbound intent: exact hosts, wildcard suffixes (`*.example.org` as
/// `.example.org`), and every host by its reversed text (to find the hosts a wildcard covers).
#[derive(Default)]
struct HostIndex<'m> {
    exact: BTreeMap<&'m str, BTreeSet<&'m Name>>,
    wildcard_suffixes: BTreeMap<&'m str, BTreeSet<&'m Name>>,
    reversed: BTreeMap<String, BTreeSet<&'m Name>>,
}

impl<'m> HostIndex<'m> {
    fn new(model: &'m IntentSetModel) -> Self {
        let mut index = HostIndex::default();
        for (name, spec) in &model.outbound {
            for host in &spec.hosts {
                let host = host.as_str();
                index.exact.entry(host).or_default().insert(name);
                if let Some(suffix) = host.strip_prefix('*') {
                    index
                        .wildcard_suffixes
                        .entry(suffix)
                        .or_default()
                        .insert(name);
                }
                index
                    .reversed
                    .entry(host.chars().rev().collect())
                    .or_default()
                    .insert(name);
            }
        }
        index
    }

    /// The outbound intents with a host that overlaps `host`: equal to it, covering it, or
    /// covered by it (`HostPattern::covers` either way), in name order.
    fn overlapping(&self, host: &HostPattern) -> BTreeSet<&'m Name> {
        let host = host.as_str();
        let mut out = BTreeSet::new();
        out.extend(self.exact.get(host).into_iter().flatten().copied());
        // Wildcards `*<suffix>` that cover `host`: it ends with `suffix` and is longer. Only
        // the suffixes of `host` at a dot can be one (a wildcard is `*.` and a domain).
        for (i, _) in host.match_indices('.').filter(|(i, _)| *i > 0) {
            out.extend(
                self.wildcard_suffixes
                    .get(&host[i..])
                    .into_iter()
                    .flatten()
                    .copied(),
            );
        }
        // If `host` is a wildcard, the hosts it covers: longer ones ending with its suffix.
        if let Some(suffix) = host.strip_prefix('*') {
            let reversed: String = suffix.chars().rev().collect();
            for (other, names) in self.reversed.range(reversed.clone()..) {
                if !other.starts_with(&reversed) {
                    break;
                }
                if other.len() > reversed.len() {
                    out.extend(names.iter().copied());
                }
            }
        }
        out
    }
}

/// The routes of `model` by `key` (routes without one left out), each list in name order.
fn routes_by<'m, K: Ord>(
    model: &'m IntentSetModel,
    key: impl Fn(&'m RouteIntentSpec) -> Option<K>,
) -> BTreeMap<K, Routes<'m>> {
    let mut out: BTreeMap<K, Routes<'m>> = BTreeMap::new();
    for (name, route) in &model.routes {
        if let Some(k) = key(route) {
            out.entry(k).or_default().push((name, route));
        }
    }
    out
}

impl<'m> SetRules<'m> {
    pub fn new(model: &'m IntentSetModel) -> Self {
        Self {
            model,
            services: OnceCell::new(),
            routes_to_inbound: OnceCell::new(),
            routes_to_outbound: OnceCell::new(),
            routes_by_target: OnceCell::new(),
            outbound_hosts: OnceCell::new(),
        }
    }

    /// Inbound intents exposing `service` in `namespace`, in name order.
    fn same_service(&self, service: &ServiceName, namespace: &Name) -> &[&'m Name] {
        let model = self.model;
        self.services
            .get_or_init(|| {
                let mut out: BTreeMap<&ServiceName, BTreeMap<&Name, Vec<&Name>>> = BTreeMap::new();
                for (name, inbound) in &model.inbound {
                    if let Some(app) = model.apps.get(&inbound.spec.app) {
                        out.entry(&inbound.spec.service_name)
                            .or_default()
                            .entry(&app.namespace)
                            .or_default()
                            .push(name);
                    }
                }
                out
            })
            .get(service)
            .and_then(|namespaces| namespaces.get(namespace))
            .map_or(&[], Vec::as_slice)
    }

    /// `IntentSetModel::routes_to_inbound`, looked up.
    fn routes_to_inbound(&self, name: &Name) -> &[(&'m Name, &'m RouteIntentSpec)] {
        let model = self.model;
        self.routes_to_inbound
            .get_or_init(|| routes_by(model, |r| r.target.inbound_intent.as_ref()))
            .get(name)
            .map_or(&[], Vec::as_slice)
    }

    /// `IntentSetModel::routes_to_outbound`, looked up.
    fn routes_to_outbound(&self, name: &Name) -> &[(&'m Name, &'m RouteIntentSpec)] {
        let model = self.model;
        self.routes_to_outbound
            .get_or_init(|| routes_by(model, |r| r.target.outbound_intent.as_ref()))
            .get(name)
            .map_or(&[], Vec::as_slice)
    }

    /// Route intents with exactly this target.
    fn routes_with_target(&self, target: &RouteTarget) -> &[(&'m Name, &'m RouteIntentSpec)] {
        let model = self.model;
        self.routes_by_target
            .get_or_init(|| routes_by(model, |r| Some(&r.target)))
            .get(target)
            .map_or(&[], Vec::as_slice)
    }

    fn outbound_hosts(&self) -> &HostIndex<'m> {
        let model = self.model;
        self.outbound_hosts.get_or_init(|| HostIndex::new(model))
    }
}

/// An app's placement names only clusters that exist.
pub fn check_app(app: &AppSpec, clusters: &BTreeMap<Name, ClusterSpec>) -> Vec<FieldError> {
    let mut v = Violations::new();
    app.check(&mut v);
    if let Some(names) = &app.placement.clusters {
        for (i, name) in names.iter().enumerate() {
            v.check(
                !clusters.contains_key(name),
                format!("/spec/placement/clusters/{i}"),
                format!("cluster \"{name}\" does not exist"),
            );
        }
    }
    v.into_result().err().unwrap_or_default()
}

fn app_exists(model: &IntentSetModel, app: &Name, field: &str, v: &mut Violations) {
    v.check(
        !model.apps.contains_key(app),
        field,
        format!(
            "app \"{app}\" does not exist in composite app \"{}\" version \"{}\"",
            model.address.composite_app, model.address.version
        ),
    );
}

/// An inbound intent: its app exists, and changing it keeps its clients, security intents and
/// routes valid.
pub fn check_inbound(model: &IntentSetModel, name: &Name) -> Vec<FieldError> {
    SetRules::new(model).check_inbound(name)
}

/// A client: its app exists, and it fits its inbound intent.
pub fn check_client(model: &IntentSetModel, inbound: &Name, name: &Name) -> Vec<FieldError> {
    SetRules::new(model).check_client(inbound, name)
}

/// A security intent: methods and paths only on HTTP services.
pub fn check_security_intent(
    model: &IntentSetModel,
    inbound: &Name,
    client: &Name,
    name: &Name,
) -> Vec<FieldError> {
    SetRules::new(model).check_security_intent(inbound, client, name)
}

/// An outbound intent: its client apps exist, and changing it keeps routes valid.
pub fn check_outbound(model: &IntentSetModel, name: &Name) -> Vec<FieldError> {
    SetRules::new(model).check_outbound(name)
}

/// A route intent: its target exists and has the subsets and protocol its rules need, and it
/// does not conflict with another route intent on the same host.
pub fn check_route(model: &IntentSetModel, name: &Name) -> Vec<FieldError> {
    SetRules::new(model).check_route(name)
}

impl SetRules<'_> {
    /// `check_inbound`.
    pub fn check_inbound(&self, name: &Name) -> Vec<FieldError> {
        let model = self.model;
        let mut v = Violations::new();
        let Some(inbound) = model.inbound.get(name) else {
            return Vec::new();
        };
        let spec = &inbound.spec;
        spec.check(&mut v);
        app_exists(model, &spec.app, "/spec/app", &mut v);
        // Two intents for one Kubernetes Service would render conflicting objects for its host.
        if let Some(app) = model.apps.get(&spec.app) {
            for other_name in self.same_service(&spec.service_name, &app.namespace) {
                if *other_name != name {
                    v.add(
                        "/spec/serviceName",
                        format!(
                            "inbound intent \"{other_name}\" already exposes service {}.{} in this set",
                            spec.service_name, app.namespace
                        ),
                    );
                }
            }
        }
        if !spec.protocol.is_http() {
            for (client_name, client) in &inbound.clients {
                for (rule_name, rule) in &client.security_intents {
                    if rule.uses_http_fields() {
                        v.add(
                            "/spec/protocol",
                            format!(
                                "{} carries no HTTP, but security intent \"{rule_name}\" of client \"{client_name}\" matches methods or paths",
                                spec.protocol.as_str()
                            ),
                        );
                    }
                }
            }
        }
        for (client_name, client) in &inbound.clients {
            let mut cv = Violations::new();
            client.spec.check_against(spec, &mut cv);
            for e in cv.into_result().err().unwrap_or_default() {
                v.add(
                    "/spec",
                    format!(
                        "client \"{client_name}\" would become invalid: {} {}",
                        e.field, e.message
                    ),
                );
            }
        }
        let subsets: Vec<&Name> = spec.subsets.iter().map(|s| &s.name).collect();
        for (route_name, route) in self.routes_to_inbound(name) {
            check_subsets_still_defined(&subsets, route_name, route, &mut v);
            if !route.http.is_empty() && !spec.protocol.is_http() {
                v.add(
                    "/spec/protocol",
                    format!(
                        "route intent \"{route_name}\" has HTTP rules, which need HTTP, HTTP2 or GRPC"
                    ),
                );
            }
            if route.gateways.contains(&RouteGateway::Ingress) && spec.external_access.is_none() {
                v.add(
                    "/spec/externalAccess",
                    format!(
                        "route intent \"{route_name}\" routes at the ingress gateway, which needs externalAccess"
                    ),
                );
            }
        }
        v.into_result().err().unwrap_or_default()
    }

    /// `check_client`.
    pub fn check_client(&self, inbound: &Name, name: &Name) -> Vec<FieldError> {
        let model = self.model;
        let mut v = Violations::new();
        let Some(parent) = model.inbound.get(inbound) else {
            return Vec::new();
        };
        let Some(client) = parent.clients.get(name) else {
            return Vec::new();
        };
        app_exists(model, &client.spec.app, "/spec/app", &mut v);
        client.spec.check_against(&parent.spec, &mut v);
        v.into_result().err().unwrap_or_default()
    }

    /// `check_security_intent`.
    pub fn check_security_intent(
        &self,
        inbound: &Name,
        client: &Name,
        name: &Name,
    ) -> Vec<FieldError> {
        let mut v = Violations::new();
        let Some(parent) = self.model.inbound.get(inbound) else {
            return Vec::new();
        };
        let Some(spec) = parent
            .clients
            .get(client)
            .and_then(|c| c.security_intents.get(name))
        else {
            return Vec::new();
        };
        spec.check(&mut v);
        spec.check_against(&parent.spec, &mut v);
        v.into_result().err().unwrap_or_default()
    }

    /// `check_outbound`.
    pub fn check_outbound(&self, name: &Name) -> Vec<FieldError> {
        let model = self.model;
        let mut v = Violations::new();
        let Some(spec) = model.outbound.get(name) else {
            return Vec::new();
        };
        spec.check(&mut v);
        for (i, host) in spec.hosts.iter().enumerate() {
            for other_name in self.outbound_hosts().overlapping(host) {
                if other_name != name {
                    v.add(
                        format!("/spec/hosts/{i}"),
                        format!("overlaps the hosts of outbound intent \"{other_name}\"; one host belongs to one outbound intent"),
                    );
                }
            }
        }
        for (i, app) in spec.clients.iter().enumerate() {
            app_exists(model, app, &format!("/spec/clients/{i}"), &mut v);
        }
        let subsets: Vec<&Name> = spec.subsets.iter().map(|s| &s.name).collect();
        for (route_name, route) in self.routes_to_outbound(name) {
            check_subsets_still_defined(&subsets, route_name, route, &mut v);
            check_route_fits_outbound(route, spec, &mut v, Some(route_name));
        }
        v.into_result().err().unwrap_or_default()
    }

    /// `check_route`.
    pub fn check_route(&self, name: &Name) -> Vec<FieldError> {
        let model = self.model;
        let mut v = Violations::new();
        let Some(route) = model.routes.get(name) else {
            return Vec::new();
        };
        route.check(&mut v);
        if !v.is_empty() {
            return v.into_result().err().unwrap_or_default();
        }
        if let Some(target) = &route.target.inbound_intent {
            match model.inbound.get(target) {
                None => v.add(
                    "/spec/target/inboundIntent",
                    format!(
                        "inbound intent \"{target}\" does not exist in this traffic intent set"
                    ),
                ),
                Some(inbound) => {
                    check_named_subsets(
                        route,
                        &inbound
                            .spec
                            .subsets
                            .iter()
                            .map(|s| &s.name)
                            .collect::<Vec<_>>(),
                        "inbound",
                        target,
                        &mut v,
                    );
                    check_route_fits_inbound(route, &inbound.spec, &mut v);
                }
            }
        }
        if let Some(target) = &route.target.outbound_intent {
            match model.outbound.get(target) {
                None => v.add(
                    "/spec/target/outboundIntent",
                    format!(
                        "outbound intent \"{target}\" does not exist in this traffic intent set"
                    ),
                ),
                Some(outbound) => {
                    check_named_subsets(
                        route,
                        &outbound.subsets.iter().map(|s| &s.name).collect::<Vec<_>>(),
                        "outbound",
                        target,
                        &mut v,
                    );
                    check_route_fits_outbound(route, outbound, &mut v, None);
                    for (i, g) in route.gateways.iter().enumerate() {
                        v.check(
                            *g == RouteGateway::Ingress,
                            format!("/spec/gateways/{i}"),
                            "ingress routing applies to inbound intents with externalAccess, not to outbound intents",
                        );
                    }
                }
            }
        }
        check_conflicts(self.routes_with_target(&route.target), name, route, &mut v);
        v.into_result().err().unwrap_or_default()
    }
}

fn check_subsets_still_defined(
    defined: &[&Name],
    route_name: &Name,
    route: &RouteIntentSpec,
    v: &mut Violations,
) {
    for (field, subset) in route.named_subsets() {
        v.check(
            !defined.contains(&subset),
            "/spec/subsets",
            format!("subset \"{subset}\" is used by route intent \"{route_name}\" ({field})"),
        );
    }
}

/// How a route intent's rules fit an outbound intent's ports. When `route_name` is given the
/// violations are reported on the outbound intent (it changed), else on the route.
fn check_route_fits_outbound(
    route: &RouteIntentSpec,
    target: &OutboundIntentSpec,
    v: &mut Violations,
    route_name: Option<&Name>,
) {
    let (http_field, tcp_field, tls_field, suffix) = match route_name {
        Some(r) => (
            "/spec/ports",
            "/spec/ports",
            "/spec/ports",
            format!(" (route intent \"{r}\" needs it)"),
        ),
        None => ("/spec/http", "/spec/tcp", "/spec/tls", String::new()),
    };
    let has = |f: fn(&super::outbound::ServicePort) -> bool| target.ports.iter().any(f);
    v.check(
        !route.http.is_empty() && !has(|p| p.protocol.is_http()),
        http_field,
        format!("HTTP rules need an HTTP, HTTP2 or GRPC port on the outbound intent{suffix}"),
    );
    v.check(
        !route.tls.is_empty() && !has(|p| p.protocol.is_tls()),
        tls_field,
        format!("TLS rules need a TLS or HTTPS port on the outbound intent{suffix}"),
    );
    v.check(
        !route.tcp.is_empty() && !has(|p| p.protocol == super::outbound::PortProtocol::Tcp),
        tcp_field,
        format!("TCP rules need a TCP port on the outbound intent{suffix}"),
    );
}

fn check_named_subsets(
    route: &RouteIntentSpec,
    defined: &[&Name],
    kind: &str,
    target: &Name,
    v: &mut Violations,
) {
    for (field, subset) in route.named_subsets() {
        v.check(
            !defined.contains(&subset),
            field,
            format!(
                "subset \"{subset}\" is not defined on {kind} intent \"{target}\" (defined: {})",
                if defined.is_empty() {
                    "none".to_string()
                } else {
                    defined
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        );
    }
}

fn check_route_fits_inbound(
    route: &RouteIntentSpec,
    target: &InboundIntentSpec,
    v: &mut Violations,
) {
    use super::inbound::Protocol;
    v.check(
        !route.http.is_empty() && !target.protocol.is_http(),
        "/spec/http",
        format!(
            "HTTP rules need an HTTP, HTTP2 or GRPC service; inbound intent's protocol is {}",
            target.protocol.as_str()
        ),
    );
    v.check(
        !route.tcp.is_empty() && target.protocol != Protocol::Tcp,
        "/spec/tcp",
        format!(
            "TCP rules need a TCP service; inbound intent's protocol is {}",
            target.protocol.as_str()
        ),
    );
    v.check(
        !route.tls.is_empty() && !matches!(target.protocol, Protocol::Tls | Protocol::Https),
        "/spec/tls",
        format!(
            "TLS rules need a TLS or HTTPS service; inbound intent's protocol is {}",
            target.protocol.as_str()
        ),
    );
    if let Some(i) = route
        .gateways
        .iter()
        .position(|g| *g == RouteGateway::Ingress)
    {
        v.check(
            target.external_access.is_none(),
            format!("/spec/gateways/{i}"),
            "ingress routing needs the inbound intent's externalAccess (the hosts the gateway serves)",
        );
    }
}

/// Two route intents on one host and gateway are merged into one VirtualService. They conflict
/// when both have a rule that takes every request (one would hide the other), or rules with the
/// same match.
fn check_conflicts(
    same_target: &[(&Name, &RouteIntentSpec)],
    name: &Name,
    route: &RouteIntentSpec,
    v: &mut Violations,
) {
    for &(other_name, other) in same_target {
        if other_name == name {
            continue;
        }
        let shared: Vec<&RouteGateway> = route
            .gateways
            .iter()
            .filter(|g| other.gateways.contains(g))
            .collect();
        let Some(gateway) = shared.first() else {
            continue;
        };
        let gateway = match gateway {
            RouteGateway::Mesh => "mesh",
            RouteGateway::Ingress => "ingress",
        };
        let catch_all = |r: &RouteIntentSpec| r.http.iter().any(|h| h.is_catch_all());
        if catch_all(route) && catch_all(other) {
            v.add(
                "/spec/http",
                format!(
                    "conflicts with route intent \"{other_name}\" on the same target (gateway {gateway}): both have an HTTP rule without match, and only one can take the remaining requests"
                ),
            );
        }
        for (i, rule) in route.http.iter().enumerate() {
            if rule.is_catch_all() {
                continue;
            }
            if let Some(j) = other.http.iter().position(|o| o.matches == rule.matches) {
                v.add(
                    format!("/spec/http/{i}/match"),
                    format!(
                        "conflicts with route intent \"{other_name}\" (/spec/http/{j}/match) on the same target (gateway {gateway}): the same match"
                    ),
                );
            }
        }
        for (field, mine, theirs) in [
            ("tcp", &route.tcp, &other.tcp),
            ("tls", &route.tls, &other.tls),
        ] {
            for (i, rule) in mine.iter().enumerate() {
                if let Some(j) = theirs.iter().position(|o| o.matches == rule.matches) {
                    v.add(
                        format!("/spec/{field}/{i}/match"),
                        format!(
                            "conflicts with route intent \"{other_name}\" (/spec/{field}/{j}/match) on the same target: the same match"
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::SetAddress;

    fn model() -> IntentSetModel {
        IntentSetModel::new(SetAddress {
            project: "p".parse().unwrap(),
            composite_app: "c".parse().unwrap(),
            version: "v1".parse().unwrap(),
            set: "s".parse().unwrap(),
        })
    }

    fn outbound(hosts: &[&str]) -> OutboundIntentSpec {
        serde_json::from_value(serde_json::json!({
            "hosts": hosts,
            "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}],
            "resolution": "NONE",
        }))
        .unwrap()
    }

    /// The overlaps as the rule once found them: every host against every host of every other
    /// outbound intent.
    fn pairwise_overlaps(model: &IntentSetModel, name: &Name) -> Vec<FieldError> {
        let spec = &model.outbound[name];
        let mut v = Violations::new();
        for (i, host) in spec.hosts.iter().enumerate() {
            for (other_name, other) in model.outbound.iter().filter(|(n, _)| *n != name) {
                let overlap = other
                    .hosts
                    .iter()
                    .any(|h| h == host || h.covers(host.as_str()) || host.covers(h.as_str()));
                v.check(
                    overlap,
                    format!("/spec/hosts/{i}"),
                    format!("overlaps the hosts of outbound intent \"{other_name}\"; one host belongs to one outbound intent"),
                );
            }
        }
        v.into_result().err().unwrap_or_default()
    }

    #[test]
    fn host_overlaps_are_those_of_a_pairwise_comparison() {
        let mut model = model();
        let hosts: &[&[&str]] = &[
            &["api.example.org"],
            &["*.example.org"],
            &["*.a.example.org", "x.example.com"],
            &["b.a.example.org"],
            &["example.org"],
            &["aexample.org", "api.example.org"],
            &["*.org"],
            &["*.com"],
            &["a.example.org"],
            &["localhost"],
            &["localhost", "*.b.a.example.org"],
        ];
        for (i, hosts) in hosts.iter().enumerate() {
            model
                .outbound
                .insert(format!("o{i}").parse().unwrap(), outbound(hosts));
        }
        let rules = SetRules::new(&model);
        let mut found = 0;
        for name in model.outbound.keys() {
            let overlaps: Vec<FieldError> = rules
                .check_outbound(name)
                .into_iter()
                .filter(|e| e.message.starts_with("overlaps"))
                .collect();
            assert_eq!(overlaps, pairwise_overlaps(&model, name), "{name}");
            assert_eq!(check_outbound(&model, name), rules.check_outbound(name));
            found += overlaps.len();
        }
        assert!(found > 20, "the case has overlaps of every kind ({found})");
    }
}
