//! Rows of the resource tree, their references and the clusters' encrypted credentials.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreError, StoreResult, Tx, TxInner, on_conn};
use crate::domain::resource::{Key, Kind};

/// The root row every cluster and project hangs off.
pub const ROOT_ID: Uuid = Uuid::nil();

/// A stored resource. `spec` holds the kind's spec as written (defaults applied).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ResourceRow {
    pub id: Uuid,
    pub kind: String,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub user_data1: Option<String>,
    pub user_data2: Option<String>,
    pub spec: Json<serde_json::Value>,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

/// What a create or replace writes.
#[derive(Clone, Debug)]
pub struct NewResource {
    pub description: Option<String>,
    pub user_data1: Option<String>,
    pub user_data2: Option<String>,
    pub spec: serde_json::Value,
    /// Who writes it (`user:<name>`, `token:<name>`, ...).
    pub actor: String,
}

/// A resource that references another one.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Referrer {
    pub kind: String,
    pub name: String,
    pub field: String,
}

/// Timestamps are kept at microsecond precision, what PostgreSQL stores, so that both
/// backends return the same value that was written.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

// The statements below are shared by both backends (see `on_conn!`).
const SELECT_CHILD: &str = "SELECT id, kind, parent_id, name, version, description, user_data1, user_data2, spec, revision, created_at, updated_at, created_by, updated_by \
     FROM resources WHERE parent_id = $1 AND kind = $2 AND name = $3 AND version = $4";
const SELECT_BY_ID: &str = "SELECT id, kind, parent_id, name, version, description, user_data1, user_data2, spec, revision, created_at, updated_at, created_by, updated_by \
     FROM resources WHERE id = $1";
const LIST_CHILDREN: &str = "SELECT id, kind, parent_id, name, version, description, user_data1, user_data2, spec, revision, created_at, updated_at, created_by, updated_by \
     FROM resources WHERE parent_id = $1 AND kind = $2 AND (name, version) > ($3, $4) \
     ORDER BY name, version LIMIT $5";
const LIST_ALL_CHILDREN: &str = "SELECT id, kind, parent_id, name, version, description, user_data1, user_data2, spec, revision, created_at, updated_at, created_by, updated_by \
     FROM resources WHERE parent_id = $1 AND kind = $2 ORDER BY name, version";
const INSERT: &str = "INSERT INTO resources \
     (id, kind, parent_id, name_scope, name, version, description, user_data1, user_data2, spec, revision, created_at, updated_at, created_by, updated_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11, $12, $12)";
const UPDATE: &str = "UPDATE resources SET description = $2, user_data1 = $3, user_data2 = $4, spec = $5, \
     revision = revision + 1, updated_at = $6, updated_by = $7 WHERE id = $1";
const DELETE_ONE: &str = "DELETE FROM resources WHERE id = $1";
const DELETE_SUBTREE: &str = "DELETE FROM resources WHERE id IN ( \
     WITH RECURSIVE subtree(id) AS ( \
       SELECT id FROM resources WHERE id = $1 \
       UNION ALL SELECT r.id FROM resources r JOIN subtree s ON r.parent_id = s.id) \
     SELECT id FROM subtree)";
/// References held by a subtree. They go before the subtree itself: on PostgreSQL the
/// `ON DELETE CASCADE` of `resource_refs.from_id` and the check of `resource_refs.to_id` are
/// separate triggers, and the check may run before the cascade has removed the reference.
const DELETE_SUBTREE_REFS: &str = "DELETE FROM resource_refs WHERE from_id IN ( \
     WITH RECURSIVE subtree(id) AS ( \
       SELECT id FROM resources WHERE id = $1 \
       UNION ALL SELECT r.id FROM resources r JOIN subtree s ON r.parent_id = s.id) \
     SELECT id FROM subtree)";
const SELECT_SUBTREE: &str = "WITH RECURSIVE subtree(id, depth) AS ( \
       SELECT id, 0 FROM resources WHERE id = $1 \
       UNION ALL SELECT r.id, s.depth + 1 FROM resources r JOIN subtree s ON r.parent_id = s.id) \
     SELECT r.id, r.kind, r.parent_id, r.name, r.version, r.description, r.user_data1, r.user_data2, r.spec, r.revision, r.created_at, r.updated_at, r.created_by, r.updated_by \
     FROM resources r JOIN subtree s ON r.id = s.id ORDER BY s.depth, r.kind, r.name, r.version";
const COUNT_CHILDREN: &str = "SELECT COUNT(*) FROM resources WHERE parent_id = $1";
const REFERRERS: &str = "SELECT r.kind, r.name, rr.field FROM resource_refs rr \
     JOIN resources r ON r.id = rr.from_id WHERE rr.to_id = $1 ORDER BY r.kind, r.name, rr.field LIMIT 20";
const UPSERT_CREDENTIAL: &str = "INSERT INTO cluster_credentials (cluster_id, ciphertext) VALUES ($1, $2) \
     ON CONFLICT (cluster_id) DO UPDATE SET ciphertext = excluded.ciphertext";
const DELETE_CREDENTIAL: &str = "DELETE FROM cluster_credentials WHERE cluster_id = $1";
const SELECT_CREDENTIAL: &str = "SELECT ciphertext FROM cluster_credentials WHERE cluster_id = $1";
const SELECT_CREDENTIAL_IDS: &str = "SELECT cluster_id FROM cluster_credentials";

impl Tx {
    /// The child of `parent` with this kind and key.
    pub async fn child(
        &mut self,
        parent: Uuid,
        kind: Kind,
        key: &Key,
    ) -> StoreResult<Option<ResourceRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, ResourceRow>(SELECT_CHILD)
                .bind(parent)
                .bind(kind.code())
                .bind(key.name.as_str())
                .bind(key.version_str())
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn by_id(&mut self, id: Uuid) -> StoreResult<Option<ResourceRow>> {
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, ResourceRow>(SELECT_BY_ID)
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// A page of `parent`'s children of `kind`, after the key `(name, version)`, in key order.
    pub async fn children_page(
        &mut self,
        parent: Uuid,
        kind: Kind,
        after: (&str, &str),
        limit: u32,
    ) -> StoreResult<Vec<ResourceRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, ResourceRow>(LIST_CHILDREN)
                .bind(parent)
                .bind(kind.code())
                .bind(after.0)
                .bind(after.1)
                .bind(i64::from(limit))
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Every child of `parent` of `kind`, in key order.
    pub async fn children(&mut self, parent: Uuid, kind: Kind) -> StoreResult<Vec<ResourceRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, ResourceRow>(LIST_ALL_CHILDREN)
                .bind(parent)
                .bind(kind.code())
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// The resource `id` and all its descendants, parents before children.
    pub async fn subtree(&mut self, id: Uuid) -> StoreResult<Vec<ResourceRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, ResourceRow>(SELECT_SUBTREE)
                .bind(id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Inserts a resource; a sibling with the same name (and name scope) is `Duplicate`.
    pub async fn insert(
        &mut self,
        parent: Uuid,
        kind: Kind,
        key: &Key,
        new: NewResource,
    ) -> StoreResult<ResourceRow> {
        let id = Uuid::new_v4();
        let now = now();
        let spec = Json(new.spec);
        let result = on_conn!(self, |c| {
            sqlx::query(INSERT)
                .bind(id)
                .bind(kind.code())
                .bind(parent)
                .bind(kind.name_scope())
                .bind(key.name.as_str())
                .bind(key.version_str())
                .bind(new.description.as_deref())
                .bind(new.user_data1.as_deref())
                .bind(new.user_data2.as_deref())
                .bind(&spec)
                .bind(now)
                .bind(new.actor.as_str())
                .execute(&mut *c)
                .await
                .map(|_| ())
        });
        result.map_err(StoreError::classify)?;
        Ok(ResourceRow {
            id,
            kind: kind.code().to_owned(),
            parent_id: Some(parent),
            name: key.name.to_string(),
            version: key.version_str().to_owned(),
            description: new.description,
            user_data1: new.user_data1,
            user_data2: new.user_data2,
            spec,
            revision: 1,
            created_at: now,
            updated_at: now,
            created_by: Some(new.actor.clone()),
            updated_by: Some(new.actor),
        })
    }

    /// Replaces a resource's writable fields and bumps its revision.
    pub async fn update(&mut self, id: Uuid, new: NewResource) -> StoreResult<()> {
        let spec = Json(new.spec);
        on_conn!(self, |c| {
            sqlx::query(UPDATE)
                .bind(id)
                .bind(new.description.as_deref())
                .bind(new.user_data1.as_deref())
                .bind(new.user_data2.as_deref())
                .bind(&spec)
                .bind(now())
                .bind(new.actor.as_str())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Deletes one resource, or its whole subtree. Children (without `cascade`) or references
    /// from outside the deleted rows make it fail with `ForeignKey`, atomically.
    pub async fn delete(&mut self, id: Uuid, cascade: bool) -> StoreResult<()> {
        if cascade {
            on_conn!(self, |c| {
                sqlx::query(DELETE_SUBTREE_REFS)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            });
        }
        let sql = if cascade { DELETE_SUBTREE } else { DELETE_ONE };
        let result = on_conn!(self, |c| {
            sqlx::query(sql).bind(id).execute(&mut *c).await.map(|_| ())
        });
        result.map_err(StoreError::classify)
    }

    pub async fn count_children(&mut self, id: Uuid) -> StoreResult<i64> {
        let n = on_conn!(self, |c| {
            sqlx::query_scalar::<_, i64>(COUNT_CHILDREN)
                .bind(id)
                .fetch_one(&mut *c)
                .await?
        });
        Ok(n)
    }

    /// Who references `id` (for "in use" messages).
    pub async fn referrers(&mut self, id: Uuid) -> StoreResult<Vec<Referrer>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, Referrer>(REFERRERS)
                .bind(id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Replaces the references held by `from`. A target deleted meanwhile is `ForeignKey`.
    pub async fn set_refs(&mut self, from: Uuid, refs: &[(String, Uuid)]) -> StoreResult<()> {
        let rows = held_by(from, refs);
        self.replace_refs(&[from], &rows).await
    }

    /// Takes the row lock of `id` until the transaction ends, so that writes checked against
    /// the same resources happen one after the other. (SQLite's `BEGIN IMMEDIATE` already
    /// serializes every write.) `NO KEY UPDATE`: it excludes other writers as `FOR UPDATE`
    /// would, but not the key-share locks that foreign-key checks take, so a write holding a
    /// cluster's lock and one inserting a VIP that references the cluster cannot deadlock.
    pub async fn lock(&mut self, id: Uuid) -> StoreResult<()> {
        if let TxInner::Postgres(t) = &mut self.inner {
            super::statement_sent();
            sqlx::query("SELECT id FROM resources WHERE id = $1 FOR NO KEY UPDATE")
                .bind(id)
                .execute(t.conn())
                .await?;
        }
        Ok(())
    }

    /// Takes a shared lock of `id`: writers of one set's members hold it together, and a
    /// writer of the whole set (`lock`) waits for them and they for it. (SQLite: no-op.)
    pub async fn lock_shared(&mut self, id: Uuid) -> StoreResult<()> {
        if let TxInner::Postgres(t) = &mut self.inner {
            super::statement_sent();
            sqlx::query("SELECT id FROM resources WHERE id = $1 FOR SHARE")
                .bind(id)
                .execute(t.conn())
                .await?;
        }
        Ok(())
    }

    /// Takes the lock of the child `name` of `parent` of `kind`, if it exists (as `lock`).
    pub async fn lock_child(&mut self, parent: Uuid, kind: Kind, name: &str) -> StoreResult<()> {
        if let TxInner::Postgres(t) = &mut self.inner {
            super::statement_sent();
            sqlx::query(
                "SELECT id FROM resources WHERE parent_id = $1 AND kind = $2 AND name = $3 FOR NO KEY UPDATE",
            )
            .bind(parent)
            .bind(kind.code())
            .bind(name)
            .execute(t.conn())
            .await?;
        }
        Ok(())
    }

    /// Takes a lock named `name` until the transaction ends (a PostgreSQL advisory lock on
    /// the name's hash: a collision only serializes two writes that need not be). For what
    /// has no row yet, such as "the inbound intents of this set exposing service X".
    pub async fn lock_name(&mut self, name: &str) -> StoreResult<()> {
        if let TxInner::Postgres(t) = &mut self.inner {
            super::statement_sent();
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(name)
                .execute(t.conn())
                .await?;
        }
        Ok(())
    }

    pub async fn put_credential(&mut self, cluster: Uuid, ciphertext: &[u8]) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(UPSERT_CREDENTIAL)
                .bind(cluster)
                .bind(ciphertext)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn delete_credential(&mut self, cluster: Uuid) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(DELETE_CREDENTIAL)
                .bind(cluster)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn credential(&mut self, cluster: Uuid) -> StoreResult<Option<Vec<u8>>> {
        let bytes = on_conn!(self, |c| {
            sqlx::query_scalar::<_, Vec<u8>>(SELECT_CREDENTIAL)
                .bind(cluster)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(bytes)
    }

    /// Ids of the clusters that have a stored credential.
    pub async fn credential_ids(&mut self) -> StoreResult<Vec<Uuid>> {
        let ids = on_conn!(self, |c| {
            sqlx::query_scalar::<_, Uuid>(SELECT_CREDENTIAL_IDS)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(ids)
    }
}

const COLUMNS: &str = "id, kind, parent_id, name, version, description, user_data1, user_data2, spec, revision, created_at, updated_at, created_by, updated_by";

/// `$first, $first+1, ...`: `count` numbered placeholders for an `IN (...)` list.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One statement that resolves a whole path: a chain of CTEs, each the child of the one
/// before, returned root first with their depth (a missing segment ends the rows).
fn resolve_sql(depth: usize) -> String {
    // Three parameters per segment (kind, name, version), then the root id.
    let root = depth * 3 + 1;
    let mut ctes = Vec::with_capacity(depth);
    let mut selects = Vec::with_capacity(depth);
    for i in 0..depth {
        let p = 1 + i * 3;
        let parent = if i == 0 {
            format!("r.parent_id = ${root}")
        } else {
            format!("r.parent_id IN (SELECT id FROM s{})", i - 1)
        };
        ctes.push(format!(
            "s{i} AS (SELECT {COLUMNS} FROM resources r WHERE {parent} AND r.kind = ${} AND r.name = ${} AND r.version = ${})",
            p,
            p + 1,
            p + 2
        ));
        selects.push(format!("SELECT {i} AS depth, {COLUMNS} FROM s{i}"));
    }
    format!(
        "WITH {} {} ORDER BY depth",
        ctes.join(", "),
        selects.join(" UNION ALL ")
    )
}

/// A resource to insert with an id chosen by the caller (so children can name their parent
/// before either is stored).
#[derive(Clone, Debug)]
pub struct NewRow {
    pub id: Uuid,
    pub parent: Uuid,
    pub kind: Kind,
    pub key: Key,
    pub new: NewResource,
}

/// A traffic intent set with the names of its composite app and project.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SetLocation {
    pub set_id: Uuid,
    pub set_name: String,
    pub composite_app_id: Uuid,
    pub composite_app_name: String,
    pub version: String,
    pub project_name: String,
}

const SETS: &str = "SELECT s.id AS set_id, s.name AS set_name, ca.id AS composite_app_id, \
     ca.name AS composite_app_name, ca.version AS version, p.name AS project_name FROM resources s \
     JOIN resources ca ON ca.id = s.parent_id JOIN resources p ON p.id = ca.parent_id \
     WHERE s.kind = $1";

impl Tx {
    /// The traffic intent sets of a composite app, or of every one, in id order (the order in
    /// which writers that touch several sets lock them).
    pub async fn sets(&mut self, composite_app: Option<Uuid>) -> StoreResult<Vec<SetLocation>> {
        let kind = Kind::TrafficIntentSet.code();
        let rows = on_conn!(self, |c| {
            match composite_app {
                Some(ca) => {
                    sqlx::query_as::<_, SetLocation>(sqlx::AssertSqlSafe(format!(
                        "{SETS} AND ca.id = $2 ORDER BY s.id"
                    )))
                    .bind(kind)
                    .bind(ca)
                    .fetch_all(&mut *c)
                    .await?
                }
                None => {
                    sqlx::query_as::<_, SetLocation>(sqlx::AssertSqlSafe(format!(
                        "{SETS} ORDER BY s.id"
                    )))
                    .bind(kind)
                    .fetch_all(&mut *c)
                    .await?
                }
            }
        });
        Ok(rows)
    }

    /// The resources along a path of `(kind, key)` segments below the root, root first, in one
    /// statement. Stops at the first segment that does not exist.
    pub async fn resolve(&mut self, segments: &[(Kind, Key)]) -> StoreResult<Vec<ResourceRow>> {
        if segments.is_empty() {
            return Ok(Vec::new());
        }
        let sql = resolve_sql(segments.len());
        let rows = on_conn!(self, |c| {
            let mut q = sqlx::query_as::<_, ResourceRow>(sqlx::AssertSqlSafe(sql.clone()));
            for (kind, key) in segments {
                q = q
                    .bind(kind.code())
                    .bind(key.name.as_str())
                    .bind(key.version_str());
            }
            q.bind(ROOT_ID).fetch_all(&mut *c).await?
        });
        Ok(rows)
    }

    /// The children of `parent` of `kind` with one of `names` (any version), in key order.
    pub async fn children_named(
        &mut self,
        parent: Uuid,
        kind: Kind,
        names: &[&str],
    ) -> StoreResult<Vec<ResourceRow>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM resources WHERE parent_id = $1 AND kind = $2 AND name IN ({}) ORDER BY name, version",
            placeholders(3, names.len())
        );
        let rows = on_conn!(self, |c| {
            let mut q = sqlx::query_as::<_, ResourceRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(parent)
                .bind(kind.code());
            for name in names {
                q = q.bind(*name);
            }
            q.fetch_all(&mut *c).await?
        });
        Ok(rows)
    }

    /// The inbound intents of a set that expose the Kubernetes Service `service_name` (an
    /// indexed look-up: `resources_inbound_service`, a partial index the literal kind selects).
    pub async fn inbound_with_service(
        &mut self,
        set: Uuid,
        service_name: &str,
    ) -> StoreResult<Vec<ResourceRow>> {
        let rows = match &mut self.inner {
            TxInner::Postgres(t) => {
                super::statement_sent();
                sqlx::query_as::<_, ResourceRow>(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM resources WHERE parent_id = $1 AND kind = 'inbound_intent' \
                     AND (spec ->> 'serviceName') = $2 ORDER BY name"
                )))
                .bind(set)
                .bind(service_name)
                .fetch_all(t.conn())
                .await?
            }
            TxInner::Sqlite(t) => {
                super::statement_sent();
                sqlx::query_as::<_, ResourceRow>(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM resources WHERE parent_id = $1 AND kind = 'inbound_intent' \
                     AND json_extract(spec, '$.serviceName') = $2 ORDER BY name"
                )))
                .bind(set)
                .bind(service_name)
                .fetch_all(&mut **t)
                .await?
            }
        };
        Ok(rows)
    }

    /// The resources that reference `to` through `field` (e.g. the route intents whose
    /// `/spec/target/inboundIntent` is an intent), in key order.
    pub async fn referring(&mut self, to: Uuid, field: &str) -> StoreResult<Vec<ResourceRow>> {
        let sql = format!(
            "SELECT {} FROM resources r JOIN resource_refs rr ON rr.from_id = r.id \
             WHERE rr.to_id = $1 AND rr.field = $2 ORDER BY r.name, r.version",
            COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, ResourceRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(to)
                .bind(field)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Inserts resources in multi-row statements (`Tx::rows_per_statement`), in order (parents before
    /// children). A sibling with the same name is `Duplicate`.
    pub async fn insert_many(&mut self, rows: &[NewRow]) -> StoreResult<()> {
        let now = now();
        for chunk in rows.chunks(self.rows_per_statement(12)) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 2 + i * 12;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 1, $1, $1, ${}, ${})",
                        p,
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8,
                        p + 9,
                        p + 10,
                        p + 11
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO resources (id, kind, parent_id, name_scope, name, version, description, \
                 user_data1, user_data2, spec, revision, created_at, updated_at, created_by, updated_by) VALUES {}",
                values.join(", ")
            );
            let result = on_conn!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(now);
                for row in chunk {
                    q = q
                        .bind(row.id)
                        .bind(row.kind.code())
                        .bind(row.parent)
                        .bind(row.kind.name_scope())
                        .bind(row.key.name.as_str())
                        .bind(row.key.version_str())
                        .bind(row.new.description.as_deref())
                        .bind(row.new.user_data1.as_deref())
                        .bind(row.new.user_data2.as_deref())
                        .bind(Json(&row.new.spec))
                        .bind(row.new.actor.as_str())
                        .bind(row.new.actor.as_str());
                }
                q.execute(&mut *c).await.map(|_| ())
            });
            result.map_err(StoreError::classify)?;
        }
        Ok(())
    }

    /// Drops the references `replaced` resources hold, then stores `refs` (from, field, to), in
    /// batches. A target deleted meanwhile is `ForeignKey`.
    pub async fn replace_refs(
        &mut self,
        replaced: &[Uuid],
        refs: &[(Uuid, String, Uuid)],
    ) -> StoreResult<()> {
        for chunk in replaced.chunks(self.rows_per_statement(1)) {
            let sql = format!(
                "DELETE FROM resource_refs WHERE from_id IN ({})",
                placeholders(1, chunk.len())
            );
            on_conn!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&mut *c).await?;
            });
        }
        for chunk in refs.chunks(self.rows_per_statement(3)) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${})", 1 + i * 3, 2 + i * 3, 3 + i * 3))
                .collect();
            let sql = format!(
                "INSERT INTO resource_refs (from_id, field, to_id) VALUES {}",
                values.join(", ")
            );
            let result = on_conn!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (from, field, to) in chunk {
                    q = q.bind(*from).bind(field.as_str()).bind(*to);
                }
                q.execute(&mut *c).await.map(|_| ())
            });
            result.map_err(StoreError::classify)?;
        }
        Ok(())
    }

    /// Stores the references of a resource that holds none yet (a create), in one statement.
    /// A target deleted meanwhile is `ForeignKey`.
    pub async fn insert_refs(&mut self, from: Uuid, refs: &[(String, Uuid)]) -> StoreResult<()> {
        let rows = held_by(from, refs);
        self.replace_refs(&[], &rows).await
    }
}

/// `refs` (field, target) as rows held by `from`.
fn held_by(from: Uuid, refs: &[(String, Uuid)]) -> Vec<(Uuid, String, Uuid)> {
    refs.iter()
        .map(|(field, to)| (from, field.clone(), *to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbound_service_lookup_spells_the_kind_code() {
        // The partial index `resources_inbound_service` applies only to this literal.
        assert_eq!(Kind::InboundIntent.code(), "inbound_intent");
    }

    #[test]
    fn a_resolve_statement_chains_one_cte_per_segment() {
        let sql = resolve_sql(3);
        assert!(sql.contains("s2 AS") && !sql.contains("s3 AS"), "{sql}");
        assert!(
            sql.contains("r.parent_id = $10"),
            "the root id is the last parameter: {sql}"
        );
    }
}
