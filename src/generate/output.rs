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
    let clusters = clusters(manifests, only)
        .into_iter()
        .map(|(cluster, objects)| ClusterManifests {
            cluster: cluster.to_owned(),
            objects: objects.to_vec(),
        })
        .collect();
    ManifestList { clusters }
}

/// YAML: for each cluster a comment line, then one document per object.
pub fn yaml(list: &ManifestList) -> String {
    let mut out = Vec::new();
    let clusters = list
        .clusters
        .iter()
        .map(|c| (c.cluster.as_str(), c.objects.as_slice()));
    write_yaml(clusters, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("YAML is UTF-8")
}

/// The clusters of `manifests` (only `only` when given; none of its objects when it has none)
/// as (cluster, objects) pairs, borrowed: what `list` copies.
pub fn clusters<'m>(
    manifests: &'m Manifests,
    only: Option<&'m Name>,
) -> Vec<(&'m str, &'m [IstioObject])> {
    match only {
        Some(cluster) => vec![(
            cluster.as_str(),
            manifests.get(cluster).map_or(&[][..], Vec::as_slice),
        )],
        None => manifests
            .iter()
            .map(|(cluster, objects)| (cluster.as_str(), objects.as_slice()))
            .collect(),
    }
}

/// Writes the YAML form of `clusters` object by object (a streamed response writes it as it
/// goes out).
pub fn write_yaml<'a>(
    clusters: impl IntoIterator<Item = (&'a str, &'a [IstioObject])>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for (cluster, objects) in clusters {
        writeln!(
            out,
            "# cluster: {cluster} ({} object{})",
            objects.len(),
            if objects.len() == 1 { "" } else { "s" }
        )?;
        for object in objects {
            let yaml = to_yaml(object);
            out.write_all(b"---\n")?;
            out.write_all(yaml.as_bytes())?;
            if !yaml.ends_with('\n') {
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
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
