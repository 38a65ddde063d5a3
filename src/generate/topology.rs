//! Where an inbound intent's service runs and where each of its clients calls it from.

use crate::domain::app::AppSpec;
use crate::domain::cluster::{ClusterSpec, CrossClusterMode};
use crate::domain::inbound::{InboundIntentSpec, MtlsMode};
use crate::domain::model::{InboundModel, IntentSetModel};
use crate::domain::names::{DnsName, Name};

use super::errors::{RenderError, Subject};

/// A cluster, with its settings.
#[derive(Clone, Copy, Debug)]
pub struct Site<'m> {
    pub name: &'m Name,
    pub spec: &'m ClusterSpec,
}

/// How a client reaches the service from its cluster.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Reach {
    /// The service runs on the client's cluster.
    Local,
    /// Sidecar-to-sidecar mTLS through the server cluster's ingress gateway (AUTO_PASSTHROUGH).
    Direct,
    /// Through the client cluster's egress gateway and the server's ingress gateway.
    EgressGateway,
}

/// One client app on one of its clusters.
#[derive(Clone, Debug)]
pub struct ClientSite<'m> {
    pub client: &'m Name,
    pub site: Site<'m>,
    pub namespace: &'m Name,
    pub service_account: DnsName,
    pub mtls: MtlsMode,
    pub reach: Reach,
}

impl ClientSite<'_> {
    /// The client's SPIFFE principal, in its own cluster's trust domain.
    pub fn principal(&self) -> String {
        principal(
            &self.site.spec.trust_domain,
            self.namespace,
            &self.service_account,
        )
    }
}

pub fn principal(trust_domain: &DnsName, namespace: &Name, service_account: &DnsName) -> String {
    format!("{trust_domain}/ns/{namespace}/sa/{service_account}")
}

/// Everything the generator needs to know about where an inbound intent lives.
#[derive(Clone, Debug)]
pub struct InboundPlan<'m> {
    pub name: &'m Name,
    pub intent: &'m InboundModel,
    pub spec: &'m InboundIntentSpec,
    pub app: &'m AppSpec,
    pub app_name: &'m Name,
    pub namespace: &'m Name,
    /// `<service>.<namespace>.svc.cluster.local`
    pub host: DnsName,
    /// `<instance>.<host>` for each instance of a headless service.
    pub instance_hosts: Vec<DnsName>,
    /// Clusters that run the service, in name order.
    pub servers: Vec<Site<'m>>,
    /// Every client on every cluster it runs on, ordered by cluster, namespace, client.
    pub clients: Vec<ClientSite<'m>>,
}

impl InboundPlan<'_> {
    /// The service host and, for a headless service, each instance host.
    pub fn all_hosts(&self) -> Vec<&DnsName> {
        std::iter::once(&self.host)
            .chain(&self.instance_hosts)
            .collect()
    }

    pub fn runs_on(&self, cluster: &Name) -> bool {
        self.servers.iter().any(|s| s.name == cluster)
    }

    /// Clients reaching the service across clusters.
    pub fn remote_clients(&self) -> impl Iterator<Item = &ClientSite<'_>> {
        self.clients.iter().filter(|c| c.reach != Reach::Local)
    }
}

/// The FQDN of a Kubernetes Service.
pub fn service_host(service: &str, namespace: &Name) -> Result<DnsName, String> {
    DnsName::join(&[service, namespace.as_str(), "svc", "cluster", "local"])
}

pub fn plan_inbound<'m>(
    model: &'m IntentSetModel,
    name: &'m Name,
) -> Result<InboundPlan<'m>, Vec<RenderError>> {
    let intent = &model.inbound[name];
    let spec = &intent.spec;
    let subject = || Subject::Inbound(name.clone());
    let Some((app_name, app)) = model.apps.get_key_value(&spec.app) else {
        return Err(vec![RenderError::new(
            subject(),
            "/spec/app",
            format!("app \"{}\" does not exist", spec.app),
        )]);
    };
    let namespace = &app.namespace;
    let host = service_host(spec.service_name.as_str(), namespace)
        .map_err(|e| vec![RenderError::new(subject(), "/spec/serviceName", e)])?;
    let instance_hosts = spec
        .instances
        .iter()
        .map(|i| DnsName::join(&[i.as_str(), host.as_str()]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| vec![RenderError::new(subject(), "/spec/instances", e)])?;
    let servers: Vec<Site> = model
        .app_clusters(app)
        .into_iter()
        .map(|c| Site {
            name: c,
            spec: &model.clusters[c],
        })
        .collect();
    let mut errors = Vec::new();
    if servers.is_empty() {
        errors.push(RenderError::new(
            Subject::App(app_name.clone()),
            "/spec/placement",
            format!("app \"{app_name}\" of inbound intent \"{name}\" is placed on no cluster"),
        ));
    }
    let mut clients = Vec::new();
    for (client_name, client) in &intent.clients {
        let Some(client_app) = model.apps.get(&client.spec.app) else {
            errors.push(RenderError::new(
                Subject::Client(name.clone(), client_name.clone()),
                "/spec/app",
                format!("app \"{}\" does not exist", client.spec.app),
            ));
            continue;
        };
        let service_account = client
            .spec
            .service_account
            .clone()
            .unwrap_or_else(|| client_app.service_account(&client.spec.app));
        let mtls = client.spec.mtls.unwrap_or_else(|| spec.mtls());
        for cluster in model.app_clusters(client_app) {
            let site = Site {
                name: cluster,
                spec: &model.clusters[cluster],
            };
            let reach = if servers.iter().any(|s| s.name == cluster) {
                Reach::Local
            } else {
                match site.spec.cross_cluster.mode {
                    CrossClusterMode::Direct => Reach::Direct,
                    CrossClusterMode::EgressGateway => Reach::EgressGateway,
                }
            };
            clients.push(ClientSite {
                client: client_name,
                site,
                namespace: &client_app.namespace,
                service_account: service_account.clone(),
                mtls,
                reach,
            });
        }
    }
    clients.sort_by(|a, b| {
        (a.site.name, a.namespace, a.client).cmp(&(b.site.name, b.namespace, b.client))
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(InboundPlan {
        name,
        intent,
        spec,
        app,
        app_name,
        namespace,
        host,
        instance_hosts,
        servers,
        clients,
    })
}
