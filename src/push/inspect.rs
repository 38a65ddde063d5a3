//! Reads what the analysis needs from one cluster (`analysis::ClusterNeeds`) into an
//! `analysis::ClusterSnapshot`, with few requests: one LIST of Namespaces, one LIST of Services
//! per app namespace, one LIST of Pods and of Deployments per gateway namespace (and of
//! Deployments in the Istio namespace, for istiod), one metadata GET per named Secret, and
//! the LIST per Istio kind a deploy sends (`live::list_all`) for unmanaged overlaps.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use kube::Api;
use kube::api::ListParams;

use super::error::PushError;
use super::gate::Gate;
use super::live;
use super::retry::RetryPolicy;
use crate::analysis::{ClusterNeeds, ClusterSnapshot, TlsDisabledRule, disables_tls};
use crate::domain::names::Name;
use crate::generate::naming::{MANAGED_BY, MANAGED_BY_VALUE};
use crate::istio::IstioKind;

fn read_error(what: &str, e: kube::Error) -> PushError {
    PushError::from_kube(e).during(format!("cannot read {what}"))
}

fn labels(map: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    map.clone().unwrap_or_default()
}

/// Reads one cluster. An error means the cluster could not be analysed (unreachable,
/// forbidden, ...); its message says which read failed.
pub async fn snapshot(
    client: &kube::Client,
    cluster: &Name,
    needs: &ClusterNeeds,
    set_labels: &BTreeMap<String, String>,
    retry: &RetryPolicy,
) -> Result<ClusterSnapshot, PushError> {
    let mut out = ClusterSnapshot::default();
    if !needs.namespaces.is_empty() {
        let api: Api<Namespace> = Api::all(client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| read_error("Namespaces", e))?;
        for ns in list.items {
            let name = ns.metadata.name.clone().unwrap_or_default();
            if needs.namespaces.contains(&name) {
                out.namespaces.insert(name, labels(&ns.metadata.labels));
            }
        }
    }
    for ns in &needs.service_namespaces {
        if !out.namespaces.contains_key(ns) {
            continue;
        }
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| read_error(&format!("Services in {ns}"), e))?;
        for service in list.items {
            let ports = service
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .map(|ports| {
                    ports
                        .iter()
                        .filter_map(|p| u16::try_from(p.port).ok())
                        .collect()
                })
                .unwrap_or_default();
            out.services.insert(
                (ns.clone(), service.metadata.name.unwrap_or_default()),
                ports,
            );
        }
    }
    let mut deployment_namespaces: BTreeSet<&String> = needs.gateway_namespaces.iter().collect();
    deployment_namespaces.insert(&needs.istio_namespace);
    for ns in deployment_namespaces {
        let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| read_error(&format!("Deployments in {ns}"), e))?;
        if *ns == needs.istio_namespace {
            let istiod: Vec<Deployment> = list
                .items
                .iter()
                .filter(|d| {
                    d.metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.get("app").map(String::as_str) == Some("istiod"))
                })
                .cloned()
                .collect();
            out.istio_version = super::check::istiod_tag(&istiod);
        }
        if needs.gateway_namespaces.contains(ns) {
            let workloads = out.workloads.entry(ns.clone()).or_default();
            for d in &list.items {
                if let Some(template) = d.spec.template.metadata.as_ref() {
                    workloads.push(labels(&template.labels));
                }
            }
        }
    }
    for ns in &needs.gateway_namespaces {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| read_error(&format!("Pods in {ns}"), e))?;
        let workloads = out.workloads.entry(ns.clone()).or_default();
        for pod in list.items {
            workloads.push(labels(&pod.metadata.labels));
        }
    }
    for (ns, name) in &needs.secrets {
        // Only the metadata: meshintent never reads a Secret's data.
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let found = api
            .get_metadata_opt(name)
            .await
            .map_err(|e| read_error(&format!("Secret {ns}/{name}"), e))?;
        out.secrets
            .insert((ns.clone(), name.clone()), found.is_some());
    }
    let live = live::list_all(client, cluster, set_labels, retry, &Gate::unhalted()).await?;
    out.unmanaged_claims = live.unmanaged_claims;
    for (key, value) in &live.others {
        let managed = value["metadata"]["labels"][MANAGED_BY].as_str() == Some(MANAGED_BY_VALUE);
        if !managed {
            out.unmanaged_objects.insert((
                key.kind,
                key.namespace.to_string(),
                key.name.to_string(),
            ));
        }
        if key.kind == IstioKind::DestinationRule
            && disables_tls(value)
            && let Some(host) = value["spec"]["host"].as_str()
        {
            out.tls_disabled.push(TlsDisabledRule {
                object: format!("DestinationRule/{}/{}", key.namespace, key.name),
                host: host.to_owned(),
            });
        }
    }
    Ok(out)
}
