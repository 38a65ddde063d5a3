//! The reconciler's rows: which deployed sets are due for a check, the lease on a set's check
//! (claimed like a deployment, so replicas never check or heal one set at once), and the last
//! check's result.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreResult, Tx, on_conn};
use crate::domain::deployment::{Action, DeploymentState};
use crate::domain::names::Name;

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// How a cluster that keeps failing is backed off: its consecutive failures and when it is
/// tried again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackoff {
    pub failures: u32,
    pub retry_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub error: String,
}

/// A set whose latest deployment is a deploy that was applied, with its last check.
#[derive(Clone, Debug)]
pub struct ReconcileCandidate {
    pub set_id: Uuid,
    /// The set's stored spec (`spec.sync` is read from it).
    pub spec: serde_json::Value,
    pub revision: i64,
    pub finished_at: Option<DateTime<Utc>>,
    pub checked_at: Option<DateTime<Utc>>,
    pub checked_revision: Option<i64>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub pending_repair: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RawCandidate {
    set_id: Uuid,
    spec: Json<serde_json::Value>,
    revision: i64,
    finished_at: Option<DateTime<Utc>>,
    checked_at: Option<DateTime<Utc>>,
    checked_revision: Option<i64>,
    next_check_at: Option<DateTime<Utc>>,
    pending_repair: Option<i64>,
}

/// The last check of a set, as stored.
#[derive(Clone, Debug, Default)]
pub struct ReconcileRow {
    pub claimed_by: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub checked_revision: Option<i64>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub drifted: bool,
    pub changed: i64,
    pub missing: i64,
    pub extra: i64,
    pub message: Option<String>,
    pub last_repair_revision: Option<i64>,
    pub pending_repair: Option<i64>,
    pub pending_clusters: Vec<Name>,
    pub backoff: BTreeMap<Name, ClusterBackoff>,
}

#[derive(sqlx::FromRow)]
struct RawRow {
    claimed_by: Option<String>,
    checked_at: Option<DateTime<Utc>>,
    checked_revision: Option<i64>,
    next_check_at: Option<DateTime<Utc>>,
    drifted: bool,
    changed: i64,
    missing: i64,
    extra: i64,
    message: Option<String>,
    last_repair_revision: Option<i64>,
    pending_repair: Option<i64>,
    pending_clusters: Json<Vec<Name>>,
    backoff: Json<BTreeMap<Name, ClusterBackoff>>,
}

impl From<RawRow> for ReconcileRow {
    fn from(raw: RawRow) -> Self {
        ReconcileRow {
            claimed_by: raw.claimed_by,
            checked_at: raw.checked_at,
            checked_revision: raw.checked_revision,
            next_check_at: raw.next_check_at,
            drifted: raw.drifted,
            changed: raw.changed,
            missing: raw.missing,
            extra: raw.extra,
            message: raw.message,
            last_repair_revision: raw.last_repair_revision,
            pending_repair: raw.pending_repair,
            pending_clusters: raw.pending_clusters.0,
            backoff: raw.backoff.0,
        }
    }
}

/// What a check found, stored when it finishes.
#[derive(Clone, Debug)]
pub struct ReconcileResult {
    pub checked_revision: i64,
    pub next_check_at: DateTime<Utc>,
    pub drifted: bool,
    pub changed: i64,
    pub missing: i64,
    pub extra: i64,
    pub message: Option<String>,
    pub last_repair_revision: Option<i64>,
    pub pending_repair: Option<i64>,
    pub pending_clusters: Vec<Name>,
    pub backoff: BTreeMap<Name, ClusterBackoff>,
}

/// Sets whose latest deployment is an applied deploy and whose check nobody holds (`$1` now,
/// `$2` the deploy action, `$3` Applied). The latest revision is found through the unique
/// `(set_id, revision)` index.
const CANDIDATES: &str = "SELECT d.set_id, r.spec, d.revision, d.finished_at, s.checked_at, s.checked_revision, s.next_check_at, s.pending_repair \
     FROM deployments d \
     JOIN resources r ON r.id = d.set_id \
     LEFT JOIN reconcile_state s ON s.set_id = d.set_id \
     WHERE d.action = $2 AND d.state = $3 \
       AND d.revision = (SELECT MAX(e.revision) FROM deployments e WHERE e.set_id = d.set_id) \
       AND (s.claimed_until IS NULL OR s.claimed_until < $1) \
     ORDER BY d.set_id";
const ENSURE: &str =
    "INSERT INTO reconcile_state (set_id) VALUES ($1) ON CONFLICT (set_id) DO NOTHING";
/// Conditional: a claim of a check someone else holds changes nothing.
const CLAIM: &str = "UPDATE reconcile_state SET claimed_by = $2, claimed_until = $3 \
     WHERE set_id = $1 AND (claimed_until IS NULL OR claimed_until < $4)";
const RENEW: &str =
    "UPDATE reconcile_state SET claimed_until = $3 WHERE set_id = $1 AND claimed_by = $2";
const RELEASE: &str = "UPDATE reconcile_state SET claimed_by = NULL, claimed_until = NULL \
     WHERE set_id = $1 AND claimed_by = $2";
const FINISH: &str = "UPDATE reconcile_state SET claimed_by = NULL, claimed_until = NULL, \
       checked_at = $3, checked_revision = $4, next_check_at = $5, drifted = $6, changed = $7, missing = $8, extra = $9, \
       message = $10, last_repair_revision = $11, pending_repair = $12, pending_clusters = $13, backoff = $14 \
     WHERE set_id = $1 AND claimed_by = $2";
const STATE: &str = "SELECT claimed_by, checked_at, checked_revision, next_check_at, drifted, changed, missing, extra, message, \
       last_repair_revision, pending_repair, pending_clusters, backoff \
     FROM reconcile_state WHERE set_id = $1";

impl Tx {
    /// Deployed sets the reconciler may check now (whether each is due is decided from its
    /// `spec.sync` by the caller).
    pub async fn reconcile_candidates(&mut self) -> StoreResult<Vec<ReconcileCandidate>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, RawCandidate>(CANDIDATES)
                .bind(now())
                .bind(Action::Deploy.as_str())
                .bind(DeploymentState::Applied.as_str())
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| ReconcileCandidate {
                set_id: r.set_id,
                spec: r.spec.0,
                revision: r.revision,
                finished_at: r.finished_at,
                checked_at: r.checked_at,
                checked_revision: r.checked_revision,
                next_check_at: r.next_check_at,
                pending_repair: r.pending_repair,
            })
            .collect())
    }

    /// Claims the check of `set_id` for `worker` until `until`; false when another holds it.
    /// On PostgreSQL the state row is locked by the update, so of two replicas claiming at
    /// once the second sees the first's lease and claims nothing.
    pub async fn claim_reconcile(
        &mut self,
        set_id: Uuid,
        worker: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        on_conn!(self, |c| {
            sqlx::query(ENSURE).bind(set_id).execute(&mut *c).await?;
        });
        let n = on_conn!(self, |c| {
            sqlx::query(CLAIM)
                .bind(set_id)
                .bind(worker)
                .bind(until)
                .bind(now())
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Extends the lease of a check; false when it was lost.
    pub async fn renew_reconcile(
        &mut self,
        set_id: Uuid,
        worker: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(RENEW)
                .bind(set_id)
                .bind(worker)
                .bind(until)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Gives a check back unfinished (it failed before it could record anything).
    pub async fn release_reconcile(&mut self, set_id: Uuid, worker: &str) -> StoreResult<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(RELEASE)
                .bind(set_id)
                .bind(worker)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records a check's result and releases its claim; false when the claim was lost (then
    /// the caller must not commit what it did in the same transaction).
    pub async fn finish_reconcile(
        &mut self,
        set_id: Uuid,
        worker: &str,
        result: &ReconcileResult,
    ) -> StoreResult<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(FINISH)
                .bind(set_id)
                .bind(worker)
                .bind(now())
                .bind(result.checked_revision)
                .bind(result.next_check_at)
                .bind(result.drifted)
                .bind(result.changed)
                .bind(result.missing)
                .bind(result.extra)
                .bind(result.message.as_deref())
                .bind(result.last_repair_revision)
                .bind(result.pending_repair)
                .bind(Json(&result.pending_clusters))
                .bind(Json(&result.backoff))
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// The last check of a set, if it was ever checked.
    pub async fn reconcile_state(&mut self, set_id: Uuid) -> StoreResult<Option<ReconcileRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, RawRow>(STATE)
                .bind(set_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row.map(ReconcileRow::from))
    }
}
