//! Deployments (the durable work queue), their per-cluster and per-object progress, and the
//! inventory of what each set has on each cluster.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use std::collections::BTreeMap;
use std::str::FromStr;

use super::{StoreError, StoreResult, Tx, TxInner, on_conn};
use crate::domain::deployment::{
    Action, ClusterState, DeploymentState, DesiredObject, IstioKind, ObjectRef, ObjectState,
    Operation, Trigger,
};
use crate::domain::names::Name;
use crate::istio::IstioObject;

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The rendered objects of a deployment, per cluster. Stored as JSON
/// `{"<cluster>": [<object>, ...]}`, the format every release so far has written.
pub type Manifests = BTreeMap<Name, Vec<IstioObject>>;

/// The stored objects of a deployment as read back: per cluster, each with its identity.
pub type DesiredManifests = BTreeMap<Name, Vec<DesiredObject>>;

/// A deployment without its manifests: what a list of deployments shows.
#[derive(Clone, Debug)]
pub struct DeploymentHead {
    pub revision: i64,
    pub action: Action,
    pub trigger: Trigger,
    /// A repair's source: the revision whose manifests it redeploys.
    pub repair_of: Option<i64>,
    pub state: DeploymentState,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct RawDeploymentHead {
    revision: i64,
    action: String,
    triggered_by: String,
    repair_of: Option<i64>,
    state: String,
    message: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<RawDeploymentHead> for DeploymentHead {
    type Error = StoreError;

    fn try_from(raw: RawDeploymentHead) -> StoreResult<DeploymentHead> {
        Ok(DeploymentHead {
            revision: raw.revision,
            action: parse("deployments.action", &raw.action)?,
            trigger: parse("deployments.triggered_by", &raw.triggered_by)?,
            repair_of: raw.repair_of,
            state: parse("deployments.state", &raw.state)?,
            message: raw.message,
            created_at: raw.created_at,
            started_at: raw.started_at,
            finished_at: raw.finished_at,
        })
    }
}

#[derive(Clone, Debug)]
pub struct DeploymentRow {
    pub id: Uuid,
    pub set_id: Uuid,
    pub revision: i64,
    pub action: Action,
    pub trigger: Trigger,
    pub repair_of: Option<i64>,
    pub state: DeploymentState,
    pub manifests: DesiredManifests,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ClusterRow {
    pub cluster: Name,
    pub state: ClusterState,
    pub message: Option<String>,
    pub writes: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct ObjectRow {
    pub key: ObjectRef,
    pub operation: Operation,
    pub state: ObjectState,
    pub message: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct InventoryRow {
    pub key: ObjectRef,
    pub spec_hash: String,
}

/// A stored spelling as the domain type, or `Corrupt` naming the column.
fn parse<T: FromStr>(column: &str, value: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// How `deployments.manifests` is stored: versioned, so that a later release can change the
/// layout and still read what this one wrote. Rows written before the version existed hold the
/// bare map of cluster to objects (`Legacy`); a map never has a numeric `format`, so the two
/// cannot be confused.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum StoredManifests<M> {
    Versioned { format: u32, clusters: M },
    Legacy(M),
}

/// The layout this release writes.
const MANIFESTS_FORMAT: u32 = 1;

impl<'a> StoredManifests<&'a Manifests> {
    fn current(manifests: &'a Manifests) -> Self {
        StoredManifests::Versioned {
            format: MANIFESTS_FORMAT,
            clusters: manifests,
        }
    }
}

impl StoredManifests<Manifests> {
    /// The stored objects, each with its identity (a namespace or name that is not a Kubernetes
    /// name is an error, like any other value that does not parse).
    fn read(value: serde_json::Value) -> Result<DesiredManifests, String> {
        let clusters = match serde_json::from_value::<StoredManifests<Manifests>>(value) {
            Ok(StoredManifests::Versioned { format, clusters }) if format == MANIFESTS_FORMAT => {
                clusters
            }
            Ok(StoredManifests::Versioned { format, .. }) => {
                return Err(format!(
                    "format {format} was written by a newer release (this one reads {MANIFESTS_FORMAT})"
                ));
            }
            Ok(StoredManifests::Legacy(clusters)) => clusters,
            Err(e) => return Err(e.to_string()),
        };
        clusters
            .into_iter()
            .map(|(cluster, objects)| {
                let objects = objects
                    .into_iter()
                    .map(|object| DesiredObject::new(&cluster, object))
                    .collect::<Result<_, _>>()?;
                Ok((cluster, objects))
            })
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct RawDeployment {
    id: Uuid,
    set_id: Uuid,
    revision: i64,
    action: String,
    triggered_by: String,
    repair_of: Option<i64>,
    state: String,
    manifests: Json<serde_json::Value>,
    message: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    claimed_by: Option<String>,
}

impl DeploymentRow {
    /// The row without its manifests.
    pub fn head(&self) -> DeploymentHead {
        DeploymentHead {
            revision: self.revision,
            action: self.action,
            trigger: self.trigger,
            repair_of: self.repair_of,
            state: self.state,
            message: self.message.clone(),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

impl TryFrom<RawDeployment> for DeploymentRow {
    type Error = StoreError;

    fn try_from(raw: RawDeployment) -> StoreResult<DeploymentRow> {
        let manifests = StoredManifests::read(raw.manifests.0).map_err(|e| {
            StoreError::Corrupt(format!(
                "deployments.manifests of revision {}: {e}",
                raw.revision
            ))
        })?;
        Ok(DeploymentRow {
            id: raw.id,
            set_id: raw.set_id,
            revision: raw.revision,
            action: parse("deployments.action", &raw.action)?,
            trigger: parse("deployments.triggered_by", &raw.triggered_by)?,
            repair_of: raw.repair_of,
            state: parse("deployments.state", &raw.state)?,
            manifests,
            message: raw.message,
            created_at: raw.created_at,
            started_at: raw.started_at,
            finished_at: raw.finished_at,
            claimed_by: raw.claimed_by,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawCluster {
    cluster: String,
    state: String,
    message: Option<String>,
    writes: i64,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawCluster> for ClusterRow {
    type Error = StoreError;

    fn try_from(raw: RawCluster) -> StoreResult<ClusterRow> {
        Ok(ClusterRow {
            state: parse("deployment_clusters.state", &raw.state)?,
            cluster: parse("deployment_clusters.cluster", &raw.cluster)?,
            message: raw.message,
            writes: raw.writes,
            updated_at: raw.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawKey {
    cluster: String,
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
}

impl TryFrom<RawKey> for ObjectRef {
    type Error = StoreError;

    fn try_from(raw: RawKey) -> StoreResult<ObjectRef> {
        let kind = IstioKind::of(&raw.api_version, &raw.kind)
            .map_err(|e| StoreError::Corrupt(format!("object kind: {e}")))?;
        Ok(ObjectRef::new(
            parse("object cluster", &raw.cluster)?,
            kind,
            parse("object namespace", &raw.namespace)?,
            parse("object name", &raw.name)?,
        ))
    }
}

#[derive(sqlx::FromRow)]
struct RawObject {
    #[sqlx(flatten)]
    key: RawKey,
    operation: String,
    state: String,
    message: Option<String>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawObject> for ObjectRow {
    type Error = StoreError;

    fn try_from(raw: RawObject) -> StoreResult<ObjectRow> {
        Ok(ObjectRow {
            key: raw.key.try_into()?,
            operation: parse("deployment_objects.operation", &raw.operation)?,
            state: parse("deployment_objects.state", &raw.state)?,
            message: raw.message,
            updated_at: raw.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawInventory {
    #[sqlx(flatten)]
    key: RawKey,
    spec_hash: String,
}

impl TryFrom<RawInventory> for InventoryRow {
    type Error = StoreError;

    fn try_from(raw: RawInventory) -> StoreResult<InventoryRow> {
        Ok(InventoryRow {
            key: raw.key.try_into()?,
            spec_hash: raw.spec_hash,
        })
    }
}

fn typed<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

const DEPLOYMENT_COLUMNS_WHERE_ID: &str = "SELECT id, set_id, revision, action, triggered_by, repair_of, state, manifests, message, created_at, started_at, finished_at, claimed_by \
     FROM deployments WHERE id = $1";
const LATEST: &str = "SELECT id, set_id, revision, action, triggered_by, repair_of, state, manifests, message, created_at, started_at, finished_at, claimed_by \
     FROM deployments WHERE set_id = $1 ORDER BY revision DESC LIMIT 1";
const BY_REVISION: &str = "SELECT id, set_id, revision, action, triggered_by, repair_of, state, manifests, message, created_at, started_at, finished_at, claimed_by \
     FROM deployments WHERE set_id = $1 AND revision = $2";
/// Without the manifests: a list never shows them, and they are the bulk of a row.
const PAGE: &str = "SELECT revision, action, triggered_by, repair_of, state, message, created_at, started_at, finished_at \
     FROM deployments WHERE set_id = $1 AND revision < $2 ORDER BY revision DESC LIMIT $3";
const NEXT_REVISION: &str =
    "SELECT COALESCE(MAX(revision), 0) + 1 FROM deployments WHERE set_id = $1";
const INSERT: &str = "INSERT INTO deployments (id, set_id, revision, action, state, manifests, created_at, triggered_by, repair_of) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_CLUSTER: &str = "INSERT INTO deployment_clusters (deployment_id, cluster, state, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (deployment_id, cluster) DO NOTHING";
const CLUSTERS: &str = "SELECT cluster, state, message, writes, updated_at FROM deployment_clusters WHERE deployment_id = $1 ORDER BY cluster";
const SET_CLUSTER: &str = "UPDATE deployment_clusters SET state = $3, message = $4, writes = writes + $5, updated_at = $6 \
     WHERE deployment_id = $1 AND cluster = $2";
/// `$1` deployment, `$2` time; per row: the object's five key columns, operation, state, message.
const UPSERT_OBJECTS_HEAD: &str = "INSERT INTO deployment_objects (deployment_id, updated_at, cluster, api_version, kind, namespace, name, operation, state, message) VALUES ";
const UPSERT_OBJECTS_TAIL: &str = " ON CONFLICT (deployment_id, cluster, api_version, kind, namespace, name) \
     DO UPDATE SET operation = excluded.operation, state = excluded.state, message = excluded.message, updated_at = excluded.updated_at";
const OBJECTS: &str = "SELECT cluster, api_version, kind, namespace, name, operation, state, message, updated_at \
     FROM deployment_objects WHERE deployment_id = $1 ORDER BY cluster, api_version, kind, namespace, name";
const INVENTORY: &str = "SELECT cluster, api_version, kind, namespace, name, spec_hash FROM deployed_objects \
     WHERE set_id = $1 ORDER BY cluster, api_version, kind, namespace, name";
/// `$1` set, `$2` deployment, `$3` time; per row: the object's five key columns and its hash.
const UPSERT_INVENTORY_HEAD: &str = "INSERT INTO deployed_objects (set_id, deployment_id, updated_at, cluster, api_version, kind, namespace, name, spec_hash) VALUES ";
const UPSERT_INVENTORY_TAIL: &str = " ON CONFLICT (set_id, cluster, api_version, kind, namespace, name) \
     DO UPDATE SET spec_hash = excluded.spec_hash, deployment_id = excluded.deployment_id, updated_at = excluded.updated_at";
/// `$1` set; per row: the object's five key columns (a row-value list, which both backends have).
const DELETE_INVENTORY_HEAD: &str = "DELETE FROM deployed_objects WHERE set_id = $1 AND (cluster, api_version, kind, namespace, name) IN (";
const INVENTORY_IN_SUBTREE: &str = "SELECT COUNT(*) FROM deployed_objects WHERE set_id IN ( \
     WITH RECURSIVE subtree(id) AS ( \
       SELECT id FROM resources WHERE id = $1 \
       UNION ALL SELECT r.id FROM resources r JOIN subtree s ON r.parent_id = s.id) \
     SELECT id FROM subtree)";
/// Binds the unfinished states as `$1, $2, $3`.
const QUEUE_DEPTH: &str = "SELECT COUNT(*) FROM deployments WHERE state IN ($1, $2, $3)";
const RENEW: &str = "UPDATE deployments SET claimed_until = $3 WHERE id = $1 AND claimed_by = $2";
const RELEASE: &str = "UPDATE deployments SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2";
const FINISH: &str = "UPDATE deployments SET state = $3, message = $4, finished_at = $5, claimed_by = NULL, claimed_until = NULL \
     WHERE id = $1 AND claimed_by = $2";

/// The oldest runnable deployment: waiting or abandoned (its lease ran out), and no earlier
/// revision of its set unfinished (a set's deployments run one after the other). `$2, $3, $4`
/// are the unfinished states.
const CLAIMABLE: &str = "SELECT d.id FROM deployments d \
     WHERE d.state IN ($2, $3, $4) \
       AND (d.claimed_until IS NULL OR d.claimed_until < $1) \
       AND NOT EXISTS (SELECT 1 FROM deployments e WHERE e.set_id = d.set_id AND e.revision < d.revision \
                       AND e.state IN ($2, $3, $4)) \
     ORDER BY d.created_at, d.revision";
const CLAIM: &str = "UPDATE deployments SET claimed_by = $2, claimed_until = $3, started_at = COALESCE(started_at, $4), \
       state = CASE WHEN action = $5 THEN $6 ELSE $7 END \
     WHERE id = $1 AND (claimed_until IS NULL OR claimed_until < $4)";

/// One object's progress in a deployment, as recorded.
#[derive(Clone, Copy, Debug)]
pub struct ObjectProgress<'a> {
    pub key: &'a ObjectRef,
    pub operation: Operation,
    pub state: ObjectState,
    pub message: Option<&'a str>,
}

/// A multi-row statement: `head`, the tuples of `placeholder_tuples`, then `tail`.
fn batch_sql(
    head: &str,
    row_prefix: &str,
    first: usize,
    width: usize,
    rows: usize,
    tail: &str,
) -> String {
    format!(
        "{head}{}{tail}",
        super::placeholder_tuples(row_prefix, first, width, rows)
    )
}

/// Binds an object's identity: cluster, apiVersion, kind, namespace, name.
fn bind_key<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    key: &'q ObjectRef,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(key.cluster.as_str())
        .bind(key.kind.api_version())
        .bind(key.kind.name())
        .bind(key.namespace.as_str())
        .bind(key.name.as_str())
}

/// A new deployment row.
pub struct NewDeployment {
    pub set_id: Uuid,
    pub revision: i64,
    pub action: Action,
    pub manifests: Manifests,
    pub trigger: Trigger,
    /// For a repair: the revision whose manifests it redeploys.
    pub repair_of: Option<i64>,
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
        let result = on_conn!(self, |c| {
            sqlx::query(INSERT)
                .bind(id)
                .bind(new.set_id)
                .bind(new.revision)
                .bind(new.action.as_str())
                .bind(DeploymentState::Pending.as_str())
                .bind(Json(StoredManifests::current(&new.manifests)))
                .bind(now())
                .bind(new.trigger.as_str())
                .bind(new.repair_of)
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
        cluster: &Name,
        state: ClusterState,
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(INSERT_CLUSTER)
                .bind(deployment)
                .bind(cluster.as_str())
                .bind(state.as_str())
                .bind(now())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn set_cluster_state(
        &mut self,
        deployment: Uuid,
        cluster: &Name,
        state: ClusterState,
        message: Option<&str>,
        writes: i64,
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(SET_CLUSTER)
                .bind(deployment)
                .bind(cluster.as_str())
                .bind(state.as_str())
                .bind(message)
                .bind(writes)
                .bind(now())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Records the progress of many objects in few multi-row statements (`Tx::rows_per_statement`).
    pub async fn upsert_object_states(
        &mut self,
        deployment: Uuid,
        rows: &[ObjectProgress<'_>],
    ) -> StoreResult<()> {
        let now = now();
        for chunk in rows.chunks(self.rows_per_statement(8)) {
            let sql = batch_sql(
                UPSERT_OBJECTS_HEAD,
                "$1, $2, ",
                3,
                8,
                chunk.len(),
                UPSERT_OBJECTS_TAIL,
            );
            on_conn!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(deployment)
                    .bind(now);
                for row in chunk {
                    q = bind_key(q, row.key)
                        .bind(row.operation.as_str())
                        .bind(row.state.as_str())
                        .bind(row.message);
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(())
    }

    pub async fn deployment(&mut self, id: Uuid) -> StoreResult<Option<DeploymentRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, RawDeployment>(DEPLOYMENT_COLUMNS_WHERE_ID)
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(DeploymentRow::try_from).transpose()
    }

    pub async fn latest_deployment(&mut self, set_id: Uuid) -> StoreResult<Option<DeploymentRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, RawDeployment>(LATEST)
                .bind(set_id)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(DeploymentRow::try_from).transpose()
    }

    pub async fn deployment_by_revision(
        &mut self,
        set_id: Uuid,
        revision: i64,
    ) -> StoreResult<Option<DeploymentRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, RawDeployment>(BY_REVISION)
                .bind(set_id)
                .bind(revision)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(DeploymentRow::try_from).transpose()
    }

    /// Deployments of a set older than `before`, newest first.
    pub async fn deployments_page(
        &mut self,
        set_id: Uuid,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentHead>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, RawDeploymentHead>(PAGE)
                .bind(set_id)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&mut *c)
                .await?
        });
        typed(rows)
    }

    pub async fn deployment_clusters(&mut self, deployment: Uuid) -> StoreResult<Vec<ClusterRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, RawCluster>(CLUSTERS)
                .bind(deployment)
                .fetch_all(&mut *c)
                .await?
        });
        typed(rows)
    }

    pub async fn deployment_objects(&mut self, deployment: Uuid) -> StoreResult<Vec<ObjectRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, RawObject>(OBJECTS)
                .bind(deployment)
                .fetch_all(&mut *c)
                .await?
        });
        typed(rows)
    }

    /// What the set has on every cluster.
    pub async fn inventory(&mut self, set_id: Uuid) -> StoreResult<Vec<InventoryRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, RawInventory>(INVENTORY)
                .bind(set_id)
                .fetch_all(&mut *c)
                .await?
        });
        typed(rows)
    }

    /// Records what a deployment left on the clusters: each object with its content hash.
    pub async fn upsert_inventory(
        &mut self,
        set_id: Uuid,
        deployment: Uuid,
        rows: &[(&ObjectRef, &str)],
    ) -> StoreResult<()> {
        let now = now();
        for chunk in rows.chunks(self.rows_per_statement(6)) {
            let sql = batch_sql(
                UPSERT_INVENTORY_HEAD,
                "$1, $2, $3, ",
                4,
                6,
                chunk.len(),
                UPSERT_INVENTORY_TAIL,
            );
            on_conn!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(set_id)
                    .bind(deployment)
                    .bind(now);
                for (key, hash) in chunk {
                    q = bind_key(q, key).bind(*hash);
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(())
    }

    /// Forgets objects the set no longer has on a cluster.
    pub async fn delete_inventory(&mut self, set_id: Uuid, keys: &[&ObjectRef]) -> StoreResult<()> {
        for chunk in keys.chunks(self.rows_per_statement(5)) {
            let sql = batch_sql(DELETE_INVENTORY_HEAD, "", 2, 5, chunk.len(), ")");
            on_conn!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(set_id);
                for key in chunk {
                    q = bind_key(q, key);
                }
                q.execute(&mut *c).await?;
            });
        }
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
        let [a, b, c3] = DeploymentState::UNFINISHED.map(DeploymentState::as_str);
        let n = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(QUEUE_DEPTH)
            .bind(a)
            .bind(b)
            .bind(c3)
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
        let [s1, s2, s3] = DeploymentState::UNFINISHED.map(DeploymentState::as_str);
        let candidate: Option<Uuid> = match &mut self.inner {
            TxInner::Postgres(t) => {
                let sql =
                    sqlx::AssertSqlSafe(format!("{CLAIMABLE} LIMIT 1 FOR UPDATE SKIP LOCKED"));
                sqlx::query_scalar::<_, Uuid>(sql)
                    .bind(now)
                    .bind(s1)
                    .bind(s2)
                    .bind(s3)
                    .fetch_optional(t.conn())
                    .await?
            }
            TxInner::Sqlite(t) => {
                let sql = sqlx::AssertSqlSafe(format!("{CLAIMABLE} LIMIT 1"));
                sqlx::query_scalar::<_, Uuid>(sql)
                    .bind(now)
                    .bind(s1)
                    .bind(s2)
                    .bind(s3)
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
                .bind(Action::Terminate.as_str())
                .bind(Action::Terminate.claimed().as_str())
                .bind(Action::Deploy.claimed().as_str())
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

    /// Gives a claimed deployment back unfinished, so that another worker takes it at once
    /// instead of after the lease (a worker that is stopping).
    pub async fn release_claim(&mut self, id: Uuid, worker: &str) -> StoreResult<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(RELEASE)
                .bind(id)
                .bind(worker)
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
        state: DeploymentState,
        message: Option<&str>,
    ) -> StoreResult<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(FINISH)
                .bind(id)
                .bind(worker)
                .bind(state.as_str())
                .bind(message)
                .bind(now())
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw_key(cluster: &str, namespace: &str, name: &str) -> RawKey {
        RawKey {
            cluster: cluster.to_owned(),
            api_version: "networking.istio.io/v1".to_owned(),
            kind: "DestinationRule".to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn corrupt(result: StoreResult<ObjectRef>) -> String {
        match result {
            Err(StoreError::Corrupt(message)) => message,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_stored_object_key_parses_into_typed_names() {
        let key = ObjectRef::try_from(raw_key("cluster01", "shop", "httpbin.shop-dr")).unwrap();
        assert_eq!(key.cluster.as_str(), "cluster01");
        assert_eq!(key.kind, IstioKind::DestinationRule);
        assert_eq!(key.namespace.as_str(), "shop");
        assert_eq!(key.name.as_str(), "httpbin.shop-dr");
    }

    #[test]
    fn a_stored_object_key_with_an_invalid_name_is_corrupt() {
        let message = corrupt(raw_key("cluster01", "shop", "Not_A_Name").try_into());
        assert!(
            message.starts_with("object name: must be a DNS-1123 subdomain"),
            "{message}"
        );
        assert!(message.contains("\"Not_A_Name\""), "{message}");
        let message = corrupt(raw_key("cluster01", "", "httpbin-dr").try_into());
        assert!(message.starts_with("object namespace: "), "{message}");
        let message = corrupt(raw_key("cluster.01", "shop", "httpbin-dr").try_into());
        assert!(message.starts_with("object cluster: "), "{message}");
    }

    #[test]
    fn a_stored_cluster_row_with_an_invalid_cluster_is_corrupt() {
        let raw = RawCluster {
            cluster: "Cluster01".to_owned(),
            state: "Applied".to_owned(),
            message: None,
            writes: 0,
            updated_at: Utc::now(),
        };
        let Err(StoreError::Corrupt(message)) = ClusterRow::try_from(raw) else {
            panic!("expected Corrupt");
        };
        assert!(
            message.starts_with("deployment_clusters.cluster: "),
            "{message}"
        );
    }

    fn destination_rule(namespace: &str, name: &str) -> serde_json::Value {
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"host": "httpbin.shop.svc.cluster.local"}
        })
    }

    #[test]
    fn stored_manifests_read_back_with_each_object_s_identity() {
        let stored = json!({"format": 1, "clusters": {"cluster01": [destination_rule("shop", "httpbin-dr")]}});
        let manifests = StoredManifests::read(stored).unwrap();
        let cluster: Name = "cluster01".parse().unwrap();
        let [object] = manifests[&cluster].as_slice() else {
            panic!("{manifests:?}");
        };
        assert_eq!(
            object.key.to_string(),
            "DestinationRule shop/httpbin-dr on cluster01"
        );
        assert_eq!(object.key, ObjectRef::of(&cluster, &object.object).unwrap());
    }

    #[test]
    fn stored_manifests_with_an_invalid_object_name_do_not_read() {
        let stored = json!({"cluster01": [destination_rule("shop", "httpbin_dr")]});
        let err = StoredManifests::read(stored).unwrap_err();
        assert!(
            err.starts_with("DestinationRule name must be a DNS-1123 subdomain"),
            "{err}"
        );
    }
}
