//! Small types shared by several kinds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A port on a destination service, selected by number (`{number}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    pub number: u32,
}

/// A percentage in `[0.0, 100.0]`, serialized as `{value: number}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    pub value: f64,
}

/// Selects workloads by pod labels (`{matchLabels}`); used by DestinationRule and the security kinds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}
