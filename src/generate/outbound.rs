//! SPEC section 2, outbound intents: external services reached through the egress gateway (or
//! directly), with TLS passthrough by SNI or TLS origination, on every cluster running a client.
//!
//! Each declared port is one *leg* from the sidecar:
//! - HTTP ports: to the egress gateway with ISTIO_MUTUAL; the gateway routes HTTP and, with TLS
//!   origination, sends it to the TLS port (or the endpoints' mapped port) with SIMPLE or MUTUAL;
//! - TLS and HTTPS ports: the application's TLS passes through, routed by SNI (per subset with
//!   `sniHosts`);
//! - TCP ports: to the egress gateway with ISTIO_MUTUAL, matched by the intent's VIP.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::domain::model::IntentSetModel;
use crate::domain::names::{DnsName, Name};
use crate::domain::outbound::{
    OutboundIntentSpec, OutboundTlsMode, PortProtocol, Resolution as IntentResolution,
    ServicePort as IntentPort,
};
use crate::istio::{
    ClientTlsMode, ClientTlsSettings, Destination, DestinationRuleSpec, GatewaySpec,
    HttpMatchRequest, HttpRoute, HttpRouteDestination, L4MatchAttributes, Location, PortSelector,
    PortTrafficPolicy, Resolution, RouteDestination, Server, ServerPort, ServerTlsMode,
    ServerTlsSettings, ServiceEntrySpec, ServicePort, Subset, TcpRoute, TlsMatchAttributes,
    TlsRoute, TrafficPolicy, VirtualServiceSpec, WorkloadEntry,
};

use super::emit::{Emitter, RouteSlot};
use super::naming::object_name;
use super::topology::Site;
use super::vips::{VipNeed, VipTable};

pub const COLLECTION: &str = "outbound-intents";

/// The kind of traffic a port carries from the sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leg {
    Http,
    Passthrough,
    Tcp,
}

fn leg(port: &IntentPort) -> Leg {
    if port.protocol.is_tls() {
        Leg::Passthrough
    } else if port.protocol.is_http() {
        Leg::Http
    } else {
        Leg::Tcp
    }
}

/// Where an outbound intent is used: each cluster running one of its clients, with the
/// clients' namespaces there.
pub struct OutboundPlan<'m> {
    pub name: &'m Name,
    pub spec: &'m OutboundIntentSpec,
    pub sites: BTreeMap<&'m Name, (Site<'m>, BTreeSet<&'m Name>)>,
}

pub fn plan_outbound<'m>(model: &'m IntentSetModel, name: &'m Name) -> OutboundPlan<'m> {
    let spec = &model.outbound[name];
    let mut sites: BTreeMap<&Name, (Site, BTreeSet<&Name>)> = BTreeMap::new();
    let apps: Vec<_> = if spec.clients.is_empty() {
        model.apps.values().collect()
    } else {
        spec.clients
            .iter()
            .filter_map(|a| model.apps.get(a))
            .collect()
    };
    for app in apps {
        for cluster in model.app_clusters(app) {
            sites
                .entry(cluster)
                .or_insert_with(|| {
                    (
                        Site {
                            name: cluster,
                            spec: &model.clusters[cluster],
                        },
                        BTreeSet::new(),
                    )
                })
                .1
                .insert(&app.namespace);
        }
    }
    OutboundPlan { name, spec, sites }
}

/// The host a TCP outbound intent's VIP is keyed by.
fn vip_host(spec: &OutboundIntentSpec) -> Option<DnsName> {
    if !spec.ports.iter().any(|p| p.protocol == PortProtocol::Tcp) {
        return None;
    }
    spec.concrete_host()
        .and_then(|h| DnsName::try_from(h.to_string()).ok())
}

/// VIPs outbound intents need: TCP services on a shared port are ambiguous without one.
pub fn vip_needs(model: &IntentSetModel) -> BTreeSet<VipNeed> {
    let mut out = BTreeSet::new();
    for name in model.outbound.keys() {
        let plan = plan_outbound(model, name);
        if let Some(host) = vip_host(plan.spec) {
            for cluster in plan.sites.keys() {
                out.insert(VipNeed {
                    cluster: (*cluster).clone(),
                    host: host.clone(),
                    intent: name.clone(),
                });
            }
        }
    }
    out
}

/// Where an HTTP port's traffic goes: with TLS origination the intent's TLS port if it declares
/// one (`80` -> `443`), else the same port (the endpoints may map it, e.g. `{http: 443}`).
pub fn target_port(spec: &OutboundIntentSpec, port: &IntentPort) -> u32 {
    let originates = spec.tls.as_ref().is_some_and(|t| t.mode.originates());
    if originates
        && leg(port) == Leg::Http
        && let Some(tls) = spec.ports.iter().find(|p| p.protocol.is_tls())
    {
        return u32::from(tls.number.get());
    }
    u32::from(port.number.get())
}

/// The single HTTP port's target, for routes (None when there are several HTTP ports).
pub fn http_target_port(spec: &OutboundIntentSpec) -> Option<u32> {
    let http: Vec<_> = spec.ports.iter().filter(|p| leg(p) == Leg::Http).collect();
    match http.as_slice() {
        [one] => Some(target_port(spec, one)),
        _ => None,
    }
}

fn number(port: &IntentPort) -> u32 {
    u32::from(port.number.get())
}

fn service_entry(spec: &OutboundIntentSpec, vip: Option<&IpAddr>) -> ServiceEntrySpec {
    ServiceEntrySpec {
        hosts: spec.hosts.iter().map(|h| h.to_string()).collect(),
        addresses: vip.map(|ip| vec![ip.to_string()]).unwrap_or_default(),
        ports: spec
            .ports
            .iter()
            .map(|p| ServicePort {
                number: number(p),
                protocol: Some(p.protocol.as_str().to_owned()),
                name: p.name.to_string(),
                target_port: None,
            })
            .collect(),
        location: Some(Location::MeshExternal),
        resolution: Some(match spec.resolution {
            IntentResolution::Dns => Resolution::Dns,
            IntentResolution::Static => Resolution::Static,
            IntentResolution::None => Resolution::None,
        }),
        endpoints: spec
            .endpoints
            .iter()
            .map(|e| WorkloadEntry {
                address: Some(e.address.to_string()),
                ports: e
                    .ports
                    .iter()
                    .map(|(name, port)| (name.to_string(), u32::from(port.get())))
                    .collect(),
                labels: e.labels.to_map(),
                ..WorkloadEntry::default()
            })
            .collect(),
        export_to: vec![".".into()],
        ..ServiceEntrySpec::default()
    }
}

/// TLS the mesh originates towards the external service (None for passthrough or plain).
fn origination(spec: &OutboundIntentSpec, sni: Option<&DnsName>) -> Option<ClientTlsSettings> {
    let tls = spec.tls.as_ref().filter(|t| t.mode.originates())?;
    Some(ClientTlsSettings {
        mode: Some(if tls.mode == OutboundTlsMode::OriginateMutual {
            ClientTlsMode::Mutual
        } else {
            ClientTlsMode::Simple
        }),
        credential_name: tls.credential_name.as_ref().map(|c| c.to_string()),
        sni: sni
            .or(tls.sni.as_ref())
            .map(|s| s.to_string())
            .or_else(|| spec.concrete_host().map(|h| h.to_string())),
        subject_alt_names: tls
            .subject_alt_names
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..ClientTlsSettings::default()
    })
}

/// Origination settings on every port HTTP is sent to, for one subset's `sni` (or the intent's).
fn origination_ports(spec: &OutboundIntentSpec, sni: Option<&DnsName>) -> Vec<PortTrafficPolicy> {
    let Some(tls) = origination(spec, sni) else {
        return Vec::new();
    };
    let targets: BTreeSet<u32> = spec
        .ports
        .iter()
        .filter(|p| leg(p) == Leg::Http)
        .map(|p| target_port(spec, p))
        .collect();
    targets
        .into_iter()
        .map(|port| PortTrafficPolicy {
            port: Some(PortSelector { number: port }),
            tls: Some(tls.clone()),
            ..PortTrafficPolicy::default()
        })
        .collect()
}

/// The DestinationRules of the external hosts: subsets, and TLS origination (per subset `sni`).
fn destination_rules(spec: &OutboundIntentSpec) -> Vec<DestinationRuleSpec> {
    let port_level = origination_ports(spec, None);
    let subsets: Vec<Subset> = spec
        .subsets
        .iter()
        .map(|s| {
            let own = origination_ports(spec, s.sni.as_ref());
            Subset {
                name: s.name.to_string(),
                labels: s.labels.to_map(),
                traffic_policy: (s.sni.is_some() && !own.is_empty()).then(|| TrafficPolicy {
                    port_level_settings: own,
                    ..TrafficPolicy::default()
                }),
            }
        })
        .collect();
    if port_level.is_empty() && subsets.is_empty() {
        return Vec::new();
    }
    spec.hosts
        .iter()
        .map(|host| DestinationRuleSpec {
            host: host.to_string(),
            traffic_policy: (!port_level.is_empty()).then(|| TrafficPolicy {
                port_level_settings: port_level.clone(),
                ..TrafficPolicy::default()
            }),
            subsets: subsets.clone(),
            export_to: vec![".".into()],
            workload_selector: None,
        })
        .collect()
}

fn dr_name(plan: &OutboundPlan, index: usize) -> String {
    if plan.spec.hosts.len() == 1 {
        object_name(&[plan.name.as_str(), "dr"])
    } else {
        object_name(&[plan.name.as_str(), "dr", &index.to_string()])
    }
}

fn destination(host: &str, subset: Option<String>, port: u32) -> Destination {
    Destination {
        host: host.to_owned(),
        subset,
        port: Some(PortSelector { number: port }),
    }
}

/// The routes that take the external hosts to their endpoints (at the egress gateway, or at the
/// sidecar without one): HTTP to its target port, TLS by SNI per subset then to the whole host,
/// TCP by port. `gateway` restricts matches to that gateway.
pub fn default_routes(spec: &OutboundIntentSpec, gateway: Option<&str>) -> VirtualServiceSpec {
    let host = spec.hosts[0].to_string();
    let gateways: Vec<String> = gateway.map(|g| vec![g.to_owned()]).unwrap_or_default();
    let mut vs = VirtualServiceSpec {
        hosts: spec.hosts.iter().map(|h| h.to_string()).collect(),
        gateways: gateways.clone(),
        export_to: vec![".".into()],
        ..VirtualServiceSpec::default()
    };
    for port in &spec.ports {
        match leg(port) {
            Leg::Http => vs.http.push(HttpRoute {
                matches: vec![HttpMatchRequest {
                    port: Some(number(port)),
                    gateways: gateways.clone(),
                    ..HttpMatchRequest::default()
                }],
                route: vec![HttpRouteDestination {
                    destination: destination(&host, None, target_port(spec, port)),
                    weight: None,
                    headers: None,
                }],
                ..HttpRoute::default()
            }),
            Leg::Passthrough => {
                for subset in spec.subsets.iter().filter(|s| !s.sni_hosts.is_empty()) {
                    vs.tls.push(TlsRoute {
                        matches: vec![TlsMatchAttributes {
                            sni_hosts: subset.sni_hosts.iter().map(|h| h.to_string()).collect(),
                            port: Some(number(port)),
                            gateways: gateways.clone(),
                            ..TlsMatchAttributes::default()
                        }],
                        route: vec![RouteDestination {
                            destination: destination(
                                &host,
                                Some(subset.name.to_string()),
                                number(port),
                            ),
                            weight: None,
                        }],
                    });
                }
                vs.tls.push(TlsRoute {
                    matches: vec![TlsMatchAttributes {
                        sni_hosts: spec.hosts.iter().map(|h| h.to_string()).collect(),
                        port: Some(number(port)),
                        gateways: gateways.clone(),
                        ..TlsMatchAttributes::default()
                    }],
                    route: vec![RouteDestination {
                        destination: destination(&host, None, number(port)),
                        weight: None,
                    }],
                });
            }
            Leg::Tcp => vs.tcp.push(TcpRoute {
                matches: vec![L4MatchAttributes {
                    port: Some(number(port)),
                    gateways: gateways.clone(),
                    ..L4MatchAttributes::default()
                }],
                route: vec![RouteDestination {
                    destination: destination(&host, None, number(port)),
                    weight: None,
                }],
            }),
        }
    }
    vs
}

/// The egress gateway's Gateway name for an outbound intent.
pub fn egress_gateway_name(intent: &Name) -> String {
    object_name(&[intent.as_str(), "egress"])
}

/// The VirtualService name an outbound intent's routes land in: the egress gateway's, or
/// (without one) the mesh one in each client namespace.
pub fn route_vs_name(intent: &Name, through_egress: bool) -> String {
    if through_egress {
        egress_gateway_name(intent)
    } else {
        object_name(&[intent.as_str(), "routes"])
    }
}

pub fn emit(model: &IntentSetModel, vips: &VipTable, out: &mut Emitter) {
    for name in model.outbound.keys() {
        let plan = plan_outbound(model, name);
        let url = out.intent_url(COLLECTION, name);
        let host = vip_host(plan.spec);
        for (cluster, (site, namespaces)) in &plan.sites {
            let vip = host
                .as_ref()
                .and_then(|h| vips.get(&((*cluster).clone(), h.clone())));
            for namespace in namespaces {
                let meta = out.meta(
                    cluster,
                    object_name(&[name.as_str(), "entry"]),
                    namespace.as_str(),
                    &url,
                );
                out.push(cluster, meta, service_entry(plan.spec, vip));
                if plan.spec.egress_gateway {
                    to_egress(&plan, site, namespace, &url, out);
                } else {
                    for (i, dr) in destination_rules(plan.spec).into_iter().enumerate() {
                        let meta = out.meta(cluster, dr_name(&plan, i), namespace.as_str(), &url);
                        out.push(cluster, meta, dr);
                    }
                    let needs_routes = plan.spec.tls.as_ref().is_some_and(|t| t.mode.originates())
                        || plan.spec.subsets.iter().any(|s| !s.sni_hosts.is_empty());
                    if needs_routes {
                        let meta = out.meta(
                            cluster,
                            route_vs_name(name, false),
                            namespace.as_str(),
                            &url,
                        );
                        let slot = RouteSlot::Outbound {
                            intent: name.clone(),
                            cluster: (*cluster).clone(),
                            namespace: namespace.to_string(),
                        };
                        out.push_route_slot(slot, cluster, meta, default_routes(plan.spec, None));
                    }
                }
            }
            if plan.spec.egress_gateway {
                at_egress(&plan, site, vip, &url, out);
            }
        }
    }
}

/// In a client namespace: a mesh VirtualService sending the hosts to the egress gateway, and the
/// egress gateway's subset for this intent (ISTIO_MUTUAL with the host as SNI, except for TLS the
/// application passes through).
fn to_egress(plan: &OutboundPlan, site: &Site, namespace: &Name, url: &str, out: &mut Emitter) {
    let egress = &site.spec.istio.egress_gateway;
    let subset = plan.name.to_string();
    let to = |port: u32| destination(egress.service.as_str(), Some(subset.clone()), port);
    let mut vs = VirtualServiceSpec {
        hosts: plan.spec.hosts.iter().map(|h| h.to_string()).collect(),
        export_to: vec![".".into()],
        ..VirtualServiceSpec::default()
    };
    let mut mutual_ports = Vec::new();
    for port in &plan.spec.ports {
        let p = number(port);
        match leg(port) {
            Leg::Http => {
                mutual_ports.push(p);
                vs.http.push(HttpRoute {
                    matches: vec![HttpMatchRequest {
                        port: Some(p),
                        ..HttpMatchRequest::default()
                    }],
                    route: vec![HttpRouteDestination {
                        destination: to(p),
                        weight: None,
                        headers: None,
                    }],
                    ..HttpRoute::default()
                });
            }
            Leg::Passthrough => vs.tls.push(TlsRoute {
                matches: vec![TlsMatchAttributes {
                    sni_hosts: plan.spec.hosts.iter().map(|h| h.to_string()).collect(),
                    port: Some(p),
                    ..TlsMatchAttributes::default()
                }],
                route: vec![RouteDestination {
                    destination: to(p),
                    weight: None,
                }],
            }),
            Leg::Tcp => {
                mutual_ports.push(p);
                vs.tcp.push(TcpRoute {
                    matches: vec![L4MatchAttributes {
                        port: Some(p),
                        ..L4MatchAttributes::default()
                    }],
                    route: vec![RouteDestination {
                        destination: to(p),
                        weight: None,
                    }],
                });
            }
        }
    }
    let meta = out.meta(
        site.name,
        object_name(&[plan.name.as_str(), "to-egress"]),
        namespace.as_str(),
        url,
    );
    out.push(site.name, meta, vs);
    let sni = plan.spec.concrete_host().map(|h| h.to_string());
    let dr = DestinationRuleSpec {
        host: egress.service.to_string(),
        subsets: vec![Subset {
            name: subset.clone(),
            labels: BTreeMap::new(),
            traffic_policy: (!mutual_ports.is_empty()).then(|| TrafficPolicy {
                port_level_settings: mutual_ports
                    .iter()
                    .map(|p| PortTrafficPolicy {
                        port: Some(PortSelector { number: *p }),
                        tls: Some(ClientTlsSettings {
                            mode: Some(ClientTlsMode::IstioMutual),
                            sni: sni.clone(),
                            ..ClientTlsSettings::default()
                        }),
                        ..PortTrafficPolicy::default()
                    })
                    .collect(),
                ..TrafficPolicy::default()
            }),
        }],
        export_to: vec![".".into()],
        ..DestinationRuleSpec::default()
    };
    let meta = out.meta(
        site.name,
        object_name(&[plan.name.as_str(), "to-egress"]),
        namespace.as_str(),
        url,
    );
    out.push(site.name, meta, dr);
}

/// In the egress gateway's namespace: the hosts (so the gateway knows them), a Gateway with a
/// server per port, the VirtualService taking each port onward, and the DestinationRules with
/// the subsets and TLS origination.
fn at_egress(plan: &OutboundPlan, site: &Site, vip: Option<&IpAddr>, url: &str, out: &mut Emitter) {
    let egress = &site.spec.istio.egress_gateway;
    let namespace = egress.namespace.as_str();
    let meta = out.meta(
        site.name,
        object_name(&[plan.name.as_str(), "entry"]),
        namespace,
        url,
    );
    out.push(site.name, meta, service_entry(plan.spec, vip));
    for (i, dr) in destination_rules(plan.spec).into_iter().enumerate() {
        let meta = out.meta(site.name, dr_name(plan, i), namespace, url);
        out.push(site.name, meta, dr);
    }
    let gateway_name = egress_gateway_name(plan.name);
    let hosts: Vec<String> = plan.spec.hosts.iter().map(|h| h.to_string()).collect();
    let servers = plan
        .spec
        .ports
        .iter()
        .map(|port| {
            let (protocol, mode) = match leg(port) {
                Leg::Http => ("HTTPS", ServerTlsMode::IstioMutual),
                Leg::Passthrough => ("TLS", ServerTlsMode::Passthrough),
                Leg::Tcp => ("TLS", ServerTlsMode::IstioMutual),
            };
            Server {
                port: ServerPort {
                    number: number(port),
                    protocol: protocol.into(),
                    name: object_name(&[port.name.as_str(), plan.name.as_str()]),
                },
                bind: None,
                hosts: hosts.clone(),
                tls: Some(ServerTlsSettings {
                    mode: Some(mode),
                    ..ServerTlsSettings::default()
                }),
                default_endpoint: None,
                name: None,
            }
        })
        .collect();
    let meta = out.meta(site.name, gateway_name.clone(), namespace, url);
    out.push(
        site.name,
        meta,
        GatewaySpec {
            selector: egress.selector.to_map(),
            servers,
        },
    );
    let meta = out.meta(site.name, gateway_name.clone(), namespace, url);
    let slot = RouteSlot::Outbound {
        intent: plan.name.clone(),
        cluster: site.name.clone(),
        namespace: namespace.to_owned(),
    };
    out.push_route_slot(
        slot,
        site.name,
        meta,
        default_routes(plan.spec, Some(&gateway_name)),
    );
}
