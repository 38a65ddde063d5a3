//! Applying a set's objects to one cluster, pruning what it no longer wants, and reading back
//! what is there. Kubernetes side effects only; progress is handed to a `Recorder`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::error::PushError;
use super::foreign::foreign_fields;
use super::gate::{Gate, Interruption, OutagePolicy, unanswered};
use super::hash::{ANNOTATION_HASH, content_hash, desired_hash};
use super::kinds::api_resource;
use super::live::{LiveObjects, foreign_owner, list_all, list_owned};
use super::retry::{RetryPolicy, describe, is_transient, with_retries};
use crate::domain::deployment::{DesiredObject, IstioKind, ObjectRef, ObjectTally};
pub use crate::domain::deployment::{Drift, ObjectState, Operation};
use crate::domain::names::Name;

/// The field manager of every write (server-side apply).
pub const FIELD_MANAGER: &str = "meshintent";

/// Finished objects recorded in one go: whatever has finished when the recorder is free, up to
/// this many (one transaction each, instead of one per object).
const RECORD_BATCH: usize = 256;

/// Limits for talking to one cluster.
#[derive(Clone, Debug)]
pub struct PushSettings {
    pub retry: RetryPolicy,
    /// Requests in flight per cluster (within one apply tier).
    pub object_concurrency: usize,
    pub connect_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    /// Waiting for a cluster that stopped answering.
    pub outage: OutagePolicy,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            object_concurrency: 16,
            connect_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
            outage: OutagePolicy::default(),
        }
    }
}

/// What happened to one object.
#[derive(Clone, Debug)]
pub struct ObjectEvent {
    pub key: ObjectRef,
    pub operation: Operation,
    pub state: ObjectState,
    pub message: Option<String>,
    /// The content hash now on the cluster (applied or unchanged objects).
    pub hash: Option<String>,
}

/// Where progress goes (the deployment's rows and the inventory). Events come in batches of
/// objects that finished; a batch is recorded before the next one is handed over.
pub trait Recorder: Sync {
    type Error: std::error::Error;

    fn record(
        &self,
        events: Vec<ObjectEvent>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One cluster's part of a deployment.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub cluster: Name,
    /// The labels that identify the set's objects (a label selector).
    pub set_labels: BTreeMap<String, String>,
    /// Objects wanted on the cluster (empty to remove everything: terminate).
    pub desired: Vec<DesiredObject>,
    /// Objects the inventory says the set has there.
    pub inventory: Vec<ObjectRef>,
    /// Objects already finished in this deployment (when a deployment is resumed).
    pub finished: BTreeSet<ObjectRef>,
}

#[derive(Debug, Default)]
pub struct ClusterOutcome {
    /// The cluster cannot be worked with (Istio not served, listing refused): its pending
    /// objects fail with this.
    pub failure: Option<PushError>,
    /// Work stopped before the plan was done; unfinished objects are still pending.
    pub interrupted: Option<Interruption>,
    /// Write requests that reached the API server.
    pub writes: i64,
    /// How many objects ended in each state.
    pub tally: ObjectTally,
    /// The first failures, for the cluster's message.
    pub problems: Vec<String>,
    /// Objects that reached a final state in this run.
    pub finished: BTreeSet<ObjectRef>,
}

impl ClusterOutcome {
    pub fn count(&self, state: ObjectState) -> usize {
        self.tally.count(state)
    }

    /// Adds a later run's results (after an outage) to this one's.
    pub fn absorb(&mut self, later: ClusterOutcome) {
        self.writes += later.writes;
        for (state, n) in later.tally.counts {
            *self.tally.counts.entry(state).or_default() += n;
        }
        self.tally.unreachable |= later.tally.unreachable;
        for problem in later.problems {
            if self.problems.len() < 5 {
                self.problems.push(problem);
            }
        }
        self.finished.extend(later.finished);
        self.failure = later.failure;
        self.interrupted = later.interrupted;
    }

    /// The run could not start or go on: a permanent failure, or an interruption.
    fn stopped(error: PushError, gate: &Gate) -> ClusterOutcome {
        let interrupted = gate
            .interruption()
            .or_else(|| is_outage(&error).then(|| Interruption::Outage(error.to_string())));
        if interrupted.is_some() {
            return ClusterOutcome {
                interrupted,
                ..ClusterOutcome::default()
            };
        }
        ClusterOutcome {
            failure: Some(error),
            tally: ObjectTally {
                unreachable: true,
                ..ObjectTally::default()
            },
            ..ClusterOutcome::default()
        }
    }
}

/// Whether a failure is the API server not answering (an outage to wait out).
fn is_outage(error: &PushError) -> bool {
    match error {
        PushError::Unreachable { source, .. } => unanswered(source),
        PushError::During { source, .. } => is_outage(source),
        _ => false,
    }
}

fn api_for(client: &kube::Client, key: &ObjectRef) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        key.namespace.as_str(),
        &api_resource(key.kind),
    )
}

/// Checks (by API discovery) that the cluster serves the Istio kinds meshintent writes, so that
/// a cluster without Istio fails with one clear message instead of a 404 per object.
pub async fn check_istio_served(
    client: &kube::Client,
    retry: &RetryPolicy,
    gate: &Gate,
) -> Result<(), PushError> {
    for group in [crate::istio::GROUP_NETWORKING, crate::istio::GROUP_SECURITY] {
        let kinds: Vec<IstioKind> = IstioKind::ALL
            .into_iter()
            .filter(|k| k.group() == group)
            .collect();
        let api_version = kinds[0].api_version();
        let (served, _) =
            with_retries(retry, gate, || client.list_api_group_resources(api_version)).await;
        let served = match served {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(PushError::GroupNotServed { api_version });
            }
            Err(e) => {
                return Err(
                    PushError::from_kube(e).during(format!("cannot discover {api_version}"))
                );
            }
        };
        for kind in kinds {
            if !served.resources.iter().any(|r| r.name == kind.plural()) {
                return Err(PushError::KindNotServed { kind });
            }
        }
    }
    Ok(())
}

/// What working on one object came to.
enum Step {
    /// It reached a final or failed state, after `sent` requests that reached the server.
    Done { sent: i64, event: ObjectEvent },
    /// Not done: the gate closed first (outage or halt); it stays pending.
    Paused { sent: i64 },
}

/// A failed request: the object failed; or it waits for the next run, when the request got no
/// answer (the cluster is then unreachable) or the gate closed on a failure that may pass.
fn failed_or_paused(error: kube::Error, sent: u32, gate: &Gate, event: ObjectEvent) -> Step {
    let sent = i64::from(sent);
    if unanswered(&error) {
        gate.trip(&error);
        return Step::Paused { sent };
    }
    if gate.is_closed() && is_transient(&error) {
        return Step::Paused { sent };
    }
    Step::Done {
        sent,
        event: ObjectEvent {
            state: ObjectState::Failed,
            message: Some(describe(&error)),
            ..event
        },
    }
}

/// Applies the plan: every desired object in apply order (in parallel within a kind), then
/// prunes what the set has there but no longer wants, in reverse order. Stops early, leaving
/// the rest pending, when the gate closes.
pub async fn run_cluster<R: Recorder>(
    client: &kube::Client,
    plan: ClusterPlan,
    settings: &PushSettings,
    recorder: &R,
    gate: &Gate,
) -> ClusterOutcome {
    if let Err(error) = check_istio_served(client, &settings.retry, gate).await {
        return ClusterOutcome::stopped(error, gate);
    }
    let live = match list_all(
        client,
        &plan.cluster,
        &plan.set_labels,
        &settings.retry,
        gate,
    )
    .await
    {
        Ok(live) => live,
        Err(error) => return ClusterOutcome::stopped(error, gate),
    };
    let mut outcome = ClusterOutcome::default();
    let ClusterPlan {
        cluster,
        set_labels,
        desired,
        inventory,
        finished,
    } = plan;
    let wanted: BTreeSet<ObjectRef> = desired.iter().map(|d| d.key.clone()).collect();
    let stale: BTreeSet<ObjectRef> = inventory
        .iter()
        .chain(live.owned.keys())
        .filter(|k| k.cluster == cluster && !wanted.contains(k) && !finished.contains(k))
        .cloned()
        .collect();

    let concurrency = settings.object_concurrency.max(1);
    let pending = desired.into_iter().filter(|d| !finished.contains(&d.key));
    for tier in tiers(pending, |d| d.key.kind.apply_order()).into_values() {
        run_tier(&mut outcome, tier, concurrency, recorder, gate, |d| {
            apply_one(client, &set_labels, &live, d, settings, gate)
        })
        .await;
    }
    for tier in tiers(stale, |key| key.kind.apply_order())
        .into_values()
        .rev()
    {
        run_tier(&mut outcome, tier, concurrency, recorder, gate, |key| {
            prune_one(client, &live, key, settings, gate)
        })
        .await;
    }
    outcome.interrupted = gate.interruption();
    outcome
}

/// Groups items by rank, keeping their order within a rank.
fn tiers<T>(
    items: impl IntoIterator<Item = T>,
    rank: impl Fn(&T) -> usize,
) -> BTreeMap<usize, Vec<T>> {
    let mut tiers: BTreeMap<usize, Vec<T>> = BTreeMap::new();
    for item in items {
        tiers.entry(rank(&item)).or_default().push(item);
    }
    tiers
}

/// Works on one tier, `concurrency` objects at a time; nothing new starts once the gate is
/// closed. Finished objects are recorded beside the work, in batches of whatever finished while
/// the previous batch was being written, so recording never holds up the requests.
async fn run_tier<T, F, R>(
    outcome: &mut ClusterOutcome,
    tier: Vec<T>,
    concurrency: usize,
    recorder: &R,
    gate: &Gate,
    mut work: impl FnMut(T) -> F,
) where
    F: Future<Output = Step>,
    R: Recorder,
{
    let (finished, mut to_record) = tokio::sync::mpsc::unbounded_channel::<ObjectEvent>();
    let steps = stream::iter(tier)
        .map(|item| {
            let step = work(item);
            async move {
                if gate.is_closed() {
                    return Step::Paused { sent: 0 };
                }
                step.await
            }
        })
        .buffer_unordered(concurrency);
    // Owns the sender: it goes when the work is done (join! drops a finished future), and
    // the recording loop below then ends.
    let produce = steps.for_each(move |step| {
        match step {
            Step::Paused { sent } => outcome.writes += sent,
            Step::Done { sent, event } => {
                outcome.writes += sent;
                tally(outcome, &event);
                // The receiver lives until every sender is gone.
                let _ = finished.send(event);
            }
        }
        std::future::ready(())
    });
    let record = async {
        while let Some(first) = to_record.recv().await {
            let mut batch = vec![first];
            while batch.len() < RECORD_BATCH {
                match to_record.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if let Err(e) = recorder.record(batch).await {
                tracing::error!(error = %e, "recording deploy progress failed");
            }
        }
    };
    tokio::join!(produce, record);
}

/// Counts one object's end in the cluster's outcome.
fn tally(outcome: &mut ClusterOutcome, event: &ObjectEvent) {
    *outcome.tally.counts.entry(event.state).or_default() += 1;
    if event.state.is_final() {
        outcome.finished.insert(event.key.clone());
    }
    if event.state.is_problem() && outcome.problems.len() < 5 {
        outcome.problems.push(format!(
            "{} {}/{}: {}",
            event.key.kind,
            event.key.namespace,
            event.key.name,
            event.message.as_deref().unwrap_or_default()
        ));
    }
}

/// Applies one object. What is on the cluster comes from the LIST, so an object needs no
/// request of its own unless it must change: one apply, plus one JSON patch when other
/// managers added fields to it.
async fn apply_one(
    client: &kube::Client,
    set_labels: &BTreeMap<String, String>,
    live: &LiveObjects,
    desired: DesiredObject,
    settings: &PushSettings,
    gate: &Gate,
) -> Step {
    let DesiredObject { key, object } = desired;
    let event = |state, message: Option<String>, hash: Option<String>| ObjectEvent {
        key: key.clone(),
        operation: Operation::Apply,
        state,
        message,
        hash,
    };
    let api = api_for(client, &key);
    // The one serialization of the typed object: what the PATCH sends.
    let mut object = match serde_json::to_value(&object) {
        Ok(value) => value,
        Err(e) => {
            return Step::Done {
                sent: 0,
                event: event(ObjectState::Failed, Some(e.to_string()), None),
            };
        }
    };
    let hash = desired_hash(&object);
    object["metadata"]["annotations"][ANNOTATION_HASH] = Value::String(hash.clone());

    if let Some((claim, holder)) = live.overlap(&key, &object) {
        // The same object under our name is judged by ownership below, not as an overlap.
        let same = format!("{}/{}/{}", key.kind, key.namespace, key.name);
        if holder != same {
            let message = format!(
                "{holder} (not managed by meshintent) already decides {claim}; left untouched, and this object not applied"
            );
            return Step::Done {
                sent: 0,
                event: event(ObjectState::Conflict, Some(message), None),
            };
        }
    }
    let mut sent = 0;
    let mut repaired = None;
    if let Some(current) = live.get(&key) {
        if let Some(owner) = foreign_owner(current, set_labels) {
            return Step::Done {
                sent: 0,
                event: event(ObjectState::Conflict, Some(owner), None),
            };
        }
        let foreign = foreign_fields(current, &object);
        let current = if foreign.is_empty() {
            Cow::Borrowed(current)
        } else {
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            let patch: Patch<()> = Patch::Json(foreign.removal());
            let (result, n) = with_retries(&settings.retry, gate, || {
                api.patch(key.name.as_str(), &params, &patch)
            })
            .await;
            sent += n;
            if let Err(e) = result {
                return failed_or_paused(e, sent, gate, event(ObjectState::Failed, None, None));
            }
            repaired = Some(foreign.describe());
            Cow::Owned(foreign.removed_from(current))
        };
        let recorded =
            current["metadata"]["annotations"][ANNOTATION_HASH].as_str() == Some(hash.as_str());
        if recorded && content_hash(&current, &object) == hash {
            let state = match repaired {
                Some(_) => ObjectState::Applied,
                None => ObjectState::Unchanged,
            };
            return Step::Done {
                sent: i64::from(sent),
                event: event(state, repaired, Some(hash)),
            };
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let started = Instant::now();
    let patch = Patch::Apply(&object);
    let (result, n) = with_retries(&settings.retry, gate, || {
        api.patch(key.name.as_str(), &params, &patch)
    })
    .await;
    sent += n;
    metrics::histogram!("meshintent_apply_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(_) => Step::Done {
            sent: i64::from(sent),
            event: event(ObjectState::Applied, repaired, Some(hash)),
        },
        Err(e) => failed_or_paused(e, sent, gate, event(ObjectState::Failed, None, None)),
    }
}

/// Deletes one object the set no longer wants. The LIST says whether it is still there and
/// still the set's; only a delete is sent.
async fn prune_one(
    client: &kube::Client,
    live: &LiveObjects,
    key: ObjectRef,
    settings: &PushSettings,
    gate: &Gate,
) -> Step {
    let event = |state, message: Option<String>| ObjectEvent {
        key: key.clone(),
        operation: Operation::Delete,
        state,
        message,
        hash: None,
    };
    if !live.owned.contains_key(&key) {
        let event = match live.others.get(&key) {
            // The inventory lists it, but it is no longer labelled as the set's.
            Some(_) => event(
                ObjectState::Conflict,
                Some("no longer labelled as this set's; left untouched".into()),
            ),
            None => event(ObjectState::Pruned, Some("already gone".into())),
        };
        return Step::Done { sent: 0, event };
    }
    let api = api_for(client, &key);
    let params = DeleteParams::default();
    let (result, sent) = with_retries(&settings.retry, gate, || {
        api.delete(key.name.as_str(), &params)
    })
    .await;
    let done = |event| Step::Done {
        sent: i64::from(sent),
        event,
    };
    match result {
        Ok(_) => done(event(ObjectState::Pruned, None)),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            done(event(ObjectState::Pruned, Some("already gone".into())))
        }
        Err(e) => failed_or_paused(e, sent, gate, event(ObjectState::Failed, None)),
    }
}

/// How one live object differs, with a note naming the managers when others added fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub drift: Drift,
    pub note: Option<String>,
}

impl Found {
    fn plain(drift: Drift) -> Found {
        Found { drift, note: None }
    }
}

/// Compares the desired objects with what the cluster has.
pub async fn verify(
    client: &kube::Client,
    cluster: &Name,
    set_labels: &BTreeMap<String, String>,
    desired: &[DesiredObject],
    retry: &RetryPolicy,
) -> Result<BTreeMap<ObjectRef, Found>, PushError> {
    let owned = list_owned(client, cluster, set_labels, retry).await?;
    let mut out = BTreeMap::new();
    for DesiredObject { key, object } in desired {
        let value = serde_json::to_value(object).unwrap_or(Value::Null);
        match owned.get(key) {
            None => {
                out.insert(key.clone(), Found::plain(Drift::Missing));
            }
            Some(live) if content_hash(live, &value) != desired_hash(&value) => {
                let foreign = foreign_fields(live, &value);
                let note = (!foreign.is_empty()).then(|| foreign.describe_found());
                let drift = Drift::Changed;
                out.insert(key.clone(), Found { drift, note });
            }
            Some(_) => {}
        }
    }
    let wanted: BTreeSet<&ObjectRef> = desired.iter().map(|d| &d.key).collect();
    for key in owned.keys().filter(|k| !wanted.contains(k)) {
        out.insert(key.clone(), Found::plain(Drift::Extra));
    }
    Ok(out)
}
