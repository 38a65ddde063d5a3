//! The only place with SQL. One `Store` speaks to PostgreSQL (production) or to an embedded
//! SQLite file (the zero-setup default); both run the same statements unless noted.

mod access;
mod claims;
mod cluster_checks;
mod deployments;
mod events;
mod reconcile;
mod resources;
mod vips;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

pub use access::{AuditFilter, AuditRow, BindingRow, NewAuditEvent, TokenRow};
pub use claims::{ClaimCollision, ClaimHolder, ClaimKey};
pub use deployments::{
    ClusterRow, DeploymentHead, DeploymentRow, InventoryRow, Manifests, NewDeployment,
    ObjectProgress, ObjectRow,
};
pub use events::{EventRow, EventScope, NewEvent};
pub use reconcile::{ClusterBackoff, ReconcileCandidate, ReconcileResult, ReconcileRow};
pub use resources::{NewResource, NewRow, ROOT_ID, Referrer, ResourceRow, SetLocation};
pub use vips::{VipProbe, VipRow};

/// Why a store operation failed, in terms the service layer can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint: a sibling with the same name exists.
    #[error("duplicate")]
    Duplicate,
    /// Existing data the next migration cannot carry over; the message says what to fix.
    #[error("{0}")]
    Precondition(String),
    /// A foreign key: the row is still referenced (by children or by other resources), or a
    /// referenced row is gone.
    #[error("foreign key violation")]
    ForeignKey,
    /// A stored value that does not parse (a state, a kind, a manifest): the row is damaged or
    /// was written by a newer release.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database could not be opened at start-up; the message names where and why.
    #[error("{0}")]
    Connect(String),
}

impl StoreError {
    /// Maps constraint violations by their kind (never by message text).
    fn classify(error: sqlx::Error) -> StoreError {
        if let Some(db) = error.as_database_error() {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => return StoreError::Duplicate,
                sqlx::error::ErrorKind::ForeignKeyViolation => return StoreError::ForeignKey,
                _ => {}
            }
        }
        StoreError::Database(error)
    }
}

impl StoreError {
    /// Whether the database could not be reached (a 503 rather than a bug).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug)]
enum Backend {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// One transaction. Dropping it without `commit` rolls it back.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Postgres(PgConn),
    Sqlite(Transaction<'static, Sqlite>),
}

/// A PostgreSQL transaction, or a plain connection whose statements each run alone (for a read
/// of one resource: no `BEGIN`/`COMMIT` round trips).
enum PgConn {
    Transaction(Transaction<'static, Postgres>),
    Plain(sqlx::pool::PoolConnection<Postgres>),
}

impl PgConn {
    fn conn(&mut self) -> &mut sqlx::PgConnection {
        match self {
            PgConn::Transaction(t) => t,
            PgConn::Plain(c) => c,
        }
    }
}

tokio::task_local! {
    /// Statements sent by the current task, when it runs inside `count_statements`.
    static STATEMENTS: std::cell::Cell<u64>;
}

/// The placeholders of a multi-row statement: `rows` tuples, each `row_prefix` (shared
/// parameters a row repeats, such as `$1, `) followed by `width` placeholders numbered from
/// `first` on: `($1, $2, $3), ($1, $4, $5)`.
pub(crate) fn placeholder_tuples(
    row_prefix: &str,
    first: usize,
    width: usize,
    rows: usize,
) -> String {
    (0..rows)
        .map(|row| {
            let start = first + row * width;
            let params: Vec<String> = (start..start + width).map(|p| format!("${p}")).collect();
            format!("({row_prefix}{})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `work` and counts the SQL statements it sends (transaction control included). For
/// tests and benchmarks that hold the write path to a fixed number of statements.
pub async fn count_statements<F: std::future::Future>(work: F) -> (F::Output, u64) {
    STATEMENTS
        .scope(std::cell::Cell::new(0), async {
            let out = work.await;
            (out, STATEMENTS.with(|n| n.get()))
        })
        .await
}

/// Counts one statement (a no-op outside `count_statements`).
pub(crate) fn statement_sent() {
    let _ = STATEMENTS.try_with(|n| n.set(n.get() + 1));
}

/// Runs `$body` with `$conn` bound to the transaction's connection, for either backend. The
/// body is compiled twice, so each backend's types are checked on their own. Each use sends
/// one statement.
macro_rules! on_conn {
    ($tx:expr, |$conn:ident| $body:expr) => {{
        $crate::store::statement_sent();
        match &mut $tx.inner {
            $crate::store::TxInner::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = t.conn();
                $body
            }
            $crate::store::TxInner::Sqlite(t) => {
                let $conn: &mut sqlx::SqliteConnection = &mut **t;
                $body
            }
        }
    }};
}
pub(crate) use on_conn;

/// One connection before the pool is built, so that a failure names the address and the cause
/// (a pool only reports that it timed out). Unreachable servers are retried for 5 seconds (a
/// database starting beside meshintent); a refusal by the server (a wrong password, a missing
/// database) fails at once.
async fn check_postgres(options: &PgConnectOptions) -> StoreResult<()> {
    use sqlx::{ConnectOptions, Connection};
    let server = format!(
        "PostgreSQL at {}:{} (database \"{}\")",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match options.connect().await {
            Ok(connection) => {
                let _ = connection.close().await;
                return Ok(());
            }
            Err(e) => {
                let retry =
                    matches!(e, sqlx::Error::Io(_)) && tokio::time::Instant::now() < deadline;
                if !retry {
                    return Err(StoreError::Connect(format!(
                        "cannot connect to {server}: {}",
                        connect_cause(&e)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Why a connection failed, without the driver's framing (a server's error is its message,
/// not "error returned from database: ... at line 948").
fn connect_cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            _ => io.to_string(),
        },
        other => other.to_string(),
    }
}

/// Connection settings for PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresSettings {
    pub url: String,
    pub max_connections: u32,
}

impl Store {
    pub async fn connect_postgres(settings: &PostgresSettings) -> StoreResult<Store> {
        let options = PgConnectOptions::from_str(&settings.url)?;
        check_postgres(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Store {
            backend: Backend::Postgres(pool),
        })
    }

    /// Opens (creating if needed) the embedded SQLite database at `path`.
    pub async fn connect_sqlite(path: &Path) -> StoreResult<Store> {
        // The directory is created like the file (`--data-dir` need not exist yet).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Connect(format!(
                    "cannot create the directory {} for the SQLite database: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Connect(format!(
                    "cannot open the SQLite database {}: {}",
                    path.display(),
                    connect_cause(&e)
                ))
            })?;
        Ok(Store {
            backend: Backend::Sqlite(pool),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        self.check_namespace_migration().await?;
        match &self.backend {
            Backend::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
            Backend::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Before migration 0004 (namespace ownership): existing projects will claim the
    /// namespaces their apps use, so two projects whose apps share a namespace must be
    /// separated first. Stops with a message naming both.
    async fn check_namespace_migration(&self) -> StoreResult<()> {
        const APPLIED: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 4";
        macro_rules! shared {
            ($ns:literal) => {
                concat!(
                    "SELECT a.ns, a.project, b.project FROM \
                     (SELECT DISTINCT ", $ns, " AS ns, p.name AS project FROM resources app \
                       JOIN resources ca ON ca.id = app.parent_id JOIN resources p ON p.id = ca.parent_id \
                       WHERE app.kind = 'app' AND p.kind = 'project') a \
                     JOIN (SELECT DISTINCT ", $ns, " AS ns, p.name AS project FROM resources app \
                       JOIN resources ca ON ca.id = app.parent_id JOIN resources p ON p.id = ca.parent_id \
                       WHERE app.kind = 'app' AND p.kind = 'project') b \
                     ON a.ns = b.ns AND a.project < b.project ORDER BY a.ns, a.project, b.project"
                )
            };
        }
        let rows: Vec<(String, String, String)> = match &self.backend {
            Backend::Postgres(pool) => {
                let table: Option<String> =
                    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                        .fetch_one(pool)
                        .await?;
                if table.is_none()
                    || sqlx::query_scalar::<_, i64>(APPLIED)
                        .fetch_one(pool)
                        .await?
                        > 0
                {
                    return Ok(());
                }
                sqlx::query_as(shared!("app.spec ->> 'namespace'"))
                    .fetch_all(pool)
                    .await?
            }
            Backend::Sqlite(pool) => {
                let table: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
                )
                .fetch_one(pool)
                .await?;
                if table == 0
                    || sqlx::query_scalar::<_, i64>(APPLIED)
                        .fetch_one(pool)
                        .await?
                        > 0
                {
                    return Ok(());
                }
                sqlx::query_as(shared!("json_extract(app.spec, '$.namespace')"))
                    .fetch_all(pool)
                    .await?
            }
        };
        if rows.is_empty() {
            return Ok(());
        }
        let shared: Vec<String> = rows
            .iter()
            .map(|(ns, a, b)| {
                format!("namespace \"{ns}\" is used by apps of projects \"{a}\" and \"{b}\"")
            })
            .collect();
        Err(StoreError::Precondition(format!(
            "cannot migrate to namespace ownership: {}. A namespace can belong to one project only; \
             move one project's apps to another namespace (or delete them) with the previous \
             version of meshintent, then start this version again.",
            shared.join("; ")
        )))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Backend::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so concurrent writers queue instead of failing mid-way.
    pub async fn begin_write(&self) -> StoreResult<Tx> {
        statement_sent();
        let inner = match &self.backend {
            Backend::Postgres(pool) => TxInner::Postgres(PgConn::Transaction(pool.begin().await?)),
            Backend::Sqlite(pool) => TxInner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        };
        Ok(Tx { inner })
    }

    /// A transaction that only reads (a consistent snapshot on both backends).
    pub async fn begin_read(&self) -> StoreResult<Tx> {
        statement_sent();
        let inner = match &self.backend {
            Backend::Postgres(pool) => TxInner::Postgres(PgConn::Transaction(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            )),
            Backend::Sqlite(pool) => TxInner::Sqlite(pool.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// Reads whose statements need not share a snapshot (one resource and facts about it):
    /// on PostgreSQL a plain connection, sparing the `BEGIN` and `COMMIT` round trips; on
    /// SQLite a read transaction as `begin_read`. Writing through it is a bug.
    pub async fn begin_single_read(&self) -> StoreResult<Tx> {
        let inner = match &self.backend {
            Backend::Postgres(pool) => TxInner::Postgres(PgConn::Plain(pool.acquire().await?)),
            Backend::Sqlite(pool) => {
                statement_sent();
                TxInner::Sqlite(pool.begin().await?)
            }
        };
        Ok(Tx { inner })
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Postgres(pool) => pool.close().await,
            Backend::Sqlite(pool) => pool.close().await,
        }
    }
}

impl Tx {
    /// Undoes what the transaction wrote (a plan's trial write of a document).
    pub async fn rollback(self) -> StoreResult<()> {
        statement_sent();
        match self.inner {
            TxInner::Postgres(PgConn::Transaction(t)) => t.rollback().await?,
            TxInner::Postgres(PgConn::Plain(_)) => return Ok(()),
            TxInner::Sqlite(t) => t.rollback().await?,
        }
        Ok(())
    }

    pub async fn commit(self) -> StoreResult<()> {
        statement_sent();
        match self.inner {
            TxInner::Postgres(PgConn::Transaction(t)) => t.commit().await?,
            TxInner::Postgres(PgConn::Plain(_)) => return Ok(()),
            TxInner::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, TxInner::Postgres(_))
    }

    /// Rows per multi-row statement whose rows hold `width` values each. SQLite finds a
    /// numbered parameter by walking the list of all of them (when it parses the statement, and
    /// again when sqlx binds each value), so a statement's cost grows with the square of its
    /// parameters: 500 rows of 8 values cost 13 times as much per row as 64 rows. A few hundred
    /// parameters keep that negligible. PostgreSQL has no such cost: 500 rows (far below its
    /// 65,535 parameters).
    pub(crate) fn rows_per_statement(&self, width: usize) -> usize {
        match self.inner {
            TxInner::Postgres(_) => 500,
            TxInner::Sqlite(_) => (SQLITE_PARAMETERS_PER_STATEMENT / width.max(1)).max(1),
        }
    }
}

/// See [`Tx::rows_per_statement`].
const SQLITE_PARAMETERS_PER_STATEMENT: usize = 400;
