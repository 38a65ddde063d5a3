//! SPEC section 2, outbound intents: external services reached through the egress gateway (or
//! directly), with TLS passthrough by SNI or TLS origination, on every cluster running a client.
//!
//! Each declared port is one *leg* from the sidecar:
//! - HTTP ports: to the egress gateway with ISTIO_MUTUAL; the gateway routes HTTP and, with TLS
//!   origination, sends it to the TLS port (or the endpoints' mapped port) with SIMPLE or MUTUAL;
//! - TLS and HTTPS ports: the application's TLS passes through, routed by SNI (per subset with
//!   `sniHosts`); through the egress gateway it travels inside ISTIO_MUTUAL, so that the gateway
//!   knows the caller, and the sidecar (which sees the application's SNI) picks the subset;
//! - TCP ports: to the egress gateway with ISTIO_MUTUAL, matched by the intent's VIP.
//!
//! Through the egress gateway every leg is mutual TLS, and an AuthorizationPolicy on the gateway
//! admits only the intent's clients (`egress_authz`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::domain::model::IntentSetModel;
use crate::domain::names::{DnsName, Name};
use crate::domain::outbound::{
    OutboundIntentSpec, OutboundSubset, OutboundTlsMode, PortProtocol,
    Resolution as IntentResolution, ServicePort as IntentPort,
};
use crate::istio::{
    ClientTlsMode, ClientTlsSettings, Destination, DestinationRuleSpec, GatewaySpec,
    HttpMatchRequest, HttpRoute, HttpRouteDestination, L4MatchAttributes, Location, PortSelector,
    PortTrafficPolicy, Resolution, RouteDestination, Server, ServerPort, ServerTlsMode,
    ServerTlsSettings, ServiceEntrySpec, ServicePort, Subset, TcpRoute, TlsMatchAttributes,
    TlsRoute, TrafficPolicy, VirtualServiceSpec, WorkloadEntry,
};

use super::egress_authz::Admission;
use super::emit::{Emitter, RouteSlot};
use super::errors::{RenderError, Subject};
use super::naming::object_name;
use super::topology::{Site, principal};
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

/// One cluster where an outbound intent is used.
pub struct SitePlan<'m> {
    pub site: Site<'m>,
    /// The namespaces of the client apps placed there.
    pub namespaces: BTreeSet<&'m Name>,
    /// The principals of those apps, in that cluster's trust domain.
    pub principals: BTreeSet<String>,
}

/// Where an outbound intent is used: each cluster running one of its clients.
pub struct OutboundPlan<'m> {
    pub name: &'m Name,
    pub spec: &'m OutboundIntentSpec,
    pub sites: BTreeMap<&'m Name, SitePlan<'m>>,
}

pub fn plan_outbound<'m>(model: &'m IntentSetModel, name: &'m Name) -> OutboundPlan<'m> {
    let spec = &model.outbound[name];
    let mut sites: BTreeMap<&Name, SitePlan> = BTreeMap::new();
    let apps: Vec<_> = if spec.clients.is_empty() {
        model.apps.iter().collect()
    } else {
        spec.clients
            .iter()
            .filter_map(|a| model.apps.get_key_value(a))
            .collect()
    };
    for (app_name, app) in apps {
        for cluster in model.app_clusters(app) {
            let site = sites.entry(cluster).or_insert_with(|| SitePlan {
                site: Site {
                    name: cluster,
                    spec: &model.clusters[cluster],
                },
                namespaces: BTreeSet::new(),
                principals: BTreeSet::new(),
            });
            site.namespaces.insert(&app.namespace);
            site.principals.insert(principal(
                &site.site.spec.trust_domain,
                &app.namespace,
                &app.service_account(app_name),
            ));
        }
    }
    OutboundPlan { name, spec, sites }
}

/// The egress gateway subset (in the client namespaces' DestinationRule for the egress
/// gateway) that carries passed-through TLS for one of the intent's subsets.
pub fn egress_subset_name(intent: &Name, subset: &Name) -> String {
    object_name(&[intent.as_str(), subset.as_str()])
}

/// The domain of the server names meshintent makes up for the sidecars' mutual TLS towards the
/// egress gateway where no host of the intent can serve (`.internal` is reserved for private
/// use, so these never clash with a real external host on the gateway).
pub const EGRESS_SNI_DOMAIN: &str = "egress.meshintent.internal";

/// The destinations at the egress gateway of an intent routed through it, and the server names
/// (SNI) the sidecars set to reach each of them with mutual TLS.
pub struct EgressNames<'m> {
    /// The egress gateway subset for the whole host (`<intent>`).
    pub subset: String,
    /// Its server name: the intent's first host without a wildcard, else
    /// `<intent>.egress.meshintent.internal`.
    pub sni: DnsName,
    /// With TLS ports, one destination per subset of the intent: (subset, egress gateway subset
    /// `<intent>-<subset>`, server name `<subset>.<intent>.egress.meshintent.internal`).
    pub subsets: Vec<(&'m OutboundSubset, String, DnsName)>,
}

impl<'m> EgressNames<'m> {
    pub fn new(plan: &OutboundPlan<'m>) -> Result<Self, RenderError> {
        let invalid = |e: String| {
            RenderError::new(
                Subject::Outbound(plan.name.clone()),
                "/spec/hosts",
                format!("the server name towards the egress gateway is not a valid DNS name: {e}"),
            )
        };
        let sni = match plan.spec.concrete_host() {
            Some(host) => DnsName::try_from(host.to_string()).map_err(invalid)?,
            None => DnsName::join(&[plan.name.as_str(), EGRESS_SNI_DOMAIN]).map_err(invalid)?,
        };
        let mut subsets = Vec::new();
        if plan.spec.ports.iter().any(|p| leg(p) == Leg::Passthrough) {
            for subset in &plan.spec.subsets {
                let name =
                    DnsName::join(&[subset.name.as_str(), plan.name.as_str(), EGRESS_SNI_DOMAIN])
                        .map_err(invalid)?;
                subsets.push((subset, egress_subset_name(plan.name, &subset.name), name));
            }
        }
        Ok(Self {
            subset: plan.name.to_string(),
            sni,
            subsets,
        })
    }
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

/// The routes that take the external hosts to their endpoints from the sidecar (without an
/// egress gateway): HTTP to its target port, TLS by SNI per subset then to the whole host, TCP
/// by port.
pub fn default_routes(spec: &OutboundIntentSpec) -> VirtualServiceSpec {
    let host = spec.hosts[0].to_string();
    let mut vs = VirtualServiceSpec {
        hosts: spec.hosts.iter().map(|h| h.to_string()).collect(),
        export_to: vec![".".into()],
        ..VirtualServiceSpec::default()
    };
    for port in &spec.ports {
        match leg(port) {
            Leg::Http => vs.http.push(http_route(spec, port, &[])),
            Leg::Passthrough => {
                for subset in spec.subsets.iter().filter(|s| !s.sni_hosts.is_empty()) {
                    vs.tls.push(TlsRoute {
                        matches: vec![TlsMatchAttributes {
                            sni_hosts: subset.sni_hosts.iter().map(|h| h.to_string()).collect(),
                            port: Some(number(port)),
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
                        ..TlsMatchAttributes::default()
                    }],
                    route: vec![RouteDestination {
                        destination: destination(&host, None, number(port)),
                        weight: None,
                    }],
                });
            }
            Leg::Tcp => vs.tcp.push(tcp_route(&host, None, number(port), &[])),
        }
    }
    vs
}

fn http_route(spec: &OutboundIntentSpec, port: &IntentPort, gateways: &[String]) -> HttpRoute {
    HttpRoute {
        matches: vec![HttpMatchRequest {
            port: Some(number(port)),
            gateways: gateways.to_vec(),
            ..HttpMatchRequest::default()
        }],
        route: vec![HttpRouteDestination {
            destination: destination(spec.hosts[0].as_str(), None, target_port(spec, port)),
            weight: None,
            headers: None,
        }],
        ..HttpRoute::default()
    }
}

fn tcp_route(host: &str, subset: Option<String>, port: u32, gateways: &[String]) -> TcpRoute {
    TcpRoute {
        matches: vec![L4MatchAttributes {
            port: Some(port),
            gateways: gateways.to_vec(),
            ..L4MatchAttributes::default()
        }],
        route: vec![RouteDestination {
            destination: destination(host, subset, port),
            weight: None,
        }],
    }
}

/// The routes at the egress gateway, bound to `gateway`: HTTP to its target port, TCP and the
/// passed-through TLS of the whole host by port (the gateway has ended the sidecars' mutual TLS,
/// so it sees TCP; the subsets of passed-through TLS have Gateways of their own).
fn gateway_routes(spec: &OutboundIntentSpec, gateway: &str) -> VirtualServiceSpec {
    let host = spec.hosts[0].to_string();
    let gateways = vec![gateway.to_owned()];
    let mut vs = VirtualServiceSpec {
        hosts: spec.hosts.iter().map(|h| h.to_string()).collect(),
        gateways: gateways.clone(),
        export_to: vec![".".into()],
        ..VirtualServiceSpec::default()
    };
    for port in &spec.ports {
        match leg(port) {
            Leg::Http => vs.http.push(http_route(spec, port, &gateways)),
            Leg::Passthrough | Leg::Tcp => {
                vs.tcp.push(tcp_route(&host, None, number(port), &gateways));
            }
        }
    }
    vs
}

/// The egress gateway's Gateway name for an outbound intent.
pub fn egress_gateway_name(intent: &Name) -> String {
    object_name(&[intent.as_str(), "egress"])
}

/// The Gateway (and VirtualService) at the egress gateway for one subset's passed-through TLS.
pub fn egress_subset_gateway_name(intent: &Name, subset: &Name) -> String {
    object_name(&[intent.as_str(), "egress", subset.as_str()])
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

/// The port numbers of an intent's TLS and HTTPS ports (TLS the application passes through).
pub fn passthrough_ports(spec: &OutboundIntentSpec) -> Vec<u32> {
    spec.ports
        .iter()
        .filter(|p| leg(p) == Leg::Passthrough)
        .map(number)
        .collect()
}

pub fn emit(model: &IntentSetModel, vips: &VipTable, out: &mut Emitter) {
    for name in model.outbound.keys() {
        let plan = plan_outbound(model, name);
        let url = out.intent_url(COLLECTION, name);
        let host = vip_host(plan.spec);
        let egress = if plan.spec.egress_gateway {
            match EgressNames::new(&plan) {
                Ok(names) => Some(names),
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            }
        } else {
            None
        };
        for (cluster, site) in &plan.sites {
            let vip = host
                .as_ref()
                .and_then(|h| vips.get(&((*cluster).clone(), h.clone())));
            for namespace in &site.namespaces {
                let meta = out.meta(
                    cluster,
                    object_name(&[name.as_str(), "entry"]),
                    namespace.as_str(),
                    &url,
                );
                out.push(cluster, meta, service_entry(plan.spec, vip));
                if let Some(names) = &egress {
                    to_egress(&plan, names, &site.site, namespace, &url, out);
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
                        out.push_route_slot(slot, cluster, meta, default_routes(plan.spec));
                    }
                }
            }
            if let Some(names) = &egress {
                at_egress(&plan, names, site, vip, &url, out);
            }
        }
    }
}

/// The sidecar's mutual TLS towards the egress gateway, with the server name the gateway
/// dispatches on.
fn istio_mutual(port: u32, sni: &DnsName) -> PortTrafficPolicy {
    PortTrafficPolicy {
        port: Some(PortSelector { number: port }),
        tls: Some(ClientTlsSettings {
            mode: Some(ClientTlsMode::IstioMutual),
            sni: Some(sni.to_string()),
            ..ClientTlsSettings::default()
        }),
        ..PortTrafficPolicy::default()
    }
}

/// In a client namespace: a mesh VirtualService sending the hosts to the egress gateway, and the
/// egress gateway's subsets for this intent. Every leg is Istio mutual TLS, so the gateway knows
/// the caller: HTTP and TCP with the host as SNI; TLS the application speaks passes through
/// inside it, and the sidecar (which sees the application's SNI) picks the egress gateway subset
/// of the intent's subset whose `sniHosts` match, each with its own SNI.
fn to_egress(
    plan: &OutboundPlan,
    names: &EgressNames,
    site: &Site,
    namespace: &Name,
    url: &str,
    out: &mut Emitter,
) {
    let egress = &site.spec.istio.egress_gateway;
    let to = |subset: &str, port: u32| {
        destination(egress.service.as_str(), Some(subset.to_owned()), port)
    };
    let mut vs = VirtualServiceSpec {
        hosts: plan.spec.hosts.iter().map(|h| h.to_string()).collect(),
        export_to: vec![".".into()],
        ..VirtualServiceSpec::default()
    };
    let mut ports = Vec::new();
    let mut tls_ports = Vec::new();
    for port in &plan.spec.ports {
        let p = number(port);
        ports.push(p);
        match leg(port) {
            Leg::Http => {
                vs.http.push(HttpRoute {
                    matches: vec![HttpMatchRequest {
                        port: Some(p),
                        ..HttpMatchRequest::default()
                    }],
                    route: vec![HttpRouteDestination {
                        destination: to(&names.subset, p),
                        weight: None,
                        headers: None,
                    }],
                    ..HttpRoute::default()
                });
            }
            Leg::Passthrough => {
                tls_ports.push(p);
                for (subset, egress_subset, _) in &names.subsets {
                    if subset.sni_hosts.is_empty() {
                        continue;
                    }
                    vs.tls.push(TlsRoute {
                        matches: vec![TlsMatchAttributes {
                            sni_hosts: subset.sni_hosts.iter().map(|h| h.to_string()).collect(),
                            port: Some(p),
                            ..TlsMatchAttributes::default()
                        }],
                        route: vec![RouteDestination {
                            destination: to(egress_subset, p),
                            weight: None,
                        }],
                    });
                }
                vs.tls.push(TlsRoute {
                    matches: vec![TlsMatchAttributes {
                        sni_hosts: plan.spec.hosts.iter().map(|h| h.to_string()).collect(),
                        port: Some(p),
                        ..TlsMatchAttributes::default()
                    }],
                    route: vec![RouteDestination {
                        destination: to(&names.subset, p),
                        weight: None,
                    }],
                });
            }
            Leg::Tcp => {
                vs.tcp.push(TcpRoute {
                    matches: vec![L4MatchAttributes {
                        port: Some(p),
                        ..L4MatchAttributes::default()
                    }],
                    route: vec![RouteDestination {
                        destination: to(&names.subset, p),
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
    let slot = RouteSlot::OutboundToEgress {
        intent: plan.name.clone(),
        cluster: site.name.clone(),
        namespace: namespace.to_string(),
    };
    out.push_route_slot(slot, site.name, meta, vs);
    let mut subsets = vec![Subset {
        name: names.subset.clone(),
        labels: BTreeMap::new(),
        traffic_policy: Some(TrafficPolicy {
            port_level_settings: ports.iter().map(|p| istio_mutual(*p, &names.sni)).collect(),
            ..TrafficPolicy::default()
        }),
    }];
    for (_, egress_subset, sni) in &names.subsets {
        subsets.push(Subset {
            name: egress_subset.clone(),
            labels: BTreeMap::new(),
            traffic_policy: Some(TrafficPolicy {
                port_level_settings: tls_ports.iter().map(|p| istio_mutual(*p, sni)).collect(),
                ..TrafficPolicy::default()
            }),
        });
    }
    for subset in &subsets {
        out.claim_shared_subset(
            site.name,
            namespace.as_str(),
            egress.service.as_str(),
            &subset.name,
            Subject::Outbound(plan.name.clone()),
        );
    }
    let dr = DestinationRuleSpec {
        host: egress.service.to_string(),
        subsets,
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

/// A Gateway server on the egress gateway for one port of the intent.
fn egress_server(port: &IntentPort, name: String, hosts: Vec<String>) -> Server {
    let protocol = match leg(port) {
        Leg::Http => "HTTPS",
        Leg::Passthrough | Leg::Tcp => "TLS",
    };
    Server {
        port: ServerPort {
            number: number(port),
            protocol: protocol.into(),
            name,
        },
        bind: None,
        hosts,
        tls: Some(ServerTlsSettings {
            mode: Some(ServerTlsMode::IstioMutual),
            ..ServerTlsSettings::default()
        }),
        default_endpoint: None,
        name: None,
    }
}

/// In the egress gateway's namespace: the hosts (so the gateway knows them), a Gateway with a
/// server per port, the VirtualService taking each port onward, the DestinationRules with the
/// subsets and TLS origination, a Gateway and VirtualService per subset for passed-through TLS,
/// and the AuthorizationPolicy admitting only the intent's clients on this cluster.
fn at_egress(
    plan: &OutboundPlan,
    names: &EgressNames,
    site: &SitePlan,
    vip: Option<&IpAddr>,
    url: &str,
    out: &mut Emitter,
) {
    let cluster = site.site.name;
    let egress = &site.site.spec.istio.egress_gateway;
    let namespace = egress.namespace.as_str();
    let meta = out.meta(
        cluster,
        object_name(&[plan.name.as_str(), "entry"]),
        namespace,
        url,
    );
    out.push(cluster, meta, service_entry(plan.spec, vip));
    for (i, dr) in destination_rules(plan.spec).into_iter().enumerate() {
        let meta = out.meta(cluster, dr_name(plan, i), namespace, url);
        out.push(cluster, meta, dr);
    }
    let gateway_name = egress_gateway_name(plan.name);
    let hosts: Vec<String> = plan.spec.hosts.iter().map(|h| h.to_string()).collect();
    let servers = plan
        .spec
        .ports
        .iter()
        .map(|port| {
            // Passed-through TLS arrives inside the sidecar's mutual TLS, with its server name.
            let hosts = if leg(port) == Leg::Passthrough {
                vec![names.sni.to_string()]
            } else {
                hosts.clone()
            };
            egress_server(
                port,
                object_name(&[port.name.as_str(), plan.name.as_str()]),
                hosts,
            )
        })
        .collect();
    let meta = out.meta(cluster, gateway_name.clone(), namespace, url);
    out.push(
        cluster,
        meta,
        GatewaySpec {
            selector: egress.selector.to_map(),
            servers,
        },
    );
    let meta = out.meta(cluster, gateway_name.clone(), namespace, url);
    let slot = RouteSlot::Outbound {
        intent: plan.name.clone(),
        cluster: cluster.clone(),
        namespace: namespace.to_owned(),
    };
    let mut routes = gateway_routes(plan.spec, &gateway_name);
    if !plan.spec.hosts.iter().any(|h| h.covers(names.sni.as_str())) {
        // A server name made up for passed-through TLS: the VirtualService must name it to
        // apply to that Gateway server.
        routes.hosts.push(names.sni.to_string());
    }
    out.push_route_slot(slot, cluster, meta, routes);
    let tls_ports: Vec<&IntentPort> = plan
        .spec
        .ports
        .iter()
        .filter(|p| leg(p) == Leg::Passthrough)
        .collect();
    let host = plan.spec.hosts[0].to_string();
    for (subset, _, sni) in &names.subsets {
        let name = egress_subset_gateway_name(plan.name, &subset.name);
        let servers = tls_ports
            .iter()
            .map(|port| {
                egress_server(
                    port,
                    object_name(&[port.name.as_str(), plan.name.as_str(), subset.name.as_str()]),
                    vec![sni.to_string()],
                )
            })
            .collect();
        let meta = out.meta(cluster, name.clone(), namespace, url);
        out.push(
            cluster,
            meta,
            GatewaySpec {
                selector: egress.selector.to_map(),
                servers,
            },
        );
        let gateways = vec![name.clone()];
        let vs = VirtualServiceSpec {
            hosts: vec![sni.to_string()],
            gateways: gateways.clone(),
            tcp: tls_ports
                .iter()
                .map(|port| {
                    tcp_route(
                        &host,
                        Some(subset.name.to_string()),
                        number(port),
                        &gateways,
                    )
                })
                .collect(),
            export_to: vec![".".into()],
            ..VirtualServiceSpec::default()
        };
        let meta = out.meta(cluster, name, namespace, url);
        out.push(cluster, meta, vs);
    }
    admission(plan, names, site).emit(plan.name, &site.site, url, out);
}

/// What the egress gateway of a cluster admits for the intent: the principals of its client
/// apps on that cluster; for HTTP ports the hosts (bare and with the port, as the `:authority`
/// may carry it); for TCP and passed-through TLS the server names the sidecars set.
pub fn admission(plan: &OutboundPlan, names: &EgressNames, site: &SitePlan) -> Admission {
    let mut admission = Admission {
        principals: site.principals.clone(),
        ..Admission::default()
    };
    for port in &plan.spec.ports {
        match leg(port) {
            Leg::Http => {
                for host in &plan.spec.hosts {
                    admission.hosts.insert(host.to_string());
                    admission.hosts.insert(format!("{host}:{}", number(port)));
                }
            }
            Leg::Tcp => {
                admission.server_names.insert(names.sni.to_string());
            }
            Leg::Passthrough => {
                admission.server_names.insert(names.sni.to_string());
                for (_, _, sni) in &names.subsets {
                    admission.server_names.insert(sni.to_string());
                }
            }
        }
    }
    admission
}
