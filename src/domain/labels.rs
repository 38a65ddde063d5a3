//! Kubernetes label maps (also used for workload selectors and subset labels).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::names::{check_dns1123_subdomain, is_label_value, quoted};

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelKey(String);

impl LabelKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_static(s: &'static str) -> Self {
        Self::try_from(s.to_owned()).expect("static label keys are valid")
    }
}

impl TryFrom<String> for LabelKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let (prefix, name) = match value.split_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, value.as_str()),
        };
        let prefix_ok = prefix.is_none_or(|p| check_dns1123_subdomain(p).is_ok());
        if prefix_ok && !name.is_empty() && is_label_value(name) {
            Ok(LabelKey(value))
        } else {
            Err(format!(
                "label key {} must be an optional DNS subdomain and '/', then 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
                quoted(&value)
            ))
        }
    }
}

impl From<LabelKey> for String {
    fn from(k: LabelKey) -> String {
        k.0
    }
}

/// A label value: at most 63 characters of letters, digits, `-`, `_`, `.` (may be empty).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelValue(String);

impl LabelValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LabelValue {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if is_label_value(&value) {
            Ok(LabelValue(value))
        } else {
            Err(format!(
                "label value {} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
                quoted(&value)
            ))
        }
    }
}

impl From<LabelValue> for String {
    fn from(v: LabelValue) -> String {
        v.0
    }
}

/// A map of Kubernetes labels, kept sorted so that output is deterministic.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[schema(value_type = BTreeMap<String, String>, example = json!({"app": "httpbin"}))]
pub struct Labels(BTreeMap<LabelKey, LabelValue>);

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a map from pairs the program knows to be valid.
    pub fn from_static(pairs: &[(&'static str, &'static str)]) -> Self {
        Labels(
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        LabelKey::from_static(k),
                        LabelValue::try_from((*v).to_owned())
                            .expect("static label values are valid"),
                    )
                })
                .collect(),
        )
    }

    /// Inserts a pair whose key and value are checked.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), String> {
        let key = LabelKey::try_from(key.to_owned())?;
        let value = LabelValue::try_from(value.to_owned())?;
        self.0.insert(key, value);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when every pair of `selector` is present in `self` (Kubernetes `matchLabels`).
    pub fn matches(&self, selector: &Labels) -> bool {
        selector.iter().all(|(k, v)| self.get(k) == Some(v))
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Labels, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_kubernetes_labels() {
        let l = parse(r#"{"app":"httpbin","app.kubernetes.io/name":"x","version":""}"#).unwrap();
        assert_eq!(l.get("app"), Some("httpbin"));
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn rejects_bad_keys_and_values() {
        assert!(
            parse(r#"{"Bad Key":"x"}"#)
                .unwrap_err()
                .contains("label key")
        );
        assert!(parse(r#"{"a":"-x"}"#).unwrap_err().contains("label value"));
        assert!(parse(r#"{"UPPER.example/x":"y"}"#).is_err());
    }

    #[test]
    fn selector_matching() {
        let labels = Labels::from_static(&[("region", "eu"), ("tier", "prod")]);
        assert!(labels.matches(&Labels::from_static(&[("region", "eu")])));
        assert!(!labels.matches(&Labels::from_static(&[("region", "us")])));
        assert!(labels.matches(&Labels::new()));
    }
}
