//! Settings of the server, from flags and environment variables.

use std::path::{Path, PathBuf};

use crate::crypto::{CryptoError, SecretBox};
use crate::store::{PostgresSettings, Store, StoreError};

/// Where intents are stored.
#[derive(Clone, Debug)]
pub enum DatabaseSettings {
    Postgres(PostgresSettings),
    /// The embedded default: a SQLite file.
    Sqlite {
        path: PathBuf,
    },
}

impl DatabaseSettings {
    /// `DATABASE_URL` if given (`postgres://...` or `sqlite:PATH`), else `meshintent.db` in `dir`.
    pub fn from_url(url: Option<&str>, dir: &Path, max_connections: u32) -> Result<Self, String> {
        match url {
            None | Some("") => Ok(DatabaseSettings::Sqlite {
                path: dir.join("meshintent.db"),
            }),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(DatabaseSettings::Postgres(PostgresSettings {
                    url: url.to_owned(),
                    max_connections,
                }))
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                Ok(DatabaseSettings::Sqlite {
                    path: PathBuf::from(path),
                })
            }
            Some(_) => {
                Err("DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into())
            }
        }
    }

    pub async fn connect(&self) -> Result<Store, StoreError> {
        match self {
            DatabaseSettings::Postgres(pg) => Store::connect_postgres(pg).await,
            DatabaseSettings::Sqlite { path } => Store::connect_sqlite(path).await,
        }
    }

    /// A description without credentials, for logs.
    pub fn describe(&self) -> String {
        match self {
            DatabaseSettings::Postgres(pg) => match url::Url::parse(&pg.url) {
                Ok(u) => format!(
                    "PostgreSQL at {}:{}{}",
                    u.host_str().unwrap_or("?"),
                    u.port().unwrap_or(5432),
                    u.path()
                ),
                Err(_) => "PostgreSQL".into(),
            },
            DatabaseSettings::Sqlite { path } => format!("SQLite file {}", path.display()),
        }
    }
}

/// Where the key for secrets at rest comes from.
#[derive(Clone, Debug)]
pub enum SecretKeySource {
    /// `MESHINTENT_SECRET_KEY`: 32 bytes, base64.
    Value(String),
    /// A key file created on first use (the embedded default keeps it next to the database).
    File(PathBuf),
}

impl SecretKeySource {
    /// The given key; without one, a key file beside the SQLite database. PostgreSQL, being
    /// shared by replicas, needs the key given explicitly.
    pub fn resolve(key: Option<&str>, database: &DatabaseSettings) -> Result<Self, String> {
        match (key, database) {
            (Some(k), _) if !k.is_empty() => Ok(SecretKeySource::Value(k.to_owned())),
            (_, DatabaseSettings::Sqlite { path }) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                Ok(SecretKeySource::File(dir.join("meshintent.key")))
            }
            (_, DatabaseSettings::Postgres(_)) => Err(
                "MESHINTENT_SECRET_KEY is required with PostgreSQL (32 random bytes, base64: `openssl rand -base64 32`); \
                 every replica must use the same key"
                    .into(),
            ),
        }
    }

    pub fn load(&self) -> Result<SecretBox, CryptoError> {
        match self {
            SecretKeySource::Value(key) => SecretBox::from_base64(key),
            SecretKeySource::File(path) => SecretBox::from_key_file(path),
        }
    }
}

/// Everything `meshintent serve` needs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: String,
    pub database: DatabaseSettings,
    pub secret_key: SecretKeySource,
    /// Install SIGTERM/SIGINT handlers (off for servers embedded in tests).
    pub handle_signals: bool,
    /// Seconds a graceful shutdown waits for requests in flight.
    pub shutdown_timeout: u64,
    pub workers: Option<usize>,
    /// The deploy worker of this process (None: this replica serves the API only).
    pub worker: Option<crate::worker::WorkerSettings>,
    /// How deploys talk to clusters.
    pub push: crate::push::PushSettings,
    /// Authentication (API tokens, OIDC) and its limits.
    pub auth: crate::auth::AuthSettings,
    /// Largest request body accepted (`MESHINTENT_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Largest set document accepted by `PUT .../document` (`MESHINTENT_MAX_DOCUMENT_BYTES`).
    pub max_document_bytes: usize,
    /// Serve `/metrics` on this address instead of the API's (`MESHINTENT_METRICS_LISTEN`).
    pub metrics_listen: Option<String>,
    /// An admin token to create at start if no token has its secret
    /// (`MESHINTENT_BOOTSTRAP_TOKEN`, e.g. from a Kubernetes Secret).
    pub bootstrap_token: Option<String>,
    /// Event streams and the event table's retention (`--event-retention`).
    pub events: crate::service::events::EventSettings,
}

/// Default of `MESHINTENT_MAX_BODY_BYTES`: 1 MiB (kubeconfigs can be tens of kilobytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Default of `MESHINTENT_MAX_DOCUMENT_BYTES`: 256 MiB, a set of about 100,000 inbound
/// intents with three clients each as JSON.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

impl DatabaseSettings {
    /// Where the embedded default writes the first admin token: beside the database.
    pub fn admin_token_file(&self) -> Option<PathBuf> {
        match self {
            DatabaseSettings::Sqlite { path } => Some(
                path.parent()
                    .unwrap_or(Path::new("."))
                    .join("meshintent.admin-token"),
            ),
            DatabaseSettings::Postgres(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_without_url() {
        let db = DatabaseSettings::from_url(None, Path::new("/data"), 10).unwrap();
        assert!(
            matches!(&db, DatabaseSettings::Sqlite { path } if path == Path::new("/data/meshintent.db"))
        );
        let key = SecretKeySource::resolve(None, &db).unwrap();
        assert!(matches!(key, SecretKeySource::File(p) if p == Path::new("/data/meshintent.key")));
    }

    #[test]
    fn postgres_needs_a_key_and_hides_credentials() {
        let db =
            DatabaseSettings::from_url(Some("postgres://user:pw@db:5433/mesh"), Path::new("."), 10)
                .unwrap();
        assert!(SecretKeySource::resolve(None, &db).is_err());
        let shown = db.describe();
        assert!(!shown.contains("pw"), "{shown}");
        assert!(shown.contains("db:5433/mesh"), "{shown}");
    }

    #[test]
    fn other_urls_are_rejected() {
        assert!(DatabaseSettings::from_url(Some("mysql://x"), Path::new("."), 1).is_err());
        assert!(matches!(
            DatabaseSettings::from_url(Some("sqlite:/tmp/x.db"), Path::new("."), 1).unwrap(),
            DatabaseSettings::Sqlite { .. }
        ));
    }
}
