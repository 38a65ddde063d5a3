//! Names, labels and annotations of generated objects.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::domain::cluster::ClusterSpec;
use crate::domain::model::SetAddress;

/// Kubernetes object names (and Istio subset names) are at most 63 characters here.
pub const MAX_NAME: usize = 63;
const HASH_LEN: usize = 10;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "meshintent";
pub const LABEL_PROJECT: &str = "meshintent.io/project";
pub const LABEL_COMPOSITE_APP: &str = "meshintent.io/composite-app";
pub const LABEL_VERSION: &str = "meshintent.io/composite-app-version";
pub const LABEL_SET: &str = "meshintent.io/intent-set";
pub const ANNOTATION_INTENT: &str = "meshintent.io/intent";

/// `<part>-<part>-...`; when longer than 63 characters, a prefix and a hash of the whole, so
/// that long names stay unique and stable.
pub fn object_name(parts: &[&str]) -> String {
    let full = parts.join("-");
    shorten(&full)
}

/// Shortens a DNS-label-like name to 63 characters with a stable hash suffix.
pub fn shorten(full: &str) -> String {
    if full.len() <= MAX_NAME {
        return full.to_owned();
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..HASH_LEN]
        .to_owned();
    let keep = MAX_NAME - HASH_LEN - 1;
    let prefix = full[..keep].trim_end_matches(['-', '.']);
    format!("{prefix}-{hash}")
}

/// Labels every object carries: who manages it and which set it belongs to.
pub fn labels(set: &SetAddress, cluster: &ClusterSpec) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (LABEL_PROJECT.to_owned(), set.project.to_string()),
        (
            LABEL_COMPOSITE_APP.to_owned(),
            set.composite_app.to_string(),
        ),
        (LABEL_VERSION.to_owned(), set.version.to_string()),
        (LABEL_SET.to_owned(), set.set.to_string()),
    ]);
    if let Some(revision) = &cluster.istio.revision {
        labels.insert("istio.io/rev".to_owned(), revision.to_string());
    }
    labels
}

/// The annotation naming the intent an object came from (its API path).
pub fn annotations(intent_url: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(ANNOTATION_INTENT.to_owned(), intent_url.to_owned())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(object_name(&["httpbin", "dr"]), "httpbin-dr");
    }

    #[test]
    fn long_names_are_hashed_stably_and_uniquely() {
        let a = object_name(&[&"a".repeat(60), "egress", "cluster01"]);
        let b = object_name(&[&"a".repeat(60), "egress", "cluster02"]);
        assert_eq!(a.len(), MAX_NAME);
        assert_ne!(a, b);
        assert_eq!(a, object_name(&[&"a".repeat(60), "egress", "cluster01"]));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert!(!a.ends_with('-'));
    }

    #[test]
    fn hashed_names_do_not_end_a_prefix_with_a_dash() {
        let n = shorten(&format!("{}-{}", "x".repeat(51), "y".repeat(30)));
        assert!(!n.contains("--"), "{n}");
    }
}
