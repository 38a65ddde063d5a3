//! What the API does, independent of HTTP: resource CRUD with its rules, rendering, deploys.

mod access;
mod analysis;
mod bulk;
mod claims;
mod cluster_check;
mod context;
mod crud;
mod deploy;
mod document;
pub mod events;
mod graph;
mod neighbourhood;
mod paging;
mod plan;
mod reconcile;
mod render;
mod vips;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::crypto::SecretBox;
use crate::push::PushSettings;
use crate::store::Store;

pub use access::{AuditEvent, AuditEventList, Caller};
pub use bulk::{Change, MemberChange, SetChanges};
pub use crud::{Deleted, IfMatch, ListPage, etag};
pub use deploy::{
    Action, ClusterDeployment, DeploymentList, DeploymentState, DeploymentStatus,
    DeploymentSummary, ObjectStatus, set_labels,
};
pub use paging::{Page, PageToken};
pub use plan::{Plan, PlanAction, PlanCluster, PlanObject, PlanSummary};
pub use reconcile::{DriftCounts, SyncStatus, reconcile_spec};
pub use render::{RenderedSet, render_error};

/// The service: a store, the key for secrets at rest, and what deploys need.
#[derive(Clone, Debug)]
pub struct Service {
    store: Store,
    secrets: SecretBox,
    push: Arc<PushSettings>,
    /// Wakes the local worker when work is queued (other replicas poll).
    worker_signal: Arc<Notify>,
    /// Bumped by every write that can change what a credential may do (tokens, bindings,
    /// projects), so this replica's credential cache forgets at once.
    access_generation: Arc<AtomicU64>,
    /// Wakes this replica's event streams; the streams' settings.
    events: Arc<events::EventHub>,
}

impl Service {
    pub fn new(store: Store, secrets: SecretBox) -> Self {
        Self {
            store,
            secrets,
            push: Arc::new(PushSettings::default()),
            worker_signal: Arc::new(Notify::new()),
            access_generation: Arc::new(AtomicU64::new(0)),
            events: Arc::new(events::EventHub::new(Default::default())),
        }
    }

    pub fn with_push_settings(mut self, push: PushSettings) -> Self {
        self.push = Arc::new(push);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn push_settings(&self) -> &PushSettings {
        &self.push
    }

    pub fn wake_worker(&self) {
        self.worker_signal.notify_one();
    }

    pub fn access_generation(&self) -> u64 {
        self.access_generation.load(Ordering::Acquire)
    }

    fn access_changed(&self, kind: crate::domain::resource::Kind) {
        if kind.is_access_control() || kind == crate::domain::resource::Kind::Project {
            self.access_generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub fn worker_signal(&self) -> Arc<Notify> {
        self.worker_signal.clone()
    }
}
