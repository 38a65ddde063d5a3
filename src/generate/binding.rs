//! Where a client reaches an inbound intent's service from its own cluster, and how to rewrite
//! credentials issued for the service (the service-broker flow of the original design).
//!
//! The endpoints a client can use: on the service's cluster the service's FQDN; from another
//! cluster also the VIP (which works without Istio's DNS proxy). The mappings rewrite every form
//! a credential may carry (`svc`, `svc.ns`, `svc.ns.svc`, the FQDN, and in mode `egressGateway`
//! the provider's public SNI name) to the endpoint the client should use: the FQDN locally, the
//! VIP across clusters.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::credentials::{Endpoint, EndpointMapping};
use crate::domain::names::Name;

use super::errors::{RenderError, Subject};
use super::plan::SetPlan;
use super::topology::Reach;
use super::vips::VipTable;

/// A client's view of the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// The client cluster this binding is for.
    pub cluster: String,
    /// How the client reaches the service from its cluster.
    pub reach: Reach,
    /// Where the client can address the service.
    pub endpoints: Vec<Endpoint>,
    /// Rewrites for credentials issued for the service (input of `POST /v2/adapt-credentials`).
    pub endpoint_mappings: Vec<EndpointMapping>,
}

/// Why a binding cannot be given.
#[derive(Debug)]
pub enum BindingError {
    /// The intent or client does not exist.
    NotFound(String),
    /// The client runs on several clusters (or none) and none was chosen.
    Ambiguous(String),
    Render(Vec<RenderError>),
}

fn endpoint(host: impl Into<String>, port: u16) -> Endpoint {
    Endpoint {
        host: host.into(),
        port,
    }
}

/// The binding of `client` of inbound intent `intent`, from the set's plan (the render's own, so
/// the intent is planned once).
pub fn binding(
    set: &SetPlan,
    vips: &VipTable,
    intent: &Name,
    client: &Name,
    cluster: Option<&Name>,
) -> Result<Binding, BindingError> {
    let inbound = set.model.inbound.get(intent).ok_or_else(|| {
        BindingError::NotFound(format!("inbound intent \"{intent}\" does not exist"))
    })?;
    if !inbound.clients.contains_key(client) {
        return Err(BindingError::NotFound(format!(
            "client \"{client}\" of inbound intent \"{intent}\" does not exist"
        )));
    }
    if !set.errors.is_empty() {
        return Err(BindingError::Render(set.errors.clone()));
    }
    let plan = set.inbound.get(intent).ok_or_else(|| {
        BindingError::NotFound(format!("inbound intent \"{intent}\" does not exist"))
    })?;
    let sites: Vec<_> = plan.clients.iter().filter(|c| c.client == client).collect();
    let site = match cluster {
        Some(wanted) => sites
            .iter()
            .find(|s| s.site.name == wanted)
            .ok_or_else(|| {
                BindingError::Ambiguous(format!(
                    "client \"{client}\" does not run on cluster \"{wanted}\""
                ))
            })?,
        None => match sites.as_slice() {
            [one] => one,
            [] => {
                return Err(BindingError::Ambiguous(format!(
                    "the app of client \"{client}\" is placed on no cluster"
                )));
            }
            many => {
                let names: Vec<&str> = many.iter().map(|s| s.site.name.as_str()).collect();
                return Err(BindingError::Ambiguous(format!(
                    "client \"{client}\" runs on several clusters ({}); choose one with ?cluster=",
                    names.join(", ")
                )));
            }
        },
    };
    let port = plan.spec.port.get();
    let service = plan.spec.service_name.as_str();
    let namespace = plan.namespace.as_str();
    let fqdn = plan.host.as_str();
    let mut sources = vec![
        endpoint(service, port),
        endpoint(format!("{service}.{namespace}"), port),
        endpoint(format!("{service}.{namespace}.svc"), port),
    ];
    let (target, endpoints, reach) = match site.reach {
        Reach::Local => (
            endpoint(fqdn, port),
            vec![endpoint(fqdn, port)],
            Reach::Local,
        ),
        remote => {
            let vip = vips
                .get(&(site.site.name.clone(), plan.host.clone()))
                .ok_or_else(|| {
                    BindingError::Render(vec![RenderError::new(
                        Subject::Inbound(intent.clone()),
                        "",
                        format!(
                            "no VIP was allocated for {fqdn} on cluster {}",
                            site.site.name
                        ),
                    )])
                })?;
            sources.push(endpoint(fqdn, port));
            if remote == Reach::EgressGateway {
                for server in &plan.servers {
                    let local = fqdn.strip_suffix(".svc.cluster.local").unwrap_or(fqdn);
                    sources.push(endpoint(
                        format!("{local}.{}", server.spec.identity),
                        server.spec.istio.ingress_gateway.tls_port.get(),
                    ));
                }
            }
            (
                endpoint(vip.to_string(), port),
                vec![endpoint(fqdn, port), endpoint(vip.to_string(), port)],
                remote,
            )
        }
    };
    Ok(Binding {
        cluster: site.site.name.to_string(),
        reach,
        endpoints,
        endpoint_mappings: sources
            .into_iter()
            .map(|source| EndpointMapping {
                source,
                target: target.clone(),
            })
            .collect(),
    })
}
