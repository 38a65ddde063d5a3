//! Shared by the benchmarks: where the database is, and an authenticated client.

use meshintent::configuration::{DatabaseSettings, SecretKeySource};
use meshintent::crypto::SecretBox;
use meshintent::store::PostgresSettings;

/// The embedded SQLite database in `dir`, or a fresh schema on the PostgreSQL server of
/// `MESHINTENT_BENCH_POSTGRES`.
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
