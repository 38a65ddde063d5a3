//! The deploy worker: claims queued deployments from the database, pushes them to the clusters,
//! and records progress per object, so that another worker (or this one after a restart) can
//! resume where it stopped.
//!
//! A claim is a lease (`claimed_until`) renewed while the worker runs; a worker that dies lets it
//! expire. PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so replicas never run one deployment at
//! once; SQLite has one worker. A set's deployments run one after the other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::push::cluster::{ClusterPlan, ObjectEvent, ObjectState, Recorder, run_cluster};
use crate::service::{DeploymentState, Service, manifests_by_cluster, set_labels};
use crate::store::{ObjectKey, Store};

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Names this worker in claims (and logs).
    pub id: String,
    /// How long a claim lasts without renewal; a dead worker's deployments wait this long.
    pub lease: Duration,
    /// How often to look for work queued by other replicas.
    pub poll_interval: Duration,
    /// Clusters worked on at once per deployment.
    pub cluster_concurrency: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            id: format!("worker-{}", Uuid::new_v4().simple()),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            cluster_concurrency: 4,
        }
    }
}

/// A running worker.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops claiming and waits for the loop to end (abandoning a deployment in progress, which
    /// another worker resumes after the lease).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = self.task.await;
    }

    /// Ends the worker at once, as a crash would.
    pub fn kill(&self) {
        self.task.abort();
    }
}

pub fn spawn(service: Service, settings: WorkerSettings) -> WorkerHandle {
    let (stop, mut stopped) = watch::channel(false);
    let signal = service.worker_signal();
    let task = tokio::spawn(async move {
        tracing::info!(worker = %settings.id, "deploy worker started");
        loop {
            if *stopped.borrow() {
                break;
            }
            match claim(service.store(), &settings).await {
                Ok(Some(id)) => {
                    run(&service, &settings, id).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "deploy worker: claiming failed"),
            }
            let _ = queue_depth(service.store()).await;
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(settings.poll_interval) => {}
                _ = stopped.changed() => {}
            }
        }
    });
    WorkerHandle { stop, task }
}

async fn claim(
    store: &Store,
    settings: &WorkerSettings,
) -> Result<Option<Uuid>, crate::store::StoreError> {
    let mut tx = store.begin_write().await?;
    let until = Utc::now()
        + chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(30));
    let id = tx.claim_deployment(&settings.id, until).await?;
    tx.commit().await?;
    Ok(id)
}

/// Records the queue depth gauge for /metrics.
pub async fn queue_depth(store: &Store) -> Result<i64, crate::store::StoreError> {
    let mut tx = store.begin_read().await?;
    let depth = tx.queue_depth().await?;
    metrics::gauge!("meshintent_queue_depth").set(depth as f64);
    Ok(depth)
}

/// Writes each object's progress, and keeps the set's inventory in step.
struct DbRecorder {
    store: Store,
    deployment: Uuid,
    set_id: Uuid,
}

impl Recorder for DbRecorder {
    async fn record(&self, event: ObjectEvent) -> Result<(), String> {
        metrics::counter!("meshintent_objects_total", "cluster" => event.key.cluster.clone(), "result" => event.state.as_str())
            .increment(1);
        let mut tx = self.store.begin_write().await.map_err(|e| e.to_string())?;
        tx.upsert_object_state(
            self.deployment,
            &event.key,
            event.operation.as_str(),
            event.state.as_str(),
            event.message.as_deref(),
        )
        .await
        .map_err(|e| e.to_string())?;
        match (event.state, &event.hash) {
            (ObjectState::Applied | ObjectState::Unchanged, Some(hash)) => tx
                .upsert_inventory(self.set_id, &event.key, hash, self.deployment)
                .await
                .map_err(|e| e.to_string())?,
            (ObjectState::Pruned, _) => tx
                .delete_inventory(self.set_id, &event.key)
                .await
                .map_err(|e| e.to_string())?,
            // A pruned candidate that turned out not to be ours is no longer ours to track.
            (ObjectState::Conflict, _) if event.operation == crate::push::Operation::Delete => tx
                .delete_inventory(self.set_id, &event.key)
                .await
                .map_err(|e| e.to_string())?,
            _ => {}
        }
        tx.commit().await.map_err(|e| e.to_string())
    }
}

/// Runs one claimed deployment to its end, unless the lease is lost meanwhile.
async fn run(service: &Service, settings: &WorkerSettings, id: Uuid) {
    let lost = Arc::new(tokio::sync::Notify::new());
    let heartbeat = {
        let store = service.store().clone();
        let worker = settings.id.clone();
        let lease = settings.lease;
        let lost = lost.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = Utc::now()
                    + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
                let renewed = async {
                    let mut tx = store.begin_write().await?;
                    let ok = tx.renew_lease(id, &worker, until).await?;
                    tx.commit().await?;
                    Ok::<bool, crate::store::StoreError>(ok)
                };
                match renewed.await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.notify_one();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing the deploy lease failed"),
                }
            }
        })
    };
    tokio::select! {
        _ = execute(service, settings, id) => {}
        _ = lost.notified() => tracing::warn!(deployment = %id, "lease lost; another worker continues this deployment"),
    }
    heartbeat.abort();
}

async fn execute(service: &Service, settings: &WorkerSettings, id: Uuid) {
    let store = service.store();
    let loaded = async {
        let mut tx = store.begin_read().await?;
        let row = tx.deployment(id).await?;
        let Some(row) = row else { return Ok(None) };
        let inventory = tx.inventory(row.set_id).await?;
        let objects = tx.deployment_objects(id).await?;
        let clusters = tx.deployment_clusters(id).await?;
        Ok::<_, crate::store::StoreError>(Some((row, inventory, objects, clusters)))
    };
    let (row, inventory, objects, cluster_rows) = match loaded.await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(deployment = %id, error = %e, "loading a deployment failed");
            return;
        }
    };
    let terminate = row.action == "terminate";
    let address = match service.set_address(row.set_id).await {
        Ok(a) => a,
        Err(e) => {
            finish(
                store,
                settings,
                id,
                DeploymentState::Failed,
                Some(e.to_string()),
            )
            .await;
            return;
        }
    };
    tracing::info!(deployment = %id, revision = row.revision, action = %row.action, set = %address.path().url(), "deployment started");
    let labels = set_labels(&address);
    let desired = manifests_by_cluster(&row.manifests.0);
    let finished: BTreeSet<ObjectKey> = objects
        .iter()
        .filter(|o| crate::push::ObjectState::is_final(&o.state))
        .map(|o| o.key.clone())
        .collect();
    let mut clusters: BTreeSet<String> = desired.keys().cloned().collect();
    clusters.extend(inventory.iter().map(|r| r.key.cluster.clone()));
    clusters.extend(cluster_rows.iter().map(|c| c.cluster.clone()));
    let done_before: BTreeMap<String, String> = cluster_rows
        .iter()
        .filter(|c| DeploymentState::parse(&c.state).is_final())
        .map(|c| (c.cluster.clone(), c.state.clone()))
        .collect();

    let recorder = DbRecorder {
        store: store.clone(),
        deployment: id,
        set_id: row.set_id,
    };
    let results: Vec<(String, DeploymentState)> = stream::iter(clusters)
        .map(|cluster| {
            let plan = ClusterPlan {
                desired: desired.get(&cluster).cloned().unwrap_or_default(),
                inventory: inventory
                    .iter()
                    .filter(|r| r.key.cluster == cluster)
                    .map(|r| r.key.clone())
                    .collect(),
                finished: finished
                    .iter()
                    .filter(|k| k.cluster == cluster)
                    .cloned()
                    .collect(),
                set_labels: labels.clone(),
                cluster: cluster.clone(),
            };
            let recorder = &recorder;
            let done = done_before.get(&cluster).cloned();
            async move {
                if let Some(state) = done {
                    return (cluster, DeploymentState::parse(&state));
                }
                let state = run_one_cluster(service, id, plan, terminate, recorder).await;
                (cluster, state)
            }
        })
        .buffer_unordered(settings.cluster_concurrency.max(1))
        .collect()
        .await;

    let total_writes = {
        let read = async {
            let mut tx = store.begin_read().await?;
            tx.deployment_clusters(id).await
        };
        read.await
            .map(|rows| rows.iter().map(|c| c.writes).sum::<i64>())
            .unwrap_or(-1)
    };
    let ok = if terminate {
        DeploymentState::Terminated
    } else {
        DeploymentState::Applied
    };
    let failed = results
        .iter()
        .filter(|(_, s)| *s == DeploymentState::Failed)
        .count();
    let good = results.iter().filter(|(_, s)| *s == ok).count();
    let (state, message) = if results.is_empty() {
        (
            ok,
            Some("no cluster holds or runs this set's apps: nothing to do".to_owned()),
        )
    } else if good == results.len() {
        let message = if total_writes == 0 {
            "no changes: every object was already as desired (0 writes)".to_owned()
        } else {
            format!(
                "{} cluster(s) up to date ({total_writes} writes)",
                results.len()
            )
        };
        (ok, Some(message))
    } else if failed == results.len() {
        (
            DeploymentState::Failed,
            Some("every cluster failed; see the clusters' messages".to_owned()),
        )
    } else {
        let bad: Vec<&str> = results
            .iter()
            .filter(|(_, s)| *s != ok)
            .map(|(c, _)| c.as_str())
            .collect();
        (
            DeploymentState::Degraded,
            Some(format!(
                "not complete on {}; see the clusters' messages",
                bad.join(", ")
            )),
        )
    };
    metrics::counter!("meshintent_deploys_total", "action" => row.action.clone(), "outcome" => state.as_str()).increment(1);
    tracing::info!(deployment = %id, revision = row.revision, state = state.as_str(), "deployment finished");
    finish(store, settings, id, state, message).await;
}

async fn run_one_cluster(
    service: &Service,
    deployment: Uuid,
    plan: ClusterPlan,
    terminate: bool,
    recorder: &DbRecorder,
) -> DeploymentState {
    let store = service.store();
    let cluster = plan.cluster.clone();
    let working = if terminate {
        DeploymentState::Terminating
    } else {
        DeploymentState::Applying
    };
    set_cluster(store, deployment, &cluster, working, None, 0).await;
    let settings = service.push_settings();
    let client = match service.cluster_access(&cluster).await {
        Ok(access) => {
            crate::push::connect::client(
                &access,
                settings.connect_timeout,
                settings.request_timeout,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let client = match client {
        Ok(c) => c,
        Err(message) => {
            mark_desired_failed(store, deployment, &plan, &message).await;
            set_cluster(
                store,
                deployment,
                &cluster,
                DeploymentState::Failed,
                Some(message),
                0,
            )
            .await;
            return DeploymentState::Failed;
        }
    };
    let outcome = run_cluster(&client, plan.clone(), settings, recorder).await;
    let (state, message) = if let Some(message) = outcome.unreachable.clone() {
        mark_desired_failed(store, deployment, &plan, &message).await;
        (DeploymentState::Failed, Some(message))
    } else if outcome.count(ObjectState::Failed) + outcome.count(ObjectState::Conflict) > 0 {
        let done = outcome.count(ObjectState::Applied)
            + outcome.count(ObjectState::Unchanged)
            + outcome.count(ObjectState::Pruned);
        let state = if done == 0 && outcome.count(ObjectState::Conflict) == 0 {
            DeploymentState::Failed
        } else {
            DeploymentState::Degraded
        };
        (state, Some(outcome.problems.join("; ")))
    } else if terminate {
        (DeploymentState::Terminated, None)
    } else {
        (DeploymentState::Applied, None)
    };
    set_cluster(store, deployment, &cluster, state, message, outcome.writes).await;
    state
}

/// When a cluster cannot be worked with, its pending objects failed with the same reason.
async fn mark_desired_failed(store: &Store, deployment: Uuid, plan: &ClusterPlan, message: &str) {
    let result = async {
        let mut tx = store.begin_write().await?;
        for object in &plan.desired {
            let key = crate::push::cluster::key_of(&plan.cluster, object);
            if !plan.finished.contains(&key) {
                tx.upsert_object_state(deployment, &key, "apply", "failed", Some(message))
                    .await?;
            }
        }
        tx.commit().await
    };
    if let Err(e) = result.await {
        tracing::error!(error = %e, "recording a cluster failure failed");
    }
}

async fn set_cluster(
    store: &Store,
    deployment: Uuid,
    cluster: &str,
    state: DeploymentState,
    message: Option<String>,
    writes: i64,
) {
    let result = async {
        let mut tx = store.begin_write().await?;
        tx.insert_deployment_cluster(deployment, cluster, state.as_str())
            .await?;
        tx.set_cluster_state(
            deployment,
            cluster,
            state.as_str(),
            message.as_deref(),
            writes,
        )
        .await?;
        tx.commit().await
    };
    if let Err(e) = result.await {
        tracing::error!(error = %e, "recording a cluster's state failed");
    }
}

async fn finish(
    store: &Store,
    settings: &WorkerSettings,
    id: Uuid,
    state: DeploymentState,
    message: Option<String>,
) {
    let result = async {
        let mut tx = store.begin_write().await?;
        let ok = tx
            .finish_deployment(id, &settings.id, state.as_str(), message.as_deref())
            .await?;
        tx.commit().await?;
        Ok::<bool, crate::store::StoreError>(ok)
    };
    match result.await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(deployment = %id, "the claim was lost before the deployment finished")
        }
        Err(e) => {
            tracing::error!(deployment = %id, error = %e, "recording a deployment's end failed")
        }
    }
}
