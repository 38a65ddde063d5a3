//! The conditions a cluster check records (`status.conditions` of a cluster), in the shape of
//! Kubernetes conditions: `lastTransitionTime` moves only when a condition's status changes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a condition is about.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum ConditionType {
    /// The API server answered `GET /version`.
    Reachable,
    /// The API server serves `networking.istio.io/v1` and `security.istio.io/v1` with every
    /// kind deploy writes.
    IstioServed,
    /// The credentials may get, list, create, patch and delete every kind deploy writes
    /// (SelfSubjectAccessReview, cluster-wide).
    Permitted,
}

impl ConditionType {
    pub const ALL: [ConditionType; 3] = [
        ConditionType::Reachable,
        ConditionType::IstioServed,
        ConditionType::Permitted,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ConditionStatus {
    True,
    False,
    /// Not known: an earlier condition failed, so this one could not be checked.
    Unknown,
}

/// One condition as a check found it (before it is merged with the stored ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub condition: ConditionType,
    pub status: ConditionStatus,
    /// A CamelCase word (`VersionAnswered`, `Forbidden`, ...).
    pub reason: String,
    /// What was found, and for False what to do.
    pub message: String,
}

impl Observed {
    pub fn new(
        condition: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            condition,
            status,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// A stored condition of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    #[serde(rename = "type")]
    pub condition: ConditionType,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
}

/// What one check found: the versions and every condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// `gitVersion` of `GET /version`.
    pub kubernetes_version: Option<String>,
    /// The image tag of istiod's Deployment.
    pub istio_version: Option<String>,
    pub observed: Vec<Observed>,
}

/// What the store keeps of a cluster's last check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheck {
    pub checked_at: DateTime<Utc>,
    pub kubernetes_version: Option<String>,
    pub istio_version: Option<String>,
    pub conditions: Vec<ClusterCondition>,
}

/// The stored conditions after a check: each observed condition replaces the stored one of its
/// type, keeping the stored `lastTransitionTime` when the status did not change. Sorted by type.
pub fn merge(
    previous: &[ClusterCondition],
    observed: &[Observed],
    now: DateTime<Utc>,
) -> Vec<ClusterCondition> {
    let mut out: Vec<ClusterCondition> = observed
        .iter()
        .map(|o| {
            let since = previous
                .iter()
                .find(|p| p.condition == o.condition && p.status == o.status)
                .map_or(now, |p| p.last_transition_time);
            ClusterCondition {
                condition: o.condition,
                status: o.status,
                reason: o.reason.clone(),
                message: o.message.clone(),
                last_transition_time: since,
            }
        })
        .collect();
    out.sort_by_key(|c| c.condition);
    out.dedup_by_key(|c| c.condition);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).single().unwrap()
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let first = merge(
            &[],
            &[
                Observed::new(ConditionType::Reachable, ConditionStatus::True, "A", "ok"),
                Observed::new(ConditionType::Permitted, ConditionStatus::False, "B", "x"),
            ],
            at(10),
        );
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|c| c.last_transition_time == at(10)));
        let second = merge(
            &first,
            &[
                Observed::new(
                    ConditionType::Reachable,
                    ConditionStatus::True,
                    "A",
                    "ok again",
                ),
                Observed::new(ConditionType::Permitted, ConditionStatus::True, "C", "y"),
            ],
            at(20),
        );
        assert_eq!(second[0].condition, ConditionType::Reachable);
        assert_eq!(second[0].last_transition_time, at(10));
        assert_eq!(second[0].message, "ok again");
        assert_eq!(second[1].condition, ConditionType::Permitted);
        assert_eq!(second[1].last_transition_time, at(20));
    }

    #[test]
    fn conditions_serialize_like_kubernetes_ones() {
        let c = &merge(
            &[],
            &[Observed::new(
                ConditionType::IstioServed,
                ConditionStatus::Unknown,
                "NotReachable",
                "m",
            )],
            at(0),
        )[0];
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json["type"], "IstioServed");
        assert_eq!(json["status"], "Unknown");
        assert_eq!(json["lastTransitionTime"], "1970-01-01T00:00:00Z");
    }
}
