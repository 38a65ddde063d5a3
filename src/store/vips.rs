//! Stored VIP allocations.

use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use super::resources::placeholders;
use super::{StoreResult, Tx, on_conn};

/// One stored allocation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct VipRow {
    pub cluster_id: Uuid,
    pub host: String,
    pub address: String,
    pub intent_id: Uuid,
}

const SELECT: &str = "SELECT cluster_id, host, address, intent_id FROM vip_allocations";
const SELECT_FOR_CLUSTER: &str = "SELECT cluster_id, host, address, intent_id FROM vip_allocations WHERE cluster_id = $1 ORDER BY host";

/// Where to look on one cluster for allocations an intent's plan can touch.
#[derive(Clone, Debug)]
pub struct VipProbe {
    pub cluster: Uuid,
    pub hosts: Vec<String>,
    pub addresses: Vec<String>,
}

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

    /// The allocations an intent's plan can touch, in one statement: the intent's own (on any
    /// cluster), and on each probed cluster those of its hosts and at its addresses.
    pub async fn vips_near(
        &mut self,
        intent: Uuid,
        probes: &[VipProbe],
    ) -> StoreResult<Vec<VipRow>> {
        let mut sql = format!("{SELECT} WHERE intent_id = $1");
        let mut next = 2;
        for probe in probes {
            let hosts = placeholders(next + 1, probe.hosts.len());
            let addresses = placeholders(next + 1 + probe.hosts.len(), probe.addresses.len());
            sql.push_str(&format!(
                " OR (cluster_id = ${next} AND (host IN ({hosts}) OR address IN ({addresses})))"
            ));
            next += 1 + probe.hosts.len() + probe.addresses.len();
        }
        sql.push_str(" ORDER BY cluster_id, host");
        let rows = on_conn!(self, |c| {
            let mut q = sqlx::query_as::<_, VipRow>(sqlx::AssertSqlSafe(sql.clone())).bind(intent);
            for probe in probes {
                q = q.bind(probe.cluster);
                for value in probe.hosts.iter().chain(&probe.addresses) {
                    q = q.bind(value.as_str());
                }
            }
            q.fetch_all(&mut *c).await?
        });
        Ok(rows)
    }

    /// Stores allocations, in one statement, except those whose host or address is already
    /// taken on their cluster. Returns how many were stored (fewer: the caller reads again).
    pub async fn insert_vips(&mut self, rows: &[VipRow]) -> StoreResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let now = Utc::now().trunc_subsecs(6);
        let sql = format!(
            "INSERT INTO vip_allocations (created_at, cluster_id, host, address, intent_id) VALUES {} ON CONFLICT DO NOTHING",
            super::placeholder_tuples("$1, ", 2, 4, rows.len())
        );
        let affected = on_conn!(self, |c| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(now);
            for row in rows {
                q = q
                    .bind(row.cluster_id)
                    .bind(row.host.as_str())
                    .bind(row.address.as_str())
                    .bind(row.intent_id);
            }
            q.execute(&mut *c).await?.rows_affected()
        });
        Ok(affected)
    }

    /// Frees every allocation an intent holds.
    pub async fn delete_vips_of(&mut self, intent: Uuid) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query("DELETE FROM vip_allocations WHERE intent_id = $1")
                .bind(intent)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Frees allocations by (cluster, host), in one statement.
    pub async fn delete_vips(&mut self, hosts: &[(Uuid, String)]) -> StoreResult<()> {
        if hosts.is_empty() {
            return Ok(());
        }
        let conditions: Vec<String> = (0..hosts.len())
            .map(|i| format!("(cluster_id = ${} AND host = ${})", 1 + i * 2, 2 + i * 2))
            .collect();
        let sql = format!(
            "DELETE FROM vip_allocations WHERE {}",
            conditions.join(" OR ")
        );
        on_conn!(self, |c| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (cluster, host) in hosts {
                q = q.bind(*cluster).bind(host.as_str());
            }
            q.execute(&mut *c).await?;
        });
        Ok(())
    }
}
