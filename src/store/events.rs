//! The event table behind the SSE streams (SPEC 8 "Events"; migration 0007).
//!
//! **Ids become visible in commit order.** A reader resumes "strictly after id N", so it must
//! never find, later, a committed event of its stream with an id below N. SQLite gives that for
//! free: a writer holds the single write lock (`BEGIN IMMEDIATE`) from its first statement to
//! commit, so ids are taken and committed one writer at a time. On PostgreSQL a sequence value is
//! taken at insert and becomes visible at commit, so two writers can commit out of id order.
//! Every insert therefore takes a transaction-level advisory lock on its project first (in the
//! same statement), held until the transaction ends: within one project, the next writer takes
//! its ids only after the previous one committed (or rolled back). Every stream is within one
//! project (a set's or a project's), so no stream ever sees ids out of order. Ids of different
//! projects may interleave in any way, which no reader can observe. Event inserts are the last
//! write of their transaction, so the lock is held for the commit only and never waited on while
//! holding it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::{StoreResult, Tx, TxInner, on_conn, placeholder_tuples};

/// An event to store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub project: String,
    /// The URL path of the set (`/v2/projects/.../traffic-intent-sets/...`).
    pub set_path: String,
    pub event_type: &'static str,
    pub data: Value,
}

/// A stored event.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub project: String,
    pub set_path: String,
    pub event_type: String,
    pub data: Json<Value>,
    pub created_at: DateTime<Utc>,
}

/// Which stream an event read is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventScope {
    /// One set, by its URL path.
    Set(String),
    /// Every set of a project, by its name.
    Project(String),
}

/// Rows removed by one retention statement.
const PRUNE_BATCH: i64 = 5_000;

impl Tx {
    /// Stores `events`, one statement per project (and per 500 events). On PostgreSQL each
    /// statement first takes the project's event lock (see the module documentation); call it
    /// as the last write of the transaction.
    pub async fn insert_events(&mut self, events: &[NewEvent]) -> StoreResult<()> {
        let mut projects: Vec<&str> = events.iter().map(|e| e.project.as_str()).collect();
        projects.sort_unstable();
        projects.dedup();
        let now = super::resources::now();
        for project in projects {
            let mine: Vec<&NewEvent> = events.iter().filter(|e| e.project == project).collect();
            for chunk in mine.chunks(self.rows_per_statement(4)) {
                let values = placeholder_tuples("$1, ", 2, 4, chunk.len());
                let postgres = matches!(self.inner, TxInner::Postgres(_));
                let sql = if postgres {
                    // The lock's row joins every value row, so the lock is taken before the
                    // first id is.
                    format!(
                        "INSERT INTO events (project, set_path, event_type, data, created_at) \
                         SELECT v.project, v.set_path, v.event_type, v.data, v.created_at \
                         FROM (SELECT pg_advisory_xact_lock(hashtextextended('meshintent.events:' || $1, 0))) AS l, \
                         (VALUES {values}) AS v (project, set_path, event_type, data, created_at)"
                    )
                } else {
                    format!(
                        "INSERT INTO events (project, set_path, event_type, data, created_at) VALUES {values}"
                    )
                };
                on_conn!(self, |c| {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(project);
                    for event in chunk {
                        query = query
                            .bind(event.set_path.as_str())
                            .bind(event.event_type)
                            .bind(Json(&event.data))
                            .bind(now);
                    }
                    query.execute(&mut *c).await?;
                });
            }
        }
        Ok(())
    }

    /// Events of `scope` with an id above `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &mut self,
        scope: &EventScope,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRow>> {
        const COLUMNS: &str =
            "SELECT id, project, set_path, event_type, data, created_at FROM events";
        let (sql, key) = match scope {
            EventScope::Set(path) => (
                format!("{COLUMNS} WHERE set_path = $1 AND id > $2 ORDER BY id LIMIT $3"),
                path,
            ),
            EventScope::Project(project) => (
                format!("{COLUMNS} WHERE project = $1 AND id > $2 ORDER BY id LIMIT $3"),
                project,
            ),
        };
        let rows = on_conn!(self, |c| {
            sqlx::query_as::<_, EventRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(key.as_str())
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// The newest id of `scope` (0 when it has none): where a stream without `Last-Event-ID`
    /// starts.
    pub async fn last_event_id(&mut self, scope: &EventScope) -> StoreResult<i64> {
        let (sql, key) = match scope {
            EventScope::Set(path) => (
                "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM events WHERE set_path = $1",
                path,
            ),
            EventScope::Project(project) => (
                "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM events WHERE project = $1",
                project,
            ),
        };
        let id = on_conn!(self, |c| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(key.as_str())
                .fetch_one(&mut *c)
                .await?
        });
        Ok(id)
    }

    /// Removes up to 5,000 events created before `cutoff`; returns how many it removed.
    pub async fn prune_events(&mut self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM events WHERE id IN \
             (SELECT id FROM events WHERE created_at < $1 ORDER BY id LIMIT $2)";
        let done = on_conn!(self, |c| {
            sqlx::query(SQL)
                .bind(cutoff)
                .bind(PRUNE_BATCH)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(done)
    }
}
