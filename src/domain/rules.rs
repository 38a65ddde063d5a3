//! Rules between resources, checked when a resource is written: references that must exist,
//! and rules that depend on another resource (a parent's protocol, a target's subsets).
//!
//! Each function checks one resource as it sits in an `IntentSetModel` (the write applied) and
//! returns violations with pointers relative to that resource (`/spec/...`). The API calls the
//! function of the written resource; the intent document calls all of them.

use std::collections::BTreeMap;

use super::app::AppSpec;
use super::cluster::ClusterSpec;
use super::inbound::InboundIntentSpec;
use super::model::IntentSetModel;
use super::names::Name;
use super::outbound::OutboundIntentSpec;
use super::route::{RouteGateway, RouteIntentSpec};
use super::violations::{FieldError, Violations};

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
    let mut v = Violations::new();
    let Some(inbound) = model.inbound.get(name) else {
        return Vec::new();
    };
    let spec = &inbound.spec;
    spec.check(&mut v);
    app_exists(model, &spec.app, "/spec/app", &mut v);
    // Two intents for one Kubernetes Service would render conflicting objects for its host.
    if let Some(app) = model.apps.get(&spec.app) {
        for (other_name, other) in &model.inbound {
            let same_service = other_name != name
                && other.spec.service_name == spec.service_name
                && model
                    .apps
                    .get(&other.spec.app)
                    .is_some_and(|a| a.namespace == app.namespace);
            v.check(
                same_service,
                "/spec/serviceName",
                format!(
                    "inbound intent \"{other_name}\" already exposes service {}.{} in this set",
                    spec.service_name, app.namespace
                ),
            );
        }
    }
    if !spec.protocol.is_http() {
        for (client_name, client) in &inbound.clients {
            for (rule_name, rule) in &client.security_intents {
                v.check(
                    rule.uses_http_fields(),
                    "/spec/protocol",
                    format!(
                        "{} carries no HTTP, but security intent \"{rule_name}\" of client \"{client_name}\" matches methods or paths",
                        spec.protocol.as_str()
                    ),
                );
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
    for (route_name, route) in model.routes_to_inbound(name) {
        check_subsets_still_defined(&subsets, route_name, route, &mut v);
        v.check(
            !route.http.is_empty() && !spec.protocol.is_http(),
            "/spec/protocol",
            format!("route intent \"{route_name}\" has HTTP rules, which need HTTP, HTTP2 or GRPC"),
        );
        v.check(
            route.gateways.contains(&RouteGateway::Ingress) && spec.external_access.is_none(),
            "/spec/externalAccess",
            format!("route intent \"{route_name}\" routes at the ingress gateway, which needs externalAccess"),
        );
    }
    v.into_result().err().unwrap_or_default()
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

/// A client: its app exists, and it fits its inbound intent.
pub fn check_client(model: &IntentSetModel, inbound: &Name, name: &Name) -> Vec<FieldError> {
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

/// A security intent: methods and paths only on HTTP services.
pub fn check_security_intent(
    model: &IntentSetModel,
    inbound: &Name,
    client: &Name,
    name: &Name,
) -> Vec<FieldError> {
    let mut v = Violations::new();
    let Some(parent) = model.inbound.get(inbound) else {
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

/// An outbound intent: its client apps exist, and changing it keeps routes valid.
pub fn check_outbound(model: &IntentSetModel, name: &Name) -> Vec<FieldError> {
    let mut v = Violations::new();
    let Some(spec) = model.outbound.get(name) else {
        return Vec::new();
    };
    spec.check(&mut v);
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
    for (i, app) in spec.clients.iter().enumerate() {
        app_exists(model, app, &format!("/spec/clients/{i}"), &mut v);
    }
    let subsets: Vec<&Name> = spec.subsets.iter().map(|s| &s.name).collect();
    for (route_name, route) in model.routes_to_outbound(name) {
        check_subsets_still_defined(&subsets, route_name, route, &mut v);
        check_route_fits_outbound(route, spec, &mut v, Some(route_name));
    }
    v.into_result().err().unwrap_or_default()
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

/// A route intent: its target exists and has the subsets and protocol its rules need, and it
/// does not conflict with another route intent on the same host.
pub fn check_route(model: &IntentSetModel, name: &Name) -> Vec<FieldError> {
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
                format!("inbound intent \"{target}\" does not exist in this traffic intent set"),
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
                format!("outbound intent \"{target}\" does not exist in this traffic intent set"),
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
    check_conflicts(model, name, route, &mut v);
    v.into_result().err().unwrap_or_default()
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
    model: &IntentSetModel,
    name: &Name,
    route: &RouteIntentSpec,
    v: &mut Violations,
) {
    for (other_name, other) in &model.routes {
        if other_name == name || other.target != route.target {
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
