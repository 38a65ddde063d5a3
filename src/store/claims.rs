//! Mesh-name claims (SPEC 7): which set owns each name a rendered object decides on a cluster,
//! and which of its intents need it. The owner table's primary key makes two concurrent claims
//! of one name by different sets impossible: the second insert waits for the first and finds
//! it taken.

use uuid::Uuid;

use super::{StoreResult, Tx, on_conn};

/// One claimed name on one cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaimKey {
    pub cluster_id: Uuid,
    /// What kind of name (see `domain::claim::ClaimKind::as_str`).
    pub kind: String,
    pub name: String,
}

/// A name held by another set, with one of that set's intents that needs it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimHolder {
    pub cluster_id: Uuid,
    pub kind: String,
    pub name: String,
    pub set_id: Uuid,
    pub intent_id: Option<Uuid>,
}

/// A name that a set's intent needs while another set owns it (data stored before claims).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimCollision {
    pub cluster_id: Uuid,
    pub kind: String,
    pub name: String,
    pub owner_set_id: Uuid,
    pub set_id: Uuid,
    pub intent_id: Uuid,
}

/// Binds each key's cluster, kind and name, in order (placeholders from `key_tuples`).
macro_rules! bind_keys {
    ($query:expr, $keys:expr) => {{
        let mut query = $query;
        for key in $keys {
            query = query.bind(key.cluster_id).bind(&key.kind).bind(&key.name);
        }
        query
    }};
}

/// `(prefix$first, $first+1, $first+2), ...` for `rows` keys (cluster, kind, name).
fn key_tuples(first: usize, rows: usize, prefix: &str) -> String {
    super::placeholder_tuples(prefix, first, 3, rows)
}

const HOLDER_INTENT: &str = "(SELECT s.intent_id FROM mesh_claim_sources s WHERE s.cluster_id = o.cluster_id \
     AND s.kind = o.kind AND s.name = o.name AND s.set_id = o.set_id ORDER BY s.intent_id LIMIT 1)";

impl Tx {
    /// The names an intent needs, as recorded.
    pub async fn claim_sources_of(&mut self, intent: Uuid) -> StoreResult<Vec<ClaimKey>> {
        let rows: Vec<(Uuid, String, String)> = on_conn!(self, |c| {
            sqlx::query_as(
                "SELECT cluster_id, kind, name FROM mesh_claim_sources WHERE intent_id = $1 \
                 ORDER BY cluster_id, kind, name",
            )
            .bind(intent)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(cluster_id, kind, name)| ClaimKey {
                cluster_id,
                kind,
                name,
            })
            .collect())
    }

    /// Claims `keys` for `set` where nobody holds them yet; returns those another set holds.
    pub async fn claim_names(
        &mut self,
        set: Uuid,
        keys: &[ClaimKey],
    ) -> StoreResult<Vec<ClaimHolder>> {
        let mut held = Vec::new();
        for chunk in keys.chunks(self.rows_per_statement(3)) {
            let insert = format!(
                "INSERT INTO mesh_claims (set_id, cluster_id, kind, name) VALUES {} ON CONFLICT DO NOTHING",
                key_tuples(2, chunk.len(), "$1, ")
            );
            on_conn!(self, |c| {
                bind_keys!(
                    sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind(set),
                    chunk
                )
                .execute(&mut *c)
                .await?;
            });
            held.extend(self.claim_holders(set, chunk).await?);
        }
        Ok(held)
    }

    /// Of `keys`, those another set owns (reading only).
    pub async fn claim_holders(
        &mut self,
        set: Uuid,
        keys: &[ClaimKey],
    ) -> StoreResult<Vec<ClaimHolder>> {
        let mut held = Vec::new();
        for chunk in keys.chunks(self.rows_per_statement(3)) {
            let select = format!(
                "SELECT o.cluster_id, o.kind, o.name, o.set_id, {HOLDER_INTENT} AS intent_id \
                 FROM mesh_claims o WHERE o.set_id <> $1 AND (o.cluster_id, o.kind, o.name) IN ({}) \
                 ORDER BY o.cluster_id, o.kind, o.name",
                key_tuples(2, chunk.len(), "")
            );
            let rows: Vec<ClaimHolder> = on_conn!(self, |c| {
                bind_keys!(
                    sqlx::query_as(sqlx::AssertSqlSafe(select.clone())).bind(set),
                    chunk
                )
                .fetch_all(&mut *c)
                .await?
            });
            held.extend(rows);
        }
        Ok(held)
    }

    /// Records that `intent` (of `set`) needs `keys`.
    pub async fn add_claim_sources(
        &mut self,
        intent: Uuid,
        set: Uuid,
        keys: &[ClaimKey],
    ) -> StoreResult<()> {
        for chunk in keys.chunks(self.rows_per_statement(3)) {
            let sql = format!(
                "INSERT INTO mesh_claim_sources (intent_id, set_id, cluster_id, kind, name) VALUES {} \
                 ON CONFLICT DO NOTHING",
                key_tuples(3, chunk.len(), "$1, $2, ")
            );
            on_conn!(self, |c| {
                bind_keys!(
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(intent)
                        .bind(set),
                    chunk
                )
                .execute(&mut *c)
                .await?;
            });
        }
        Ok(())
    }

    /// Forgets that `intent` needs `keys`, and releases those of them that no intent of the
    /// owning set needs any more (handing a name to a colliding set that still needs it).
    pub async fn drop_claim_sources(
        &mut self,
        intent: Uuid,
        set: Uuid,
        keys: &[ClaimKey],
    ) -> StoreResult<()> {
        for chunk in keys.chunks(self.rows_per_statement(3)) {
            let delete = format!(
                "DELETE FROM mesh_claim_sources WHERE intent_id = $1 AND (cluster_id, kind, name) IN ({})",
                key_tuples(2, chunk.len(), "")
            );
            on_conn!(self, |c| {
                bind_keys!(
                    sqlx::query(sqlx::AssertSqlSafe(delete.clone())).bind(intent),
                    chunk
                )
                .execute(&mut *c)
                .await?;
            });
        }
        self.release_unneeded(set, keys).await
    }

    /// Releases the names among `keys` that `set` owns but none of its intents needs.
    pub async fn release_unneeded(&mut self, set: Uuid, keys: &[ClaimKey]) -> StoreResult<()> {
        for chunk in keys.chunks(self.rows_per_statement(3)) {
            let release = format!(
                "DELETE FROM mesh_claims WHERE set_id = $1 AND (cluster_id, kind, name) IN ({}) \
                 AND NOT EXISTS (SELECT 1 FROM mesh_claim_sources s WHERE s.set_id = mesh_claims.set_id \
                   AND s.cluster_id = mesh_claims.cluster_id AND s.kind = mesh_claims.kind AND s.name = mesh_claims.name)",
                key_tuples(2, chunk.len(), "")
            );
            let hand_over = format!(
                "INSERT INTO mesh_claims (set_id, cluster_id, kind, name) \
                 SELECT s.set_id, s.cluster_id, s.kind, s.name FROM mesh_claim_sources s \
                 WHERE (s.cluster_id, s.kind, s.name) IN ({}) ORDER BY s.set_id \
                 ON CONFLICT DO NOTHING",
                key_tuples(1, chunk.len(), "")
            );
            on_conn!(self, |c| {
                bind_keys!(
                    sqlx::query(sqlx::AssertSqlSafe(release.clone())).bind(set),
                    chunk
                )
                .execute(&mut *c)
                .await?;
            });
            on_conn!(self, |c| {
                bind_keys!(sqlx::query(sqlx::AssertSqlSafe(hand_over.clone())), chunk)
                    .execute(&mut *c)
                    .await?;
            });
        }
        Ok(())
    }

    /// Releases every name `set` owns that none of its intents needs (after intents went
    /// with a delete that did not name them one by one).
    pub async fn release_unneeded_of_set(&mut self, set: Uuid) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(
                "DELETE FROM mesh_claims WHERE set_id = $1 AND NOT EXISTS (SELECT 1 FROM mesh_claim_sources s \
                 WHERE s.set_id = mesh_claims.set_id AND s.cluster_id = mesh_claims.cluster_id \
                   AND s.kind = mesh_claims.kind AND s.name = mesh_claims.name)",
            )
            .bind(set)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Names the set's intents need that another set owns.
    pub async fn claim_collisions(
        &mut self,
        set: Option<Uuid>,
    ) -> StoreResult<Vec<ClaimCollision>> {
        const SQL: &str = "SELECT s.cluster_id, s.kind, s.name, o.set_id AS owner_set_id, s.set_id, s.intent_id \
             FROM mesh_claim_sources s JOIN mesh_claims o \
               ON o.cluster_id = s.cluster_id AND o.kind = s.kind AND o.name = s.name \
             WHERE o.set_id <> s.set_id";
        let rows = on_conn!(self, |c| {
            match set {
                Some(set) => {
                    sqlx::query_as::<_, ClaimCollision>(sqlx::AssertSqlSafe(format!(
                        "{SQL} AND (s.set_id = $1 OR o.set_id = $1) ORDER BY s.cluster_id, s.kind, s.name"
                    )))
                    .bind(set)
                    .fetch_all(&mut *c)
                    .await?
                }
                None => {
                    sqlx::query_as::<_, ClaimCollision>(sqlx::AssertSqlSafe(format!(
                        "{SQL} ORDER BY s.cluster_id, s.kind, s.name"
                    )))
                    .fetch_all(&mut *c)
                    .await?
                }
            }
        });
        Ok(rows)
    }

    /// Whether the claims of data stored before claims existed have been derived.
    pub async fn claims_derived(&mut self) -> StoreResult<bool> {
        let n: i64 = on_conn!(self, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM mesh_claims_derived")
                .fetch_one(&mut *c)
                .await?
        });
        Ok(n > 0)
    }

    pub async fn mark_claims_derived(&mut self) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query("INSERT INTO mesh_claims_derived (done) VALUES (TRUE)")
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }
}
