//! What the reconciler (`crate::reconciler`) found about a set, as `GET .../status` shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Service;
use crate::domain::app::TrafficIntentSetSpec;
use crate::domain::resource::ResourcePath;
use crate::domain::sync::SyncInterval;
use crate::error::{Error, Result};
use crate::store::{ReconcileRow, Tx};

/// Objects a check found different from the deployed revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftCounts {
    /// Live objects whose content differs.
    pub changed: i64,
    /// Desired objects not on the cluster.
    pub missing: i64,
    /// Objects labelled as the set's that it does not want.
    pub extra: i64,
}

/// The set's reconciliation settings (`spec.sync`, defaults filled in) and its last check.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    pub self_heal: bool,
    pub interval: SyncInterval,
    /// When the set was last checked against its clusters (null: not yet).
    pub last_checked_at: Option<DateTime<Utc>>,
    /// The deployment revision the last check compared with.
    pub checked_revision: Option<i64>,
    /// When the next periodic check is due (null: one interval after the latest deploy).
    pub next_check_at: Option<DateTime<Utc>>,
    /// Whether the last check found drift on a cluster it could read.
    pub drifted: bool,
    pub drift: DriftCounts,
    /// Per cluster: what was found, which clusters could not be read (and when they are
    /// tried again), and what was done about it.
    pub message: Option<String>,
    /// The latest repair deployment the reconciler queued (trigger `reconciler`).
    pub last_repair_revision: Option<i64>,
}

impl SyncStatus {
    pub fn new(spec: &TrafficIntentSetSpec, row: Option<&ReconcileRow>) -> SyncStatus {
        let sync = spec.sync();
        let row = row.cloned().unwrap_or_default();
        SyncStatus {
            self_heal: sync.self_heal,
            interval: sync.interval,
            last_checked_at: row.checked_at,
            checked_revision: row.checked_revision,
            next_check_at: row.next_check_at,
            drifted: row.drifted,
            drift: DriftCounts {
                changed: row.changed,
                missing: row.missing,
                extra: row.extra,
            },
            message: row.message,
            last_repair_revision: row.last_repair_revision,
        }
    }
}

/// The set's spec as stored.
pub(crate) fn set_spec(value: &serde_json::Value) -> Result<TrafficIntentSetSpec> {
    serde_json::from_value(value.clone()).map_err(|e| Error::internal("stored set spec", e))
}

impl Service {
    /// The set's reconciliation settings and last check.
    pub async fn sync_status(&self, path: &ResourcePath) -> Result<SyncStatus> {
        let mut tx = self.store.begin_read().await?;
        let rows = self.resolve_path(&mut tx, path).await?;
        sync_status_of(&mut tx, &rows[rows.len() - 1]).await
    }

    /// `GET .../status`: the latest deployment (verified when asked) with the set's `sync`.
    pub async fn set_status(
        &self,
        path: &ResourcePath,
        verify: bool,
    ) -> Result<super::DeploymentStatus> {
        let mut status = if verify {
            self.verify_deployment(path).await?
        } else {
            self.deployment_status(path, None).await?
        };
        let mut tx = self.store.begin_read().await?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let set = &rows[rows.len() - 1];
        status.sync = Some(sync_status_of(&mut tx, set).await?);
        status.collisions = self.collisions_of_set(&mut tx, set.id).await?;
        Ok(status)
    }

    /// Audits a reconcile asked for through the API, in the check's transaction.
    pub(crate) async fn audit_reconcile(
        &self,
        tx: &mut Tx,
        caller: &super::Caller,
        path: &ResourcePath,
    ) -> Result<()> {
        super::access::audit_change(tx, caller, "reconcile", path, (None, None), 200).await
    }
}

/// The reconciliation settings and last check of the stored set `set`.
async fn sync_status_of(tx: &mut Tx, set: &crate::store::ResourceRow) -> Result<SyncStatus> {
    let spec = set_spec(&set.spec.0)?;
    let row = tx.reconcile_state(set.id).await?;
    Ok(SyncStatus::new(&spec, row.as_ref()))
}

/// `spec.sync` of a stored set spec (defaults filled in); None when it does not parse.
pub fn reconcile_spec(value: &serde_json::Value) -> Option<crate::domain::sync::SyncSpec> {
    serde_json::from_value::<TrafficIntentSetSpec>(value.clone())
        .ok()
        .map(|s| s.sync())
}
