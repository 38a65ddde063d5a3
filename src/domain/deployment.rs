//! The deployment vocabulary: what a deployment does, the states of a deployment, a cluster and
//! an object, drift, and object identity; and the rules that roll object results up into a
//! cluster's state and cluster states up into a deployment's. Pure: no I/O.
//!
//! Every enum has exactly one spelling (its wire and database spelling); parsing an unknown
//! spelling is an error, never a default.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::names::{DnsName, Name};
use crate::istio::IstioObject;
pub use crate::istio::{IstioKind, UnknownKind};

/// A spelling that is not one of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what} (expected one of {expected})")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

/// Defines an enum with one spelling per variant: `as_str`, `ALL`, `Display`, `FromStr`.
macro_rules! spelled {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident => $spelling:tt),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $spelling)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The one spelling (wire format and database).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($spelling => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                        expected: [$($spelling),+].join(", "),
                    }),
                }
            }
        }
    };
}

spelled! {
    /// What a deployment does: `deploy` or `terminate`.
    Action, "deployment action" {
        Deploy => "deploy",
        Terminate => "terminate",
    }
}

spelled! {
    /// Who asked for a deployment: a `user` (deploy or terminate through the API) or the
    /// `reconciler` (a repair of drift, redeploying the latest deployed revision).
    Trigger, "deployment trigger" {
        User => "user",
        Reconciler => "reconciler",
    }
}

spelled! {
    /// The state of a deployment.
    DeploymentState, "deployment state" {
        /// Queued.
        Pending => "Pending",
        /// A worker is applying it.
        Applying => "Applying",
        /// Everything as desired.
        Applied => "Applied",
        /// Some clusters failed or conflicted, others succeeded.
        Degraded => "Degraded",
        /// Nothing succeeded.
        Failed => "Failed",
        /// A worker is removing the set's objects.
        Terminating => "Terminating",
        /// Everything the set applied is gone.
        Terminated => "Terminated",
    }
}

spelled! {
    /// The state of one cluster in a deployment.
    ClusterState, "cluster state" {
        Pending => "Pending",
        Applying => "Applying",
        Applied => "Applied",
        Degraded => "Degraded",
        Failed => "Failed",
        Terminating => "Terminating",
        Terminated => "Terminated",
        /// The API server stopped answering; its remaining objects wait, and the deployment
        /// goes on with them when it answers again (or gives up after a while).
        Unreachable => "Unreachable",
    }
}

spelled! {
    /// The state of one object in a deployment.
    ObjectState, "object state" {
        /// Not done yet.
        Desired => "desired",
        /// Written.
        Applied => "applied",
        /// Already as desired, not written.
        Unchanged => "unchanged",
        /// Deleted, or found already gone.
        Pruned => "pruned",
        /// Not meshintent's (or another set's); left alone.
        Conflict => "conflict",
        /// The API server refused, or the cluster could not be reached.
        Failed => "failed",
        /// Only in `extraObjects` of a verify: labelled as the set's but not desired.
        Extra => "extra",
    }
}

spelled! {
    /// What a deployment does with an object.
    Operation, "object operation" {
        /// Server-side apply.
        Apply => "apply",
        /// Delete (pruned or terminated).
        Delete => "delete",
        /// Only in `extraObjects` of a verify: nothing was decided for the object.
        Nothing => "none",
    }
}

spelled! {
    /// How a live object differs from what the deployment decided.
    Drift, "drift" {
        /// Not on the cluster.
        Missing => "missing",
        /// On the cluster with other content (edited, or applied by an older revision).
        Changed => "changed",
        /// On the cluster and labelled as the set's, but not desired.
        Extra => "extra",
    }
}

impl Action {
    /// The state of a deployment or cluster a worker is on.
    pub fn working(self) -> ClusterState {
        match self {
            Action::Deploy => ClusterState::Applying,
            Action::Terminate => ClusterState::Terminating,
        }
    }

    /// The state of a cluster where everything went as desired.
    pub fn succeeded(self) -> ClusterState {
        match self {
            Action::Deploy => ClusterState::Applied,
            Action::Terminate => ClusterState::Terminated,
        }
    }

    /// The state of a deployment that a worker claimed.
    pub fn claimed(self) -> DeploymentState {
        match self {
            Action::Deploy => DeploymentState::Applying,
            Action::Terminate => DeploymentState::Terminating,
        }
    }
}

impl DeploymentState {
    /// States a worker still has to work on.
    pub const UNFINISHED: [DeploymentState; 3] = [
        DeploymentState::Pending,
        DeploymentState::Applying,
        DeploymentState::Terminating,
    ];

    /// Whether the deployment has ended.
    pub fn is_final(self) -> bool {
        !Self::UNFINISHED.contains(&self)
    }
}

impl ClusterState {
    /// Whether the cluster's part of a deployment has ended (a resumed deployment skips it).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            ClusterState::Pending
                | ClusterState::Applying
                | ClusterState::Terminating
                | ClusterState::Unreachable
        )
    }
}

impl ObjectState {
    /// States after which the object needs nothing more in this deployment (`failed` is retried
    /// when a deployment is resumed).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ObjectState::Applied
                | ObjectState::Unchanged
                | ObjectState::Pruned
                | ObjectState::Conflict
        )
    }

    /// Whether the object is a problem for the cluster's message.
    pub fn is_problem(self) -> bool {
        matches!(self, ObjectState::Failed | ObjectState::Conflict)
    }
}

/// Where an object lives: its cluster and its Kubernetes identity. Ordered by cluster, kind,
/// namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub cluster: Name,
    pub kind: IstioKind,
    /// A Kubernetes namespace name (a DNS-1123 label).
    pub namespace: Name,
    /// A Kubernetes object name (a DNS-1123 subdomain).
    pub name: DnsName,
}

impl ObjectRef {
    pub fn new(cluster: Name, kind: IstioKind, namespace: Name, name: DnsName) -> Self {
        Self {
            cluster,
            kind,
            namespace,
            name,
        }
    }

    /// The reference of an object whose namespace and name arrive as text (an Istio object's
    /// metadata, a Kubernetes list answer); an error when either is not a Kubernetes name.
    pub fn parse(
        cluster: Name,
        kind: IstioKind,
        namespace: &str,
        name: &str,
    ) -> Result<Self, String> {
        let namespace = namespace
            .parse()
            .map_err(|e| format!("{kind} namespace {e}"))?;
        let name = name.parse().map_err(|e| format!("{kind} name {e}"))?;
        Ok(Self::new(cluster, kind, namespace, name))
    }

    /// The reference of a typed object on `cluster`.
    pub fn of(cluster: &Name, object: &IstioObject) -> Result<Self, String> {
        let meta = object.metadata();
        Self::parse(
            cluster.clone(),
            object.istio_kind(),
            &meta.namespace,
            &meta.name,
        )
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{} on {}",
            self.kind, self.namespace, self.name, self.cluster
        )
    }
}

/// An object a deployment wants on a cluster, with its identity parsed once from its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub key: ObjectRef,
    pub object: IstioObject,
}

impl DesiredObject {
    /// `object` on `cluster`; an error when its namespace or name is not a Kubernetes name.
    pub fn new(cluster: &Name, object: IstioObject) -> Result<Self, String> {
        Ok(Self {
            key: ObjectRef::of(cluster, &object)?,
            object,
        })
    }
}

/// What a cluster's objects came to: how many ended in each state, or that the cluster could
/// not be worked with at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectTally {
    pub unreachable: bool,
    pub counts: BTreeMap<ObjectState, usize>,
}

impl ObjectTally {
    pub fn count(&self, state: ObjectState) -> usize {
        self.counts.get(&state).copied().unwrap_or(0)
    }
}

/// The cluster rule: unreachable is `Failed`; failures or conflicts make it `Degraded`, or
/// `Failed` when nothing succeeded and nothing conflicted; otherwise the action succeeded.
pub fn cluster_outcome(action: Action, tally: &ObjectTally) -> ClusterState {
    if tally.unreachable {
        return ClusterState::Failed;
    }
    let failed = tally.count(ObjectState::Failed);
    let conflict = tally.count(ObjectState::Conflict);
    if failed + conflict == 0 {
        return action.succeeded();
    }
    let done = tally.count(ObjectState::Applied)
        + tally.count(ObjectState::Unchanged)
        + tally.count(ObjectState::Pruned);
    if done == 0 && conflict == 0 {
        ClusterState::Failed
    } else {
        ClusterState::Degraded
    }
}

/// A deployment's end: its state and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentOutcome {
    pub state: DeploymentState,
    pub message: String,
}

/// The deployment rule: no cluster is success with nothing to do; every cluster succeeded is
/// success (saying what was written, or for a terminate what was removed; `writes` is None when
/// it could not be read); every cluster failed is `Failed`; anything else is `Degraded`, naming
/// the clusters.
pub fn deployment_outcome(
    action: Action,
    clusters: &[(Name, ClusterState)],
    writes: Option<i64>,
) -> DeploymentOutcome {
    let ok = action.succeeded();
    let state_ok = match action {
        Action::Deploy => DeploymentState::Applied,
        Action::Terminate => DeploymentState::Terminated,
    };
    let outcome = |state, message: String| DeploymentOutcome { state, message };
    if clusters.is_empty() {
        return outcome(
            state_ok,
            "no cluster holds or runs this set's apps: nothing to do".to_owned(),
        );
    }
    let good = clusters.iter().filter(|(_, s)| *s == ok).count();
    let failed = clusters
        .iter()
        .filter(|(_, s)| *s == ClusterState::Failed)
        .count();
    if good == clusters.len() {
        let on = counted(clusters.len() as i64, "cluster");
        // A terminate's writes are the deletes that removed the set.
        let message = match (action, writes) {
            (Action::Deploy, Some(0)) => {
                "no changes: every object was already as desired (0 writes)".to_owned()
            }
            (Action::Deploy, Some(n)) => format!("{on} up to date ({})", counted(n, "write")),
            (Action::Deploy, None) => format!("{on} up to date"),
            (Action::Terminate, Some(0)) => "nothing to remove (0 writes)".to_owned(),
            (Action::Terminate, Some(n)) => {
                format!("removed from {on} ({})", counted(n, "delete"))
            }
            (Action::Terminate, None) => format!("removed from {on}"),
        };
        return outcome(state_ok, message);
    }
    if failed == clusters.len() {
        return outcome(
            DeploymentState::Failed,
            "every cluster failed; see the clusters' messages".to_owned(),
        );
    }
    let bad: Vec<&str> = clusters
        .iter()
        .filter(|(_, s)| *s != ok)
        .map(|(c, _)| c.as_str())
        .collect();
    outcome(
        DeploymentState::Degraded,
        format!(
            "not complete on {}; see the clusters' messages",
            bad.join(", ")
        ),
    )
}

/// `1 cluster`, `2 clusters`.
fn counted(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + FromStr<Err = UnknownValue> + fmt::Display + Serialize,
    {
        for value in all {
            let spelled = value.to_string();
            assert_eq!(spelled.parse::<T>().unwrap(), *value);
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                serde_json::Value::String(spelled)
            );
        }
    }

    #[test]
    fn every_value_has_one_spelling_and_unknown_spellings_are_errors() {
        round_trip(Action::ALL);
        round_trip(DeploymentState::ALL);
        round_trip(ClusterState::ALL);
        round_trip(ObjectState::ALL);
        round_trip(Operation::ALL);
        round_trip(Drift::ALL);
        assert!("Deploy".parse::<Action>().is_err());
        assert!("pending".parse::<DeploymentState>().is_err());
        assert!("".parse::<ClusterState>().is_err());
        assert!("Applied".parse::<ObjectState>().is_err());
        let err = "bogus".parse::<Operation>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"bogus\" is not a valid object operation (expected one of apply, delete, none)"
        );
    }

    #[test]
    fn today_s_wire_spellings() {
        let spelled = |all: &[&str]| all.join(",");
        assert_eq!(
            spelled(
                &DeploymentState::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            ),
            "Pending,Applying,Applied,Degraded,Failed,Terminating,Terminated"
        );
        assert_eq!(
            spelled(
                &ObjectState::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            ),
            "desired,applied,unchanged,pruned,conflict,failed,extra"
        );
        assert_eq!(Operation::Nothing.as_str(), "none");
        assert_eq!(Drift::Extra.as_str(), "extra");
    }

    #[test]
    fn what_is_final() {
        use ObjectState as O;
        let objects = [
            (O::Desired, false),
            (O::Applied, true),
            (O::Unchanged, true),
            (O::Pruned, true),
            (O::Conflict, true),
            (O::Failed, false),
            (O::Extra, false),
        ];
        for (state, last) in objects {
            assert_eq!(state.is_final(), last, "{state}");
        }
        use DeploymentState as D;
        let deployments = [
            (D::Pending, false),
            (D::Applying, false),
            (D::Applied, true),
            (D::Degraded, true),
            (D::Failed, true),
            (D::Terminating, false),
            (D::Terminated, true),
        ];
        for (state, last) in deployments {
            assert_eq!(state.is_final(), last, "{state}");
            let cluster: ClusterState = state.as_str().parse().unwrap();
            assert_eq!(cluster.is_final(), last, "{cluster}");
        }
    }

    fn object(cluster: &str, kind: IstioKind, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef::parse(cluster.parse().unwrap(), kind, namespace, name).unwrap()
    }

    #[test]
    fn object_refs_order_by_cluster_kind_namespace_and_name_and_display_as_before() {
        use IstioKind as K;
        let sorted = [
            object("a", K::ServiceEntry, "z", "z"),
            object("a", K::DestinationRule, "a", "a"),
            object("a", K::DestinationRule, "a", "b"),
            object("a", K::DestinationRule, "a", "b-c"),
            object("a", K::DestinationRule, "a", "b.c"),
            object("a", K::DestinationRule, "a", "bc"),
            object("a", K::DestinationRule, "b", "a"),
            object("b", K::ServiceEntry, "a", "a"),
        ];
        let mut shuffled = sorted.to_vec();
        shuffled.reverse();
        shuffled.swap(0, 3);
        shuffled.sort();
        assert_eq!(shuffled, sorted);
        // The same order as when the names were plain strings.
        let as_text: Vec<_> = sorted
            .iter()
            .map(|k| {
                (
                    k.cluster.as_str(),
                    k.kind,
                    k.namespace.as_str(),
                    k.name.as_str(),
                )
            })
            .collect();
        assert!(as_text.windows(2).all(|w| w[0] < w[1]), "{as_text:?}");
        assert_eq!(
            object("cluster01", K::VirtualService, "shop", "httpbin-routes").to_string(),
            "VirtualService shop/httpbin-routes on cluster01"
        );
    }

    #[test]
    fn an_object_ref_needs_a_namespace_label_and_a_subdomain_name() {
        let cluster: Name = "cluster01".parse().unwrap();
        let kind = IstioKind::Gateway;
        let dotted = ObjectRef::parse(cluster.clone(), kind, "istio-system", "tls.example.com");
        assert_eq!(dotted.unwrap().name.as_str(), "tls.example.com");
        let err = ObjectRef::parse(cluster.clone(), kind, "a.b", "x").unwrap_err();
        assert!(
            err.starts_with("Gateway namespace must be a DNS-1123 label"),
            "{err}"
        );
        for bad in ["", "Upper", "a..b", "-a"] {
            let err = ObjectRef::parse(cluster.clone(), kind, "ns", bad).unwrap_err();
            assert!(
                err.starts_with("Gateway name must be a DNS-1123 subdomain"),
                "{err}"
            );
        }
    }

    fn tally(unreachable: bool, counts: &[(ObjectState, usize)]) -> ObjectTally {
        ObjectTally {
            unreachable,
            counts: counts.iter().copied().collect(),
        }
    }

    #[test]
    fn cluster_rule() {
        use ClusterState as C;
        use ObjectState as O;
        type Case<'a> = (Action, bool, &'a [(ObjectState, usize)], ClusterState);
        let table: &[Case] = &[
            (Action::Deploy, false, &[], C::Applied),
            (Action::Terminate, false, &[], C::Terminated),
            (
                Action::Deploy,
                false,
                &[(O::Applied, 3), (O::Unchanged, 1)],
                C::Applied,
            ),
            (Action::Terminate, false, &[(O::Pruned, 2)], C::Terminated),
            (Action::Deploy, true, &[], C::Failed),
            (Action::Deploy, true, &[(O::Applied, 2)], C::Failed),
            (Action::Deploy, false, &[(O::Failed, 2)], C::Failed),
            (Action::Terminate, false, &[(O::Failed, 1)], C::Failed),
            (
                Action::Deploy,
                false,
                &[(O::Failed, 1), (O::Applied, 1)],
                C::Degraded,
            ),
            (
                Action::Deploy,
                false,
                &[(O::Failed, 1), (O::Unchanged, 1)],
                C::Degraded,
            ),
            (
                Action::Terminate,
                false,
                &[(O::Failed, 1), (O::Pruned, 1)],
                C::Degraded,
            ),
            (Action::Deploy, false, &[(O::Conflict, 1)], C::Degraded),
            (
                Action::Deploy,
                false,
                &[(O::Conflict, 1), (O::Failed, 1)],
                C::Degraded,
            ),
        ];
        for (action, unreachable, counts, expected) in table {
            assert_eq!(
                cluster_outcome(*action, &tally(*unreachable, counts)),
                *expected,
                "{action} unreachable={unreachable} {counts:?}"
            );
        }
    }

    #[test]
    fn deployment_rule() {
        use ClusterState as C;
        use DeploymentState as D;
        let c = |name: &str, state| (name.parse::<Name>().unwrap(), state);
        type Case = (
            Action,
            Vec<(Name, ClusterState)>,
            Option<i64>,
            D,
            &'static str,
        );
        let table: Vec<Case> = vec![
            (
                Action::Deploy,
                vec![],
                Some(0),
                D::Applied,
                "no cluster holds or runs this set's apps: nothing to do",
            ),
            (
                Action::Terminate,
                vec![],
                None,
                D::Terminated,
                "no cluster holds or runs this set's apps: nothing to do",
            ),
            (
                Action::Deploy,
                vec![c("a", C::Applied), c("b", C::Applied)],
                Some(0),
                D::Applied,
                "no changes: every object was already as desired (0 writes)",
            ),
            (
                Action::Deploy,
                vec![c("a", C::Applied), c("b", C::Applied)],
                Some(7),
                D::Applied,
                "2 clusters up to date (7 writes)",
            ),
            (
                Action::Deploy,
                vec![c("a", C::Applied)],
                None,
                D::Applied,
                "1 cluster up to date",
            ),
            (
                Action::Deploy,
                vec![c("a", C::Applied)],
                Some(1),
                D::Applied,
                "1 cluster up to date (1 write)",
            ),
            (
                Action::Terminate,
                vec![c("a", C::Terminated)],
                Some(999),
                D::Terminated,
                "removed from 1 cluster (999 deletes)",
            ),
            (
                Action::Terminate,
                vec![c("a", C::Terminated), c("b", C::Terminated)],
                Some(1),
                D::Terminated,
                "removed from 2 clusters (1 delete)",
            ),
            (
                Action::Terminate,
                vec![c("a", C::Terminated)],
                Some(0),
                D::Terminated,
                "nothing to remove (0 writes)",
            ),
            (
                Action::Terminate,
                vec![c("a", C::Terminated)],
                None,
                D::Terminated,
                "removed from 1 cluster",
            ),
            (
                Action::Deploy,
                vec![c("a", C::Failed), c("b", C::Failed)],
                Some(0),
                D::Failed,
                "every cluster failed; see the clusters' messages",
            ),
            (
                Action::Deploy,
                vec![c("a", C::Applied), c("b", C::Failed), c("c", C::Degraded)],
                Some(4),
                D::Degraded,
                "not complete on b, c; see the clusters' messages",
            ),
            (
                Action::Deploy,
                vec![c("a", C::Degraded)],
                Some(1),
                D::Degraded,
                "not complete on a; see the clusters' messages",
            ),
            (
                Action::Terminate,
                vec![c("a", C::Applied)],
                Some(1),
                D::Degraded,
                "not complete on a; see the clusters' messages",
            ),
        ];
        for (action, clusters, writes, state, message) in table {
            let outcome = deployment_outcome(action, &clusters, writes);
            assert_eq!(
                outcome,
                DeploymentOutcome {
                    state,
                    message: message.to_owned()
                },
                "{action} {clusters:?} {writes:?}"
            );
        }
    }
}
