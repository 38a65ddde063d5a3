//! Applying a set's objects to one cluster, pruning what it no longer wants, and reading back
//! what is there. Kubernetes side effects only; progress is handed to a `Recorder`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;

use super::error::PushError;
use super::hash::{ANNOTATION_HASH, content_hash, desired_hash};
use super::kinds::api_resource;
use super::retry::{RetryPolicy, describe, with_retries};
use crate::domain::deployment::{DesiredObject, IstioKind, ObjectRef, ObjectTally};
pub use crate::domain::deployment::{Drift, ObjectState, Operation};
use crate::domain::names::Name;
use crate::generate::naming::{MANAGED_BY, MANAGED_BY_VALUE};

/// The field manager of every write (server-side apply).
pub const FIELD_MANAGER: &str = "meshintent";

/// Limits for talking to one cluster.
#[derive(Clone, Debug)]
pub struct PushSettings {
    pub retry: RetryPolicy,
    /// Requests in flight per cluster (within one apply tier).
    pub object_concurrency: usize,
    pub connect_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            object_concurrency: 8,
            connect_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
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

/// Where progress goes (the deployment's rows and the inventory).
pub trait Recorder: Sync {
    type Error: std::error::Error;

    fn record(&self, event: ObjectEvent) -> impl Future<Output = Result<(), Self::Error>> + Send;
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
    /// The cluster could not be worked with at all (unreachable, Istio not served).
    pub unreachable: Option<PushError>,
    pub writes: i64,
    /// How many objects ended in each state.
    pub tally: ObjectTally,
    /// The first failures, for the cluster's message.
    pub problems: Vec<String>,
}

impl ClusterOutcome {
    pub fn count(&self, state: ObjectState) -> usize {
        self.tally.count(state)
    }

    fn unreachable(error: PushError) -> ClusterOutcome {
        ClusterOutcome {
            unreachable: Some(error),
            tally: ObjectTally {
                unreachable: true,
                ..ObjectTally::default()
            },
            ..ClusterOutcome::default()
        }
    }
}

fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn api_for(client: &kube::Client, key: &ObjectRef) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        key.namespace.as_str(),
        &api_resource(key.kind),
    )
}

fn to_value(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Checks (by API discovery) that the cluster serves the Istio kinds meshintent writes, so that
/// a cluster without Istio fails with one clear message instead of a 404 per object.
pub async fn check_istio_served(
    client: &kube::Client,
    retry: &RetryPolicy,
) -> Result<(), PushError> {
    for group in [crate::istio::GROUP_NETWORKING, crate::istio::GROUP_SECURITY] {
        let kinds: Vec<IstioKind> = IstioKind::ALL
            .into_iter()
            .filter(|k| k.group() == group)
            .collect();
        let api_version = kinds[0].api_version();
        let (served, _) =
            with_retries(retry, || client.list_api_group_resources(api_version)).await;
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

/// Every object of the set on the cluster, found by its labels (all namespaces).
pub async fn list_owned(
    client: &kube::Client,
    cluster: &Name,
    set_labels: &BTreeMap<String, String>,
    retry: &RetryPolicy,
) -> Result<BTreeMap<ObjectRef, Value>, PushError> {
    let params = ListParams::default().labels(&selector(set_labels));
    let mut out = BTreeMap::new();
    for kind in IstioKind::ALL {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(kind));
        let (list, _) = with_retries(retry, || api.list(&params)).await;
        let list = list
            .map_err(|e| PushError::from_kube(e).during(format!("cannot list {kind} objects")))?;
        for item in &list.items {
            let mut value = to_value(item);
            value["apiVersion"] = Value::String(kind.api_version().to_owned());
            value["kind"] = Value::String(kind.name().to_owned());
            let namespace = item.metadata.namespace.as_deref().unwrap_or_default();
            let name = item.metadata.name.as_deref().unwrap_or_default();
            // The API server validates names, so a name that does not parse is a broken answer.
            // Skipped rather than failing the cluster: this list only supplies prune candidates
            // and the live copies the ownership check reads (no desired object can have such a
            // name), so a skipped object is one meshintent neither deletes nor reports as extra,
            // left alone like any object it does not own; an error would instead block every
            // deploy and terminate of the set on this cluster.
            let key = match ObjectRef::parse(cluster.clone(), kind, namespace, name) {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(%cluster, error = %e, "skipping a listed object that has no valid name");
                    continue;
                }
            };
            out.insert(key, value);
        }
    }
    Ok(out)
}

/// Who owns an object found on the cluster: None when it is this set's.
fn foreign_owner(live: &Value, set_labels: &BTreeMap<String, String>) -> Option<String> {
    let labels = &live["metadata"]["labels"];
    if labels[MANAGED_BY].as_str() != Some(MANAGED_BY_VALUE) {
        return Some(format!(
            "exists and is not managed by meshintent (no {MANAGED_BY}: {MANAGED_BY_VALUE} label); left untouched"
        ));
    }
    let mismatch = set_labels
        .iter()
        .any(|(k, v)| labels[k].as_str() != Some(v.as_str()));
    mismatch.then(|| {
        let owner: Vec<&str> = [
            crate::generate::naming::LABEL_PROJECT,
            crate::generate::naming::LABEL_COMPOSITE_APP,
            crate::generate::naming::LABEL_VERSION,
            crate::generate::naming::LABEL_SET,
        ]
        .iter()
        .map(|k| labels[*k].as_str().unwrap_or("?"))
        .collect();
        format!(
            "belongs to traffic intent set {}; left untouched",
            owner.join("/")
        )
    })
}

/// What one object came to, for the cluster's outcome.
struct Tally {
    writes: i64,
    state: ObjectState,
    /// A failure or conflict, for the cluster's message.
    problem: Option<String>,
}

/// Applies the plan: every desired object in apply order (in parallel within a kind), then
/// prunes what the set has there but no longer wants, in reverse order.
pub async fn run_cluster<R: Recorder>(
    client: &kube::Client,
    plan: ClusterPlan,
    settings: &PushSettings,
    recorder: &R,
) -> ClusterOutcome {
    if let Err(error) = check_istio_served(client, &settings.retry).await {
        return ClusterOutcome::unreachable(error);
    }
    let owned = match list_owned(client, &plan.cluster, &plan.set_labels, &settings.retry).await {
        Ok(owned) => owned,
        Err(error) => return ClusterOutcome::unreachable(error),
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
        .chain(owned.keys())
        .filter(|k| k.cluster == cluster && !wanted.contains(k) && !finished.contains(k))
        .cloned()
        .collect();

    let concurrency = settings.object_concurrency.max(1);
    let pending = desired.into_iter().filter(|d| !finished.contains(&d.key));
    for tier in tiers(pending, |d| d.key.kind.apply_order()).into_values() {
        run_tier(&mut outcome, tier, concurrency, recorder, |d| {
            apply_one(client, &set_labels, &owned, d, settings)
        })
        .await;
    }
    for tier in tiers(stale, |key| key.kind.apply_order())
        .into_values()
        .rev()
    {
        run_tier(&mut outcome, tier, concurrency, recorder, |key| {
            prune_one(client, &set_labels, &owned, key, settings)
        })
        .await;
    }
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

/// Works on one tier, `concurrency` objects at a time, recording each object as it ends.
async fn run_tier<T, F, R>(
    outcome: &mut ClusterOutcome,
    tier: Vec<T>,
    concurrency: usize,
    recorder: &R,
    mut work: impl FnMut(T) -> F,
) where
    F: Future<Output = (i64, ObjectEvent)>,
    R: Recorder,
{
    let tallies: Vec<Tally> = stream::iter(tier)
        .map(|item| run_one(recorder, work(item)))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for tally in tallies {
        outcome.writes += tally.writes;
        *outcome.tally.counts.entry(tally.state).or_default() += 1;
        if let Some(problem) = tally.problem
            && outcome.problems.len() < 5
        {
            outcome.problems.push(problem);
        }
    }
}

/// Works on one object and records what happened.
async fn run_one<R: Recorder>(
    recorder: &R,
    work: impl Future<Output = (i64, ObjectEvent)>,
) -> Tally {
    let (writes, event) = work.await;
    let problem = event.state.is_problem().then(|| {
        format!(
            "{} {}/{}: {}",
            event.key.kind,
            event.key.namespace,
            event.key.name,
            event.message.clone().unwrap_or_default()
        )
    });
    let state = event.state;
    if let Err(e) = recorder.record(event).await {
        tracing::error!(error = %e, "recording deploy progress failed");
    }
    Tally {
        writes,
        state,
        problem,
    }
}

/// Applies one object: the write requests sent, and what happened.
async fn apply_one(
    client: &kube::Client,
    set_labels: &BTreeMap<String, String>,
    owned: &BTreeMap<ObjectRef, Value>,
    desired: DesiredObject,
    settings: &PushSettings,
) -> (i64, ObjectEvent) {
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
        Err(e) => return (0, event(ObjectState::Failed, Some(e.to_string()), None)),
    };
    let hash = desired_hash(&object);
    object["metadata"]["annotations"][ANNOTATION_HASH] = Value::String(hash.clone());

    let live = match owned.get(&key) {
        Some(live) => Some(live.clone()),
        None => {
            let (found, _) = with_retries(&settings.retry, || api.get_opt(key.name.as_str())).await;
            match found {
                Ok(found) => found.map(|o| to_value(&o)),
                Err(e) => return (0, event(ObjectState::Failed, Some(describe(&e)), None)),
            }
        }
    };
    if let Some(live) = &live {
        if let Some(owner) = foreign_owner(live, set_labels) {
            return (0, event(ObjectState::Conflict, Some(owner), None));
        }
        let recorded =
            live["metadata"]["annotations"][ANNOTATION_HASH].as_str() == Some(hash.as_str());
        if recorded && content_hash(live, &object) == hash {
            return (0, event(ObjectState::Unchanged, None, Some(hash)));
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let started = Instant::now();
    let patch = Patch::Apply(&object);
    let (result, attempts) = with_retries(&settings.retry, || {
        api.patch(key.name.as_str(), &params, &patch)
    })
    .await;
    metrics::histogram!("meshintent_apply_seconds").record(started.elapsed().as_secs_f64());
    let event = match result {
        Ok(_) => event(ObjectState::Applied, None, Some(hash)),
        Err(e) => event(ObjectState::Failed, Some(describe(&e)), None),
    };
    (i64::from(attempts), event)
}

/// Deletes one object the set no longer wants: the write requests sent, and what happened.
async fn prune_one(
    client: &kube::Client,
    set_labels: &BTreeMap<String, String>,
    owned: &BTreeMap<ObjectRef, Value>,
    key: ObjectRef,
    settings: &PushSettings,
) -> (i64, ObjectEvent) {
    let event = |state, message: Option<String>| ObjectEvent {
        key: key.clone(),
        operation: Operation::Delete,
        state,
        message,
        hash: None,
    };
    let api = api_for(client, &key);
    // Objects the inventory lists but the label selector did not find: confirm before deleting.
    if !owned.contains_key(&key) {
        let (found, _) = with_retries(&settings.retry, || api.get_opt(key.name.as_str())).await;
        match found {
            Ok(None) => return (0, event(ObjectState::Pruned, Some("already gone".into()))),
            Ok(Some(live)) => {
                if let Some(owner) = foreign_owner(&to_value(&live), set_labels) {
                    return (0, event(ObjectState::Conflict, Some(owner)));
                }
            }
            Err(e) => return (0, event(ObjectState::Failed, Some(describe(&e)))),
        }
    }
    let params = DeleteParams::default();
    let (result, attempts) =
        with_retries(&settings.retry, || api.delete(key.name.as_str(), &params)).await;
    let event = match result {
        Ok(_) => event(ObjectState::Pruned, None),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            event(ObjectState::Pruned, Some("already gone".into()))
        }
        Err(e) => event(ObjectState::Failed, Some(describe(&e))),
    };
    (i64::from(attempts), event)
}

/// Compares the desired objects with what the cluster has.
pub async fn verify(
    client: &kube::Client,
    cluster: &Name,
    set_labels: &BTreeMap<String, String>,
    desired: &[DesiredObject],
    retry: &RetryPolicy,
) -> Result<BTreeMap<ObjectRef, Drift>, PushError> {
    let owned = list_owned(client, cluster, set_labels, retry).await?;
    let mut out = BTreeMap::new();
    for DesiredObject { key, object } in desired {
        let value = serde_json::to_value(object).unwrap_or(Value::Null);
        match owned.get(key) {
            None => {
                out.insert(key.clone(), Drift::Missing);
            }
            Some(live) if content_hash(live, &value) != desired_hash(&value) => {
                out.insert(key.clone(), Drift::Changed);
            }
            Some(_) => {}
        }
    }
    let wanted: BTreeSet<&ObjectRef> = desired.iter().map(|d| &d.key).collect();
    for key in owned.keys().filter(|k| !wanted.contains(k)) {
        out.insert(key.clone(), Drift::Extra);
    }
    Ok(out)
}
