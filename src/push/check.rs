//! The cluster check (`POST /v2/clusters/{cluster}/check`): is the API server reachable, does
//! it serve the Istio kinds deploy writes, and may meshintent's credentials do what deploy
//! does (one SelfSubjectAccessReview per verb and kind, cluster-wide: deploy LISTs every
//! namespace, and writes wherever the set's objects go).

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::error::PushError;
use crate::analysis::image_tag;
use crate::domain::cluster::ClusterSpec;
use crate::domain::cluster_check::{CheckReport, ConditionStatus, ConditionType, Observed};
use crate::istio::{GROUP_NETWORKING, GROUP_SECURITY, IstioKind};

/// The verbs deploy needs on every kind it writes (apply is a patch, prune a delete, the
/// LIST per kind and verify's reads; create for an apply that creates).
pub const VERBS: [&str; 5] = ["get", "list", "create", "patch", "delete"];

/// Reviews sent at once.
const CONCURRENCY: usize = 8;

/// How a failed condition blocks the ones after it.
fn unknown(condition: ConditionType, why: &str) -> Observed {
    Observed::new(
        condition,
        ConditionStatus::Unknown,
        "NotChecked",
        format!("not checked: {why}"),
    )
}

/// Checks a cluster through `client` (built from its stored access).
pub async fn check(client: &kube::Client, spec: &ClusterSpec) -> CheckReport {
    let mut report = CheckReport {
        kubernetes_version: None,
        istio_version: None,
        observed: Vec::new(),
    };
    match client.apiserver_version().await {
        Ok(info) => {
            report.observed.push(Observed::new(
                ConditionType::Reachable,
                ConditionStatus::True,
                "VersionAnswered",
                format!(
                    "the API server answered GET /version: Kubernetes {}",
                    info.git_version
                ),
            ));
            report.kubernetes_version = Some(info.git_version);
        }
        Err(e) => {
            let e = PushError::from_kube(e);
            report.observed.push(Observed::new(
                ConditionType::Reachable,
                ConditionStatus::False,
                "Unreachable",
                format!(
                    "GET /version failed: {e}; check the kubeconfig's server address, its CA and the network path"
                ),
            ));
            report.observed.push(unknown(
                ConditionType::IstioServed,
                "the cluster is not reachable",
            ));
            report.observed.push(unknown(
                ConditionType::Permitted,
                "the cluster is not reachable",
            ));
            return report;
        }
    }
    report.observed.push(istio_served(client).await);
    report.observed.push(permitted(client).await);
    report.istio_version = istio_version(client, spec).await;
    report
}

async fn istio_served(client: &kube::Client) -> Observed {
    let mut missing = Vec::new();
    for group in [GROUP_NETWORKING, GROUP_SECURITY] {
        let kinds: Vec<IstioKind> = IstioKind::ALL
            .into_iter()
            .filter(|k| k.group() == group)
            .collect();
        let api_version = kinds[0].api_version();
        match client.list_api_group_resources(api_version).await {
            Ok(list) => missing.extend(
                kinds
                    .into_iter()
                    .filter(|k| !list.resources.iter().any(|r| r.name == k.plural()))
                    .map(|k| format!("{} ({api_version})", k.name())),
            ),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                missing.push(format!("the group {api_version}"));
            }
            Err(e) => {
                let e = PushError::from_kube(e);
                return Observed::new(
                    ConditionType::IstioServed,
                    ConditionStatus::Unknown,
                    "DiscoveryFailed",
                    format!("cannot discover {api_version}: {e}"),
                );
            }
        }
    }
    if missing.is_empty() {
        Observed::new(
            ConditionType::IstioServed,
            ConditionStatus::True,
            "KindsServed",
            "networking.istio.io/v1 and security.istio.io/v1 serve every kind deploy writes",
        )
    } else {
        Observed::new(
            ConditionType::IstioServed,
            ConditionStatus::False,
            "KindsNotServed",
            format!(
                "the cluster does not serve {}: install Istio 1.22 or later (its CRDs) on it",
                missing.join(", ")
            ),
        )
    }
}

/// A review's question (kind, verb) and whether it is allowed.
type Answer = ((IstioKind, &'static str), Result<bool, PushError>);

async fn permitted(client: &kube::Client) -> Observed {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let questions: Vec<(IstioKind, &str)> = IstioKind::ALL
        .into_iter()
        .flat_map(|k| VERBS.into_iter().map(move |v| (k, v)))
        .collect();
    let answers: Vec<Answer> = futures::stream::iter(questions)
        .map(|(kind, verb)| {
            let api = api.clone();
            async move {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            group: Some(kind.group().to_owned()),
                            resource: Some(kind.plural().to_owned()),
                            verb: Some(verb.to_owned()),
                            ..ResourceAttributes::default()
                        }),
                        ..SelfSubjectAccessReviewSpec::default()
                    },
                    ..SelfSubjectAccessReview::default()
                };
                let answer = api
                    .create(&PostParams::default(), &review)
                    .await
                    .map(|r| r.status.is_some_and(|s| s.allowed))
                    .map_err(PushError::from_kube);
                ((kind, verb), answer)
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut denied = Vec::new();
    for ((kind, verb), answer) in answers {
        match answer {
            Ok(true) => {}
            Ok(false) => denied.push(format!("{verb} {}.{}", kind.plural(), kind.group())),
            Err(e) => {
                return Observed::new(
                    ConditionType::Permitted,
                    ConditionStatus::Unknown,
                    "ReviewFailed",
                    format!("a SelfSubjectAccessReview failed: {e}"),
                );
            }
        }
    }
    if denied.is_empty() {
        Observed::new(
            ConditionType::Permitted,
            ConditionStatus::True,
            "AllVerbsAllowed",
            format!(
                "the credentials may {} every kind deploy writes, in all namespaces",
                VERBS.join(", ")
            ),
        )
    } else {
        Observed::new(
            ConditionType::Permitted,
            ConditionStatus::False,
            "VerbsDenied",
            format!(
                "the credentials may not: {} (cluster-wide); grant them, e.g. with the ClusterRole in deploy/ (docs/deploy.md, Permissions)",
                denied.join(", ")
            ),
        )
    }
}

/// istiod's image tag: one LIST of Deployments labelled `app=istiod` in the Istio namespace
/// (the ingress gateway's). None when it cannot be read or has no tag.
pub async fn istio_version(client: &kube::Client, spec: &ClusterSpec) -> Option<String> {
    let namespace = spec.istio.ingress_gateway.namespace.as_str();
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .ok()?;
    istiod_tag(&list.items)
}

/// The tag of the `discovery` container (or the first one) of the first istiod Deployment
/// (by name: `istiod` sorts before `istiod-<revision>`).
pub fn istiod_tag(deployments: &[Deployment]) -> Option<String> {
    let mut sorted: Vec<&Deployment> = deployments.iter().collect();
    sorted.sort_by_key(|d| d.metadata.name.clone());
    sorted.into_iter().find_map(|d| {
        let containers = &d.spec.template.spec.as_ref()?.containers;
        let container = containers
            .iter()
            .find(|c| c.name == "discovery")
            .or_else(|| containers.first())?;
        image_tag(container.image.as_deref()?)
    })
}
