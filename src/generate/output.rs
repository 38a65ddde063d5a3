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

/// What `list` returns, borrowing the objects instead of copying them: it serializes to the same
/// JSON as a `ManifestList`, and `yaml_pieces` give the same YAML as `yaml`.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestView<'m> {
    pub clusters: Vec<ClusterView<'m>>,
}

/// The objects of one cluster, borrowed.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterView<'m> {
    pub cluster: &'m str,
    pub objects: &'m [IstioObject],
}

/// `list` without copying the objects.
pub fn view<'m>(manifests: &'m Manifests, only: Option<&'m Name>) -> ManifestView<'m> {
    let clusters = match only {
        Some(cluster) => vec![ClusterView {
            cluster: cluster.as_str(),
            objects: manifests.get(cluster).map_or(&[], Vec::as_slice),
        }],
        None => manifests
            .iter()
            .map(|(cluster, objects)| ClusterView {
                cluster: cluster.as_str(),
                objects,
            })
            .collect(),
    };
    ManifestView { clusters }
}

/// YAML: for each cluster a comment line, then one document per object.
pub fn yaml(list: &ManifestList) -> String {
    let mut out = String::new();
    for cluster in &list.clusters {
        push_cluster_line(&mut out, &cluster.cluster, cluster.objects.len());
        for object in &cluster.objects {
            push_yaml_document(&mut out, object);
        }
    }
    out
}

/// The clusters of `manifests` (only `only` when given; none of its objects when it has none)
/// as (cluster, objects) pairs, borrowed: what `list` copies.
pub fn clusters<'m>(
    manifests: &'m Manifests,
    only: Option<&'m Name>,
) -> Vec<(&'m str, &'m [IstioObject])> {
    view(manifests, only)
        .clusters
        .into_iter()
        .map(|c| (c.cluster, c.objects))
        .collect()
}

/// Writes the YAML form of `clusters` (as `yaml`) object by object: a streamed response writes
/// it as it goes out.
pub fn write_yaml<'a>(
    clusters: impl IntoIterator<Item = (&'a str, &'a [IstioObject])>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut piece = String::new();
    for (cluster, objects) in clusters {
        push_cluster_line(&mut piece, cluster, objects.len());
        for object in objects {
            push_yaml_document(&mut piece, object);
            out.write_all(piece.as_bytes())?;
            piece.clear();
        }
        out.write_all(piece.as_bytes())?;
        piece.clear();
    }
    Ok(())
}

/// A run of one cluster's objects in the YAML `yaml` gives, with the cluster's comment line when
/// the run starts the cluster. The pieces of `yaml_pieces` can be serialized independently (in
/// parallel) and written out in order.
#[derive(Clone, Copy, Debug)]
pub struct YamlPiece<'v> {
    /// The cluster and its number of objects, for the first piece of a cluster.
    cluster_line: Option<(&'v str, usize)>,
    objects: &'v [IstioObject],
}

impl YamlPiece<'_> {
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        if let Some((cluster, objects)) = self.cluster_line {
            push_cluster_line(&mut out, cluster, objects);
        }
        for object in self.objects {
            push_yaml_document(&mut out, object);
        }
        out
    }
}

/// The YAML of a view (as `yaml` of the list it stands for) in pieces of at most
/// `objects_per_piece` objects.
pub fn yaml_pieces<'v>(
    view: &'v ManifestView<'_>,
    objects_per_piece: usize,
) -> impl Iterator<Item = YamlPiece<'v>> {
    view.clusters.iter().flat_map(move |cluster| {
        let first = YamlPiece {
            cluster_line: Some((cluster.cluster, cluster.objects.len())),
            objects: &[],
        };
        std::iter::once(first).chain(cluster.objects.chunks(objects_per_piece.max(1)).map(
            |objects| YamlPiece {
                cluster_line: None,
                objects,
            },
        ))
    })
}

/// The comment line that starts a cluster's objects.
fn push_cluster_line(out: &mut String, cluster: &str, objects: usize) {
    out.push_str(&format!(
        "# cluster: {cluster} ({objects} object{})\n",
        if objects == 1 { "" } else { "s" }
    ));
}

/// One object's document: a separator line, the object, a final newline.
fn push_yaml_document(out: &mut String, object: &IstioObject) {
    out.push_str("---\n");
    serde_saphyr::to_fmt_writer_with_options(out, object, yaml_options())
        .expect("manifests serialize to YAML");
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

fn yaml_options() -> serde_saphyr::SerializerOptions {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    options
}

/// One object as YAML, every string on one line (as Kubernetes manifests are usually written).
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    serde_saphyr::to_string_with_options(value, yaml_options())
        .expect("manifests serialize to YAML")
}

/// JSON, pretty-printed, with a final newline.
pub fn json(list: &ManifestList) -> String {
    let mut out = serde_json::to_string_pretty(list).expect("manifests serialize to JSON");
    out.push('\n');
    out
}
