//! Pushing rendered objects to clusters: server-side apply, pruning, drift checks. Kubernetes
//! side effects only; the worker decides what to push and records what happened.

pub mod cause;
pub mod check;
pub mod cluster;
pub mod connect;
pub mod error;
pub mod foreign;
pub mod gate;
pub mod hash;
pub mod inspect;
pub mod kinds;
pub mod live;
pub mod plan;
pub mod retry;

pub use cluster::{ClusterOutcome, ClusterPlan, ObjectEvent, PushSettings, Recorder};
pub use connect::{ClusterAccess, ClusterClients};
pub use error::PushError;
pub use gate::{Gate, Halt, Interruption, OutagePolicy};
pub use retry::RetryPolicy;
