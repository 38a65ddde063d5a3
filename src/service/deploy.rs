//! Deploys and terminates: queued in the database, run by the worker (`crate::worker`), reported
//! per cluster and per object.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Service;
use super::paging::Page;
use crate::domain::cluster::ClusterSpec;
use crate::domain::deployment::ObjectRef;
pub use crate::domain::deployment::{
    Action, ClusterState, DeploymentState, Drift, ObjectState, Operation, Trigger,
};
use crate::domain::model::SetAddress;
use crate::domain::names::Name;
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::error::{Error, Result};
use crate::generate::naming;
use crate::push::cluster::Found;
use crate::push::{ClusterAccess, ClusterClients, PushError};
use crate::store::{
    ClusterRow, DeploymentHead, DeploymentRow, NewDeployment, ObjectProgress, ObjectRow, ROOT_ID,
    Tx,
};

/// A deployment in a list.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSummary {
    pub revision: i64,
    pub action: Action,
    /// `user` (through the API) or `reconciler` (a repair of drift).
    pub trigger: Trigger,
    /// For a repair: the revision whose objects it redeploys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_of: Option<i64>,
    pub state: DeploymentState,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One page of deployments, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentList {
    pub items: Vec<DeploymentSummary>,
    pub next_page: Option<String>,
}

/// One object of a deployment.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `apply` or `delete` (pruned or terminated); `none` in `extraObjects`.
    pub operation: Operation,
    /// `desired` (not done yet), `applied`, `unchanged`, `pruned`, `conflict` or `failed`;
    /// `extra` in `extraObjects`.
    pub state: ObjectState,
    /// The API server's message, or why meshintent left the object alone.
    pub message: Option<String>,
    /// With `?verify=true`: `missing` or `changed` when the live object differs; `extra` in
    /// `extraObjects`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
}

/// One cluster of a deployment.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDeployment {
    pub cluster: String,
    pub state: ClusterState,
    pub message: Option<String>,
    /// Write requests sent to the cluster (0 when nothing had to change).
    pub writes: i64,
    pub objects: Vec<ObjectStatus>,
    /// With `?verify=true`: objects labelled as this set's that it does not want.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_objects: Vec<ObjectStatus>,
    /// With `?verify=true`: why the cluster could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
}

/// A deployment with its per-cluster and per-object results.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    pub revision: i64,
    pub action: Action,
    /// `user` (through the API) or `reconciler` (a repair of drift).
    pub trigger: Trigger,
    /// For a repair: the revision whose objects it redeploys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_of: Option<i64>,
    pub state: DeploymentState,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Write requests sent to all clusters.
    pub writes: i64,
    /// With `?verify=true`: whether any live object differs from what was decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drifted: Option<bool>,
    pub clusters: Vec<ClusterDeployment>,
    /// In `GET .../status` only: the set's reconciliation settings and its last check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<super::reconcile::SyncStatus>,
    /// In `GET .../status` only: mesh names this set and another both decide on a cluster (data
    /// stored before claims existed; the API refuses to create them). Absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collisions: Vec<crate::domain::claim::MeshNameCollision>,
}

/// What a verify found on one cluster: the drift of its objects, or why it could not be read.
type Verified = std::result::Result<BTreeMap<ObjectRef, Found>, PushError>;

fn object_status(
    key: ObjectRef,
    operation: Operation,
    state: ObjectState,
    message: Option<String>,
    drift: Option<Drift>,
) -> ObjectStatus {
    ObjectStatus {
        api_version: key.kind.api_version().to_owned(),
        kind: key.kind.name().to_owned(),
        namespace: key.namespace.into(),
        name: key.name.into(),
        operation,
        state,
        message,
        drift,
    }
}

/// One cluster of a deployment; after a verify, with each object's drift and the objects
/// labelled as the set's that it does not apply.
fn cluster_status(
    row: ClusterRow,
    objects: Vec<ObjectRow>,
    verified: Option<Verified>,
) -> ClusterDeployment {
    let (drift, verify_error) = match verified {
        Some(Ok(drift)) => (drift, None),
        Some(Err(e)) => (BTreeMap::new(), Some(e.to_string())),
        None => (BTreeMap::new(), None),
    };
    let applied: BTreeSet<&ObjectRef> = objects
        .iter()
        .filter(|o| o.operation == Operation::Apply)
        .map(|o| &o.key)
        .collect();
    let extra_objects = drift
        .iter()
        .filter(|(key, f)| f.drift == Drift::Extra && !applied.contains(key))
        .map(|(key, _)| {
            let message = Some("labelled as this set's but not desired".into());
            let (operation, state) = (Operation::Nothing, ObjectState::Extra);
            object_status(key.clone(), operation, state, message, Some(Drift::Extra))
        })
        .collect();
    let objects = objects
        .into_iter()
        .map(|o| {
            let found = drift.get(&o.key);
            let state = match found.map(|f| f.drift) {
                Some(Drift::Missing) if o.operation == Operation::Apply => Some(Drift::Missing),
                Some(Drift::Changed) => Some(Drift::Changed),
                _ => None,
            };
            // What the verify found about who changed it is newer than the deploy's message.
            let message = found.and_then(|f| f.note.clone()).or(o.message);
            object_status(o.key, o.operation, o.state, message, state)
        })
        .collect();
    ClusterDeployment {
        cluster: row.cluster.into(),
        state: row.state,
        message: row.message,
        writes: row.writes,
        objects,
        extra_objects,
        verify_error,
    }
}

/// A deployment's status from its rows, with what a verify found on each cluster, if one ran.
fn status(
    row: &DeploymentRow,
    clusters: Vec<ClusterRow>,
    objects: Vec<ObjectRow>,
    mut verified: Option<BTreeMap<Name, Verified>>,
) -> DeploymentStatus {
    let mut by_cluster: BTreeMap<Name, Vec<ObjectRow>> = BTreeMap::new();
    for o in objects {
        by_cluster.entry(o.key.cluster.clone()).or_default().push(o);
    }
    let verifying = verified.is_some();
    let clusters: Vec<ClusterDeployment> = clusters
        .into_iter()
        .map(|c| {
            let objects = by_cluster.remove(&c.cluster).unwrap_or_default();
            let found = verified.as_mut().and_then(|v| v.remove(&c.cluster));
            cluster_status(c, objects, found)
        })
        .collect();
    let drifted = verifying.then(|| {
        clusters.iter().any(|c| {
            c.verify_error.is_some()
                || !c.extra_objects.is_empty()
                || c.objects.iter().any(|o| o.drift.is_some())
        })
    });
    DeploymentStatus {
        revision: row.revision,
        action: row.action,
        trigger: row.trigger,
        repair_of: row.repair_of,
        state: row.state,
        message: row.message.clone(),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        writes: clusters.iter().map(|c| c.writes).sum(),
        drifted,
        clusters,
        sync: None,
        collisions: Vec::new(),
    }
}

fn summary(row: &DeploymentRow) -> DeploymentSummary {
    head_summary(&row.head())
}

fn head_summary(row: &DeploymentHead) -> DeploymentSummary {
    DeploymentSummary {
        revision: row.revision,
        action: row.action,
        trigger: row.trigger,
        repair_of: row.repair_of,
        state: row.state,
        message: row.message.clone(),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
    }
}

/// The labels that identify a set's objects on a cluster (the label selector of prune and verify).
pub fn set_labels(address: &SetAddress) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            naming::MANAGED_BY.to_owned(),
            naming::MANAGED_BY_VALUE.to_owned(),
        ),
        (
            naming::LABEL_PROJECT.to_owned(),
            address.project.to_string(),
        ),
        (
            naming::LABEL_COMPOSITE_APP.to_owned(),
            address.composite_app.to_string(),
        ),
        (
            naming::LABEL_VERSION.to_owned(),
            address.version.to_string(),
        ),
        (naming::LABEL_SET.to_owned(), address.set.to_string()),
    ])
}

impl Service {
    /// Renders the set, stores the rendered objects with a new revision and queues it.
    #[tracing::instrument(skip(self, caller), fields(set = %path.url(), action = %action, revision))]
    pub async fn enqueue(
        &self,
        path: &ResourcePath,
        action: Action,
        caller: &super::Caller,
    ) -> Result<DeploymentSummary> {
        let mut tx = self.store.begin_write().await?;
        let (manifests, set_id) = match action {
            Action::Deploy => {
                let (rendered, set_id) = self.render_in(&mut tx, path).await?;
                (rendered.manifests, set_id)
            }
            Action::Terminate => {
                let rows = self.resolve_path(&mut tx, path).await?;
                let set_id = rows[rows.len() - 1].id;
                tx.lock(set_id).await?;
                (BTreeMap::new(), set_id)
            }
        };
        let queued = self
            .queue_in(&mut tx, path, set_id, action, manifests, caller, None)
            .await?;
        tx.commit().await?;
        self.events_committed();
        self.wake_worker();
        Ok(queued)
    }

    /// Queues a deployment of `manifests` in the caller's transaction (which holds the set's
    /// lock) and audits it; the caller commits and wakes the worker. `repair_of`: a repair by
    /// the reconciler of that revision.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn queue_in(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        set_id: Uuid,
        action: Action,
        manifests: crate::store::Manifests,
        caller: &super::Caller,
        repair_of: Option<i64>,
    ) -> Result<DeploymentSummary> {
        let trigger = match repair_of {
            Some(_) => Trigger::Reconciler,
            None => Trigger::User,
        };
        let revision = tx.next_deployment_revision(set_id).await?;
        tracing::Span::current().record("revision", revision);
        let id = tx
            .insert_deployment(NewDeployment {
                set_id,
                revision,
                action,
                manifests: manifests.clone(),
                trigger,
                repair_of,
            })
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Duplicate => {
                    Error::Conflict("another deploy was queued at the same moment; retry".into())
                }
                other => other.into(),
            })?;
        let mut clusters: BTreeSet<Name> = manifests.keys().cloned().collect();
        let inventory = tx.inventory(set_id).await?;
        // What each cluster will work on, for the deploy-queued event: the desired objects and
        // the inventory's others (prune candidates).
        let mut totals: BTreeMap<&Name, BTreeSet<ObjectRef>> = BTreeMap::new();
        for (cluster, objects) in &manifests {
            for object in objects {
                if let Ok(key) = ObjectRef::of(cluster, object) {
                    totals.entry(cluster).or_default().insert(key);
                }
            }
        }
        for row in &inventory {
            totals
                .entry(&row.key.cluster)
                .or_default()
                .insert(row.key.clone());
        }
        let queued_clusters: Vec<serde_json::Value> = totals
            .iter()
            .map(|(cluster, objects)| {
                serde_json::json!({ "cluster": cluster.as_str(), "objects": objects.len() })
            })
            .collect();
        drop(totals);
        clusters.extend(inventory.into_iter().map(|r| r.key.cluster));
        for cluster in &clusters {
            tx.insert_deployment_cluster(id, cluster, ClusterState::Pending)
                .await?;
        }
        // Never fails: the generator names objects after validated names.
        let keys = manifests
            .iter()
            .flat_map(|(cluster, objects)| objects.iter().map(move |o| ObjectRef::of(cluster, o)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::internal("enqueue", e))?;
        let desired: Vec<ObjectProgress<'_>> = keys
            .iter()
            .map(|key| ObjectProgress {
                key,
                operation: Operation::Apply,
                state: ObjectState::Desired,
                message: None,
            })
            .collect();
        tx.upsert_object_states(id, &desired).await?;
        // Names another set owns (collisions stored before claims existed): those objects are
        // conflicts from the start, and the worker leaves them alone.
        let conflicts = self.claim_conflicts(tx, set_id, &manifests).await?;
        let conflicts: Vec<ObjectProgress<'_>> = keys
            .iter()
            .filter_map(|key| {
                conflicts.get(key).map(|message| ObjectProgress {
                    key,
                    operation: Operation::Apply,
                    state: ObjectState::Conflict,
                    message: Some(message.as_str()),
                })
            })
            .collect();
        tx.upsert_object_states(id, &conflicts).await?;
        let row = tx
            .deployment(id)
            .await?
            .ok_or_else(|| Error::internal("enqueue", "row vanished"))?;
        super::access::audit_change(
            tx,
            caller,
            action.as_str(),
            path,
            (None, Some(revision)),
            202,
        )
        .await?;
        let queued = super::events::Event::new(
            path,
            super::events::EventType::DeployQueued,
            serde_json::json!({
                "revision": revision,
                "action": action.as_str(),
                "clusters": queued_clusters,
            }),
        );
        self.publish(tx, vec![queued]).await?;
        tracing::info!(set = %path.url(), revision, action = action.as_str(), trigger = trigger.as_str(), clusters = clusters.len(), "queued");
        Ok(summary(&row))
    }

    pub(super) async fn set_id(&self, tx: &mut Tx, path: &ResourcePath) -> Result<Uuid> {
        let rows = self.resolve_path(tx, path).await?;
        Ok(rows[rows.len() - 1].id)
    }

    /// A deployment of the set (the latest without `revision`) with its cluster and object rows.
    async fn deployment_rows(
        &self,
        path: &ResourcePath,
        revision: Option<i64>,
    ) -> Result<(DeploymentRow, Vec<ClusterRow>, Vec<ObjectRow>)> {
        let mut tx = self.store.begin_read().await?;
        let set_id = self.set_id(&mut tx, path).await?;
        let row = match revision {
            Some(r) => tx.deployment_by_revision(set_id, r).await?,
            None => tx.latest_deployment(set_id).await?,
        };
        let row = row.ok_or_else(|| match revision {
            Some(r) => Error::NotFound(format!("{path} has no deployment revision {r}")),
            None => Error::NotFound(format!("{path} has not been deployed")),
        })?;
        let clusters = tx.deployment_clusters(row.id).await?;
        let objects = tx.deployment_objects(row.id).await?;
        Ok((row, clusters, objects))
    }

    /// A deployment of the set (the latest without `revision`), with every cluster and object.
    pub async fn deployment_status(
        &self,
        path: &ResourcePath,
        revision: Option<i64>,
    ) -> Result<DeploymentStatus> {
        let (row, clusters, objects) = self.deployment_rows(path, revision).await?;
        Ok(status(&row, clusters, objects, None))
    }

    /// The latest deployment, with the live objects compared with what it decided.
    #[tracing::instrument(skip(self), fields(set = %path.url()))]
    pub async fn verify_deployment(&self, path: &ResourcePath) -> Result<DeploymentStatus> {
        let (row, clusters, objects) = self.deployment_rows(path, None).await?;
        let address = SetAddress::from_path(path)
            .ok_or_else(|| Error::internal("verify", "not a set path"))?;
        let labels = set_labels(&address);
        let settings = self.push_settings();
        let mut verified = BTreeMap::new();
        for cluster in &clusters {
            let name = &cluster.cluster;
            let wanted = row
                .manifests
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let result = match self.client(name).await {
                Ok(client) => {
                    crate::push::cluster::verify(&client, name, &labels, wanted, &settings.retry)
                        .await
                }
                Err(e) => Err(e),
            };
            verified.insert(name.clone(), result);
        }
        Ok(status(&row, clusters, objects, Some(verified)))
    }

    /// The set's deployments, newest first.
    pub async fn list_deployments(
        &self,
        path: &ResourcePath,
        page: Page,
    ) -> Result<DeploymentList> {
        let limit = page.limit()?;
        let before = match &page.after {
            Some(token) => token.name.parse::<i64>().map_err(|_| Error::BadRequest {
                detail: "pageToken is not a token this server issued".into(),
                errors: vec![crate::domain::violations::FieldError::new(
                    "pageToken",
                    "must be the nextPage value of a previous response",
                )],
            })?,
            None => i64::MAX,
        };
        let mut tx = self.store.begin_read().await?;
        let set_id = self.set_id(&mut tx, path).await?;
        let mut rows = tx.deployments_page(set_id, before, limit + 1).await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| {
                super::PageToken {
                    name: r.revision.to_string(),
                    version: String::new(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(DeploymentList {
            items: rows.iter().map(head_summary).collect(),
            next_page: next,
        })
    }

    /// How to reach a cluster: its kubeconfig (decrypted only here, in memory) or in-cluster.
    pub async fn cluster_access(
        &self,
        cluster: &Name,
    ) -> std::result::Result<ClusterAccess, PushError> {
        let access = |m: String| PushError::Access(m);
        let mut tx = self
            .store
            .begin_read()
            .await
            .map_err(|e| access(e.to_string()))?;
        let row = tx
            .child(ROOT_ID, Kind::Cluster, &Key::named(cluster.clone()))
            .await
            .map_err(|e| access(e.to_string()))?
            .ok_or_else(|| access(format!("cluster \"{cluster}\" does not exist (any more)")))?;
        let spec: ClusterSpec =
            serde_json::from_value(row.spec.0.clone()).map_err(|e| access(e.to_string()))?;
        if spec.in_cluster {
            return Ok(ClusterAccess::InCluster);
        }
        let sealed = tx
            .credential(row.id)
            .await
            .map_err(|e| access(e.to_string()))?
            .ok_or_else(|| {
                access(format!(
                    "cluster \"{cluster}\" has no kubeconfig (and inCluster is false)"
                ))
            })?;
        let plain = self
            .secrets
            .open(&sealed, row.id.as_bytes())
            .map_err(|e| access(e.to_string()))?;
        String::from_utf8(plain)
            .map(ClusterAccess::Kubeconfig)
            .map_err(|_| access("the stored kubeconfig is not text".to_string()))
    }

    /// The deployments waiting or running (and the `meshintent_queue_depth` gauge set to it).
    pub async fn queue_depth(&self) -> Result<i64> {
        let mut tx = self.store.begin_read().await?;
        let depth = tx.queue_depth().await?;
        metrics::gauge!("meshintent_queue_depth").set(depth as f64);
        Ok(depth)
    }

    /// Where a set sits in the tree, from its id (for a worker that only has the deployment).
    pub async fn set_address(&self, set_id: Uuid) -> Result<SetAddress> {
        let mut tx = self.store.begin_read().await?;
        let set = tx
            .by_id(set_id)
            .await?
            .ok_or_else(|| Error::NotFound("the set was deleted".into()))?;
        let ca = tx
            .by_id(set.parent_id.unwrap_or(ROOT_ID))
            .await?
            .ok_or_else(|| Error::internal("set", "no composite app"))?;
        let project = tx
            .by_id(ca.parent_id.unwrap_or(ROOT_ID))
            .await?
            .ok_or_else(|| Error::internal("set", "no project"))?;
        let parse = |s: &str| {
            s.parse::<Name>()
                .map_err(|e| Error::internal("stored name", e))
        };
        Ok(SetAddress {
            project: parse(&project.name)?,
            composite_app: parse(&ca.name)?,
            version: ca
                .version
                .parse()
                .map_err(|e: String| Error::internal("stored version", e))?,
            set: parse(&set.name)?,
        })
    }

    /// Refuses to delete a resource whose subtree holds sets with objects still on clusters.
    pub(crate) async fn check_not_deployed(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        id: Uuid,
    ) -> Result<()> {
        let kind = path.kind();
        if !matches!(
            kind,
            Some(Kind::Project | Kind::CompositeApp | Kind::TrafficIntentSet)
        ) {
            return Ok(());
        }
        let deployed = tx.deployed_in_subtree(id).await?;
        if deployed > 0 {
            return Err(Error::Conflict(format!(
                "{path} cannot be deleted: {deployed} of its objects are deployed on clusters; terminate the traffic intent set(s) first (POST .../terminate) so nothing is left behind"
            )));
        }
        Ok(())
    }
}

impl ClusterClients for Service {
    /// A client with meshintent's timeouts, from the cluster's stored access.
    async fn client(&self, cluster: &Name) -> std::result::Result<kube::Client, PushError> {
        let settings = self.push_settings();
        let access = self.cluster_access(cluster).await?;
        crate::push::connect::client(&access, settings.connect_timeout, settings.request_timeout)
            .await
    }
}
