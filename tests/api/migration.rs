//! Migration 0004 (namespace ownership) on existing data: projects claim the namespaces their
//! apps use; two projects sharing one stop the migration with a message naming both.

use std::path::{Path, PathBuf};

use meshintent::store::{PostgresSettings, Store};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{fresh_postgres_schema, postgres_url, record_postgres_run};

/// A directory holding the migrations before access control (0001-0003).
fn migrations_before_0004(backend: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let dir = std::env::temp_dir().join(format!("meshintent-migrations-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0004" {
            std::fs::copy(&path, dir.join(name)).unwrap();
        }
    }
    dir
}

/// Rows as version 0.3 wrote them: project `name` with composite app `ca` v1 and one app per
/// namespace.
const INSERT: &str = "INSERT INTO resources (id, kind, parent_id, name_scope, name, version, spec, revision, created_at, updated_at) \
     VALUES ($1, $2, $3, $2, $4, $5, $6, 1, $7, $7)";

macro_rules! seed {
    ($conn:expr, $projects:expr) => {{
        let now = chrono::Utc::now();
        for (project, namespaces) in $projects {
            let p = Uuid::new_v4();
            let ca = Uuid::new_v4();
            let rows: Vec<(Uuid, &str, Uuid, String, &str, serde_json::Value)> = vec![
                (p, "project", Uuid::nil(), project.to_string(), "", json!({})),
                (ca, "composite_app", p, "ca".into(), "v1", json!({"version": "v1"})),
            ];
            for (id, kind, parent, name, version, spec) in rows {
                sqlx::query(INSERT)
                    .bind(id)
                    .bind(kind)
                    .bind(parent)
                    .bind(name)
                    .bind(version)
                    .bind(sqlx::types::Json(spec))
                    .bind(now)
                    .execute(&mut *$conn)
                    .await
                    .unwrap();
            }
            for (i, ns) in namespaces.iter().enumerate() {
                sqlx::query(INSERT)
                    .bind(Uuid::new_v4())
                    .bind("app")
                    .bind(ca)
                    .bind(format!("app{i}"))
                    .bind("")
                    .bind(sqlx::types::Json(json!({"namespace": ns, "placement": {"clusters": ["c1"]}})))
                    .bind(now)
                    .execute(&mut *$conn)
                    .await
                    .unwrap();
            }
        }
    }};
}

async fn check(store: Store, shared: bool) {
    let result = store.migrate().await;
    if shared {
        let message = result.expect_err("the migration stops").to_string();
        assert!(
            message.contains("namespace \"shared\"")
                && message.contains("\"alpha\"")
                && message.contains("\"beta\""),
            "{message}"
        );
    } else {
        result.expect("the migration runs");
        let mut tx = store.begin_read().await.unwrap();
        let mut owners = tx.namespace_owners().await.unwrap();
        owners.sort();
        assert_eq!(
            owners,
            [
                ("a1".to_owned(), "alpha".to_owned()),
                ("a2".to_owned(), "alpha".to_owned()),
                ("b1".to_owned(), "beta".to_owned())
            ]
        );
        // And their specs say so, so that the API shows what they own.
        let key = meshintent::domain::resource::Key {
            name: "alpha".parse().unwrap(),
            version: None,
        };
        let alpha = tx
            .child(
                meshintent::store::ROOT_ID,
                meshintent::domain::resource::Kind::Project,
                &key,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alpha.spec.0, json!({"namespaces": ["a1", "a2"]}));
    }
}

fn projects(shared: bool) -> Vec<(&'static str, Vec<&'static str>)> {
    if shared {
        vec![("alpha", vec!["a1", "shared"]), ("beta", vec!["shared"])]
    } else {
        vec![("alpha", vec!["a1", "a2", "a1"]), ("beta", vec!["b1"])]
    }
}

async fn sqlite(shared: bool) {
    let dir = std::env::temp_dir().join(format!("meshintent-mig-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("meshintent.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let migrations = migrations_before_0004("sqlite");
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    seed!(conn, projects(shared));
    drop(conn);
    pool.close().await;
    check(Store::connect_sqlite(&path).await.unwrap(), shared).await;
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&migrations).ok();
}

async fn postgres(shared: bool, test: &str) {
    let Some(base) = postgres_url() else {
        eprintln!("{test}: PostgreSQL run skipped (set MESHINTENT_TEST_POSTGRES to enable)");
        return;
    };
    record_postgres_run(test);
    let url = fresh_postgres_schema(&base).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let migrations = migrations_before_0004("postgres");
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    seed!(conn, projects(shared));
    drop(conn);
    pool.close().await;
    let store = Store::connect_postgres(&PostgresSettings {
        url,
        max_connections: 2,
    })
    .await
    .unwrap();
    check(store, shared).await;
    std::fs::remove_dir_all(&migrations).ok();
}

mod existing_projects_claim_their_apps_namespaces {
    #[tokio::test]
    async fn sqlite() {
        super::sqlite(false).await;
    }

    #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
    #[tokio::test]
    async fn postgres() {
        super::postgres(false, concat!(module_path!(), "::postgres")).await;
    }
}

mod a_namespace_shared_by_two_projects_stops_the_migration {
    #[tokio::test]
    async fn sqlite() {
        super::sqlite(true).await;
    }

    #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
    #[tokio::test]
    async fn postgres() {
        super::postgres(true, concat!(module_path!(), "::postgres")).await;
    }
}
