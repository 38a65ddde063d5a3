//! Deployments (the durable work queue), their per-cluster and per-object progress, and the
//! inventory of what each set has on each cluster.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreError, StoreResult, Tx, TxInner, on_conn};

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeploymentRow {
    pub id: Uuid,
    pub set_id: Uuid,
    pub revision: i64,
    pub action: String,
    pub state: String,
    pub manifests: Json<serde_json::Value>,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClusterRow {
    pub cluster: String,
    pub state: String,
    pub message: Option<String>,
    pub writes: i64,
    pub updated_at: DateTime<Utc>,
}

/// Where an object lives: its cluster and Kubernetes identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::FromRow)]
pub struct ObjectKey {
    pub cluster: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ObjectRow {
    #[sqlx(flatten)]
    pub key: ObjectKey,
    pub operation: String,
    pub state: String,
    pub message: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InventoryRow {
    #[sqlx(flatten)]
    pub key: ObjectKey,
    pub spec_hash: String,
}

const DEPLOYMENT_COLUMNS_WHERE_ID: &str = "SELECT id, set_id, revision, action, state, manifests, message, created_at, started_at, finished_at, claimed_by \
     FROM deployments WHERE id = $1";
const LATEST: &str = "SELECT id, set_id, revision, action, state, manifests, message, created_at, started_at, finished_at, claimed_by \
     FROM deployments WHERE set_id = $1 ORDER BY revision DESC LIMIT 1";
const BY_REVISION: &str = "SELECT id, set_id, revision, action, state, manifests, message, created_at, started_at, finished_at, claimed_by \
     FROM deployments WHERE set_id = $1 AND revision = $2";
const PAGE: &str = "SELECT id, set_id, revision, action, state, manifests, message, created_at, started_at, finished_at, claimed_by \
     FROM deployments WHERE set_id = $1 AND revision < $2 ORDER BY revision DESC LIMIT $3";
const NEXT_REVISION: &str =
    "SELECT COALESCE(MAX(revision), 0) + 1 FROM deployments WHERE set_id = $1";
const INSERT: &str = "INSERT INTO deployments (id, set_id, revision, action, state, manifests, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const INSERT_CLUSTER: &str = "INSERT INTO deployment_clusters (deployment_id, cluster, state, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (deployment_id, cluster) DO NOTHING";
const CLUSTERS: &str = "SELECT cluster, state, message, writes, updated_at FROM deployment_clusters WHERE deployment_id = $1 ORDER BY cluster";
const SET_CLUSTER: &str = "UPDATE deployment_clusters SET state = $3, message = $4, writes = writes + $5, updated_at = $6 \
     WHERE deployment_id = $1 AND cluster = $2";
const UPSERT_OBJECT: &str = "INSERT INTO deployment_objects (deployment_id, cluster, api_version, kind, namespace, name, operation, state, message, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (deployment_id, cluster, api_version, kind, namespace, name) \
     DO UPDATE SET operation = excluded.operation, state = excluded.state, message = excluded.message, updated_at = excluded.updated_at";
const OBJECTS: &str = "SELECT cluster, api_version, kind, namespace, name, operation, state, message, updated_at \
     FROM deployment_objects WHERE deployment_id = $1 ORDER BY cluster, api_version, kind, namespace, name";
const INVENTORY: &str = "SELECT cluster, api_version, kind, namespace, name, spec_hash FROM deployed_objects \
     WHERE set_id = $1 ORDER BY cluster, api_version, kind, namespace, name";
const UPSERT_INVENTORY: &str = "INSERT INTO deployed_objects (set_id, cluster, api_version, kind, namespace, name, spec_hash, deployment_id, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (set_id, cluster, api_version, kind, namespace, name) \
     DO UPDATE SET spec_hash = excluded.spec_hash, deployment_id = excluded.deployment_id, updated_at = excluded.updated_at";
const DELETE_INVENTORY: &str = "DELETE FROM deployed_objects WHERE set_id = $1 AND cluster = $2 AND api_version = $3 AND kind = $4 AND namespace = $5 AND name = $6";
const INVENTORY_IN_SUBTREE: &str = "SELECT COUNT(*) FROM deployed_objects WHERE set_id IN ( \
     WITH RECURSIVE subtree(id) AS ( \
       SELECT id FROM resources WHERE id = $1 \
       UNION ALL SELECT r.id FROM resources r JOIN subtree s ON r.parent_id = s.id) \
     SELECT id FROM subtree)";
const QUEUE_DEPTH: &str =
    "SELECT COUNT(*) FROM deployments WHERE state IN ('Pending', 'Applying', 'Terminating')";
const RENEW: &str = "UPDATE deployments SET claimed_until = $3 WHERE id = $1 AND claimed_by = $2";
const FINISH: &str = "UPDATE deployments SET state = $3, message = $4, finished_at = $5, claimed_by = NULL, claimed_until = NULL \
     WHERE id = $1 AND claimed_by = $2";

/// The oldest runnable deployment: waiting or abandoned (its lease ran out), and no earlier
/// revision of its set unfinished (a set's deployments run one after the other).
const CLAIMABLE: &str = "SELECT d.id FROM deployments d \
     WHERE d.state IN ('Pending', 'Applying', 'Terminating') \
       AND (d.claimed_until IS NULL OR d.claimed_until < $1) \
       AND NOT EXISTS (SELECT 1 FROM deployments e WHERE e.set_id = d.set_id AND e.revision < d.revision \
                       AND e.state IN ('Pending', 'Applying', 'Terminating')) \
     ORDER BY d.created_at, d.revision";
const CLAIM: &str = "UPDATE deployments SET claimed_by = $2, claimed_until = $3, started_at = COALESCE(started_at, $4), \
       state = CASE WHEN action = 'terminate' THEN 'Terminating' ELSE 'Applying' END \
     WHERE id = $1 AND (claimed_until IS NULL OR claimed_until < $4)";

/// A new deployment row.
pub struct NewDeployment {
    pub set_id: Uuid,
    pub revision: i64,
    pub action: &'static str,
    pub manifests: serde_json::Value,
}

impl Tx {
    pub async fn next_deployment_revision(&mut self, set_id: Uuid) -> StoreResult<i64> {
        let n = on_conn!(self, |c| {
            sqlx::query_scalar::<_, i64>(NEXT_REVISION)
                .bind(set_id)
                .fetch_one(&mut *c)
                .await?
        });
        Ok(n)
    }

    pub async fn insert_deployment(&mut self, new: NewDeployment) -> StoreResult<Uuid> {
        let id = Uuid::new_v4();
        let manifests = Json(new.manifests);
        let result = on_conn!(self, |c| {
            sqlx::query(INSERT)
                .bind(id)
                .bind(new.set_id)
                .bind(new.revision)
                .bind(new.action)
                .bind("Pending")
                .bind(&manifests)
                .bind(now())
                .execute(&mut *c)
                .await
                .map(|_| ())
        });
        result.map_err(StoreError::classify)?;
        Ok(id)
    }

    pub async fn insert_deployment_cluster(
        &mut self,
        deployment: Uuid,
        cluster: &str,
        state: &str,
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(INSERT_CLUSTER)
                .bind(deployment)
                .bind(cluster)
                .bind(state)
                .bind(now())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn set_cluster_state(
        &mut self,
        deployment: Uuid,
        cluster: &str,
        state: &str,
        message: Option<&str>,
        writes: i64,
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(SET_CLUSTER)
                .bind(deployment)
                .bind(cluster)
                .bind(state)
                .bind(message)
                .bind(writes)
                .bind(now())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn upsert_object_state(
        &mut self,
        deployment: Uuid,
        key: &ObjectKey,
        operation: &str,
        state: &str,
        message: Option<&str>,
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(UPSERT_OBJECT)
                .bind(deployment)
                .bind(&key.cluster)
                .bind(&key.api_version)
                .bind(&key.kind)
                .bind(&key.namespace)
                .bind(&key.name)
                .bind(operation)
                .bind(state)
                .bind(message)
                .bind(now())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn deployment(&mut self, id: Uuid) -> StoreResult<Option<DeploymentRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, DeploymentRow>(DEPLOYMENT_COLUMNS_WHERE_ID)
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn latest_deployment(&mut self, set_id: Uuid) -> StoreResult<Option<DeploymentRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, DeploymentRow>(LATEST)
                .bind(set_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn deployment_by_revision(
        &mut self,
        set_id: Uuid,
        revision: i64,
    ) -> StoreResult<Option<DeploymentRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, DeploymentRow>(BY_REVISION)
                .bind(set_id)
                .bind(revision)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Deployments of a set older than `before`, newest first.
    pub async fn deployments_page(
        &mut self,
        set_id: Uuid,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, DeploymentRow>(PAGE)
                .bind(set_id)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn deployment_clusters(&mut self, deployment: Uuid) -> StoreResult<Vec<ClusterRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, ClusterRow>(CLUSTERS)
                .bind(deployment)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn deployment_objects(&mut self, deployment: Uuid) -> StoreResult<Vec<ObjectRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, ObjectRow>(OBJECTS)
                .bind(deployment)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// What the set has on every cluster.
    pub async fn inventory(&mut self, set_id: Uuid) -> StoreResult<Vec<InventoryRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, InventoryRow>(INVENTORY)
                .bind(set_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn upsert_inventory(
        &mut self,
        set_id: Uuid,
        key: &ObjectKey,
        spec_hash: &str,
        deployment: Uuid,
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(UPSERT_INVENTORY)
                .bind(set_id)
                .bind(&key.cluster)
                .bind(&key.api_version)
                .bind(&key.kind)
                .bind(&key.namespace)
                .bind(&key.name)
                .bind(spec_hash)
                .bind(deployment)
                .bind(now())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn delete_inventory(&mut self, set_id: Uuid, key: &ObjectKey) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(DELETE_INVENTORY)
                .bind(set_id)
                .bind(&key.cluster)
                .bind(&key.api_version)
                .bind(&key.kind)
                .bind(&key.namespace)
                .bind(&key.name)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Objects on clusters owned by any set in the subtree of `resource` (to refuse deleting a
    /// set whose objects are still deployed).
    pub async fn deployed_in_subtree(&mut self, resource: Uuid) -> StoreResult<i64> {
        let n = on_conn!(self, |c| {
            sqlx::query_scalar::<_, i64>(INVENTORY_IN_SUBTREE)
                .bind(resource)
                .fetch_one(&mut *c)
                .await?
        });
        Ok(n)
    }

    pub async fn queue_depth(&mut self) -> StoreResult<i64> {
        let n = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(QUEUE_DEPTH)
            .fetch_one(&mut *c)
            .await?);
        Ok(n)
    }

    /// Claims the next runnable deployment for `worker` until `lease_until`. On PostgreSQL the
    /// candidate row is locked with `FOR UPDATE SKIP LOCKED`, so concurrent workers take
    /// different rows; the conditional update makes a claim of a row whose lease someone else
    /// holds a no-op.
    pub async fn claim_deployment(
        &mut self,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        let now = now();
        let candidate: Option<Uuid> = match &mut self.inner {
            TxInner::Postgres(t) => {
                let sql =
                    sqlx::AssertSqlSafe(format!("{CLAIMABLE} LIMIT 1 FOR UPDATE SKIP LOCKED"));
                sqlx::query_scalar::<_, Uuid>(sql)
                    .bind(now)
                    .fetch_optional(&mut **t)
                    .await?
            }
            TxInner::Sqlite(t) => {
                let sql = sqlx::AssertSqlSafe(format!("{CLAIMABLE} LIMIT 1"));
                sqlx::query_scalar::<_, Uuid>(sql)
                    .bind(now)
                    .fetch_optional(&mut **t)
                    .await?
            }
        };
        let Some(id) = candidate else { return Ok(None) };
        let claimed = on_conn!(self, |c| {
            sqlx::query(CLAIM)
                .bind(id)
                .bind(worker)
                .bind(lease_until)
                .bind(now)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok((claimed == 1).then_some(id))
    }

    /// Extends the lease; false when another worker has taken the deployment over.
    pub async fn renew_lease(
        &mut self,
        id: Uuid,
        worker: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(RENEW)
                .bind(id)
                .bind(worker)
                .bind(until)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records the outcome and releases the claim; false when the claim was lost.
    pub async fn finish_deployment(
        &mut self,
        id: Uuid,
        worker: &str,
        state: &str,
        message: Option<&str>,
    ) -> StoreResult<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(FINISH)
                .bind(id)
                .bind(worker)
                .bind(state)
                .bind(message)
                .bind(now())
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }
}
