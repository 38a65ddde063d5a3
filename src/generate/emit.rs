//! Collects generated objects per cluster, stamping names, labels and annotations.

use std::collections::BTreeMap;

use crate::domain::model::IntentSetModel;
use crate::domain::names::Name;
use crate::istio::{IstioObject, ObjectMeta, Typed};

use super::errors::RenderError;
use super::naming;
use super::output::Manifests;

/// The output being built, and the problems found on the way.
pub struct Emitter<'m> {
    pub model: &'m IntentSetModel,
    objects: BTreeMap<Name, Vec<IstioObject>>,
    pub errors: Vec<RenderError>,
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

/// Objects sorted by apiVersion, kind, namespace and name.
pub fn sort_objects(objects: &mut [IstioObject]) {
    objects.sort_by(|a, b| identity(a).cmp(&identity(b)));
}

impl<'m> Emitter<'m> {
    pub fn new(model: &'m IntentSetModel) -> Self {
        Self {
            model,
            objects: BTreeMap::new(),
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

    /// The objects of a cluster, for passes that refine what earlier passes emitted.
    pub fn objects_mut(&mut self, cluster: &Name) -> &mut Vec<IstioObject> {
        self.objects.entry(cluster.clone()).or_default()
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
                        super::errors::Subject::Cluster(cluster.clone()),
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
