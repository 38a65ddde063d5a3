//! SPEC section 2, route intents: one VirtualService per target host and gateway, rules in the
//! given order, merged with what the generator emits for the same host.
//!
//! Route intents on one target and gateway are merged in name order, the one whose HTTP rules
//! end in a rule without match last (write-time checks allow only one, and only as its last
//! rule). Unless such a rule exists, a default route to the whole host follows the rules: an HTTP
//! VirtualService without a matching rule would answer 404.
//!
//! Where the rules land:
//! - inbound intent, `mesh`: a VirtualService `<intent>-routes` on every cluster that runs the
//!   service, and in the namespace of clients that reach it in mode `direct`. Clients in mode
//!   `egressGateway` send TCP to their egress gateway; HTTP rules cannot apply there, which the
//!   VirtualService `<intent>-to-egress` notes in the annotation `meshintent.io/routes-not-applied`;
//! - inbound intent, `ingress`: the rules replace the single route of `<intent>-ingress`;
//! - outbound intent through the egress gateway: `http` and `tcp` rules ahead of the gateway
//!   VirtualService's routes (where subsets are chosen); `tls` rules ahead of the sidecar's
//!   `<intent>-to-egress`, whose destinations become egress gateway subsets (the application's
//!   TLS reaches the gateway inside mutual TLS, so only the sidecar sees its SNI); without a
//!   gateway, ahead of the mesh VirtualService `<intent>-routes`.

use std::collections::BTreeMap;

use crate::domain::model::IntentSetModel;
use crate::domain::names::Name;
use crate::domain::outbound::OutboundIntentSpec;
use crate::domain::route::{
    HttpMatch, HttpRouteRule, L4RouteRule, RouteGateway, RouteIntentSpec, RouteTarget, StringMatch,
    WeightedSubset,
};
use crate::istio::{
    Destination, FaultAbort, FaultDelay, HttpFaultInjection, HttpMatchRequest, HttpRetry,
    HttpRoute, HttpRouteDestination, L4MatchAttributes, Percent, PortSelector, RouteDestination,
    TcpRoute, TlsMatchAttributes, TlsRoute, VirtualServiceSpec,
};

use super::emit::{Emitter, RouteSlot, export_to};
use super::naming::object_name;
use super::outbound::{self, plan_outbound};
use super::plan::SetPlan;
use super::topology::{InboundPlan, Reach};

pub const COLLECTION: &str = "route-intents";
pub const ANNOTATION_ROUTES: &str = "meshintent.io/route-intents";
pub const ANNOTATION_NOT_APPLIED: &str = "meshintent.io/routes-not-applied";

type Group<'m> = Vec<(&'m Name, &'m RouteIntentSpec)>;

/// Route intents grouped by target and gateway, each group in merge order.
fn groups(model: &IntentSetModel) -> BTreeMap<(RouteTarget, RouteGateway), Group<'_>> {
    let mut out: BTreeMap<(RouteTarget, RouteGateway), Group> = BTreeMap::new();
    for (name, route) in &model.routes {
        for gateway in &route.gateways {
            out.entry((route.target.clone(), *gateway))
                .or_default()
                .push((name, route));
        }
    }
    for group in out.values_mut() {
        // Stable: names stay in order; the one with a catch-all moves last.
        group.sort_by_key(|(name, r)| (r.http.iter().any(HttpRouteRule::is_catch_all), *name));
    }
    out
}

fn string_match(m: &StringMatch) -> crate::istio::StringMatch {
    crate::istio::StringMatch {
        exact: m.exact.clone(),
        prefix: m.prefix.clone(),
        regex: m.regex.clone(),
    }
}

fn http_match(m: &HttpMatch) -> HttpMatchRequest {
    HttpMatchRequest {
        uri: m.uri.as_ref().map(string_match),
        method: m.method.as_ref().map(string_match),
        headers: m
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), string_match(v)))
            .collect(),
        query_params: m
            .query_params
            .iter()
            .map(|(k, v)| (k.to_string(), string_match(v)))
            .collect(),
        ..HttpMatchRequest::default()
    }
}

fn destination(host: &str, subset: Option<&Name>, port: Option<u32>) -> Destination {
    Destination {
        host: host.to_owned(),
        subset: subset.map(|s| s.to_string()),
        port: port.map(|number| PortSelector { number }),
    }
}

fn weight(d: &WeightedSubset) -> Option<i32> {
    d.weight.map(|w| w.get() as i32)
}

fn http_route(
    route: &Name,
    index: usize,
    rule: &HttpRouteRule,
    host: &str,
    port: Option<u32>,
) -> HttpRoute {
    let label = rule
        .name
        .as_ref()
        .map_or_else(|| index.to_string(), |n| n.to_string());
    HttpRoute {
        name: Some(format!("{route}-{label}")),
        matches: rule.matches.iter().map(http_match).collect(),
        route: rule
            .route
            .iter()
            .map(|d| HttpRouteDestination {
                destination: destination(host, d.subset.as_ref(), port),
                weight: weight(d),
                headers: None,
            })
            .collect(),
        timeout: rule.timeout.map(|t| t.to_string()),
        retries: rule.retries.as_ref().map(|r| HttpRetry {
            attempts: Some(r.attempts.get() as i32),
            per_try_timeout: r.per_try_timeout.map(|t| t.to_string()),
            retry_on: r.retry_on.as_ref().map(|o| o.to_string()),
            ..HttpRetry::default()
        }),
        fault: rule.fault.as_ref().map(|f| HttpFaultInjection {
            delay: f.delay.as_ref().map(|d| FaultDelay {
                fixed_delay: Some(d.fixed_delay.to_string()),
                percentage: Some(Percent {
                    value: d.percentage.get(),
                }),
                ..FaultDelay::default()
            }),
            abort: f.abort.as_ref().map(|a| FaultAbort {
                http_status: Some(i32::from(a.http_status.get())),
                percentage: Some(Percent {
                    value: a.percentage.get(),
                }),
                ..FaultAbort::default()
            }),
        }),
        mirror: rule
            .mirror
            .as_ref()
            .map(|m| destination(host, m.subset.as_ref(), port)),
        mirror_percentage: rule
            .mirror
            .as_ref()
            .and_then(|m| m.percentage)
            .map(|p| Percent { value: p.get() }),
        ..HttpRoute::default()
    }
}

fn l4_route(
    rule: &L4RouteRule,
    host: &str,
    port: Option<u32>,
) -> (Vec<RouteDestination>, Option<u32>) {
    let match_port = rule
        .matches
        .as_ref()
        .and_then(|m| m.port)
        .map(|p| u32::from(p.get()));
    let to_port = match_port.or(port);
    let route = rule
        .route
        .iter()
        .map(|d| RouteDestination {
            destination: destination(host, d.subset.as_ref(), to_port),
            weight: weight(d),
        })
        .collect();
    (route, match_port)
}

/// The merged rules of a group as VirtualService routes, with `host` (and `port`) as destination.
#[derive(Clone)]
struct Rules {
    http: Vec<HttpRoute>,
    tcp: Vec<TcpRoute>,
    tls: Vec<TlsRoute>,
    catch_all: bool,
    names: Vec<String>,
}

fn rules(group: &Group, host: &str, port: Option<u32>) -> Rules {
    let mut out = Rules {
        http: Vec::new(),
        tcp: Vec::new(),
        tls: Vec::new(),
        catch_all: false,
        names: Vec::new(),
    };
    for (name, route) in group {
        out.names.push(name.to_string());
        for (i, rule) in route.http.iter().enumerate() {
            out.catch_all |= rule.is_catch_all();
            out.http.push(http_route(name, i, rule, host, port));
        }
        for rule in &route.tcp {
            let (route, match_port) = l4_route(rule, host, port);
            out.tcp.push(TcpRoute {
                matches: match_port
                    .map(|p| {
                        vec![L4MatchAttributes {
                            port: Some(p),
                            ..L4MatchAttributes::default()
                        }]
                    })
                    .unwrap_or_default(),
                route,
            });
        }
        for rule in &route.tls {
            let (route, match_port) = l4_route(rule, host, port);
            let sni_hosts = rule
                .matches
                .as_ref()
                .map(|m| m.sni_hosts.iter().map(|h| h.to_string()).collect())
                .unwrap_or_default();
            out.tls.push(TlsRoute {
                matches: vec![TlsMatchAttributes {
                    sni_hosts,
                    port: match_port,
                    ..TlsMatchAttributes::default()
                }],
                route,
            });
        }
    }
    out
}

/// At a gateway every match is bound to the VirtualService's Gateways (a rule without match gets
/// a match for them).
fn bind_to_gateways(rules: &mut Rules, gateways: &[String]) {
    if gateways.is_empty() {
        return;
    }
    for r in &mut rules.http {
        if r.matches.is_empty() {
            r.matches.push(HttpMatchRequest::default());
        }
        r.matches
            .iter_mut()
            .for_each(|m| m.gateways = gateways.to_vec());
    }
    for r in &mut rules.tls {
        r.matches
            .iter_mut()
            .for_each(|m| m.gateways = gateways.to_vec());
    }
    for r in &mut rules.tcp {
        if r.matches.is_empty() {
            r.matches.push(L4MatchAttributes::default());
        }
        r.matches
            .iter_mut()
            .for_each(|m| m.gateways = gateways.to_vec());
    }
}

/// Puts the group's rules ahead of a VirtualService's own routes.
fn prepend(vs: &mut crate::istio::Typed<VirtualServiceSpec>, rules: &Rules) {
    vs.spec.http.splice(0..0, rules.http.iter().cloned());
    vs.spec.tcp.splice(0..0, rules.tcp.iter().cloned());
    vs.spec.tls.splice(0..0, rules.tls.iter().cloned());
    vs.metadata
        .annotations
        .insert(ANNOTATION_ROUTES.into(), rules.names.join(","));
}

/// The routes pass: the set's plans come in, and the VirtualServices earlier passes emitted are
/// reached through the `RouteSlot`s they registered.
pub fn emit(plan: &SetPlan, out: &mut Emitter) {
    for ((target, gateway), group) in groups(plan.model) {
        if let Some(inbound) = &target.inbound_intent {
            // An intent that could not be planned is reported by the plan.
            if let Some(inbound_plan) = plan.inbound.get(inbound) {
                inbound_routes(inbound_plan, inbound, gateway, &group, out);
            }
        } else if let Some(outbound) = &target.outbound_intent {
            outbound_routes(plan.model, outbound, &group, out);
        }
    }
}

fn inbound_routes(
    plan: &InboundPlan,
    intent: &Name,
    gateway: RouteGateway,
    group: &Group,
    out: &mut Emitter,
) {
    let host = plan.host.to_string();
    let port = Some(u32::from(plan.spec.port.get()));
    let rules = rules(group, &host, port);
    let url = out.intent_url(super::inbound::COLLECTION, intent);
    let default_http = HttpRoute {
        route: vec![HttpRouteDestination {
            destination: destination(&host, None, port),
            weight: None,
            headers: None,
        }],
        ..HttpRoute::default()
    };
    match gateway {
        RouteGateway::Mesh => {
            let mut places: Vec<(&Name, &Name, bool)> = plan
                .servers
                .iter()
                .map(|s| (s.name, plan.namespace, false))
                .collect();
            places.extend(
                plan.clients
                    .iter()
                    .filter(|c| c.reach == Reach::Direct)
                    .map(|c| (c.site.name, c.namespace, true)),
            );
            places.sort();
            places.dedup();
            for (cluster, namespace, local) in places {
                // A client's copy serves its own namespace; the service's copy the namespaces of
                // the clients on that cluster and `accessNamespaces`.
                let export_to = if local {
                    vec![".".into()]
                } else {
                    export_to(
                        plan.namespace.as_str(),
                        plan.clients
                            .iter()
                            .filter(|c| c.reach == Reach::Local && c.site.name == cluster)
                            .map(|c| c.namespace.as_str())
                            .chain(plan.spec.access_namespaces.iter().map(|n| n.as_str())),
                    )
                };
                let mut spec = VirtualServiceSpec {
                    hosts: vec![host.clone()],
                    http: rules.http.clone(),
                    tcp: rules.tcp.clone(),
                    tls: rules.tls.clone(),
                    export_to,
                    ..VirtualServiceSpec::default()
                };
                if !rules.http.is_empty() && !rules.catch_all {
                    spec.http.push(default_http.clone());
                }
                let mut meta = out.meta(
                    cluster,
                    object_name(&[intent.as_str(), "routes"]),
                    namespace.as_str(),
                    &url,
                );
                meta.annotations
                    .insert(ANNOTATION_ROUTES.into(), rules.names.join(","));
                out.push(cluster, meta, spec);
            }
            for client in plan
                .clients
                .iter()
                .filter(|c| c.reach == Reach::EgressGateway)
            {
                let slot = RouteSlot::InboundToEgress {
                    intent: intent.clone(),
                    cluster: client.site.name.clone(),
                    namespace: client.namespace.to_string(),
                };
                if let Some(vs) = out.route_slot_mut(&slot) {
                    vs.metadata
                        .annotations
                        .insert(ANNOTATION_NOT_APPLIED.into(), rules.names.join(","));
                }
            }
        }
        RouteGateway::Ingress => {
            for server in &plan.servers {
                let slot = RouteSlot::InboundIngress {
                    intent: intent.clone(),
                    cluster: server.name.clone(),
                };
                if let Some(vs) = out.route_slot_mut(&slot) {
                    if !rules.http.is_empty() {
                        let mut http = rules.http.clone();
                        if !rules.catch_all {
                            http.append(&mut vs.spec.http);
                        }
                        vs.spec.http = http;
                    }
                    if !rules.tcp.is_empty() {
                        vs.spec.tcp.splice(0..0, rules.tcp.iter().cloned());
                    }
                    vs.metadata
                        .annotations
                        .insert(ANNOTATION_ROUTES.into(), rules.names.join(","));
                }
            }
        }
    }
}

fn outbound_routes(model: &IntentSetModel, intent: &Name, group: &Group, out: &mut Emitter) {
    let plan = plan_outbound(model, intent);
    let host = plan.spec.hosts[0].to_string();
    let mut rules = rules(group, &host, outbound::http_target_port(plan.spec));
    let url = out.intent_url(outbound::COLLECTION, intent);
    let through_egress = plan.spec.egress_gateway;
    let name = outbound::route_vs_name(intent, through_egress);
    // Through the egress gateway the application's TLS arrives there inside the sidecar's mutual
    // TLS, so `tls` rules apply at the sidecar: each picks egress gateway subsets.
    let tls_at_sidecar = through_egress && !std::mem::take(&mut rules.tls).is_empty();
    for (cluster, site) in &plan.sites {
        if tls_at_sidecar {
            let egress = site.site.spec.istio.egress_gateway.service.as_str();
            let here = to_egress_tls_rules(group, intent, egress, plan.spec);
            for namespace in &site.namespaces {
                let slot = RouteSlot::OutboundToEgress {
                    intent: intent.clone(),
                    cluster: (*cluster).clone(),
                    namespace: namespace.to_string(),
                };
                if let Some(vs) = out.route_slot_mut(&slot) {
                    vs.spec.tls.splice(0..0, here.iter().cloned());
                    vs.metadata
                        .annotations
                        .insert(ANNOTATION_ROUTES.into(), rules.names.join(","));
                }
            }
        }
        if through_egress && rules.http.is_empty() && rules.tcp.is_empty() {
            continue;
        }
        let namespaces: Vec<&str> = if through_egress {
            vec![site.site.spec.istio.egress_gateway.namespace.as_str()]
        } else {
            site.namespaces.iter().map(|n| n.as_str()).collect()
        };
        for namespace in namespaces {
            let slot = RouteSlot::Outbound {
                intent: intent.clone(),
                cluster: (*cluster).clone(),
                namespace: namespace.to_owned(),
            };
            if out.route_slot_mut(&slot).is_none() {
                // Without an egress gateway and without origination there is no mesh
                // VirtualService yet: start from the default routes.
                let meta = out.meta(cluster, name.clone(), namespace, &url);
                let routes = outbound::default_routes(plan.spec);
                out.push_route_slot(slot.clone(), cluster, meta, routes);
            }
            if let Some(vs) = out.route_slot_mut(&slot) {
                let mut here = rules.clone();
                bind_to_gateways(&mut here, &vs.spec.gateways);
                if rules.catch_all {
                    vs.spec.http.clear();
                }
                prepend(vs, &here);
            }
        }
    }
}

/// `tls` rules of route intents at the sidecar of an outbound intent routed through the egress
/// gateway: each destination becomes the egress gateway subset of the intent's subset (or of the
/// whole host), on the port the rule matches; a rule without a port applies to every TLS port.
fn to_egress_tls_rules(
    group: &Group,
    intent: &Name,
    egress: &str,
    spec: &OutboundIntentSpec,
) -> Vec<TlsRoute> {
    let mut out = Vec::new();
    for rule in group.iter().flat_map(|(_, route)| &route.tls) {
        let ports: Vec<u32> = match rule.matches.as_ref().and_then(|m| m.port) {
            Some(p) => vec![u32::from(p.get())],
            None => outbound::passthrough_ports(spec),
        };
        let sni_hosts: Vec<String> = rule
            .matches
            .as_ref()
            .map(|m| m.sni_hosts.iter().map(|h| h.to_string()).collect())
            .unwrap_or_default();
        for port in ports {
            out.push(TlsRoute {
                matches: vec![TlsMatchAttributes {
                    sni_hosts: sni_hosts.clone(),
                    port: Some(port),
                    ..TlsMatchAttributes::default()
                }],
                route: rule
                    .route
                    .iter()
                    .map(|d| RouteDestination {
                        destination: Destination {
                            host: egress.to_owned(),
                            subset: Some(match &d.subset {
                                Some(s) => outbound::egress_subset_name(intent, s),
                                None => intent.to_string(),
                            }),
                            port: Some(PortSelector { number: port }),
                        },
                        weight: weight(d),
                    })
                    .collect(),
            });
        }
    }
    out
}
