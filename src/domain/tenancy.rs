//! Tenancy rules (SPEC section 6, "Tenancy"): a project writes only into namespaces it owns,
//! and no project owns a namespace where a cluster runs its gateways.

use std::collections::{BTreeMap, BTreeSet};

use super::app::{AppSpec, ProjectSpec};
use super::cluster::ClusterSpec;
use super::names::Name;
use super::violations::FieldError;

/// A project's namespaces: each listed once, none a cluster's gateway namespace.
pub fn check_project_namespaces(
    spec: &ProjectSpec,
    clusters: &BTreeMap<Name, ClusterSpec>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, ns) in spec.namespaces.iter().enumerate() {
        let field = format!("/spec/namespaces/{i}");
        if !seen.insert(ns) {
            errors.push(FieldError::new(
                field,
                format!("namespace \"{ns}\" is listed twice"),
            ));
            continue;
        }
        if let Some((cluster, which)) = gateway_user(ns, clusters) {
            errors.push(FieldError::new(
                field,
                format!(
                    "namespace \"{ns}\" holds the {which} gateway of cluster \"{cluster}\"; \
                     gateway namespaces cannot belong to a project"
                ),
            ));
        }
    }
    errors
}

fn gateway_user<'a>(
    ns: &Name,
    clusters: &'a BTreeMap<Name, ClusterSpec>,
) -> Option<(&'a Name, &'static str)> {
    clusters.iter().find_map(|(name, c)| {
        if c.istio.ingress_gateway.namespace == *ns {
            Some((name, "ingress"))
        } else if c.istio.egress_gateway.namespace == *ns {
            Some((name, "egress"))
        } else {
            None
        }
    })
}

/// An app runs in a namespace its project owns.
pub fn check_app_namespace(app: &AppSpec, project: &Name, owned: &[String]) -> Vec<FieldError> {
    if owned.iter().any(|ns| ns == app.namespace.as_str()) {
        return Vec::new();
    }
    let owns = if owned.is_empty() {
        "owns no namespaces".to_owned()
    } else {
        format!("owns {}", quoted_list(owned))
    };
    vec![FieldError::new(
        "/spec/namespace",
        format!(
            "namespace \"{}\" does not belong to project \"{project}\" (it {owns}); \
             an admin adds namespaces to the project's spec.namespaces",
            app.namespace
        ),
    )]
}

/// A cluster's gateway namespaces belong to no project. `owners` maps namespaces to projects.
pub fn check_cluster_gateways(
    cluster: &ClusterSpec,
    owners: &BTreeMap<String, String>,
) -> Vec<FieldError> {
    [
        (
            "/spec/istio/ingressGateway/namespace",
            &cluster.istio.ingress_gateway.namespace,
        ),
        (
            "/spec/istio/egressGateway/namespace",
            &cluster.istio.egress_gateway.namespace,
        ),
    ]
    .into_iter()
    .filter_map(|(field, ns)| {
        owners.get(ns.as_str()).map(|project| {
            FieldError::new(
                field,
                format!(
                    "namespace \"{ns}\" belongs to project \"{project}\"; a gateway namespace \
                     cannot be a project's namespace"
                ),
            )
        })
    })
    .collect()
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(ingress_ns: &str) -> ClusterSpec {
        serde_json::from_value(serde_json::json!({
            "identity": "c1.example.com",
            "istio": {"ingressGateway": {"namespace": ingress_ns}}
        }))
        .unwrap()
    }

    fn project(namespaces: &[&str]) -> ProjectSpec {
        serde_json::from_value(serde_json::json!({ "namespaces": namespaces })).unwrap()
    }

    fn app(ns: &str) -> AppSpec {
        serde_json::from_value(serde_json::json!({
            "namespace": ns, "placement": {"clusters": ["c1"]}
        }))
        .unwrap()
    }

    #[test]
    fn a_project_cannot_own_a_gateway_namespace_or_list_one_twice() {
        let clusters = BTreeMap::from([("c1".parse().unwrap(), cluster("gw"))]);
        let errors = check_project_namespaces(&project(&["a", "gw", "a"]), &clusters);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/spec/namespaces/1", "/spec/namespaces/2"]);
        assert!(errors[0].message.contains("cluster \"c1\""), "{errors:?}");
        assert!(check_project_namespaces(&project(&["a", "b"]), &clusters).is_empty());
    }

    #[test]
    fn apps_run_only_in_owned_namespaces() {
        let p: Name = "team".parse().unwrap();
        assert!(check_app_namespace(&app("a"), &p, &["a".into()]).is_empty());
        let errors = check_app_namespace(&app("bookinfo"), &p, &["a".into()]);
        assert_eq!(errors[0].field, "/spec/namespace");
        assert!(errors[0].message.contains("\"bookinfo\""));
        assert!(
            check_app_namespace(&app("a"), &p, &[])[0]
                .message
                .contains("owns no namespaces")
        );
    }

    #[test]
    fn a_cluster_cannot_put_gateways_in_a_project_namespace() {
        let owners = BTreeMap::from([("gw".to_owned(), "team".to_owned())]);
        let errors = check_cluster_gateways(&cluster("gw"), &owners);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "/spec/istio/ingressGateway/namespace");
        assert!(check_cluster_gateways(&cluster("istio-system"), &owners).is_empty());
    }
}
