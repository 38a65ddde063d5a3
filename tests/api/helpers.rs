//! Starts the real application (real HTTP, real database) for one test.
//!
//! Every test runs twice: on a fresh SQLite file, and on a fresh PostgreSQL schema (the
//! `::postgres` variants, ignored unless run with `-- --ignored ::postgres` and
//! `MESHINTENT_TEST_POSTGRES` holding a PostgreSQL URL). Each PostgreSQL run appends its name to
//! `MESHINTENT_TEST_PG_LOG` (if set), so CI can prove the PostgreSQL tests really ran.

use std::io::Write;
use std::path::PathBuf;

use meshintent::configuration::{DatabaseSettings, SecretKeySource, Settings};
use meshintent::crypto::SecretBox;
use meshintent::startup::Application;
use meshintent::store::PostgresSettings;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// An admin API token (the bootstrap token); every request sends it unless told otherwise.
    pub token: String,
    pub backend: Backend,
    /// The SQLite file, or the PostgreSQL URL with the test's schema.
    pub database: DatabaseLocation,
    dir: PathBuf,
    /// Removed with the last app on the directory.
    owns_dir: bool,
    running: Option<meshintent::startup::RunningApplication>,
    /// What the server was started with (another replica starts with the same).
    settings: Settings,
}

#[derive(Clone)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server and worker (and so close the database pool) when the test lets go.
        if let Some(running) = self.running.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(running.kill());
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Fast retries and a short lease, so failure tests finish quickly.
pub fn test_push_settings() -> meshintent::push::PushSettings {
    meshintent::push::PushSettings {
        retry: meshintent::push::RetryPolicy {
            attempts: 3,
            base_delay: std::time::Duration::from_millis(20),
            max_delay: std::time::Duration::from_millis(100),
        },
        object_concurrency: 4,
        connect_timeout: std::time::Duration::from_secs(2),
        request_timeout: std::time::Duration::from_secs(5),
        outage: meshintent::push::OutagePolicy {
            first_probe_delay: std::time::Duration::from_millis(50),
            max_probe_delay: std::time::Duration::from_millis(200),
            give_up_after: std::time::Duration::from_secs(20),
        },
    }
}

pub fn test_worker_settings() -> meshintent::worker::WorkerSettings {
    meshintent::worker::WorkerSettings {
        lease: std::time::Duration::from_secs(2),
        poll_interval: std::time::Duration::from_millis(100),
        // Sets with a short `spec.sync.interval` are checked that often (the default set
        // interval, 5m, never comes up in a test).
        reconcile: Some(meshintent::reconciler::ReconcileSettings {
            min_interval: std::time::Duration::from_secs(1),
            poll_interval: std::time::Duration::from_millis(100),
            lease: std::time::Duration::from_secs(2),
        }),
        ..Default::default()
    }
}

/// A new API token secret (the form `MESHINTENT_BOOTSTRAP_TOKEN` takes).
pub fn new_token_secret() -> String {
    meshintent::auth::token::generate()
}

/// The settings a test server runs with.
pub fn test_settings(
    database: &DatabaseLocation,
    secret_key: &SecretKeySource,
    worker: bool,
    bootstrap_token: Option<String>,
) -> Settings {
    let database_settings = match database {
        DatabaseLocation::Sqlite(path) => DatabaseSettings::Sqlite { path: path.clone() },
        DatabaseLocation::Postgres(url) => DatabaseSettings::Postgres(PostgresSettings {
            url: url.clone(),
            max_connections: 8,
        }),
    };
    Settings {
        listen: "127.0.0.1:0".into(),
        database: database_settings,
        secret_key: secret_key.clone(),
        handle_signals: false,
        shutdown_timeout: 1,
        workers: Some(2),
        worker: worker.then(test_worker_settings),
        push: test_push_settings(),
        auth: meshintent::auth::AuthSettings::default(),
        max_body_bytes: meshintent::configuration::DEFAULT_MAX_BODY_BYTES,
        max_document_bytes: meshintent::configuration::DEFAULT_MAX_DOCUMENT_BYTES,
        bootstrap_token,
        metrics_listen: None,
        events: meshintent::service::events::EventSettings {
            poll_interval: std::time::Duration::from_millis(200),
            ..Default::default()
        },
    }
}

/// Starts a server with these settings; returns its address.
pub async fn start_with(settings: &Settings) -> (String, meshintent::startup::RunningApplication) {
    let app = Application::build(settings)
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    (address, app.spawn())
}

impl TestApp {
    /// The service layer on the app's database, for tests that call it without HTTP (such as
    /// counting the statements of one write).
    pub async fn service(&self) -> meshintent::service::Service {
        let secrets = self
            .settings
            .secret_key
            .load()
            .expect("the test's secret key");
        meshintent::service::Service::new(self.store().await, secrets)
    }

    /// A store on the app's database, for looking under the API.
    pub async fn store(&self) -> meshintent::store::Store {
        match &self.database {
            DatabaseLocation::Sqlite(path) => meshintent::store::Store::connect_sqlite(path)
                .await
                .unwrap(),
            DatabaseLocation::Postgres(url) => {
                meshintent::store::Store::connect_postgres(&PostgresSettings {
                    url: url.clone(),
                    max_connections: 20,
                })
                .await
                .unwrap()
            }
        }
    }

    /// Another server (and worker) on the same database, as a second replica or a restart.
    pub async fn another(&self) -> TestApp {
        let mut settings = self.settings.clone();
        settings.worker = Some(test_worker_settings());
        let (address, running) = start_with(&settings).await;
        TestApp {
            address,
            client: reqwest::Client::new(),
            token: self.token.clone(),
            backend: self.backend,
            database: self.database.clone(),
            dir: self.dir.clone(),
            owns_dir: false,
            running: Some(running),
            settings,
        }
    }

    /// The port of the metrics listener, when the settings gave it one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.running.as_ref().and_then(|r| r.metrics_port)
    }

    /// Stops the server and worker as SIGTERM does (the database stays).
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Stops the server and worker at once, as a crash would (the database stays).
    pub async fn kill(&mut self) {
        if let Some(running) = self.running.take() {
            running.kill().await;
        }
    }
}

/// The PostgreSQL server URL for tests. The `::postgres` tests are `#[ignore]`d, so that a
/// plain `cargo test` lists them as ignored rather than as passed; run with `--ignored`, they
/// need the URL, and fail without it.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("MESHINTENT_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    assert!(
        url.is_some(),
        "MESHINTENT_TEST_POSTGRES is not set: the ::postgres tests need a PostgreSQL URL, e.g. MESHINTENT_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo test -- --ignored ::postgres"
    );
    url
}

/// Creates a fresh schema and returns a URL whose connections use it.
pub async fn fresh_postgres_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("mi_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("MESHINTENT_TEST_POSTGRES must point to a reachable PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

pub fn record_postgres_run(test: &str) {
    if let Ok(path) = std::env::var("MESHINTENT_TEST_PG_LOG") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open MESHINTENT_TEST_PG_LOG");
        // One write of the whole line: tests record in parallel, and `writeln!` may split a line
        // into several writes that interleave with another test's (two names run together).
        file.write_all(format!("{test}\n").as_bytes())
            .expect("write MESHINTENT_TEST_PG_LOG");
    }
}

/// Starts the app on `backend`, or returns None when PostgreSQL tests are not enabled.
pub async fn spawn_app(backend: Backend, test: &str) -> Option<TestApp> {
    spawn_app_with(backend, test, true).await
}

/// Like `spawn_app`, choosing whether the app runs a deploy worker.
pub async fn spawn_app_with(backend: Backend, test: &str, worker: bool) -> Option<TestApp> {
    spawn_app_configured(backend, test, worker, |_, _| {}).await
}

/// Like `spawn_app_with`; `configure` may change the settings (given the test's directory)
/// before the server starts.
pub async fn spawn_app_configured(
    backend: Backend,
    test: &str,
    worker: bool,
    configure: impl FnOnce(&mut Settings, &std::path::Path),
) -> Option<TestApp> {
    let dir = std::env::temp_dir().join(format!("meshintent-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (location, secret_key) = match backend {
        Backend::Sqlite => {
            let path = dir.join("meshintent.db");
            let db = DatabaseSettings::Sqlite { path: path.clone() };
            let key = SecretKeySource::resolve(None, &db).unwrap();
            (DatabaseLocation::Sqlite(path), key)
        }
        Backend::Postgres => {
            let Some(base) = postgres_url() else {
                eprintln!(
                    "{test}: PostgreSQL run skipped (set MESHINTENT_TEST_POSTGRES to enable)"
                );
                let _ = std::fs::remove_dir_all(&dir);
                return None;
            };
            record_postgres_run(test);
            let url = fresh_postgres_schema(&base).await;
            (
                DatabaseLocation::Postgres(url),
                SecretKeySource::Value(SecretBox::generate_key()),
            )
        }
    };
    let token = new_token_secret();
    let mut settings = test_settings(&location, &secret_key, worker, Some(token.clone()));
    configure(&mut settings, &dir);
    let (address, running) = start_with(&settings).await;
    Some(TestApp {
        address,
        client: reqwest::Client::new(),
        token,
        backend,
        database: location,
        dir,
        owns_dir: true,
        running: Some(running),
        settings,
    })
}

/// A response read whole: status, headers, and the body as text and as JSON.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body parsed as JSON: null when empty, a string when it is not JSON.
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {:#}",
            self.body
        );
        self
    }

    /// Asserts an RFC 9457 problem with this status that names `field`.
    #[track_caller]
    pub fn expect_problem(self, status: u16, field: &str) -> Reply {
        let reply = self.expect(status);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "errors are problem+json"
        );
        for key in ["type", "title", "status", "detail"] {
            assert!(
                reply.body.get(key).is_some(),
                "problem lacks {key}: {}",
                reply.body
            );
        }
        let fields: Vec<&str> = reply.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.contains(&field),
            "expected an error on {field}, got {fields:?}: {}",
            reply.body
        );
        reply
    }

    /// The message of the error on `field`.
    pub fn message(&self, field: &str) -> String {
        self.body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["field"] == field)
            .and_then(|e| e["message"].as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

pub async fn read(response: Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
    };
    Reply {
        status,
        headers,
        text,
        body,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with the admin token (unless `headers` carry an `authorization` of their own;
    /// an empty one sends none).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        let own = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(k, v)| !(k.eq_ignore_ascii_case("authorization") && v.is_empty()))
            .copied()
            .collect();
        if own.is_none() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        read(req.send().await.expect("request sent")).await
    }

    /// A request with `token` (None: no credential at all).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
        self.request(method, path, body, &[("authorization", &bearer)])
            .await
    }

    /// Creates a token in `collection` (`/v2/tokens` or `/v2/projects/{p}/tokens`) and returns
    /// its secret, which only this response carries.
    pub async fn create_token(&self, collection: &str, body: Value) -> String {
        let reply = self.post(collection, body).await.expect(201);
        reply.body["status"]["secret"]
            .as_str()
            .expect("the 201 carries the secret")
            .to_owned()
    }

    /// An API client of the meshintent crate, with the admin token.
    pub fn api_client(&self) -> meshintent::apply::ApiClient {
        meshintent::apply::ApiClient::new(&self.address)
            .unwrap()
            .with_token(Some(self.token.clone()))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(&body), &[]).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.request(Method::PUT, path, Some(&body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, None, &[]).await
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(&self, method: Method, path: &str, content_type: &str, body: &str) -> Reply {
        let req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body.to_owned());
        read(req.send().await.unwrap()).await
    }

    /// The storefront scenario of the original design: clusters, project `shop`, composite
    /// app `storefront` v1 with apps `httpbin` (cluster01) and `sleep` (cluster02), set `default`.
    pub async fn seed_storefront(&self) {
        self.seed_storefront_with(&[]).await;
    }

    /// The storefront scenario, the clusters reached with `kubeconfigs` (cluster01's, then
    /// cluster02's; a cluster without one has no credentials).
    pub async fn seed_storefront_with(&self, kubeconfigs: &[String]) {
        for (i, (name, address)) in [
            ("cluster01", "198.51.100.10"),
            ("cluster02", "198.51.100.20"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut spec = json!({"identity": format!("{name}.mesh.example.com"),
                                  "istio": {"ingressGateway": {"address": address}}});
            if let Some(kubeconfig) = kubeconfigs.get(i) {
                spec["kubeconfig"] = json!(kubeconfig);
            }
            self.post(
                "/v2/clusters",
                json!({"metadata": {"name": name}, "spec": spec}),
            )
            .await
            .expect(201);
        }
        self.post(
            "/v2/projects",
            json!({"metadata": {"name": "shop"}, "spec": {"namespaces": ["default"]}}),
        )
        .await
        .expect(201);
        self.post(
            "/v2/projects/shop/composite-apps",
            json!({"metadata": {"name": "storefront"}, "spec": {"version": "v1"}}),
        )
        .await
        .expect(201);
        for (app, cluster) in [("httpbin", "cluster01"), ("sleep", "cluster02")] {
            self.post(
                &format!("{CA}/apps"),
                json!({
                    "metadata": {"name": app},
                    "spec": {"namespace": "default", "placement": {"clusters": [cluster]}}
                }),
            )
            .await
            .expect(201);
        }
        self.post(
            &format!("{CA}/traffic-intent-sets"),
            json!({"metadata": {"name": "default"}}),
        )
        .await
        .expect(201);
    }

    /// Adds client `sleep` (app sleep) to inbound intent `intent`; returns the clients' path.
    pub async fn add_sleep_client(&self, intent: &str) -> String {
        let clients = format!("{SET}/inbound-intents/{intent}/clients");
        self.post(
            &clients,
            json!({"metadata": {"name": "sleep"}, "spec": {"app": "sleep"}}),
        )
        .await
        .expect(201);
        clients
    }

    /// Adds inbound intent `httpbin` (`httpbin_intent`) with client sleep; returns the clients'
    /// path.
    pub async fn add_httpbin_with_sleep_client(&self) -> String {
        self.post(&format!("{SET}/inbound-intents"), httpbin_intent())
            .await
            .expect(201);
        self.add_sleep_client("httpbin").await
    }

    /// Lets client sleep of httpbin GET /status only (security intent `status`).
    pub async fn add_status_rule(&self) {
        self.post(
            &format!("{SET}/inbound-intents/httpbin/clients/sleep/security-intents"),
            json!({"metadata": {"name": "status"},
                   "spec": {"rules": [{"methods": ["GET"], "paths": ["/status"]}]}}),
        )
        .await
        .expect(201);
    }
}

pub const CA: &str = "/v2/projects/shop/composite-apps/storefront/v1";
pub const SET: &str = "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default";

pub fn httpbin_intent() -> Value {
    json!({
        "metadata": {"name": "httpbin", "description": "httpbin with circuit breaking"},
        "spec": {
            "app": "httpbin", "serviceName": "httpbin", "port": 8000, "protocol": "HTTP",
            "trafficPolicy": {
                "connectionPool": {"maxConnections": 10, "connectTimeout": "10s"},
                "outlierDetection": {"consecutive5xxErrors": 7, "interval": "5m", "baseEjectionTime": "15m"}
            }
        }
    })
}

/// Runs the test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    // `configure` changes the settings before the server starts (see `spawn_app_configured`).
    ($name:ident, configure = $configure:expr, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app_configured($crate::helpers::Backend::Sqlite, concat!(module_path!(), "::sqlite"), true, $configure)
                    .await
                    .unwrap();
                run(app).await;
            }

            #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_app_configured($crate::helpers::Backend::Postgres, concat!(module_path!(), "::postgres"), true, $configure).await {
                    run(app).await;
                }
            }
        }
    };
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite, concat!(module_path!(), "::sqlite"))
                    .await
                    .unwrap();
                run(app).await;
            }

            #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres, concat!(module_path!(), "::postgres")).await {
                    run(app).await;
                }
            }
        }
    };
}

/// Runs `$body` with `$conn`, a connection to the app's database (SQLite or PostgreSQL), for
/// tests that look or write under the API.
#[macro_export]
macro_rules! on_db {
    ($app:expr, |$conn:ident| $body:block) => {
        match &$app.database {
            $crate::helpers::DatabaseLocation::Sqlite(path) => {
                let mut $conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                    "sqlite:{}",
                    path.display()
                ))
                .await
                .unwrap();
                $body
            }
            $crate::helpers::DatabaseLocation::Postgres(url) => {
                let mut $conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                $body
            }
        }
    };
}
