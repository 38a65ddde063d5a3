//! Read-only views of a rendered set: the access query and the who-may-call-whom graph.

use super::Service;
use crate::authz::access::{self, AccessAnswer, AccessQuery};
use crate::domain::resource::ResourcePath;
use crate::error::{Error, Result};
use crate::graph::{self, Graph};

impl Service {
    /// Whether `query.from` may call `query.to`, evaluated on the set's rendered
    /// AuthorizationPolicies (the set must render, as for `GET .../manifests`). An unknown app,
    /// intent or cluster, or a value the service cannot be asked for, is a 422 naming the query
    /// parameter.
    pub async fn access_query(
        &self,
        path: &ResourcePath,
        query: &AccessQuery,
    ) -> Result<AccessAnswer> {
        let (rendered, _) = self.render(path, None).await?;
        access::query(&rendered.model, &rendered.manifests, query)
            .map_err(|e| Error::invalid_field(e.field, e.message))
    }

    /// The set's graph (the set must render).
    pub async fn graph(&self, path: &ResourcePath) -> Result<Graph> {
        let (rendered, _) = self.render(path, None).await?;
        Ok(graph::build(&rendered.model))
    }
}
