//! Plans: what a deploy of a set would do on each cluster, found without changing anything
//! (no deployment row, no inventory change, no audit event, nothing stored on a cluster).
//!
//! The stored set is rendered read-only (`Service::render`); a proposed set document is
//! written into the set inside a transaction that is rolled back, rendered there as a deploy
//! renders (`render_in`), and only then are clusters read. The cluster side is
//! `push::plan::plan_cluster`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Service;
use super::access::Caller;
use super::deploy::set_labels;
use crate::domain::deployment::{DesiredObject, ObjectRef};
use crate::domain::document::DocIntentSet;
use crate::domain::model::SetAddress;
use crate::domain::names::Name;
use crate::domain::resource::ResourcePath;
use crate::error::Result;
use crate::generate::Manifests;
use crate::push::ClusterClients;
pub use crate::push::plan::PlanAction;
use crate::push::plan::{PlanInput, PlannedObject, plan_cluster};

/// One object of a plan.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanObject {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `create`, `update`, `unchanged`, `delete` (a prune candidate), `conflict` or `invalid`.
    pub action: PlanAction,
    /// For `conflict` and `invalid`: why (for `invalid`, the API server's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `update`: an RFC 6902 JSON Patch from `live` to `desired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub patch: Option<serde_json::Value>,
    /// For `update` and `delete`: the live object, reduced to identity, the labels and
    /// annotations meshintent sets, and spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub live: Option<serde_json::Value>,
    /// For `create` and `update`: the object as the API server answered the dry-run apply,
    /// reduced the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub desired: Option<serde_json::Value>,
}

/// One cluster of a plan.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanCluster {
    pub cluster: String,
    /// Why the cluster could not be planned (unreachable, no credentials, Istio not served);
    /// then `objects` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub objects: Vec<PlanObject>,
}

/// How many objects of each action, over all clusters, and how many clusters failed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub delete: usize,
    pub conflict: usize,
    pub invalid: usize,
    /// Clusters that could not be planned.
    pub cluster_errors: usize,
}

impl PlanSummary {
    /// Whether a deploy would write anything.
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete > 0
    }

    /// Whether a deploy would refuse or fail on something, or a cluster could not be read.
    pub fn has_errors(&self) -> bool {
        self.conflict + self.invalid + self.cluster_errors > 0
    }
}

/// What a deploy of the set would do, per cluster and object.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The set's API path.
    pub set: String,
    pub summary: PlanSummary,
    pub clusters: Vec<PlanCluster>,
}

/// A set rendered for planning, with what the store knows about its clusters.
struct Prepared {
    address: SetAddress,
    manifests: Manifests,
    inventory: Vec<ObjectRef>,
    claimed: BTreeMap<ObjectRef, String>,
}

impl Service {
    /// Plans a deploy of the stored set at `path`.
    #[tracing::instrument(skip(self), fields(set = %path.url()))]
    pub async fn plan(&self, path: &ResourcePath) -> Result<Plan> {
        let (rendered, _) = self.render(path, None).await?;
        let mut tx = self.store.begin_read().await?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let set_id = rows[rows.len() - 1].id;
        let inventory = tx.inventory(set_id).await?;
        let claimed = self
            .claim_conflicts(&mut tx, set_id, &rendered.manifests)
            .await?;
        tx.commit().await?;
        let prepared = Prepared {
            address: rendered.model.address.clone(),
            manifests: rendered.manifests,
            inventory: inventory.into_iter().map(|r| r.key).collect(),
            claimed,
        };
        Ok(self.plan_prepared(path, prepared).await)
    }

    /// Plans a deploy of the set at `path` as it would be after `PUT .../document` of `body`
    /// (with `prune`, only the body's members): the write is checked and made in a transaction
    /// that is rolled back, so a document that would be refused is refused the same way (422,
    /// 409), and nothing is kept.
    #[tracing::instrument(skip(self, body, caller), fields(set = %path.url()))]
    pub async fn plan_document(
        &self,
        path: &ResourcePath,
        body: DocIntentSet,
        prune: bool,
        caller: &Caller,
    ) -> Result<Plan> {
        let mut tx = self.store.begin_write().await?;
        self.replace_set_members_in(&mut tx, path, body, prune, caller)
            .await?;
        let (rendered, set_id) = self.render_in(&mut tx, path).await?;
        let inventory = tx.inventory(set_id).await?;
        let claimed = self
            .claim_conflicts(&mut tx, set_id, &rendered.manifests)
            .await?;
        tx.rollback().await?;
        let prepared = Prepared {
            address: rendered.model.address.clone(),
            manifests: rendered.manifests,
            inventory: inventory.into_iter().map(|r| r.key).collect(),
            claimed,
        };
        Ok(self.plan_prepared(path, prepared).await)
    }

    /// Plans every cluster of the set (with objects or in the inventory), in parallel.
    async fn plan_prepared(&self, path: &ResourcePath, prepared: Prepared) -> Plan {
        let labels = set_labels(&prepared.address);
        let mut clusters: BTreeSet<Name> = prepared.manifests.keys().cloned().collect();
        clusters.extend(prepared.inventory.iter().map(|k| k.cluster.clone()));
        let settings = self.push_settings();
        let runs = clusters.into_iter().map(|cluster| {
            let desired = prepared
                .manifests
                .get(&cluster)
                .into_iter()
                .flatten()
                // Never fails: the generator names objects after validated names.
                .filter_map(|o| DesiredObject::new(&cluster, o.clone()).ok())
                .collect();
            let input = PlanInput {
                inventory: prepared
                    .inventory
                    .iter()
                    .filter(|k| k.cluster == cluster)
                    .cloned()
                    .collect(),
                claimed: prepared
                    .claimed
                    .iter()
                    .filter(|(k, _)| k.cluster == cluster)
                    .map(|(k, m)| (k.clone(), m.clone()))
                    .collect(),
                cluster,
                set_labels: labels.clone(),
                desired,
            };
            async move {
                let result = match self.client(&input.cluster).await {
                    Ok(client) => plan_cluster(&client, &input, settings).await,
                    Err(e) => Err(e),
                };
                cluster_plan(&input.cluster, result)
            }
        });
        let clusters = futures::future::join_all(runs).await;
        let mut summary = PlanSummary::default();
        for cluster in &clusters {
            summary.cluster_errors += usize::from(cluster.error.is_some());
            for object in &cluster.objects {
                *match object.action {
                    PlanAction::Create => &mut summary.create,
                    PlanAction::Update => &mut summary.update,
                    PlanAction::Unchanged => &mut summary.unchanged,
                    PlanAction::Delete => &mut summary.delete,
                    PlanAction::Conflict => &mut summary.conflict,
                    PlanAction::Invalid => &mut summary.invalid,
                } += 1;
            }
        }
        tracing::info!(set = %path.url(), create = summary.create, update = summary.update,
            delete = summary.delete, conflict = summary.conflict, invalid = summary.invalid,
            cluster_errors = summary.cluster_errors, "planned");
        Plan {
            set: path.url(),
            summary,
            clusters,
        }
    }
}

fn cluster_plan(
    cluster: &Name,
    result: std::result::Result<Vec<PlannedObject>, crate::push::PushError>,
) -> PlanCluster {
    match result {
        Ok(objects) => PlanCluster {
            cluster: cluster.to_string(),
            error: None,
            objects: objects.into_iter().map(plan_object).collect(),
        },
        Err(e) => PlanCluster {
            cluster: cluster.to_string(),
            error: Some(e.to_string()),
            objects: Vec::new(),
        },
    }
}

fn plan_object(o: PlannedObject) -> PlanObject {
    PlanObject {
        api_version: o.key.kind.api_version().to_owned(),
        kind: o.key.kind.name().to_owned(),
        namespace: o.key.namespace.into(),
        name: o.key.name.into(),
        action: o.action,
        message: o.message,
        patch: o
            .patch
            .map(|p| serde_json::to_value(p).unwrap_or(serde_json::Value::Null)),
        live: o.live,
        desired: o.desired,
    }
}
