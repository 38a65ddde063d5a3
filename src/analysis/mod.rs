//! The analysis of a set against its live clusters (`GET .../analysis`, SPEC 8), as pure rules:
//! [`needs`] says what to read from each cluster, `push::inspect` reads it into a
//! [`ClusterSnapshot`], and [`analyse`] turns the model, the rendered manifests and the
//! snapshots into [`Finding`]s. No I/O here. Codes follow `istioctl analyze` where it has one
//! (`IST0101` ...); meshintent's own codes are `MI1xxx` (docs/deploy.md lists them all).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::claim::{Claim, MeshNameCollision, claims_of_value};
use crate::domain::model::IntentSetModel;
use crate::domain::names::Name;
use crate::generate::Manifests;
use crate::generate::naming::ANNOTATION_INTENT;
use crate::istio::IstioKind;

/// The oldest Istio release meshintent's objects (the `v1` APIs) work with.
pub const MIN_ISTIO: (u32, u32) = (1, 22);

/// A referenced object (Secret, Service, Namespace, workload selector) does not exist.
pub const REFERENCED_RESOURCE_NOT_FOUND: &str = "IST0101";
/// A namespace is not enabled for sidecar injection.
pub const NAMESPACE_NOT_INJECTED: &str = "IST0102";
/// A DestinationRule disables TLS towards a workload whose PeerAuthentication is STRICT.
pub const MTLS_POLICY_CONFLICT: &str = "IST0113";
/// The cluster could not be read.
pub const CLUSTER_NOT_READ: &str = "MI1000";
/// The Service exists but does not expose the intent's port.
pub const SERVICE_PORT_NOT_FOUND: &str = "MI1001";
/// An object meshintent does not manage has the same identity, or decides the same mesh name.
pub const UNMANAGED_OVERLAP: &str = "MI1002";
/// istiod is older than [`MIN_ISTIO`].
pub const ISTIO_TOO_OLD: &str = "MI1003";
/// Another set decides a mesh name this set decides too (data stored before claims existed).
pub const MESH_NAME_COLLISION: &str = "MI1004";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Traffic will not work as intended.
    Error,
    /// Likely a problem.
    Warning,
    /// Worth knowing.
    Info,
}

/// One finding of the analysis.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code: `IST0101`-style where `istioctl analyze` has one, `MI1xxx` otherwise.
    #[schema(example = "IST0101")]
    pub code: String,
    pub severity: Severity,
    pub cluster: String,
    /// The object concerned, `Kind/namespace/name` (`Namespace/name` for a namespace).
    #[schema(example = "Secret/istio-system/meshintent-ingress-cert")]
    pub object: Option<String>,
    /// The URL path of the intent the finding comes from.
    pub intent: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

/// The findings of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Analysis {
    /// Sorted by cluster, severity, code and object.
    pub findings: Vec<Finding>,
}

/// What to read from one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterNeeds {
    /// Namespaces the set's apps run in (their labels decide sidecar injection).
    pub namespaces: BTreeSet<String>,
    /// Namespaces whose Services the inbound intents expose.
    pub service_namespaces: BTreeSet<String>,
    /// Namespaces of the Gateways rendered for the cluster (their workloads are listed).
    pub gateway_namespaces: BTreeSet<String>,
    /// `(namespace, name)` of the Secrets rendered objects name as `credentialName` in a
    /// gateway namespace.
    pub secrets: BTreeSet<(String, String)>,
    /// Where istiod runs (the ingress gateway's namespace).
    pub istio_namespace: String,
}

/// A live DestinationRule that is not the set's and disables TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsDisabledRule {
    /// `DestinationRule/namespace/name`
    pub object: String,
    pub host: String,
}

/// What was read from one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// The needed namespaces that exist, with their labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// `(namespace, name)` → the Service's ports.
    pub services: BTreeMap<(String, String), Vec<u16>>,
    /// Per gateway namespace, the labels of its Pods and of its Deployments' pod templates.
    pub workloads: BTreeMap<String, Vec<BTreeMap<String, String>>>,
    /// The Secrets looked up (those of [`ClusterNeeds::secrets`]) and whether each exists.
    /// Secrets outside the gateway namespaces are not read (meshintent may not).
    pub secrets: BTreeMap<(String, String), bool>,
    /// The image tag of istiod, when found.
    pub istio_version: Option<String>,
    /// Mesh names decided by objects meshintent does not manage (with one such object).
    pub unmanaged_claims: BTreeMap<Claim, String>,
    /// `(kind, namespace, name)` of objects without meshintent's managed-by label.
    pub unmanaged_objects: BTreeSet<(IstioKind, String, String)>,
    /// Live DestinationRules, not the set's, that disable TLS.
    pub tls_disabled: Vec<TlsDisabledRule>,
}

/// The version in an image reference: the tag, without a digest (`docker.io/istio/pilot:1.22.3`
/// → `1.22.3`). None without a tag.
pub fn image_tag(image: &str) -> Option<String> {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    let (_, tag) = last.rsplit_once(':')?;
    (!tag.is_empty()).then(|| tag.to_owned())
}

/// `major.minor` of a version such as `1.22.3`, `1.23.0-distroless` or `v1.21.1`.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let v = version.trim_start_matches('v');
    let mut parts = v.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The `credentialName`s an object names (Gateway servers, DestinationRule TLS settings).
fn credential_names(kind: IstioKind, object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |tls: &Value| {
        if let Some(name) = tls["credentialName"].as_str() {
            out.push(name.to_owned());
        }
    };
    match kind {
        IstioKind::Gateway => {
            for server in object["spec"]["servers"].as_array().into_iter().flatten() {
                push(&server["tls"]);
            }
        }
        IstioKind::DestinationRule => {
            let policies = std::iter::once(&object["spec"]["trafficPolicy"]).chain(
                object["spec"]["subsets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| &s["trafficPolicy"]),
            );
            for policy in policies {
                push(&policy["tls"]);
                for port in policy["portLevelSettings"].as_array().into_iter().flatten() {
                    push(&port["tls"]);
                }
            }
        }
        _ => {}
    }
    out
}

/// Whether a DestinationRule disables TLS (at the top, per port or in a subset).
pub fn disables_tls(object: &Value) -> bool {
    let policies = std::iter::once(&object["spec"]["trafficPolicy"]).chain(
        object["spec"]["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| &s["trafficPolicy"]),
    );
    policies.into_iter().any(|p| {
        p["tls"]["mode"] == "DISABLE"
            || p["portLevelSettings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|port| port["tls"]["mode"] == "DISABLE")
    })
}

fn objects(manifests: &Manifests) -> impl Iterator<Item = (&Name, IstioKind, Value)> {
    manifests.iter().flat_map(|(cluster, list)| {
        list.iter().map(move |o| {
            (
                cluster,
                o.istio_kind(),
                serde_json::to_value(o).unwrap_or(Value::Null),
            )
        })
    })
}

/// What to read from each cluster the set renders for or places an app on.
pub fn needs(model: &IntentSetModel, manifests: &Manifests) -> BTreeMap<Name, ClusterNeeds> {
    let mut out: BTreeMap<Name, ClusterNeeds> = BTreeMap::new();
    fn entry<'a>(
        out: &'a mut BTreeMap<Name, ClusterNeeds>,
        model: &IntentSetModel,
        cluster: &Name,
    ) -> &'a mut ClusterNeeds {
        out.entry(cluster.clone()).or_insert_with(|| ClusterNeeds {
            istio_namespace: model
                .clusters
                .get(cluster)
                .map(|c| c.istio.ingress_gateway.namespace.to_string())
                .unwrap_or_else(|| "istio-system".to_owned()),
            ..ClusterNeeds::default()
        })
    }
    for inbound in model.inbound.values() {
        if let Some(app) = model.apps.get(&inbound.spec.app) {
            for cluster in model.app_clusters(app) {
                let needs = entry(&mut out, model, cluster);
                needs.namespaces.insert(app.namespace.to_string());
                needs.service_namespaces.insert(app.namespace.to_string());
            }
        }
        for client in inbound.clients.values() {
            if let Some(app) = model.apps.get(&client.spec.app) {
                for cluster in model.app_clusters(app) {
                    entry(&mut out, model, cluster)
                        .namespaces
                        .insert(app.namespace.to_string());
                }
            }
        }
    }
    for cluster in manifests.keys() {
        entry(&mut out, model, cluster);
    }
    for (cluster, kind, object) in objects(manifests) {
        let Some(spec) = model.clusters.get(cluster) else {
            continue;
        };
        let gateway_namespaces = [
            spec.istio.ingress_gateway.namespace.as_str(),
            spec.istio.egress_gateway.namespace.as_str(),
        ];
        let namespace = str_at(&object, "/metadata/namespace")
            .unwrap_or("")
            .to_owned();
        let needs = entry(&mut out, model, cluster);
        if kind == IstioKind::Gateway {
            needs.gateway_namespaces.insert(namespace.clone());
        }
        if gateway_namespaces.contains(&namespace.as_str()) {
            for name in credential_names(kind, &object) {
                needs.secrets.insert((namespace.clone(), name));
            }
        }
    }
    out
}

/// A finding under construction.
struct Out<'a> {
    cluster: &'a Name,
    findings: &'a mut Vec<Finding>,
}

impl Out<'_> {
    fn add(
        &mut self,
        code: &str,
        severity: Severity,
        object: Option<String>,
        intent: Option<&str>,
        message: String,
    ) {
        self.findings.push(Finding {
            code: code.to_owned(),
            severity,
            cluster: self.cluster.to_string(),
            object,
            intent: intent.map(str::to_owned),
            message,
        });
    }
}

/// The findings of a set: `snapshots` holds, per cluster of [`needs`], what was read, or why
/// it could not be read (one finding for that cluster, the others are still analysed).
pub fn analyse(
    model: &IntentSetModel,
    manifests: &Manifests,
    snapshots: &BTreeMap<Name, Result<ClusterSnapshot, String>>,
    collisions: &[MeshNameCollision],
) -> Analysis {
    let set_url = model.address.path().url();
    let mut findings: Vec<Finding> = collisions
        .iter()
        .map(|c| Finding {
            code: MESH_NAME_COLLISION.to_owned(),
            severity: Severity::Error,
            cluster: c.cluster.clone(),
            object: None,
            intent: Some(c.intent.clone()),
            message: c.message.clone(),
        })
        .collect();
    for (cluster, snapshot) in snapshots {
        let mut out = Out {
            cluster,
            findings: &mut findings,
        };
        match snapshot {
            Err(message) => out.add(
                CLUSTER_NOT_READ,
                Severity::Error,
                None,
                None,
                format!(
                    "cluster {cluster} could not be read, so it was not analysed: {message}. Check that it is reachable \
(POST /v2/clusters/{cluster}/check) and that meshintent has the read permissions in docs/deploy.md (Permissions)"
                ),
            ),
            Ok(snapshot) => {
                namespaces_and_services(model, &set_url, cluster, snapshot, &mut out);
                gateways(manifests, cluster, snapshot, &mut out);
                overlaps(manifests, cluster, snapshot, &mut out);
                istio_version(cluster, snapshot, &mut out);
            }
        }
    }
    mtls_conflicts(manifests, snapshots, &mut findings);
    findings.sort_by(|a, b| {
        (&a.cluster, a.severity, &a.code, &a.object, &a.intent)
            .cmp(&(&b.cluster, b.severity, &b.code, &b.object, &b.intent))
    });
    findings.dedup();
    Analysis { findings }
}

fn injected(labels: &BTreeMap<String, String>) -> bool {
    labels.get("istio-injection").map(String::as_str) == Some("enabled")
        || labels.contains_key("istio.io/rev")
}

/// Apps' namespaces (exist, sidecar injection) and inbound intents' Services (exist, port).
fn namespaces_and_services(
    model: &IntentSetModel,
    set_url: &str,
    cluster: &Name,
    snapshot: &ClusterSnapshot,
    out: &mut Out<'_>,
) {
    // (namespace, needs a sidecar, intent URL) for every app of the set on this cluster.
    let mut uses: Vec<(String, bool, String)> = Vec::new();
    for (name, inbound) in &model.inbound {
        let url = format!("{set_url}/inbound-intents/{name}");
        if let Some(app) = model.apps.get(&inbound.spec.app)
            && model.app_clusters(app).contains(&cluster)
        {
            let ns = app.namespace.to_string();
            uses.push((ns.clone(), inbound.spec.sidecar, url.clone()));
            if snapshot.namespaces.contains_key(&ns) {
                let service = inbound.spec.service_name.to_string();
                let port = inbound.spec.port.get();
                let object = Some(format!("Service/{ns}/{service}"));
                match snapshot.services.get(&(ns.clone(), service.clone())) {
                    None => out.add(
                        REFERENCED_RESOURCE_NOT_FOUND,
                        Severity::Error,
                        object,
                        Some(&url),
                        format!(
                            "Referenced Service not found: \"{ns}/{service}\". Create the Kubernetes Service {service} \
in namespace {ns} on cluster {cluster} (port {port}), or correct serviceName of the inbound intent"
                        ),
                    ),
                    Some(ports) if !ports.contains(&port) => out.add(
                        SERVICE_PORT_NOT_FOUND,
                        Severity::Error,
                        object,
                        Some(&url),
                        format!(
                            "Service {ns}/{service} on cluster {cluster} does not expose port {port} (it has {ports:?}); \
add the port to the Service or correct the inbound intent's port"
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        for (client_name, client) in &inbound.clients {
            if let Some(app) = model.apps.get(&client.spec.app)
                && model.app_clusters(app).contains(&cluster)
            {
                uses.push((
                    app.namespace.to_string(),
                    true,
                    format!("{url}/clients/{client_name}"),
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (ns, sidecar, url) in uses {
        if !seen.insert((ns.clone(), sidecar)) {
            continue;
        }
        let object = Some(format!("Namespace/{ns}"));
        match snapshot.namespaces.get(&ns) {
            None => {
                if seen.contains(&(ns.clone(), !sidecar)) {
                    continue;
                }
                out.add(
                    REFERENCED_RESOURCE_NOT_FOUND,
                    Severity::Error,
                    object,
                    Some(&url),
                    format!(
                        "Referenced namespace not found: \"{ns}\". Create it on cluster {cluster} \
(kubectl create namespace {ns}; kubectl label namespace {ns} istio-injection=enabled) or correct the app's namespace"
                    ),
                )
            }
            Some(labels) if sidecar && !injected(labels) => out.add(
                NAMESPACE_NOT_INJECTED,
                Severity::Warning,
                object,
                Some(&url),
                format!(
                    "The namespace {ns} on cluster {cluster} is not enabled for Istio injection, so its workloads get no sidecar. \
Run 'kubectl label namespace {ns} istio-injection=enabled' (or istio.io/rev=<revision>) and restart the workloads"
                ),
            ),
            Some(_) => {}
        }
    }
}

/// Rendered Gateways: a workload matches their selector; named Secrets exist.
fn gateways(manifests: &Manifests, cluster: &Name, snapshot: &ClusterSnapshot, out: &mut Out<'_>) {
    let Some(list) = manifests.get(cluster) else {
        return;
    };
    for object in list {
        let kind = object.istio_kind();
        let value = serde_json::to_value(object).unwrap_or(Value::Null);
        let ns = str_at(&value, "/metadata/namespace")
            .unwrap_or("")
            .to_owned();
        let name = str_at(&value, "/metadata/name").unwrap_or("").to_owned();
        let intent = str_at(
            &value,
            &format!("/metadata/annotations/{}", pointer_key(ANNOTATION_INTENT)),
        )
        .map(str::to_owned);
        if kind == IstioKind::Gateway {
            let selector: BTreeMap<String, String> = value["spec"]["selector"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let matched = snapshot
                .workloads
                .get(&ns)
                .into_iter()
                .flatten()
                .any(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
            if !selector.is_empty() && !matched {
                let text: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let text = text.join(",");
                out.add(
                    REFERENCED_RESOURCE_NOT_FOUND,
                    Severity::Error,
                    Some(format!("Gateway/{ns}/{name}")),
                    intent.as_deref(),
                    format!(
                        "Referenced selector not found: \"{text}\". No gateway Pod or Deployment in namespace {ns} on cluster {cluster} \
has these labels: install the gateway there, or set the cluster's istio gateway selector and namespace to the installed one"
                    ),
                );
            }
        }
        for secret in credential_names(kind, &value) {
            let key = (ns.clone(), secret.clone());
            if snapshot.secrets.get(&key) == Some(&false) {
                out.add(
                    REFERENCED_RESOURCE_NOT_FOUND,
                    Severity::Error,
                    Some(format!("Secret/{ns}/{secret}")),
                    intent.as_deref(),
                    format!(
                        "Referenced credentialName not found: \"{secret}\" (named by {}/{ns}/{name}). Create the TLS Secret {secret} \
in namespace {ns} on cluster {cluster} (kubectl create secret generic {secret} -n {ns} --from-file=tls.key --from-file=tls.crt --from-file=ca.crt)",
                        kind.name()
                    ),
                );
            }
        }
    }
}

/// `~1` for `/` in a JSON pointer.
fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Rendered objects that an unmanaged live object collides with.
fn overlaps(manifests: &Manifests, cluster: &Name, snapshot: &ClusterSnapshot, out: &mut Out<'_>) {
    let Some(list) = manifests.get(cluster) else {
        return;
    };
    for object in list {
        let kind = object.istio_kind();
        let value = serde_json::to_value(object).unwrap_or(Value::Null);
        let ns = str_at(&value, "/metadata/namespace")
            .unwrap_or("")
            .to_owned();
        let name = str_at(&value, "/metadata/name").unwrap_or("").to_owned();
        let intent = str_at(
            &value,
            &format!("/metadata/annotations/{}", pointer_key(ANNOTATION_INTENT)),
        )
        .map(str::to_owned);
        let id = format!("{}/{ns}/{name}", kind.name());
        if snapshot
            .unmanaged_objects
            .contains(&(kind, ns.clone(), name.clone()))
        {
            out.add(
                UNMANAGED_OVERLAP,
                Severity::Error,
                Some(id.clone()),
                intent.as_deref(),
                format!(
                    "{id} exists on cluster {cluster} and is not managed by meshintent, so a deploy will leave it untouched \
and report a conflict. Delete it, or add it to meshintent's intents and delete the hand-made copy"
                ),
            );
            continue;
        }
        for claim in claims_of_value(cluster, kind, &value) {
            if let Some(holder) = snapshot.unmanaged_claims.get(&claim) {
                out.add(
                    UNMANAGED_OVERLAP,
                    Severity::Error,
                    Some(id.clone()),
                    intent.as_deref(),
                    format!(
                        "{holder} is not managed by meshintent and decides the same {claim}: Istio's choice between it and {id} \
is undefined. Delete {holder} or merge it into the intents"
                    ),
                );
            }
        }
    }
}

fn istio_version(cluster: &Name, snapshot: &ClusterSnapshot, out: &mut Out<'_>) {
    let Some(version) = &snapshot.istio_version else {
        return;
    };
    if let Some(found) = major_minor(version)
        && found < MIN_ISTIO
    {
        out.add(
            ISTIO_TOO_OLD,
            Severity::Error,
            Some("Deployment/istiod".to_owned()),
            None,
            format!(
                "cluster {cluster} runs Istio {version} (istiod's image tag); meshintent writes the v1 APIs, which need Istio {}.{} or later: upgrade Istio",
                MIN_ISTIO.0, MIN_ISTIO.1
            ),
        );
    }
}

/// DestinationRules (rendered, or live and not the set's) that disable TLS towards a host
/// whose workloads the set makes STRICT.
fn mtls_conflicts(
    manifests: &Manifests,
    snapshots: &BTreeMap<Name, Result<ClusterSnapshot, String>>,
    findings: &mut Vec<Finding>,
) {
    let intent_of = |v: &Value| {
        str_at(
            v,
            &format!("/metadata/annotations/{}", pointer_key(ANNOTATION_INTENT)),
        )
        .map(str::to_owned)
    };
    let all: Vec<(&Name, IstioKind, Value)> = objects(manifests).collect();
    let strict: BTreeSet<String> = all
        .iter()
        .filter(|(_, kind, v)| {
            *kind == IstioKind::PeerAuthentication
                && (v["spec"]["mtls"]["mode"] == "STRICT"
                    || v["spec"]["portLevelMtls"]
                        .as_object()
                        .is_some_and(|m| m.values().any(|p| p["mode"] == "STRICT")))
        })
        .filter_map(|(_, _, v)| intent_of(v))
        .collect();
    // host → the STRICT intent it belongs to.
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    for (_, kind, v) in &all {
        if *kind == IstioKind::DestinationRule
            && let (Some(intent), Some(host)) = (intent_of(v), str_at(v, "/spec/host"))
            && strict.contains(&intent)
        {
            hosts.entry(host.to_owned()).or_insert(intent);
        }
    }
    let finding = |cluster: &Name, object: String, host: &str, intent: &str| Finding {
        code: MTLS_POLICY_CONFLICT.to_owned(),
        severity: Severity::Error,
        cluster: cluster.to_string(),
        object: Some(object.clone()),
        intent: Some(intent.to_owned()),
        message: format!(
            "{object} on cluster {cluster} disables TLS towards {host}, whose workloads accept only mutual TLS (PeerAuthentication STRICT): \
its clients' calls will fail. Remove the DISABLE mode (use ISTIO_MUTUAL) or delete the rule"
        ),
    };
    for (cluster, kind, v) in &all {
        if *kind != IstioKind::DestinationRule || !disables_tls(v) {
            continue;
        }
        if let Some(host) = str_at(v, "/spec/host")
            && let Some(intent) = hosts.get(host)
        {
            let object = format!(
                "DestinationRule/{}/{}",
                str_at(v, "/metadata/namespace").unwrap_or(""),
                str_at(v, "/metadata/name").unwrap_or("")
            );
            findings.push(finding(cluster, object, host, intent));
        }
    }
    for (cluster, snapshot) in snapshots {
        for rule in snapshot.iter().flat_map(|s| &s.tls_disabled) {
            if let Some(intent) = hosts.get(&rule.host) {
                findings.push(finding(cluster, rule.object.clone(), &rule.host, intent));
            }
        }
    }
}

#[cfg(test)]
mod tests;
