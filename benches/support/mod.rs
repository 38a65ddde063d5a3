//! Shared by the benchmarks: where the database is, and an authenticated client.

// Each benchmark binary uses some of these modules only.
#[allow(dead_code)]
pub mod deploy_floor;
#[allow(dead_code)]
pub mod documents;
#[allow(dead_code)]
pub mod kube_requests;
#[allow(dead_code)]
pub mod server;

use meshintent::configuration::{DatabaseSettings, SecretKeySource};
use meshintent::crypto::SecretBox;
use meshintent::store::PostgresSettings;

/// The embedded SQLite database in `dir`, or a fresh schema on the PostgreSQL server of
/// `MESHINTENT_BENCH_POSTGRES`.
#[allow(dead_code)] // not every benchmark talks to a database
pub async fn database(dir: &std::path::Path) -> (DatabaseSettings, SecretKeySource, &'static str) {
    match std::env::var("MESHINTENT_BENCH_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(base) => {
            use sqlx::Connection;
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let url = format!(
                "{base}{}options[search_path]={schema}",
                if base.contains('?') { '&' } else { '?' }
            );
            (
                DatabaseSettings::Postgres(PostgresSettings {
                    url,
                    max_connections: 20,
                }),
                SecretKeySource::Value(SecretBox::generate_key()),
                "PostgreSQL",
            )
        }
        None => {
            let db = DatabaseSettings::Sqlite {
                path: dir.join("meshintent.db"),
            };
            let key = SecretKeySource::resolve(None, &db).unwrap();
            (db, key, "SQLite")
        }
    }
}

/// A client that sends `token` as a bearer credential with every request.
#[allow(dead_code)]
pub fn authenticated_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value: reqwest::header::HeaderValue = format!("Bearer {token}").parse().unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}
