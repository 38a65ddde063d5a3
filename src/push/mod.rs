//! Pushing rendered objects to clusters: server-side apply, pruning, drift checks. Kubernetes
//! side effects only; the worker decides what to push and records what happened.

pub mod cluster;
pub mod connect;
pub mod hash;
pub mod kinds;
pub mod retry;

pub use cluster::{
    ClusterOutcome, ClusterPlan, Drift, ObjectEvent, ObjectState, Operation, PushSettings, Recorder,
};
pub use connect::ClusterAccess;
pub use retry::RetryPolicy;
