//! The Kubernetes object envelope shared by every kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The subset of Kubernetes `ObjectMeta` a generator sets: identity, labels and annotations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// Metadata with a name and a namespace, and no labels or annotations.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// One object of a known kind: its metadata and its typed spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Typed<S> {
    pub metadata: ObjectMeta,
    pub spec: S,
}

impl<S> Typed<S> {
    /// Pairs metadata with a spec.
    pub fn new(metadata: ObjectMeta, spec: S) -> Self {
        Self { metadata, spec }
    }
}
