//! The reconciler: checks deployed traffic intent sets against their clusters on each set's
//! `spec.sync.interval` (and on `POST .../reconcile`), reports drift in `GET .../status`
//! (`sync`), and with `spec.sync.selfHeal` repairs it by queueing a deploy of the same
//! revision (trigger `reconciler`, audited as `system:reconciler`).
//!
//! A check is claimed like a deployment: a lease on the set's `reconcile_state` row
//! (`claimed_by`, `claimed_until`, renewed while the check runs), taken with a conditional
//! update, so replicas never check or heal one set at once. A repair is queued in the same
//! transaction that records the check, under the set's lock and only while the claim holds and
//! the set's latest deployment is still the applied revision that was checked (so never while
//! a deployment of the set is queued or running). A verify only LISTs; a set without drift
//! causes no writes. A cluster that cannot be read is backed off (exponentially from the
//! set's interval, capped at `BACKOFF_CAP`, reset by a successful read).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::domain::deployment::{Action, DeploymentState, Drift};
use crate::domain::names::Name;
use crate::domain::resource::ResourcePath;
use crate::error::{Error, Result};
use crate::push::ClusterClients;
use crate::service::events::{Event, EventType};
use crate::service::{Caller, DriftCounts, Service, SyncStatus, set_labels};
use crate::store::{
    ClusterBackoff, Manifests, ReconcileCandidate, ReconcileResult, ReconcileRow, Store, StoreError,
};

/// How the reconciler of one replica runs.
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// No set is checked more often than this, whatever its `spec.sync.interval`
    /// (`--reconcile-min-interval`, default 10s).
    pub min_interval: Duration,
    /// How often the reconciler looks for sets that are due (`--reconcile-poll`, default 5s).
    pub poll_interval: Duration,
    /// How long a claim on a check lasts without renewal.
    pub lease: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(30),
        }
    }
}

/// The longest a failing cluster is left alone between two attempts (unless the set's
/// interval is longer).
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// How long a cluster that failed `failures` times in a row (at least 1) is left alone:
/// twice the interval after the first failure, doubling, capped.
pub fn backoff_delay(interval: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.clamp(1, 16));
    interval
        .saturating_mul(factor)
        .min(BACKOFF_CAP.max(interval))
}

/// When a candidate is due: at once after a repair it queued was applied (to confirm it);
/// else one interval after the previous check of the same revision, or after the deploy.
pub fn due_at(
    c: &ReconcileCandidate,
    interval: Duration,
    floor: Duration,
) -> Option<DateTime<Utc>> {
    let interval = chrono::Duration::from_std(interval.max(floor)).ok()?;
    let floor = chrono::Duration::from_std(floor).ok()?;
    let finished = c.finished_at?;
    if c.pending_repair == Some(c.revision) {
        return Some(finished);
    }
    match (c.checked_revision, c.checked_at, c.next_check_at) {
        (Some(r), Some(checked), Some(next)) if r == c.revision => Some(next.max(checked + floor)),
        _ => Some(finished + interval),
    }
}

/// Drift was found on `cluster`: `drift` objects differ from revision `revision` of the set
/// at `set`. The one place where drift is announced (log, metric; events go here too).
pub fn drift_found(
    set: &ResourcePath,
    revision: i64,
    cluster: &Name,
    drift: DriftCounts,
    self_heal: bool,
) -> Event {
    metrics::counter!("meshintent_drift_found_total", "cluster" => cluster.to_string())
        .increment(1);
    tracing::warn!(
        set = %set.url(), revision, %cluster, changed = drift.changed, missing = drift.missing,
        extra = drift.extra, self_heal, "drift found"
    );
    Event::new(
        set,
        EventType::DriftFound,
        serde_json::json!({
            "revision": revision,
            "cluster": cluster.as_str(),
            "changed": drift.changed,
            "missing": drift.missing,
            "extra": drift.extra,
            "selfHeal": self_heal,
        }),
    )
}

/// The repair deployment `repair_revision` (of revision `repair_of`) was applied: the drift
/// found on `cluster` is repaired. The one place where a repair is announced.
pub fn drift_repaired(
    set: &ResourcePath,
    repair_revision: i64,
    repair_of: i64,
    cluster: &Name,
) -> Event {
    metrics::counter!("meshintent_drift_repaired_total", "cluster" => cluster.to_string())
        .increment(1);
    tracing::info!(set = %set.url(), repair_revision, repair_of, %cluster, "drift repaired");
    Event::new(
        set,
        EventType::DriftRepaired,
        serde_json::json!({
            "revision": repair_revision,
            "repairOf": repair_of,
            "cluster": cluster.as_str(),
        }),
    )
}

/// Runs the reconciler of a replica until `stopped` turns true.
pub fn spawn(
    service: Service,
    worker: String,
    settings: ReconcileSettings,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(%worker, "reconciler started");
        loop {
            if *stopped.borrow() {
                break;
            }
            match claim_due(service.store(), &worker, &settings).await {
                Ok(Some(set_id)) => {
                    let claim = Claim {
                        set_id,
                        worker: worker.clone(),
                        lease: settings.lease,
                    };
                    if let Err(e) = check(&service, &claim, &settings, None).await {
                        tracing::warn!(set = %set_id, error = %e, "reconcile check failed");
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reconciler: claiming a check failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.poll_interval) => {}
                _ = stopped.changed() => {}
            }
        }
    })
}

fn lease_until(lease: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30))
}

/// Claims the check of the set that has been due longest, if any.
async fn claim_due(
    store: &Store,
    worker: &str,
    settings: &ReconcileSettings,
) -> std::result::Result<Option<Uuid>, StoreError> {
    // Read first: most polls find nothing due and need no write transaction (SQLite's write
    // lock is the deploy worker's too).
    let now = Utc::now();
    let mut due: Vec<(DateTime<Utc>, Uuid)> = {
        let mut tx = store.begin_read().await?;
        tx.reconcile_candidates()
            .await?
            .into_iter()
            .filter_map(|c| {
                let spec = crate::service::reconcile_spec(&c.spec)?;
                let at = due_at(&c, spec.interval.as_duration(), settings.min_interval)?;
                (at <= now).then_some((at, c.set_id))
            })
            .collect()
    };
    if due.is_empty() {
        return Ok(None);
    }
    due.sort();
    // The claim is conditional: a set another replica claimed meanwhile is skipped.
    let mut tx = store.begin_write().await?;
    for (_, set_id) in due {
        if tx
            .claim_reconcile(set_id, worker, lease_until(settings.lease))
            .await?
        {
            tx.commit().await?;
            return Ok(Some(set_id));
        }
    }
    tx.commit().await?;
    Ok(None)
}

/// A held claim on one set's check.
struct Claim {
    set_id: Uuid,
    worker: String,
    lease: Duration,
}

impl Claim {
    /// Renews the lease every third of it until dropped (aborted).
    fn heartbeat(&self, store: &Store) -> JoinHandle<()> {
        let (store, set_id, worker, lease) =
            (store.clone(), self.set_id, self.worker.clone(), self.lease);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let renewed = async {
                    let mut tx = store.begin_write().await?;
                    let ok = tx
                        .renew_reconcile(set_id, &worker, lease_until(lease))
                        .await?;
                    tx.commit().await?;
                    Ok::<bool, StoreError>(ok)
                };
                match renewed.await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(error = %e, "renewing a reconcile lease failed"),
                }
            }
        })
    }

    async fn release(&self, store: &Store) {
        let released = async {
            let mut tx = store.begin_write().await?;
            tx.release_reconcile(self.set_id, &self.worker).await?;
            tx.commit().await
        };
        if let Err(e) = released.await {
            tracing::warn!(error = %e, "releasing a reconcile claim failed; it ends with its lease");
        }
    }
}

/// How long `POST .../reconcile` waits for a check of the set that is running already.
const ON_DEMAND_WAIT: Duration = Duration::from_secs(10);

/// `POST .../reconcile`: checks the set now (every cluster, backed off or not), repairing
/// drift when the set heals itself.
pub async fn reconcile_now(
    service: &Service,
    path: &ResourcePath,
    caller: &Caller,
) -> Result<SyncStatus> {
    let settings = ReconcileSettings::default();
    let worker = format!("api-{}", Uuid::new_v4().simple());
    // A check that is running (periodic, or asked for by someone else) is waited for.
    let give_up = Instant::now() + ON_DEMAND_WAIT;
    let set_id = loop {
        let mut tx = service.store().begin_write().await?;
        let rows = service.resolve_path(&mut tx, path).await?;
        let set_id = rows[rows.len() - 1].id;
        let latest = tx
            .latest_deployment(set_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{path} has not been deployed")))?;
        checkable(&latest.head(), path)?;
        if tx
            .claim_reconcile(set_id, &worker, lease_until(settings.lease))
            .await?
        {
            tx.commit().await?;
            break set_id;
        }
        drop(tx);
        if Instant::now() >= give_up {
            return Err(Error::Conflict(format!(
                "{path} is being checked right now (by this or another replica); try again in a moment"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let claim = Claim {
        set_id,
        worker,
        lease: settings.lease,
    };
    check(service, &claim, &settings, Some(caller)).await
}

/// Only a set whose latest deployment is an applied deploy has a revision to compare with.
fn checkable(latest: &crate::store::DeploymentHead, path: &ResourcePath) -> Result<()> {
    if latest.action == Action::Deploy && latest.state == DeploymentState::Applied {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "{path} has nothing to reconcile: its latest deployment (revision {}) is a {} that is {}; only an applied deploy is checked",
        latest.revision, latest.action, latest.state
    )))
}

/// What reading one cluster gave.
enum ClusterCheck {
    Read(DriftCounts),
    Failed(String),
    /// Backed off: not read this time.
    Skipped(ClusterBackoff),
}

/// One check of a claimed set; `caller` is set for a check asked for through the API (then
/// backed-off clusters are read too, and the check is audited).
async fn check(
    service: &Service,
    claim: &Claim,
    settings: &ReconcileSettings,
    caller: Option<&Caller>,
) -> Result<SyncStatus> {
    let heartbeat = claim.heartbeat(service.store());
    let result = check_claimed(service, claim, settings, caller).await;
    heartbeat.abort();
    if result.is_err() {
        claim.release(service.store()).await;
    }
    result
}

async fn check_claimed(
    service: &Service,
    claim: &Claim,
    settings: &ReconcileSettings,
    caller: Option<&Caller>,
) -> Result<SyncStatus> {
    let started = Instant::now();
    let store = service.store();
    let (latest, clusters, state, spec) = {
        let mut tx = store.begin_read().await?;
        let latest = tx
            .latest_deployment(claim.set_id)
            .await?
            .ok_or_else(|| Error::NotFound("the set has not been deployed".into()))?;
        let clusters = tx.deployment_clusters(latest.id).await?;
        let state = tx.reconcile_state(claim.set_id).await?.unwrap_or_default();
        let set = tx
            .by_id(claim.set_id)
            .await?
            .ok_or_else(|| Error::NotFound("the set was deleted".into()))?;
        let spec = crate::service::reconcile_spec(&set.spec.0)
            .ok_or_else(|| Error::internal("stored set spec", "spec.sync does not parse"))?;
        (latest, clusters, state, spec)
    };
    let address = service.set_address(claim.set_id).await?;
    let path = address.path();
    checkable(&latest.head(), &path)?;
    let on_demand = caller.is_some();
    let now = Utc::now();
    let mut messages = Vec::new();
    // drift-found / drift-repaired, published with the check's record.
    let mut events = Vec::new();

    // A repair this reconciler queued has been applied: its drift is repaired.
    let mut last_repair_revision = state.last_repair_revision;
    if let Some(repair) = state.pending_repair
        && repair == latest.revision
    {
        let source = latest.repair_of.unwrap_or(repair);
        for cluster in &state.pending_clusters {
            events.push(drift_repaired(&path, repair, source, cluster));
        }
        last_repair_revision = Some(repair);
        messages.push(format!("repair revision {repair} applied"));
    }

    let labels = set_labels(&address);
    let mut results: BTreeMap<Name, ClusterCheck> = BTreeMap::new();
    for row in &clusters {
        let name = &row.cluster;
        if let Some(backoff) = state.backoff.get(name)
            && backoff.retry_at > now
            && !on_demand
        {
            results.insert(name.clone(), ClusterCheck::Skipped(backoff.clone()));
            continue;
        }
        let wanted = latest
            .manifests
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let verified = match service.client(name).await {
            Ok(client) => {
                crate::push::cluster::verify(
                    &client,
                    name,
                    &labels,
                    wanted,
                    &service.push_settings().retry,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let outcome = match verified {
            Ok(found) => {
                let mut counts = DriftCounts::default();
                for f in found.values() {
                    match f.drift {
                        Drift::Changed => counts.changed += 1,
                        Drift::Missing => counts.missing += 1,
                        Drift::Extra => counts.extra += 1,
                    }
                }
                ClusterCheck::Read(counts)
            }
            Err(e) => ClusterCheck::Failed(e.to_string()),
        };
        results.insert(name.clone(), outcome);
    }

    // Totals, messages, backoff.
    let interval = spec.interval.as_duration();
    let mut total = DriftCounts::default();
    let mut drifted_clusters = Vec::new();
    let mut backoff = state.backoff.clone();
    for (name, outcome) in &results {
        match outcome {
            ClusterCheck::Read(counts) => {
                backoff.remove(name);
                total.changed += counts.changed;
                total.missing += counts.missing;
                total.extra += counts.extra;
                if *counts != DriftCounts::default() {
                    events.push(drift_found(
                        &path,
                        latest.revision,
                        name,
                        *counts,
                        spec.self_heal,
                    ));
                    drifted_clusters.push(name.clone());
                    messages.push(format!(
                        "{name}: {} changed, {} missing, {} extra",
                        counts.changed, counts.missing, counts.extra
                    ));
                }
            }
            ClusterCheck::Failed(error) => {
                let failures = state.backoff.get(name).map_or(0, |b| b.failures) + 1;
                let delay = backoff_delay(interval.max(settings.min_interval), failures);
                let retry_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::warn!(set = %path.url(), cluster = %name, failures, error = %error, "reconcile: cannot read the cluster; backing off");
                messages.push(format!(
                    "{name}: cannot be read ({error}); {failures} failure(s) in a row, next try at {}",
                    retry_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
                backoff.insert(
                    name.clone(),
                    ClusterBackoff {
                        failures,
                        retry_at,
                        error: error.clone(),
                    },
                );
            }
            ClusterCheck::Skipped(b) => messages.push(format!(
                "{name}: not read, backing off after {} failure(s) until {} ({})",
                b.failures,
                b.retry_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                b.error
            )),
        }
    }
    let drifted = !drifted_clusters.is_empty();
    if drifted && !spec.self_heal {
        messages.push("selfHeal is off: drift is reported, not repaired (deploy to repair)".into());
    }

    // Record, and queue a repair, in one transaction under the set's lock.
    let mut tx = store.begin_write().await?;
    let mut pending_repair = None;
    let mut pending_clusters = Vec::new();
    if drifted && spec.self_heal {
        // The lock a deploy takes: no other deployment of the set is queued meanwhile.
        tx.lock(claim.set_id).await?;
        let current = tx.latest_deployment(claim.set_id).await?;
        match current {
            Some(c) if c.revision == latest.revision && c.state == DeploymentState::Applied => {
                let manifests: Manifests = latest
                    .manifests
                    .iter()
                    .map(|(cluster, objects)| {
                        (
                            cluster.clone(),
                            objects.iter().map(|o| o.object.clone()).collect(),
                        )
                    })
                    .collect();
                let reconciler = Caller::system("reconciler");
                let queued = service
                    .queue_in(
                        &mut tx,
                        &path,
                        claim.set_id,
                        Action::Deploy,
                        manifests,
                        &reconciler,
                        Some(latest.revision),
                    )
                    .await?;
                messages.push(format!(
                    "repair queued: revision {} redeploys revision {}",
                    queued.revision, latest.revision
                ));
                pending_repair = Some(queued.revision);
                pending_clusters = drifted_clusters.clone();
                last_repair_revision = Some(queued.revision);
            }
            _ => messages
                .push("not repaired: another deployment of the set was queued meanwhile".into()),
        }
    }
    let next = if on_demand {
        interval
    } else {
        interval.max(settings.min_interval)
    };
    let result = ReconcileResult {
        checked_revision: latest.revision,
        next_check_at: now + chrono::Duration::from_std(next).unwrap_or_default(),
        drifted,
        changed: total.changed,
        missing: total.missing,
        extra: total.extra,
        message: (!messages.is_empty()).then(|| messages.join("; ")),
        last_repair_revision,
        pending_repair,
        pending_clusters,
        backoff,
    };
    if let Some(caller) = caller {
        service.audit_reconcile(&mut tx, caller, &path).await?;
    }
    if !tx
        .finish_reconcile(claim.set_id, &claim.worker, &result)
        .await?
    {
        // Another replica took the check over (the lease ran out): nothing of this one counts.
        drop(tx);
        return Err(Error::Conflict(
            "the check's claim was lost to another replica".into(),
        ));
    }
    // Events are the transaction's last write (they hold the project's event lock to commit).
    let published = !events.is_empty();
    service.publish(&mut tx, events).await?;
    tx.commit().await?;
    if published || pending_repair.is_some() {
        service.events_committed();
    }
    if pending_repair.is_some() {
        service.wake_worker();
    }
    metrics::histogram!("meshintent_reconcile_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    let row = ReconcileRow {
        checked_at: Some(now),
        checked_revision: Some(result.checked_revision),
        next_check_at: Some(result.next_check_at),
        drifted,
        changed: total.changed,
        missing: total.missing,
        extra: total.extra,
        message: result.message.clone(),
        last_repair_revision,
        ..Default::default()
    };
    let set_spec = crate::domain::app::TrafficIntentSetSpec { sync: Some(spec) };
    Ok(SyncStatus::new(&set_spec, Some(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn candidate() -> ReconcileCandidate {
        ReconcileCandidate {
            set_id: Uuid::nil(),
            spec: serde_json::json!({}),
            revision: 3,
            finished_at: Some(at(0)),
            checked_at: None,
            checked_revision: None,
            next_check_at: None,
            pending_repair: None,
        }
    }

    #[test]
    fn a_new_deployment_is_due_one_interval_after_it_finished() {
        let s = Duration::from_secs;
        assert_eq!(due_at(&candidate(), s(60), s(10)), Some(at(60)));
        // Below the server's floor: the floor.
        assert_eq!(due_at(&candidate(), s(1), s(10)), Some(at(10)));
        // Checked before, but an older revision: the new deploy counts.
        let c = ReconcileCandidate {
            checked_revision: Some(2),
            checked_at: Some(at(-5)),
            next_check_at: Some(at(-1)),
            ..candidate()
        };
        assert_eq!(due_at(&c, s(60), s(10)), Some(at(60)));
    }

    #[test]
    fn a_checked_revision_is_due_at_its_next_check_and_never_before_the_floor() {
        let s = Duration::from_secs;
        let c = ReconcileCandidate {
            checked_revision: Some(3),
            checked_at: Some(at(100)),
            next_check_at: Some(at(130)),
            ..candidate()
        };
        assert_eq!(due_at(&c, s(30), s(10)), Some(at(130)));
        let soon = ReconcileCandidate {
            next_check_at: Some(at(101)),
            ..c.clone()
        };
        assert_eq!(due_at(&soon, s(1), s(10)), Some(at(110)));
        // A repair this reconciler queued was applied: due at once.
        let repaired = ReconcileCandidate {
            pending_repair: Some(3),
            ..c
        };
        assert_eq!(due_at(&repaired, s(30), s(10)), Some(at(0)));
    }

    #[test]
    fn backoff_doubles_from_twice_the_interval_and_is_capped() {
        let s = Duration::from_secs;
        assert_eq!(backoff_delay(s(10), 1), s(20));
        assert_eq!(backoff_delay(s(10), 2), s(40));
        assert_eq!(backoff_delay(s(10), 3), s(80));
        assert_eq!(backoff_delay(s(10), 30), BACKOFF_CAP);
        // An interval longer than the cap is never shortened.
        assert_eq!(backoff_delay(s(7200), 1), s(7200));
    }
}
