//! The analysis of a set against its live clusters (`GET .../analysis`): render, read each
//! cluster (`push::inspect`, clusters in parallel), apply the pure rules (`crate::analysis`).

use std::collections::BTreeMap;

use futures::StreamExt;

use super::Service;
use super::deploy::set_labels;
use crate::analysis::{self, Analysis};
use crate::domain::resource::ResourcePath;
use crate::error::Result;
use crate::push::ClusterClients;

/// Clusters read at once.
const CONCURRENCY: usize = 4;

impl Service {
    /// The findings of the set at `path` (read-only: nothing is written anywhere). A cluster
    /// that cannot be read is one finding, not a failure.
    #[tracing::instrument(skip(self), fields(set = %path.url()))]
    pub async fn analyse(&self, path: &ResourcePath) -> Result<Analysis> {
        let (rendered, _) = self.render(path, None).await?;
        let collisions = {
            let mut tx = self.store.begin_read().await?;
            let set_id = self.set_id(&mut tx, path).await?;
            self.collisions_of_set(&mut tx, set_id).await?
        };
        let needs = analysis::needs(&rendered.model, &rendered.manifests);
        let labels = set_labels(&rendered.model.address);
        let retry = &self.push_settings().retry;
        let labels = &labels;
        let snapshots: BTreeMap<_, _> = futures::stream::iter(needs)
            .map(|(cluster, needs)| async move {
                let result = match self.client(&cluster).await {
                    Ok(client) => {
                        crate::push::inspect::snapshot(&client, &cluster, &needs, labels, retry)
                            .await
                    }
                    Err(e) => Err(e),
                };
                (cluster, result.map_err(|e| e.to_string()))
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        Ok(analysis::analyse(
            &rendered.model,
            &rendered.manifests,
            &snapshots,
            &collisions,
        ))
    }
}
