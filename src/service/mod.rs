//! What the API does, independent of HTTP: resource CRUD with its rules, rendering, deploys.

mod context;
mod crud;
mod deploy;
mod document;
mod paging;
mod render;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::crypto::SecretBox;
use crate::push::PushSettings;
use crate::store::Store;

pub use crud::{Deleted, IfMatch, ListPage, etag};
pub use deploy::{
    Action, ClusterDeployment, DeploymentList, DeploymentState, DeploymentStatus,
    DeploymentSummary, ObjectStatus, manifests_by_cluster, set_labels,
};
pub use paging::{Page, PageToken};
pub use render::{RenderedSet, render_error};

/// The service: a store, the key for secrets at rest, and what deploys need.
#[derive(Clone, Debug)]
pub struct Service {
    store: Store,
    secrets: SecretBox,
    push: Arc<PushSettings>,
    /// Wakes the local worker when work is queued (other replicas poll).
    worker_signal: Arc<Notify>,
}

impl Service {
    pub fn new(store: Store, secrets: SecretBox) -> Self {
        Self {
            store,
            secrets,
            push: Arc::new(PushSettings::default()),
            worker_signal: Arc::new(Notify::new()),
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

    pub fn worker_signal(&self) -> Arc<Notify> {
        self.worker_signal.clone()
    }
}
