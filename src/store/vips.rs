//! Stored VIP allocations.

use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use super::{StoreResult, Tx, on_conn};

/// One stored allocation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct VipRow {
    pub cluster_id: Uuid,
    pub host: String,
    pub address: String,
    pub intent_id: Uuid,
}

const SELECT_FOR_CLUSTER: &str = "SELECT cluster_id, host, address, intent_id FROM vip_allocations WHERE cluster_id = $1 ORDER BY host";
const INSERT_IF_FREE: &str = "INSERT INTO vip_allocations (cluster_id, host, address, intent_id, created_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
const DELETE_ONE: &str = "DELETE FROM vip_allocations WHERE cluster_id = $1 AND host = $2";

impl Tx {
    /// Every allocation on a cluster (from any set), by host.
    pub async fn vips_on_cluster(&mut self, cluster: Uuid) -> StoreResult<Vec<VipRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, VipRow>(SELECT_FOR_CLUSTER)
                .bind(cluster)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Stores an allocation unless the host or the address is already taken on the cluster
    /// (then it returns false, and the caller reads again).
    pub async fn insert_vip(&mut self, row: &VipRow) -> StoreResult<bool> {
        let now = Utc::now().trunc_subsecs(6);
        let affected = on_conn!(self, |c| {
            sqlx::query(INSERT_IF_FREE)
                .bind(row.cluster_id)
                .bind(&row.host)
                .bind(&row.address)
                .bind(row.intent_id)
                .bind(now)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(affected == 1)
    }

    pub async fn delete_vip(&mut self, cluster: Uuid, host: &str) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(DELETE_ONE)
                .bind(cluster)
                .bind(host)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }
}
