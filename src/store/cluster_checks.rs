//! The last check of each cluster (`cluster_checks`, migration 0009).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreResult, Tx, on_conn};
use crate::domain::cluster_check::{ClusterCondition, StoredCheck};

#[derive(sqlx::FromRow)]
struct CheckRow {
    cluster_id: Uuid,
    checked_at: DateTime<Utc>,
    kubernetes_version: Option<String>,
    istio_version: Option<String>,
    conditions: Json<Vec<ClusterCondition>>,
}

impl From<CheckRow> for (Uuid, StoredCheck) {
    fn from(row: CheckRow) -> Self {
        (
            row.cluster_id,
            StoredCheck {
                checked_at: row.checked_at,
                kubernetes_version: row.kubernetes_version,
                istio_version: row.istio_version,
                conditions: row.conditions.0,
            },
        )
    }
}

const SELECT: &str = "SELECT cluster_id, checked_at, kubernetes_version, istio_version, conditions FROM cluster_checks";

const UPSERT: &str = "INSERT INTO cluster_checks (cluster_id, checked_at, kubernetes_version, istio_version, conditions) \
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cluster_id) DO UPDATE SET checked_at = excluded.checked_at, \
kubernetes_version = excluded.kubernetes_version, istio_version = excluded.istio_version, conditions = excluded.conditions";

impl Tx {
    /// Every cluster's last check, by cluster id (clusters are few: one statement for a list).
    pub async fn cluster_checks(&mut self) -> StoreResult<BTreeMap<Uuid, StoredCheck>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, CheckRow>(SELECT)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One cluster's last check.
    pub async fn cluster_check(&mut self, cluster: Uuid) -> StoreResult<Option<StoredCheck>> {
        let sql = format!("{SELECT} WHERE cluster_id = $1");
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, CheckRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(cluster)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row.map(|r| <(Uuid, StoredCheck)>::from(r).1))
    }

    /// Stores a cluster's check (replacing the one before).
    pub async fn put_cluster_check(
        &mut self,
        cluster: Uuid,
        check: &StoredCheck,
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(UPSERT)
                .bind(cluster)
                .bind(check.checked_at)
                .bind(check.kubernetes_version.as_deref())
                .bind(check.istio_version.as_deref())
                .bind(Json(&check.conditions))
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }
}
