//! The two forms rendered manifests are shown in: JSON (`{"clusters": [...]}`) and YAML (one
//! document per object, grouped by cluster under a comment line naming the cluster).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::names::Name;
use crate::istio::IstioObject;

/// The objects each cluster needs, sorted.
pub type Manifests = BTreeMap<Name, Vec<IstioObject>>;

/// The objects of one cluster.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClusterManifests {
    #[schema(example = "cluster01")]
    pub cluster: String,
    /// Istio custom resources (`networking.istio.io/v1`, `security.istio.io/v1`), sorted by
    /// kind, namespace and name.
    #[schema(value_type = Vec<Object>)]
    pub objects: Vec<IstioObject>,
}

/// Rendered manifests, per cluster.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ManifestList {
    pub clusters: Vec<ClusterManifests>,
}

/// The clusters of `manifests` (only `only` when given; an empty list for a cluster without
/// objects).
pub fn list(manifests: &Manifests, only: Option<&Name>) -> ManifestList {
    let clusters = match only {
        Some(cluster) => vec![ClusterManifests {
            cluster: cluster.to_string(),
            objects: manifests.get(cluster).cloned().unwrap_or_default(),
        }],
        None => manifests
            .iter()
            .map(|(cluster, objects)| ClusterManifests {
                cluster: cluster.to_string(),
                objects: objects.clone(),
            })
            .collect(),
    };
    ManifestList { clusters }
}

/// YAML: for each cluster a comment line, then one document per object.
pub fn yaml(list: &ManifestList) -> String {
    let mut out = String::new();
    for cluster in &list.clusters {
        out.push_str(&format!(
            "# cluster: {} ({} object{})\n",
            cluster.cluster,
            cluster.objects.len(),
            if cluster.objects.len() == 1 { "" } else { "s" }
        ));
        for object in &cluster.objects {
            out.push_str("---\n");
            out.push_str(&to_yaml(object));
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// One object as YAML, every string on one line (as Kubernetes manifests are usually written).
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options).expect("manifests serialize to YAML")
}

/// JSON, pretty-printed, with a final newline.
pub fn json(list: &ManifestList) -> String {
    let mut out = serde_json::to_string_pretty(list).expect("manifests serialize to JSON");
    out.push('\n');
    out
}
