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

use crate::domain::deployment::{
    Action, ClusterState, DeploymentState, ObjectRef, ObjectState, Operation, cluster_outcome,
    deployment_outcome,
};
use crate::domain::model::SetAddress;
use crate::domain::names::Name;
use crate::push::cluster::{ClusterPlan, ObjectEvent, Recorder, run_cluster};
use crate::push::gate::{Probed, wait_for_answer};
use crate::push::{ClusterClients, ClusterOutcome, Gate, Halt, Interruption};
use crate::service::events::{Event, EventType, store_events};
use crate::service::{Service, set_labels};
use crate::store::{
    ClusterRow, DeploymentRow, InventoryRow, ObjectProgress, ObjectRow, Store, StoreError,
};

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
    /// The reconciler that runs beside this worker (None: no periodic checks here).
    pub reconcile: Option<crate::reconciler::ReconcileSettings>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            id: format!("worker-{}", Uuid::new_v4().simple()),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            cluster_concurrency: 4,
            reconcile: Some(Default::default()),
        }
    }
}

/// A running worker.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    reconciler: Option<JoinHandle<()>>,
}

/// How long a stopping worker waits for the objects in flight (each bounded by the request
/// timeout) before it lets go regardless.
const STOP_GRACE: Duration = Duration::from_secs(60);

impl WorkerHandle {
    /// Stops gracefully: no new deployment is claimed and no new object started; the objects in
    /// flight finish and are recorded, and a deployment in progress is released, so another
    /// worker resumes it at once instead of after the lease.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("deploy worker did not stop in time; abandoning its deployment");
            self.task.abort();
        }
        if let Some(reconciler) = self.reconciler.take()
            && tokio::time::timeout(STOP_GRACE, reconciler).await.is_err()
        {
            tracing::warn!("the reconciler did not stop in time");
        }
    }

    /// Ends the worker at once, as a crash would.
    pub fn kill(&self) {
        self.task.abort();
        if let Some(reconciler) = &self.reconciler {
            reconciler.abort();
        }
    }
}

pub fn spawn(service: Service, settings: WorkerSettings) -> WorkerHandle {
    let (stop, mut stopped) = watch::channel(false);
    let reconciler = settings.reconcile.clone().map(|r| {
        crate::reconciler::spawn(service.clone(), settings.id.clone(), r, stopped.clone())
    });
    let signal = service.worker_signal();
    let task = tokio::spawn(async move {
        tracing::info!(worker = %settings.id, "deploy worker started");
        loop {
            if *stopped.borrow() {
                break;
            }
            match claim(service.store(), &settings).await {
                Ok(Some(id)) => {
                    run(&service, &settings, id, &stopped).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "deploy worker: claiming failed"),
            }
            let _ = service.queue_depth().await;
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(settings.poll_interval) => {}
                _ = stopped.changed() => {}
            }
        }
    });
    WorkerHandle {
        stop,
        task,
        reconciler,
    }
}

async fn claim(store: &Store, settings: &WorkerSettings) -> Result<Option<Uuid>, StoreError> {
    let mut tx = store.begin_write().await?;
    let until = Utc::now()
        + chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(30));
    let id = tx.claim_deployment(&settings.id, until).await?;
    tx.commit().await?;
    Ok(id)
}

/// Writes each object's progress, and keeps the set's inventory in step.
struct DbRecorder {
    store: Store,
    deployment: Uuid,
    set_id: Uuid,
    publisher: Publisher,
}

/// Publishes a deployment's events (object outcomes, clusters and the deployment finished), in
/// the transactions that record them.
struct Publisher {
    service: Service,
    set: crate::domain::resource::ResourcePath,
    revision: i64,
}

impl Publisher {
    fn event(&self, kind: EventType, data: serde_json::Value) -> Event {
        let mut event = Event::new(&self.set, kind, data);
        event
            .data
            .insert("revision".into(), serde_json::Value::from(self.revision));
        event
    }
}

impl Recorder for DbRecorder {
    type Error = StoreError;

    /// One transaction per batch: the objects' states and the inventory change together.
    async fn record(&self, events: Vec<ObjectEvent>) -> Result<(), StoreError> {
        let mut progress = Vec::with_capacity(events.len());
        let mut kept = Vec::new();
        let mut gone = Vec::new();
        for event in &events {
            metrics::counter!("meshintent_objects_total", "cluster" => event.key.cluster.to_string(), "result" => event.state.as_str())
                .increment(1);
            progress.push(ObjectProgress {
                key: &event.key,
                operation: event.operation,
                state: event.state,
                message: event.message.as_deref(),
            });
            match (event.state, &event.hash) {
                (ObjectState::Applied | ObjectState::Unchanged, Some(hash)) => {
                    kept.push((&event.key, hash.as_str()))
                }
                (ObjectState::Pruned, _) => gone.push(&event.key),
                // A pruned candidate that turned out not to be ours is no longer ours to track.
                (ObjectState::Conflict, _) if event.operation == Operation::Delete => {
                    gone.push(&event.key)
                }
                _ => {}
            }
        }
        let published: Vec<Event> = events
            .iter()
            .filter_map(|e| {
                let p = &self.publisher;
                Event::object(
                    &p.set,
                    p.revision,
                    &e.key,
                    e.operation,
                    e.state,
                    e.message.as_deref(),
                )
            })
            .collect();
        let mut tx = self.store.begin_write().await?;
        tx.upsert_object_states(self.deployment, &progress).await?;
        tx.upsert_inventory(self.set_id, self.deployment, &kept)
            .await?;
        tx.delete_inventory(self.set_id, &gone).await?;
        store_events(&mut tx, published).await?;
        tx.commit().await?;
        self.publisher.service.events_committed();
        Ok(())
    }
}

/// Runs one claimed deployment to its end, unless the lease is lost or the worker halts
/// meanwhile (then the deployment is released for another worker).
async fn run(service: &Service, settings: &WorkerSettings, id: Uuid, halt: &Halt) {
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
                    Ok::<bool, StoreError>(ok)
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
    let halted = tokio::select! {
        halted = execute(service, settings, id, halt) => halted,
        _ = lost.notified() => {
            tracing::warn!(deployment = %id, "lease lost; another worker continues this deployment");
            false
        }
    };
    heartbeat.abort();
    if halted {
        release(service.store(), settings, id).await;
    }
}

/// Hands an unfinished deployment back to the queue.
async fn release(store: &Store, settings: &WorkerSettings, id: Uuid) {
    let released = async {
        let mut tx = store.begin_write().await?;
        let ok = tx.release_claim(id, &settings.id).await?;
        tx.commit().await?;
        Ok::<bool, StoreError>(ok)
    };
    match released.await {
        Ok(_) => {
            tracing::info!(deployment = %id, "worker stopping: deployment released for another worker")
        }
        Err(e) => {
            tracing::warn!(deployment = %id, error = %e, "releasing a deployment failed; it resumes after the lease")
        }
    }
}

/// What a deployment needs from the database to run (or resume).
struct Loaded {
    row: DeploymentRow,
    inventory: Vec<InventoryRow>,
    objects: Vec<ObjectRow>,
    clusters: Vec<ClusterRow>,
}

async fn load(store: &Store, id: Uuid) -> Result<Option<Loaded>, StoreError> {
    let mut tx = store.begin_read().await?;
    let Some(row) = tx.deployment(id).await? else {
        return Ok(None);
    };
    Ok(Some(Loaded {
        inventory: tx.inventory(row.set_id).await?,
        objects: tx.deployment_objects(id).await?,
        clusters: tx.deployment_clusters(id).await?,
        row,
    }))
}

/// One cluster's work: a plan, or the state it already ended in (a resumed deployment).
enum ClusterWork {
    Run(ClusterPlan),
    Done(Name, ClusterState),
}

/// Every cluster the deployment touches (manifests, inventory, earlier rows), with its plan;
/// objects and clusters already final are not worked on again.
fn plan(loaded: Loaded, labels: &BTreeMap<String, String>) -> Vec<ClusterWork> {
    let Loaded {
        row,
        inventory,
        objects,
        clusters: rows,
    } = loaded;
    let finished: BTreeSet<ObjectRef> = objects
        .into_iter()
        .filter(|o| o.state.is_final())
        .map(|o| o.key)
        .collect();
    let done: BTreeMap<Name, ClusterState> = rows
        .iter()
        .filter(|c| c.state.is_final())
        .map(|c| (c.cluster.clone(), c.state))
        .collect();
    let mut clusters: BTreeSet<Name> = row.manifests.keys().cloned().collect();
    clusters.extend(inventory.iter().map(|r| r.key.cluster.clone()));
    clusters.extend(rows.into_iter().map(|c| c.cluster));
    let mut desired = row.manifests;
    clusters
        .into_iter()
        .map(|cluster| {
            if let Some(state) = done.get(&cluster) {
                return ClusterWork::Done(cluster, *state);
            }
            ClusterWork::Run(ClusterPlan {
                desired: desired.remove(&cluster).unwrap_or_default(),
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
                cluster,
            })
        })
        .collect()
}

/// Write requests sent to every cluster of the deployment; None when they cannot be read.
async fn total_writes(store: &Store, id: Uuid) -> Option<i64> {
    let read = async {
        let mut tx = store.begin_read().await?;
        tx.deployment_clusters(id).await
    };
    match read.await {
        Ok(rows) => Some(rows.iter().map(|c| c.writes).sum()),
        Err(e) => {
            tracing::warn!(error = %e, "reading the writes of a deployment failed");
            None
        }
    }
}

/// Runs a deployment; true when it stopped unfinished because the worker halts.
#[tracing::instrument(skip_all, fields(deployment = %id, project, set, revision, action))]
async fn execute(service: &Service, settings: &WorkerSettings, id: Uuid, halt: &Halt) -> bool {
    let store = service.store();
    let loaded = match load(store, id).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return false,
        Err(e) => {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "loading a deployment failed"
            );
            return false;
        }
    };
    let (action, revision) = (loaded.row.action, loaded.row.revision);
    let span = tracing::Span::current();
    span.record("revision", revision)
        .record("action", action.as_str());
    let address = match service.set_address(loaded.row.set_id).await {
        Ok(a) => a,
        Err(e) => {
            let message = Some(e.to_string());
            finish(store, settings, id, DeploymentState::Failed, message, None).await;
            return false;
        }
    };
    record_address(&span, &address);
    tracing::info!("deployment started");
    let recorder = DbRecorder {
        store: store.clone(),
        deployment: id,
        set_id: loaded.row.set_id,
        publisher: Publisher {
            service: service.clone(),
            set: address.path(),
            revision,
        },
    };
    let results: Vec<(Name, Option<ClusterState>)> =
        stream::iter(plan(loaded, &set_labels(&address)))
            .map(|work| async {
                match work {
                    ClusterWork::Done(cluster, state) => (cluster, Some(state)),
                    ClusterWork::Run(plan) => {
                        let cluster = plan.cluster.clone();
                        let state =
                            run_one_cluster(service, id, plan, action, &recorder, halt).await;
                        (cluster, state)
                    }
                }
            })
            .buffer_unordered(settings.cluster_concurrency.max(1))
            .collect()
            .await;
    let Some(results) = results
        .into_iter()
        .map(|(cluster, state)| state.map(|s| (cluster, s)))
        .collect::<Option<Vec<_>>>()
    else {
        tracing::info!("worker stopping: deployment left unfinished");
        return true;
    };
    let outcome = deployment_outcome(action, &results, total_writes(store, id).await);
    metrics::counter!("meshintent_deploys_total", "action" => action.as_str(), "outcome" => outcome.state.as_str()).increment(1);
    tracing::info!(state = outcome.state.as_str(), "deployment finished");
    let publisher = Some(&recorder.publisher);
    finish(
        store,
        settings,
        id,
        outcome.state,
        Some(outcome.message),
        publisher,
    )
    .await;
    false
}

fn record_address(span: &tracing::Span, address: &SetAddress) {
    span.record("project", address.project.as_str())
        .record("set", tracing::field::display(address.path().url()));
}

/// One cluster's part of a deployment, waiting out outages of its API server; None when the
/// worker halts before it is done.
#[tracing::instrument(skip_all, fields(cluster = %plan.cluster))]
async fn run_one_cluster(
    service: &Service,
    deployment: Uuid,
    mut plan: ClusterPlan,
    action: Action,
    recorder: &DbRecorder,
    halt: &Halt,
) -> Option<ClusterState> {
    let store = service.store();
    let settings = service.push_settings();
    let cluster = plan.cluster.clone();
    set_cluster(
        store,
        deployment,
        &cluster,
        action.working(),
        None,
        0,
        &recorder.publisher,
    )
    .await;
    let client = match service.client(&cluster).await {
        Ok(c) => c,
        Err(error) => {
            let message = error.to_string();
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot connect to the cluster"
            );
            mark_pending_failed(store, deployment, &plan, &message).await;
            let state = ClusterState::Failed;
            set_cluster(
                store,
                deployment,
                &cluster,
                state,
                Some(message),
                0,
                &recorder.publisher,
            )
            .await;
            return Some(state);
        }
    };
    let mut total = ClusterOutcome::default();
    // The stored count is added to (a resumed deployment adds its own): report increments.
    let mut reported = 0;
    let mut delta =
        |total: &ClusterOutcome| total.writes - std::mem::replace(&mut reported, total.writes);
    // Counted from the first outage, so that a cluster that keeps dropping out is bounded too.
    let mut give_up_at: Option<std::time::Instant> = None;
    let mut gave_up = None;
    loop {
        let gate = Gate::new(halt.clone());
        let outcome = run_cluster(&client, plan.clone(), settings, recorder, &gate).await;
        plan.finished.extend(outcome.finished.iter().cloned());
        total.absorb(outcome);
        let cause = match &total.interrupted {
            None => break,
            Some(Interruption::Halted) => {
                set_cluster(
                    store,
                    deployment,
                    &cluster,
                    action.working(),
                    None,
                    delta(&total),
                    &recorder.publisher,
                )
                .await;
                return None;
            }
            Some(Interruption::Outage(cause)) => cause.clone(),
        };
        let now = std::time::Instant::now();
        let deadline = *give_up_at.get_or_insert(now + settings.outage.give_up_after);
        let waiting = pending(&plan);
        let message = format!(
            "the API server stopped answering ({cause}); {waiting} object(s) wait and the deployment goes on when it answers (giving up in {}s)",
            deadline.saturating_duration_since(now).as_secs()
        );
        tracing::warn!(waiting, cause = %cause, "cluster unreachable; probing");
        metrics::counter!("meshintent_cluster_outages_total", "cluster" => cluster.to_string())
            .increment(1);
        let unreachable = ClusterState::Unreachable;
        set_cluster(
            store,
            deployment,
            &cluster,
            unreachable,
            Some(message),
            delta(&total),
            &recorder.publisher,
        )
        .await;
        match wait_for_answer(&client, &settings.outage, deadline, halt).await {
            Probed::Answering => {
                tracing::info!("cluster answers again; resuming");
                set_cluster(
                    store,
                    deployment,
                    &cluster,
                    action.working(),
                    None,
                    delta(&total),
                    &recorder.publisher,
                )
                .await;
            }
            Probed::Halted => return None,
            Probed::GaveUp => {
                gave_up = Some(format!(
                    "gave up after {}s without an answer from the API server: {cause}",
                    settings.outage.give_up_after.as_secs()
                ));
                break;
            }
        }
    }
    let message = if let Some(message) = gave_up {
        mark_pending_failed(store, deployment, &plan, &message).await;
        *total.tally.counts.entry(ObjectState::Failed).or_default() += pending(&plan);
        Some(message)
    } else if let Some(error) = &total.failure {
        let message = error.to_string();
        mark_pending_failed(store, deployment, &plan, &message).await;
        Some(message)
    } else if total.problems.is_empty() {
        None
    } else {
        Some(total.problems.join("; "))
    };
    let state = cluster_outcome(action, &total.tally);
    set_cluster(
        store,
        deployment,
        &cluster,
        state,
        message,
        delta(&total),
        &recorder.publisher,
    )
    .await;
    Some(state)
}

/// Desired objects not finished yet.
fn pending(plan: &ClusterPlan) -> usize {
    plan.desired
        .iter()
        .filter(|o| !plan.finished.contains(&o.key))
        .count()
}

/// When a cluster cannot be worked with, its pending objects failed with the same reason.
async fn mark_pending_failed(store: &Store, deployment: Uuid, plan: &ClusterPlan, message: &str) {
    let failed: Vec<ObjectProgress<'_>> = plan
        .desired
        .iter()
        .filter(|o| !plan.finished.contains(&o.key))
        .map(|o| ObjectProgress {
            key: &o.key,
            operation: Operation::Apply,
            state: ObjectState::Failed,
            message: Some(message),
        })
        .collect();
    let result = async {
        let mut tx = store.begin_write().await?;
        tx.upsert_object_states(deployment, &failed).await?;
        tx.commit().await
    };
    if let Err(e) = result.await {
        tracing::error!(error = %e, "recording a cluster failure failed");
    }
}

async fn set_cluster(
    store: &Store,
    deployment: Uuid,
    cluster: &Name,
    state: ClusterState,
    message: Option<String>,
    writes: i64,
    publisher: &Publisher,
) {
    let result = async {
        let mut tx = store.begin_write().await?;
        tx.insert_deployment_cluster(deployment, cluster, state)
            .await?;
        tx.set_cluster_state(deployment, cluster, state, message.as_deref(), writes)
            .await?;
        if state.is_final() {
            // The cluster's writes over every run of the deployment (a resumed one adds).
            let writes = tx
                .deployment_clusters(deployment)
                .await?
                .into_iter()
                .find(|c| c.cluster == *cluster)
                .map_or(writes, |c| c.writes);
            let event = publisher.event(
                EventType::ClusterFinished,
                serde_json::json!({
                    "cluster": cluster.as_str(),
                    "state": state.as_str(),
                    "message": message,
                    "writes": writes,
                }),
            );
            store_events(&mut tx, vec![event]).await?;
        }
        tx.commit().await?;
        if state.is_final() {
            publisher.service.events_committed();
        }
        Ok::<(), StoreError>(())
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
    publisher: Option<&Publisher>,
) {
    let result = async {
        let mut tx = store.begin_write().await?;
        let ok = tx
            .finish_deployment(id, &settings.id, state, message.as_deref())
            .await?;
        if let (true, Some(publisher)) = (ok, publisher) {
            let event = publisher.event(
                EventType::DeployFinished,
                serde_json::json!({ "state": state.as_str(), "message": message }),
            );
            store_events(&mut tx, vec![event]).await?;
        }
        tx.commit().await?;
        if let (true, Some(publisher)) = (ok, publisher) {
            publisher.service.events_committed();
        }
        Ok::<bool, StoreError>(ok)
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
