//! Collects generated objects per cluster, stamping names, labels and annotations.

use std::collections::BTreeMap;

use crate::domain::model::IntentSetModel;
use crate::domain::names::Name;
use crate::istio::{IstioObject, ObjectMeta, Typed, VirtualServiceSpec};

use super::errors::{RenderError, Subject};
use super::naming;
use super::output::Manifests;

/// The output being built, and the problems found on the way.
pub struct Emitter<'m> {
    pub model: &'m IntentSetModel,
    objects: BTreeMap<Name, Vec<IstioObject>>,
    /// VirtualServices the routes pass refines, registered by the pass that emitted them: the
    /// cluster and the index in its objects (objects are only sorted in `finish`).
    route_slots: BTreeMap<RouteSlot, (Name, usize)>,
    /// Subset names of DestinationRules whose host several intents share (the egress gateway's
    /// Service), per cluster, namespace and host, with the intent that defined each.
    shared_subsets: BTreeMap<(Name, String, String, String), Subject>,
    pub errors: Vec<RenderError>,
}

/// A VirtualService that route intents refine, named by its role rather than its object name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteSlot {
    /// `<intent>-to-egress` of an inbound intent in a client namespace (mode `egressGateway`).
    InboundToEgress {
        intent: Name,
        cluster: Name,
        namespace: String,
    },
    /// `<intent>-ingress` of an inbound intent on a server cluster (external access).
    InboundIngress { intent: Name, cluster: Name },
    /// Where an outbound intent's routes land: the egress gateway's VirtualService, or the mesh
    /// one in a client namespace.
    Outbound {
        intent: Name,
        cluster: Name,
        namespace: String,
    },
    /// `<intent>-to-egress` of an outbound intent in a client namespace, where the sidecar picks
    /// the egress gateway subset of TLS the application passes through (`tls` route rules).
    OutboundToEgress {
        intent: Name,
        cluster: Name,
        namespace: String,
    },
}

/// `exportTo` of an object in `own` namespace that the workloads of `namespaces` need: `.` and
/// the other namespaces, sorted and without repeats (never empty, which would mean everywhere).
pub fn export_to<'a>(own: &str, namespaces: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let others: std::collections::BTreeSet<&str> =
        namespaces.into_iter().filter(|n| *n != own).collect();
    std::iter::once(".".to_owned())
        .chain(others.into_iter().map(str::to_owned))
        .collect()
}

/// The identity of an object on its cluster.
pub type Identity<'a> = (&'a str, &'a str, &'a str, &'a str);

pub fn identity(object: &IstioObject) -> Identity<'_> {
    let meta = object.metadata();
    (
        object.api_version(),
        object.kind(),
        &meta.namespace,
        &meta.name,
    )
}

/// Objects sorted by apiVersion, kind, namespace and name (stable). Objects are large, so their
/// order is found on indices and then each object moved about once, not once per comparison
/// level of a sort.
pub fn sort_objects(objects: &mut [IstioObject]) {
    let mut source: Vec<usize> = (0..objects.len()).collect();
    source.sort_by(|&a, &b| identity(&objects[a]).cmp(&identity(&objects[b])));
    // Slot `i` takes the object now at `source[i]`, following each cycle of the permutation.
    for start in 0..objects.len() {
        let mut slot = start;
        while source[slot] != start {
            let from = source[slot];
            objects.swap(slot, from);
            source[slot] = slot;
            slot = from;
        }
        source[slot] = slot;
    }
}

impl<'m> Emitter<'m> {
    pub fn new(model: &'m IntentSetModel) -> Self {
        Self {
            model,
            objects: BTreeMap::new(),
            route_slots: BTreeMap::new(),
            shared_subsets: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// The URL of an intent of this set, for the annotation naming where an object came from.
    pub fn intent_url(&self, collection: &str, name: &Name) -> String {
        format!("{}/{collection}/{name}", self.model.address.path().url())
    }

    /// Metadata for an object on `cluster`: name, namespace, the set's labels, the intent's annotation.
    pub fn meta(
        &self,
        cluster: &Name,
        name: String,
        namespace: &str,
        intent_url: &str,
    ) -> ObjectMeta {
        ObjectMeta {
            name,
            namespace: namespace.to_owned(),
            labels: naming::labels(&self.model.address, &self.model.clusters[cluster]),
            annotations: naming::annotations(intent_url),
        }
    }

    pub fn push<S>(&mut self, cluster: &Name, metadata: ObjectMeta, spec: S)
    where
        IstioObject: From<Typed<S>>,
    {
        self.objects
            .entry(cluster.clone())
            .or_default()
            .push(IstioObject::from(Typed::new(metadata, spec)));
    }

    /// `push` of a VirtualService that the routes pass may refine through `slot`. When two
    /// objects claim one slot the first keeps it (the duplicate is reported by `finish`).
    pub fn push_route_slot(
        &mut self,
        slot: RouteSlot,
        cluster: &Name,
        metadata: ObjectMeta,
        spec: VirtualServiceSpec,
    ) {
        let objects = self.objects.entry(cluster.clone()).or_default();
        let index = objects.len();
        objects.push(IstioObject::from(Typed::new(metadata, spec)));
        self.route_slots
            .entry(slot)
            .or_insert_with(|| (cluster.clone(), index));
    }

    /// The VirtualService registered for `slot`, if an earlier pass emitted one.
    pub fn route_slot_mut(&mut self, slot: &RouteSlot) -> Option<&mut Typed<VirtualServiceSpec>> {
        let (cluster, index) = self.route_slots.get(slot)?;
        match self.objects.get_mut(cluster)?.get_mut(*index)? {
            IstioObject::VirtualService(vs) => Some(vs),
            _ => None,
        }
    }

    /// Records that `owner` defines `subset` for `host` in `namespace` on `cluster`, in a
    /// DestinationRule of a host that other intents use as well (each intent's rule for the
    /// egress gateway's Service). Istio merges the rules of one host in one namespace, so a subset
    /// name produced twice would be ambiguous (and a duplicate within one rule is rejected by
    /// istiod): an error naming both.
    pub fn claim_shared_subset(
        &mut self,
        cluster: &Name,
        namespace: &str,
        host: &str,
        subset: &str,
        owner: Subject,
    ) {
        let key = (
            cluster.clone(),
            namespace.to_owned(),
            host.to_owned(),
            subset.to_owned(),
        );
        if let Some(first) = self.shared_subsets.get(&key) {
            let other = if *first == owner {
                "itself".to_owned()
            } else {
                first.to_string()
            };
            self.errors.push(RenderError::new(
                owner,
                "",
                format!(
                    "produces subset {subset} of {host} in namespace {namespace} on cluster {cluster}, as does {other}; rename one of them"
                ),
            ));
        } else {
            self.shared_subsets.insert(key, owner);
        }
    }

    /// Sorted objects per cluster, or every error found. Two objects with one identity on a
    /// cluster is a bug in the generator or a name clash between intents; either way an error.
    pub fn finish(mut self) -> Result<Manifests, Vec<RenderError>> {
        for (cluster, objects) in &mut self.objects {
            sort_objects(objects);
            for pair in objects.windows(2) {
                if identity(&pair[0]) == identity(&pair[1]) {
                    let (_, kind, namespace, name) = identity(&pair[0]);
                    self.errors.push(RenderError::new(
                        Subject::Cluster(cluster.clone()),
                        "",
                        format!(
                            "two intents produce {kind} {namespace}/{name}; rename one of them"
                        ),
                    ));
                }
            }
        }
        self.objects.retain(|_, objects| !objects.is_empty());
        if self.errors.is_empty() {
            Ok(self.objects)
        } else {
            self.errors.sort();
            self.errors.dedup();
            Err(self.errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::{DestinationRuleSpec, ServiceEntrySpec};

    #[test]
    fn sorting_is_stable_and_matches_a_plain_sort() {
        let mut objects: Vec<IstioObject> = (0..500u64)
            .map(|i| {
                // Few distinct identities, so that stability matters; the original place is
                // kept in an annotation.
                let key = i.wrapping_mul(7919) % 37;
                let mut meta = ObjectMeta::new(format!("o{}", key % 5), format!("ns{}", key % 3));
                meta.annotations.insert("at".into(), i.to_string());
                if key % 2 == 0 {
                    IstioObject::from(Typed::new(meta, ServiceEntrySpec::default()))
                } else {
                    IstioObject::from(Typed::new(meta, DestinationRuleSpec::default()))
                }
            })
            .collect();
        let mut expected = objects.clone();
        expected.sort_by(|a, b| identity(a).cmp(&identity(b)));
        sort_objects(&mut objects);
        assert_eq!(objects, expected);
    }
}
