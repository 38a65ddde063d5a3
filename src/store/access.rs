//! Namespace ownership, API token secrets, role-binding lookup and the audit log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::resources::{ResourceRow, now};
use super::{StoreError, StoreResult, Tx, on_conn};

/// A token found by the hash of its secret, with the project it belongs to (project tokens).
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub token: ResourceRow,
    pub project: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A role binding with the project it belongs to (project bindings).
#[derive(Clone, Debug)]
pub struct BindingRow {
    pub binding: ResourceRow,
    pub project: Option<String>,
}

/// What an audit event records (SPEC section 6, "Audit").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub project: Option<String>,
    pub revision_before: Option<i64>,
    pub revision_after: Option<i64>,
    pub status: u16,
    pub request_id: String,
    pub message: Option<String>,
}

/// A stored audit event.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub project: Option<String>,
    pub revision_before: Option<i64>,
    pub revision_after: Option<i64>,
    pub status: i64,
    pub request_id: String,
    pub message: Option<String>,
}

/// Which audit events a list returns; every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub project: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only events of this resource (a URL path) and of the resources below it.
    pub resource: Option<String>,
    /// Only events with a larger id (paging).
    pub after_id: i64,
}

macro_rules! row_columns {
    () => {
        "r.id, r.kind, r.parent_id, r.name, r.version, r.description, r.user_data1, r.user_data2, r.spec, r.revision, r.created_at, r.updated_at, r.created_by, r.updated_by"
    };
}
const TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    row_columns!(),
    ", p.name AS project, s.last_used_at, s.hash FROM token_secrets s \
     JOIN resources r ON r.id = s.token_id \
     LEFT JOIN resources p ON p.id = r.parent_id AND p.kind = 'project' WHERE s.hash = $1"
);
const ROLE_BINDINGS: &str = concat!(
    "SELECT ",
    row_columns!(),
    ", p.name AS project FROM resources r \
     LEFT JOIN resources p ON p.id = r.parent_id AND p.kind = 'project' \
     WHERE r.kind IN ('global_role_binding', 'project_role_binding') ORDER BY r.id"
);

const NAMESPACE_OWNERS: &str = "SELECT n.namespace, p.name FROM project_namespaces n \
     JOIN resources p ON p.id = n.project_id WHERE n.project_id <> $1 ORDER BY n.namespace";
const OWNED_NAMESPACES: &str =
    "SELECT namespace FROM project_namespaces WHERE project_id = $1 ORDER BY namespace";
const ALL_OWNED_NAMESPACES: &str = "SELECT n.namespace, p.name FROM project_namespaces n \
     JOIN resources p ON p.id = n.project_id ORDER BY n.namespace";
const RELEASE_NAMESPACES: &str = "DELETE FROM project_namespaces WHERE project_id = $1";
const CLAIM_NAMESPACE: &str =
    "INSERT INTO project_namespaces (namespace, project_id) VALUES ($1, $2)";
const INSERT_TOKEN_SECRET: &str = "INSERT INTO token_secrets (token_id, hash) VALUES ($1, $2)";
const TOUCH_TOKEN: &str = "UPDATE token_secrets SET last_used_at = $2 WHERE token_id = $1";
const INSERT_AUDIT: &str = "INSERT INTO audit_events \
     (time, actor, action, resource, project, revision_before, revision_after, status, request_id, message) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const COUNT_ADMIN_TOKENS: &str = "SELECT COUNT(*) FROM resources WHERE kind = 'global_token'";

#[derive(sqlx::FromRow)]
struct TokenJoin {
    #[sqlx(flatten)]
    token: ResourceRow,
    project: Option<String>,
    last_used_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct BindingJoin {
    #[sqlx(flatten)]
    binding: ResourceRow,
    project: Option<String>,
}

impl Tx {
    /// Namespaces owned by projects other than `project`, with their owner's name.
    pub async fn namespaces_owned_by_others(
        &mut self,
        project: Uuid,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, (String, String)>(NAMESPACE_OWNERS)
                .bind(project)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Every owned namespace with its owner's name.
    pub async fn namespace_owners(&mut self) -> StoreResult<Vec<(String, String)>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, (String, String)>(ALL_OWNED_NAMESPACES)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn owned_namespaces(&mut self, project: Uuid) -> StoreResult<Vec<String>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_scalar::<_, String>(OWNED_NAMESPACES)
                .bind(project)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Makes `namespaces` the set `project` owns. A namespace another project holds is
    /// `Duplicate` (the primary key decides between concurrent claims).
    pub async fn claim_namespaces(
        &mut self,
        project: Uuid,
        namespaces: &[String],
    ) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(RELEASE_NAMESPACES)
                .bind(project)
                .execute(&mut *c)
                .await?;
        });
        for namespace in namespaces {
            let result = on_conn!(self, |c| {
                sqlx::query(CLAIM_NAMESPACE)
                    .bind(namespace.as_str())
                    .bind(project)
                    .execute(&mut *c)
                    .await
                    .map(|_| ())
            });
            result.map_err(StoreError::classify)?;
        }
        Ok(())
    }

    pub async fn put_token_secret(&mut self, token: Uuid, hash: &[u8]) -> StoreResult<()> {
        let result = on_conn!(self, |c| {
            sqlx::query(INSERT_TOKEN_SECRET)
                .bind(token)
                .bind(hash)
                .execute(&mut *c)
                .await
                .map(|_| ())
        });
        result.map_err(StoreError::classify)
    }

    /// The token whose secret hashes to `hash`. The database finds the row by its unique
    /// index; the caller compares the hashes again in constant time.
    pub async fn token_by_hash(&mut self, hash: &[u8]) -> StoreResult<Option<(TokenRow, Vec<u8>)>> {
        #[derive(sqlx::FromRow)]
        struct WithHash {
            #[sqlx(flatten)]
            join: TokenJoin,
            hash: Vec<u8>,
        }
        let row = on_conn!(self, |c| {
            sqlx::query_as::<_, WithHash>(TOKEN_BY_HASH)
                .bind(hash)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row.map(|r| {
            (
                TokenRow {
                    token: r.join.token,
                    project: r.join.project,
                    last_used_at: r.join.last_used_at,
                },
                r.hash,
            )
        }))
    }

    /// `lastUsedAt` of the tokens among `ids`.
    pub async fn token_last_used(
        &mut self,
        ids: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, Option<DateTime<Utc>>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = on_conn!(self, |c| {
                sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
                    "SELECT last_used_at FROM token_secrets WHERE token_id = $1",
                )
                .bind(*id)
                .fetch_optional(&mut *c)
                .await?
            });
            out.push((*id, row.flatten()));
        }
        Ok(out)
    }

    pub async fn touch_token(&mut self, token: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(TOUCH_TOKEN)
                .bind(token)
                .bind(at)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Records that the bootstrap secret with this hash is being turned into a token. False if
    /// it was before (by this or another replica).
    pub async fn claim_bootstrap(&mut self, hash: &[u8]) -> StoreResult<bool> {
        let done = on_conn!(self, |c| {
            sqlx::query(
                "INSERT INTO bootstrap_tokens (hash, created_at) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
            )
            .bind(hash)
            .bind(now())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// How many global (admin-capable) tokens exist: bootstrap only runs on none.
    pub async fn count_global_tokens(&mut self) -> StoreResult<i64> {
        let n = on_conn!(self, |c| {
            sqlx::query_scalar::<_, i64>(COUNT_ADMIN_TOKENS)
                .fetch_one(&mut *c)
                .await?
        });
        Ok(n)
    }

    /// Every global and project role binding.
    pub async fn role_bindings(&mut self) -> StoreResult<Vec<BindingRow>> {
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, BindingJoin>(ROLE_BINDINGS)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| BindingRow {
                binding: r.binding,
                project: r.project,
            })
            .collect())
    }

    pub async fn insert_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(INSERT_AUDIT)
                .bind(now())
                .bind(event.actor.as_str())
                .bind(event.action.as_str())
                .bind(event.resource.as_str())
                .bind(event.project.as_deref())
                .bind(event.revision_before)
                .bind(event.revision_after)
                .bind(i64::from(event.status))
                .bind(event.request_id.as_str())
                .bind(event.message.as_deref())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Audit events matching `filter`, oldest first, at most `limit`.
    pub async fn audit_events(
        &mut self,
        filter: &AuditFilter,
        limit: u32,
    ) -> StoreResult<Vec<AuditRow>> {
        // Optional filters as `($n IS NULL OR column = $n)`, so one statement serves all.
        const SQL: &str = "SELECT id, time, actor, action, resource, project, revision_before, revision_after, \
             CAST(status AS BIGINT) AS status, request_id, message FROM audit_events WHERE id > $1 \
             AND ($2 IS NULL OR project = $2) AND ($3 IS NULL OR actor = $3) \
             AND ($4 IS NULL OR time >= $4) AND ($5 IS NULL OR time < $5) \
             AND ($7 IS NULL OR resource = $7 OR substr(resource, 1, length($7) + 1) = $7 || '/') \
             ORDER BY id LIMIT $6";
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, AuditRow>(SQL)
                .bind(filter.after_id)
                .bind(filter.project.as_deref())
                .bind(filter.actor.as_deref())
                .bind(filter.since)
                .bind(filter.until)
                .bind(i64::from(limit))
                .bind(filter.resource.as_deref())
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }
}
