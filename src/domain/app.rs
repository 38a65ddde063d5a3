//! Projects, composite apps, their member apps, and traffic intent sets.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::labels::Labels;
use super::names::{DnsName, Name, VersionName};
use super::violations::Violations;

/// A tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// The Kubernetes namespaces this project owns (admins only). A namespace belongs to at
    /// most one project, and the project's apps may only run in its own namespaces.
    #[serde(default)]
    #[schema(example = json!(["default"]))]
    pub namespaces: Vec<Name>,
}

/// A versioned group of apps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompositeAppSpec {
    /// The version; with the name it identifies the composite app (`.../composite-apps/{name}/{version}`).
    pub version: VersionName,
}

/// A unit of intents that is rendered and deployed together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficIntentSetSpec {
    /// Reconciliation: how often the deployed set is checked against its clusters, and whether
    /// drift is repaired (`selfHeal`). Without it: checked every 5m, drift only reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<super::sync::SyncSpec>,
}

impl TrafficIntentSetSpec {
    /// The set's reconciliation settings, defaults filled in.
    pub fn sync(&self) -> super::sync::SyncSpec {
        self.sync.unwrap_or_default()
    }
}

/// Label selector over cluster labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSelector {
    pub match_labels: Labels,
}

/// Where an app runs: a list of clusters, or every cluster whose labels match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<Name>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<ClusterSelector>,
}

/// A member app of a composite app version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppSpec {
    /// Kubernetes namespace the app runs in (on every cluster of its placement).
    pub namespace: Name,
    pub placement: Placement,
    /// Service account of the app's workloads. Default: the app name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<DnsName>,
    /// Labels selecting the app's workloads. Default: `{app: <app name>}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_labels: Option<Labels>,
}

impl AppSpec {
    /// Fills the defaults that derive from the app's own name, so responses show them.
    pub fn with_defaults(mut self, name: &Name) -> Self {
        if self.service_account.is_none() {
            self.service_account = Some(DnsName::from(name.clone()));
        }
        if self.workload_labels.is_none() {
            let mut labels = Labels::new();
            labels
                .insert("app", name.as_str())
                .expect("a resource name is a valid label value");
            self.workload_labels = Some(labels);
        }
        self
    }

    pub fn check(&self, v: &mut Violations) {
        let p = &self.placement;
        match (&p.clusters, &p.cluster_selector) {
            (Some(_), Some(_)) | (None, None) => v.add(
                "/spec/placement",
                "give exactly one of clusters or clusterSelector",
            ),
            (Some(clusters), None) => {
                v.check(
                    clusters.is_empty(),
                    "/spec/placement/clusters",
                    "must name at least one cluster",
                );
                v.no_repeats(clusters, "/spec/placement/clusters", "cluster");
            }
            (None, Some(selector)) => v.check(
                selector.match_labels.is_empty(),
                "/spec/placement/clusterSelector/matchLabels",
                "must hold at least one label (an empty selector would match every cluster)",
            ),
        }
        if let Some(labels) = &self.workload_labels {
            v.check(
                labels.is_empty(),
                "/spec/workloadLabels",
                "must hold at least one label (an empty selector would match every workload in the namespace)",
            );
        }
    }

    pub fn service_account(&self, name: &Name) -> DnsName {
        self.service_account
            .clone()
            .unwrap_or_else(|| DnsName::from(name.clone()))
    }

    pub fn workload_labels(&self, name: &Name) -> Labels {
        self.clone()
            .with_defaults(name)
            .workload_labels
            .expect("filled by with_defaults")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(json: serde_json::Value) -> AppSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_derive_from_the_name() {
        let name = Name::from_static("sleep");
        let spec = app(serde_json::json!({"namespace":"default","placement":{"clusters":["c1"]}}))
            .with_defaults(&name);
        assert_eq!(spec.service_account.unwrap().as_str(), "sleep");
        assert_eq!(spec.workload_labels.unwrap().get("app"), Some("sleep"));
    }

    #[test]
    fn placement_needs_exactly_one_form() {
        let mut v = Violations::new();
        app(serde_json::json!({"namespace":"d","placement":{}})).check(&mut v);
        app(serde_json::json!({"namespace":"d","placement":{"clusters":[]}})).check(&mut v);
        app(serde_json::json!({"namespace":"d","placement":{"clusters":["a","a"]}})).check(&mut v);
        let errors = v.into_result().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "/spec/placement",
                "/spec/placement/clusters",
                "/spec/placement/clusters/1"
            ]
        );
    }
}
