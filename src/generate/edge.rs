//! SPEC section 2, `externalAccess`: a Gateway on the ingress gateway and a VirtualService bound
//! to it, on every cluster that runs the service.

use crate::domain::inbound::{GatewayTlsMode, Protocol};
use crate::istio::{
    Destination, GatewaySpec, HttpRoute, HttpRouteDestination, L4MatchAttributes, PortSelector,
    RouteDestination, Server, ServerPort, ServerTlsMode, ServerTlsSettings, TcpRoute,
    VirtualServiceSpec,
};

use super::emit::{Emitter, RouteSlot};
use super::inbound::COLLECTION;
use super::naming::object_name;
use super::topology::InboundPlan;

/// The name of the ingress Gateway of an inbound intent (route intents bind to it too).
pub fn ingress_gateway_name(intent: &str) -> String {
    object_name(&[intent, "ingress"])
}

/// The name of the VirtualService bound to it (edge route intents merge into it).
pub fn ingress_vs_name(intent: &str) -> String {
    object_name(&[intent, "ingress"])
}

pub fn external_access(plan: &InboundPlan, out: &mut Emitter) {
    let Some(access) = &plan.spec.external_access else {
        return;
    };
    let url = out.intent_url(COLLECTION, plan.name);
    let port = access.port();
    let protocol = match (plan.spec.protocol, &access.tls) {
        (Protocol::Tcp, _) => "TLS",
        (_, Some(_)) => "HTTPS",
        (_, None) => "HTTP",
    };
    let hosts: Vec<String> = access.hosts.iter().map(|h| h.to_string()).collect();
    let gateway_name = ingress_gateway_name(plan.name.as_str());
    for server in &plan.servers {
        let ingress = &server.spec.istio.ingress_gateway;
        let tls = access.tls.as_ref().map(|t| ServerTlsSettings {
            mode: Some(match t.mode {
                GatewayTlsMode::Simple => ServerTlsMode::Simple,
                GatewayTlsMode::Mutual => ServerTlsMode::Mutual,
            }),
            credential_name: Some(t.credential_name.to_string()),
            ..ServerTlsSettings::default()
        });
        let gateway = GatewaySpec {
            selector: ingress.selector.to_map(),
            servers: vec![Server {
                port: ServerPort {
                    number: u32::from(port.get()),
                    protocol: protocol.to_owned(),
                    name: object_name(&[&protocol.to_ascii_lowercase(), plan.name.as_str()]),
                },
                bind: None,
                hosts: hosts.clone(),
                tls,
                default_endpoint: None,
                name: None,
            }],
        };
        let meta = out.meta(
            server.name,
            gateway_name.clone(),
            ingress.namespace.as_str(),
            &url,
        );
        out.push(server.name, meta, gateway);

        let destination = Destination {
            host: plan.host.to_string(),
            subset: None,
            port: Some(PortSelector {
                number: u32::from(plan.spec.port.get()),
            }),
        };
        // Bound to the ingress gateway only: visible to its namespace, not to sidecars.
        let mut vs = VirtualServiceSpec {
            hosts: hosts.clone(),
            gateways: vec![format!("{}/{gateway_name}", ingress.namespace)],
            export_to: vec![ingress.namespace.to_string()],
            ..VirtualServiceSpec::default()
        };
        if plan.spec.protocol == Protocol::Tcp {
            vs.tcp = vec![TcpRoute {
                matches: vec![L4MatchAttributes {
                    port: Some(u32::from(port.get())),
                    ..L4MatchAttributes::default()
                }],
                route: vec![RouteDestination {
                    destination,
                    weight: None,
                }],
            }];
        } else {
            vs.http = vec![HttpRoute {
                route: vec![HttpRouteDestination {
                    destination,
                    weight: None,
                    headers: None,
                }],
                ..HttpRoute::default()
            }];
        }
        let meta = out.meta(
            server.name,
            ingress_vs_name(plan.name.as_str()),
            plan.namespace.as_str(),
            &url,
        );
        let slot = RouteSlot::InboundIngress {
            intent: plan.name.clone(),
            cluster: server.name.clone(),
        };
        out.push_route_slot(slot, server.name, meta, vs);
    }
}
