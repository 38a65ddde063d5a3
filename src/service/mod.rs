//! What the API does, independent of HTTP: resource CRUD with its rules, rendering, deploys.

mod context;
mod crud;
mod document;
mod paging;
mod render;

use crate::crypto::SecretBox;
use crate::store::Store;

pub use crud::{Deleted, IfMatch, ListPage, etag};
pub use paging::{Page, PageToken};
pub use render::{RenderedSet, render_error};

/// The service: a store and the key for secrets at rest.
#[derive(Clone, Debug)]
pub struct Service {
    store: Store,
    secrets: SecretBox,
}

impl Service {
    pub fn new(store: Store, secrets: SecretBox) -> Self {
        Self { store, secrets }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}
