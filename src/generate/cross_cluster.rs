//! SPEC section 2, clients on another cluster than the service: modes `direct` and
//! `egressGateway`, and the per-instance objects of headless services.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::domain::names::{DnsName, Name};
use crate::domain::values::HostAddress;
use crate::istio::{
    ClientTlsMode, ClientTlsSettings, Destination, DestinationRuleSpec, GatewaySpec,
    L4MatchAttributes, Location, PortSelector, Resolution, RouteDestination, Server, ServerPort,
    ServerTlsMode, ServerTlsSettings, ServiceEntrySpec, ServicePort, Subset, TcpRoute,
    TrafficPolicy, VirtualServiceSpec, WorkloadEntry,
};

use super::egress_authz::Admission;
use super::emit::{Emitter, RouteSlot};
use super::errors::{RenderError, Subject};
use super::inbound::COLLECTION;
use super::naming::object_name;
use super::topology::{InboundPlan, Reach, Site};
use super::vips::VipTable;

/// The egress gateway listens for meshintent's cross-cluster traffic on this port.
pub const EGRESS_PORT: u32 = 443;

/// The Istio port name for a protocol and port, e.g. `http-8000`.
pub fn port_name(protocol: &str, port: u32) -> String {
    format!("{}-{port}", protocol.to_ascii_lowercase())
}

/// One host of the service (the service itself, or one instance of a headless service).
struct HostOf<'p> {
    host: &'p DnsName,
    /// The instance name, for instance hosts.
    instance: Option<&'p Name>,
}

impl HostOf<'_> {
    /// `<intent>-<purpose>[-<instance>][-<cluster>]`
    fn object(&self, intent: &Name, purpose: &str, cluster: Option<&Name>) -> String {
        let mut parts = vec![intent.as_str(), purpose];
        if let Some(i) = self.instance {
            parts.push(i.as_str());
        }
        if let Some(c) = cluster {
            parts.push(c.as_str());
        }
        object_name(&parts)
    }

    /// The SNI a consumer uses for this host towards `provider`:
    /// `<svc>.<ns>.<provider identity>` (instances: `<instance>.<svc>.<ns>.<identity>`).
    fn sni(&self, provider: &Site) -> String {
        consumer_sni(self.host, provider)
    }
}

/// The SNI a consumer in mode `egressGateway` uses for `host` towards `provider`:
/// `<svc>.<ns>.<provider identity>` (also read by the access query, `authz::access`).
pub fn consumer_sni(host: &DnsName, provider: &Site) -> String {
    let local = host
        .as_str()
        .strip_suffix(".svc.cluster.local")
        .unwrap_or(host.as_str());
    format!("{local}.{}", provider.spec.identity)
}

fn hosts_of<'p>(plan: &'p InboundPlan) -> Vec<HostOf<'p>> {
    std::iter::once(HostOf {
        host: &plan.host,
        instance: None,
    })
    .chain(
        plan.instance_hosts
            .iter()
            .zip(&plan.spec.instances)
            .map(|(host, instance)| HostOf {
                host,
                instance: Some(instance),
            }),
    )
    .collect()
}

/// The address of a server cluster's ingress gateway, or an error saying who needs it.
fn ingress_address<'s>(
    plan: &InboundPlan,
    server: &Site<'s>,
    out: &mut Emitter,
) -> Option<&'s HostAddress> {
    let address = server.spec.istio.ingress_gateway.address.as_ref();
    if address.is_none() {
        let callers: BTreeSet<String> = plan
            .remote_clients()
            .map(|c| format!("\"{}\" on {}", c.client, c.site.name))
            .collect();
        out.errors.push(RenderError::new(
            Subject::Cluster(server.name.clone()),
            "/spec/istio/ingressGateway/address",
            format!(
                "needed because clients on other clusters ({}) call inbound intent \"{}\" through this cluster's ingress gateway",
                callers.into_iter().collect::<Vec<_>>().join(", "),
                plan.name
            ),
        ));
    }
    address
}

fn resolution(addresses: &[&HostAddress]) -> Resolution {
    if addresses.iter().all(|a| a.is_ip()) {
        Resolution::Static
    } else {
        Resolution::Dns
    }
}

fn vip<'v>(
    vips: &'v VipTable,
    cluster: &Name,
    host: &DnsName,
    plan: &InboundPlan,
    out: &mut Emitter,
) -> Option<&'v IpAddr> {
    let ip = vips.get(&(cluster.clone(), host.clone()));
    if ip.is_none() {
        out.errors.push(RenderError::new(
            Subject::Inbound(plan.name.clone()),
            "",
            format!("no VIP was allocated for {host} on cluster {cluster}"),
        ));
    }
    ip
}

/// Equal integer weights summing to 100 (the first destinations take the remainder).
pub fn even_weights(n: usize) -> Vec<i32> {
    let n = n.max(1) as i32;
    (0..n).map(|i| 100 / n + i32::from(i < 100 % n)).collect()
}

pub fn cross_cluster(plan: &InboundPlan, vips: &VipTable, out: &mut Emitter) {
    let remote: Vec<_> = plan.remote_clients().collect();
    if remote.is_empty() {
        return;
    }
    let groups: BTreeMap<(&Name, &Name), Reach> = remote
        .iter()
        .map(|c| ((c.site.name, c.namespace), c.reach))
        .collect();
    let mut egress_clusters: BTreeMap<&Name, Site> = BTreeMap::new();
    for client in &remote {
        if client.reach == Reach::EgressGateway {
            egress_clusters.insert(client.site.name, client.site);
        }
    }
    // The gateways' addresses, checked once per server.
    let addresses: Vec<Option<&HostAddress>> = plan
        .servers
        .iter()
        .map(|s| ingress_address(plan, s, out))
        .collect();
    if addresses.iter().any(Option::is_none) {
        return;
    }
    let addresses: Vec<&HostAddress> = addresses.into_iter().flatten().collect();
    let url = out.intent_url(COLLECTION, plan.name);
    for ((cluster, namespace), reach) in &groups {
        let site = remote
            .iter()
            .find(|c| c.site.name == *cluster)
            .expect("grouped from remote")
            .site;
        match reach {
            Reach::Direct => direct_client_side(plan, site, namespace, &addresses, vips, out),
            Reach::EgressGateway => egress_client_side(plan, site, namespace, vips, out),
            Reach::Local => {}
        }
    }
    for site in egress_clusters.values() {
        egress_gateway_side(plan, site, &addresses, out);
        egress_admission(plan, site).emit(plan.name, site, &url, out);
    }
    if groups.values().any(|r| *r == Reach::Direct) {
        for server in &plan.servers {
            passthrough_gateway(plan, server, out);
        }
    }
    if !egress_clusters.is_empty() {
        for server in &plan.servers {
            provider_side(plan, server, out);
        }
    }
    instance_entries(plan, vips, out);
}

/// Mode `direct`, client cluster: the service's host with a VIP, reached at the server
/// clusters' ingress gateways (AUTO_PASSTHROUGH port); mTLS stays end to end.
fn direct_client_side(
    plan: &InboundPlan,
    site: Site,
    namespace: &Name,
    addresses: &[&HostAddress],
    vips: &VipTable,
    out: &mut Emitter,
) {
    let url = out.intent_url(COLLECTION, plan.name);
    let protocol = plan.spec.protocol.as_str();
    let port = u32::from(plan.spec.port.get());
    let name = port_name(protocol, port);
    for host in hosts_of(plan) {
        let Some(ip) = vip(vips, site.name, host.host, plan, out) else {
            continue;
        };
        let endpoints = plan
            .servers
            .iter()
            .zip(addresses)
            .map(|(server, address)| WorkloadEntry {
                address: Some(address.to_string()),
                ports: BTreeMap::from([(
                    name.clone(),
                    u32::from(server.spec.istio.ingress_gateway.port.get()),
                )]),
                ..WorkloadEntry::default()
            })
            .collect();
        let spec = ServiceEntrySpec {
            hosts: vec![host.host.to_string()],
            addresses: vec![ip.to_string()],
            ports: vec![ServicePort {
                number: port,
                protocol: Some(protocol.to_owned()),
                name: name.clone(),
                target_port: None,
            }],
            location: Some(Location::MeshInternal),
            resolution: Some(resolution(addresses)),
            endpoints,
            export_to: vec![".".into()],
            ..ServiceEntrySpec::default()
        };
        let meta = out.meta(
            site.name,
            host.object(plan.name, "remote", None),
            namespace.as_str(),
            &url,
        );
        out.push(site.name, meta, spec);
    }
}

/// Mode `direct`, server cluster: the ingress gateway passes mTLS through to the service,
/// routing on the SNI Istio's client sidecars set (`outbound_.<port>_._.<host>`).
fn passthrough_gateway(plan: &InboundPlan, server: &Site, out: &mut Emitter) {
    let url = out.intent_url(COLLECTION, plan.name);
    let ingress = &server.spec.istio.ingress_gateway;
    let spec = GatewaySpec {
        selector: ingress.selector.to_map(),
        servers: vec![Server {
            port: ServerPort {
                number: u32::from(ingress.port.get()),
                protocol: "TLS".into(),
                name: object_name(&["tls", plan.name.as_str(), "passthrough"]),
            },
            bind: None,
            hosts: plan.all_hosts().iter().map(|h| h.to_string()).collect(),
            tls: Some(ServerTlsSettings {
                mode: Some(ServerTlsMode::AutoPassthrough),
                ..ServerTlsSettings::default()
            }),
            default_endpoint: None,
            name: None,
        }],
    };
    let meta = out.meta(
        server.name,
        object_name(&[plan.name.as_str(), "passthrough"]),
        ingress.namespace.as_str(),
        &url,
    );
    out.push(server.name, meta, spec);
}

/// Mode `egressGateway`, consumer cluster, in the client's namespace: the host with a VIP, a
/// mesh VirtualService sending it to the egress gateway, and a DestinationRule for the egress
/// gateway with ISTIO_MUTUAL and the SNI that names service and provider.
fn egress_client_side(
    plan: &InboundPlan,
    site: Site,
    namespace: &Name,
    vips: &VipTable,
    out: &mut Emitter,
) {
    let url = out.intent_url(COLLECTION, plan.name);
    let port = u32::from(plan.spec.port.get());
    let egress = &site.spec.istio.egress_gateway;
    let weights = even_weights(plan.servers.len());
    let mut subsets = Vec::new();
    for host in hosts_of(plan) {
        let Some(ip) = vip(vips, site.name, host.host, plan, out) else {
            continue;
        };
        let entry = ServiceEntrySpec {
            hosts: vec![host.host.to_string()],
            addresses: vec![ip.to_string()],
            ports: vec![ServicePort {
                number: port,
                protocol: Some("TCP".into()),
                name: port_name("tcp", port),
                target_port: None,
            }],
            location: Some(Location::MeshInternal),
            resolution: Some(Resolution::None),
            export_to: vec![".".into()],
            ..ServiceEntrySpec::default()
        };
        let meta = out.meta(
            site.name,
            host.object(plan.name, "remote", None),
            namespace.as_str(),
            &url,
        );
        out.push(site.name, meta, entry);

        let mut route = Vec::new();
        for (server, weight) in plan.servers.iter().zip(&weights) {
            let subset = host.object(plan.name, "to", Some(server.name));
            subsets.push(Subset {
                name: subset.clone(),
                labels: BTreeMap::new(),
                traffic_policy: Some(TrafficPolicy {
                    tls: Some(ClientTlsSettings {
                        mode: Some(ClientTlsMode::IstioMutual),
                        sni: Some(host.sni(server)),
                        ..ClientTlsSettings::default()
                    }),
                    ..TrafficPolicy::default()
                }),
            });
            route.push(RouteDestination {
                destination: Destination {
                    host: egress.service.to_string(),
                    subset: Some(subset),
                    port: Some(PortSelector {
                        number: EGRESS_PORT,
                    }),
                },
                weight: (plan.servers.len() > 1).then_some(*weight),
            });
        }
        let vs = VirtualServiceSpec {
            hosts: vec![host.host.to_string()],
            tcp: vec![TcpRoute {
                matches: vec![L4MatchAttributes {
                    port: Some(port),
                    ..L4MatchAttributes::default()
                }],
                route,
            }],
            export_to: vec![".".into()],
            ..VirtualServiceSpec::default()
        };
        let meta = out.meta(
            site.name,
            host.object(plan.name, "to-egress", None),
            namespace.as_str(),
            &url,
        );
        if host.instance.is_none() {
            let slot = RouteSlot::InboundToEgress {
                intent: plan.name.clone(),
                cluster: site.name.clone(),
                namespace: namespace.to_string(),
            };
            out.push_route_slot(slot, site.name, meta, vs);
        } else {
            out.push(site.name, meta, vs);
        }
    }
    for subset in &subsets {
        out.claim_shared_subset(
            site.name,
            namespace.as_str(),
            egress.service.as_str(),
            &subset.name,
            Subject::Inbound(plan.name.clone()),
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
        &url,
    );
    out.push(site.name, meta, dr);
}

/// Mode `egressGateway`, consumer cluster, in the egress gateway's namespace: per provider,
/// a Gateway accepting the SNI (ISTIO_MUTUAL from the sidecars), a VirtualService sending it
/// to the provider's public endpoint, and a ServiceEntry and DestinationRule for that endpoint
/// that originate MUTUAL TLS with the same SNI and check the provider's identity.
fn egress_gateway_side(
    plan: &InboundPlan,
    site: &Site,
    addresses: &[&HostAddress],
    out: &mut Emitter,
) {
    let url = out.intent_url(COLLECTION, plan.name);
    let egress = &site.spec.istio.egress_gateway;
    for host in hosts_of(plan) {
        for (server, address) in plan.servers.iter().zip(addresses) {
            let sni = host.sni(server);
            let tls_port = u32::from(server.spec.istio.ingress_gateway.tls_port.get());
            let gateway_name = host.object(plan.name, "egress", Some(server.name));
            let gateway = GatewaySpec {
                selector: egress.selector.to_map(),
                servers: vec![Server {
                    port: ServerPort {
                        number: EGRESS_PORT,
                        protocol: "TLS".into(),
                        name: object_name(&["tls", &gateway_name]),
                    },
                    bind: None,
                    hosts: vec![sni.clone()],
                    tls: Some(ServerTlsSettings {
                        mode: Some(ServerTlsMode::IstioMutual),
                        ..ServerTlsSettings::default()
                    }),
                    default_endpoint: None,
                    name: None,
                }],
            };
            let meta = out.meta(
                site.name,
                gateway_name.clone(),
                egress.namespace.as_str(),
                &url,
            );
            out.push(site.name, meta, gateway);

            let vs = VirtualServiceSpec {
                hosts: vec![sni.clone()],
                gateways: vec![gateway_name.clone()],
                tcp: vec![TcpRoute {
                    matches: vec![L4MatchAttributes {
                        port: Some(EGRESS_PORT),
                        gateways: vec![gateway_name.clone()],
                        ..L4MatchAttributes::default()
                    }],
                    route: vec![RouteDestination {
                        destination: Destination {
                            host: sni.clone(),
                            subset: None,
                            port: Some(PortSelector { number: tls_port }),
                        },
                        weight: None,
                    }],
                }],
                export_to: vec![".".into()],
                ..VirtualServiceSpec::default()
            };
            let meta = out.meta(
                site.name,
                gateway_name.clone(),
                egress.namespace.as_str(),
                &url,
            );
            out.push(site.name, meta, vs);

            let provider_name = host.object(plan.name, "provider", Some(server.name));
            let entry = ServiceEntrySpec {
                hosts: vec![sni.clone()],
                ports: vec![ServicePort {
                    number: tls_port,
                    protocol: Some("TLS".into()),
                    name: port_name("tls", tls_port),
                    target_port: None,
                }],
                location: Some(Location::MeshExternal),
                resolution: Some(resolution(&[address])),
                endpoints: vec![WorkloadEntry {
                    address: Some(address.to_string()),
                    ..WorkloadEntry::default()
                }],
                export_to: vec![".".into()],
                ..ServiceEntrySpec::default()
            };
            let meta = out.meta(
                site.name,
                provider_name.clone(),
                egress.namespace.as_str(),
                &url,
            );
            out.push(site.name, meta, entry);

            let dr = DestinationRuleSpec {
                host: sni.clone(),
                traffic_policy: Some(TrafficPolicy {
                    tls: Some(ClientTlsSettings {
                        mode: Some(ClientTlsMode::Mutual),
                        credential_name: Some(egress.credential_name.to_string()),
                        sni: Some(sni.clone()),
                        subject_alt_names: vec![server.spec.identity.to_string()],
                        ..ClientTlsSettings::default()
                    }),
                    ..TrafficPolicy::default()
                }),
                export_to: vec![".".into()],
                ..DestinationRuleSpec::default()
            };
            let meta = out.meta(site.name, provider_name, egress.namespace.as_str(), &url);
            out.push(site.name, meta, dr);
        }
    }
}

/// Mode `egressGateway`, consumer cluster: the egress gateway admits, for the SNIs of this
/// service (each host towards each server cluster), only the principals of the service's clients
/// on that cluster.
fn egress_admission(plan: &InboundPlan, site: &Site) -> Admission {
    Admission {
        principals: plan
            .clients
            .iter()
            .filter(|c| c.reach == Reach::EgressGateway && c.site.name == site.name)
            .map(|c| c.principal())
            .collect(),
        hosts: BTreeSet::new(),
        server_names: hosts_of(plan)
            .iter()
            .flat_map(|host| plan.servers.iter().map(|server| host.sni(server)))
            .collect(),
    }
}

/// The identities of the consumer clusters that have clients of the service in mode
/// `egressGateway`: the client certificates the provider's Gateways accept for it. The same on
/// every server cluster and for every host, since each such client is sent to every server
/// cluster and may address every host (instances included); clients in mode `direct`, clients
/// on a server cluster and clusters without clients of this service are not admitted.
fn consumers_of(plan: &InboundPlan) -> Vec<String> {
    let identities: BTreeSet<String> = plan
        .clients
        .iter()
        .filter(|c| c.reach == Reach::EgressGateway)
        .map(|c| c.site.spec.identity.to_string())
        .collect();
    identities.into_iter().collect()
}

/// Mode `egressGateway`, provider cluster: a Gateway terminating MUTUAL TLS that requires a
/// client certificate with the identity of a consumer cluster that has clients of this service;
/// the server's hosts select the SNI, and a VirtualService routes what arrives on it to the
/// service (after termination TLS routes no longer apply, so it is a TCP route).
fn provider_side(plan: &InboundPlan, server: &Site, out: &mut Emitter) {
    let url = out.intent_url(COLLECTION, plan.name);
    let ingress = &server.spec.istio.ingress_gateway;
    let tls_port = u32::from(ingress.tls_port.get());
    let consumers = consumers_of(plan);
    for host in hosts_of(plan) {
        let sni = host.sni(server);
        let name = host.object(plan.name, "cross-cluster", None);
        let gateway = GatewaySpec {
            selector: ingress.selector.to_map(),
            servers: vec![Server {
                port: ServerPort {
                    number: tls_port,
                    protocol: "TLS".into(),
                    name: object_name(&["tls", &name]),
                },
                bind: None,
                hosts: vec![sni.clone()],
                tls: Some(ServerTlsSettings {
                    mode: Some(ServerTlsMode::Mutual),
                    credential_name: Some(ingress.credential_name.to_string()),
                    subject_alt_names: consumers.clone(),
                    ..ServerTlsSettings::default()
                }),
                default_endpoint: None,
                name: None,
            }],
        };
        let meta = out.meta(server.name, name.clone(), ingress.namespace.as_str(), &url);
        out.push(server.name, meta, gateway);
        let vs = VirtualServiceSpec {
            hosts: vec![sni],
            gateways: vec![name.clone()],
            tcp: vec![TcpRoute {
                matches: vec![L4MatchAttributes {
                    port: Some(tls_port),
                    ..L4MatchAttributes::default()
                }],
                route: vec![RouteDestination {
                    destination: Destination {
                        host: host.host.to_string(),
                        subset: None,
                        port: Some(PortSelector {
                            number: u32::from(plan.spec.port.get()),
                        }),
                    },
                    weight: None,
                }],
            }],
            // Only the ingress gateway (in this namespace) uses it.
            export_to: vec![".".into()],
            ..VirtualServiceSpec::default()
        };
        let meta = out.meta(server.name, name, ingress.namespace.as_str(), &url);
        out.push(server.name, meta, vs);
    }
}

/// Headless services reached from other clusters: on each server cluster, a ServiceEntry per
/// instance, so the ingress gateway knows every instance host (in-cluster clients need none).
/// Each has a VIP (a TCP ServiceEntry without an address would capture its port for every
/// destination) and is visible only in the ingress gateway's namespace.
fn instance_entries(plan: &InboundPlan, vips: &VipTable, out: &mut Emitter) {
    if plan.instance_hosts.is_empty() {
        return;
    }
    let url = out.intent_url(COLLECTION, plan.name);
    let protocol = plan.spec.protocol.as_str();
    let port = u32::from(plan.spec.port.get());
    for server in &plan.servers {
        for host in hosts_of(plan).into_iter().filter(|h| h.instance.is_some()) {
            let Some(ip) = vip(vips, server.name, host.host, plan, out) else {
                continue;
            };
            let spec = ServiceEntrySpec {
                hosts: vec![host.host.to_string()],
                addresses: vec![ip.to_string()],
                ports: vec![ServicePort {
                    number: port,
                    protocol: Some(protocol.to_owned()),
                    name: port_name(protocol, port),
                    target_port: None,
                }],
                location: Some(Location::MeshInternal),
                resolution: Some(Resolution::Dns),
                export_to: vec![server.spec.istio.ingress_gateway.namespace.to_string()],
                ..ServiceEntrySpec::default()
            };
            let meta = out.meta(
                server.name,
                host.object(plan.name, "instance", None),
                plan.namespace.as_str(),
                &url,
            );
            out.push(server.name, meta, spec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inbound::Protocol;

    #[test]
    fn weights_are_even_and_sum_to_100() {
        assert_eq!(even_weights(1), [100]);
        assert_eq!(even_weights(2), [50, 50]);
        assert_eq!(even_weights(3), [34, 33, 33]);
        assert_eq!(even_weights(7).iter().sum::<i32>(), 100);
    }

    #[test]
    fn protocols_name_ports() {
        assert_eq!(port_name(Protocol::Http.as_str(), 8000), "http-8000");
    }
}
