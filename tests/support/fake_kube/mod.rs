//! A fake Kubernetes API server for integration tests.
//!
//! It serves, over plain HTTP on `127.0.0.1`, what meshintent needs from a cluster: discovery
//! (`/version`, `/api`, `/apis`, aggregated discovery, the Istio groups) and the Istio custom
//! resources of `networking.istio.io/v1` and `security.istio.io/v1` (namespaced), with
//! server-side apply (field managers, conflicts, `force`), GET, LIST (label and field
//! selectors, paging), DELETE (preconditions), plus create (POST), update (PUT), JSON
//! merge patch and JSON patch (RFC 6902). Errors are `metav1.Status` objects.
//!
//! ```ignore
//! #[path = "support/fake_kube/mod.rs"]
//! mod fake_kube;
//!
//! let fake = fake_kube::FakeKube::start().await;
//! let client = fake.client().await; // kubeconfig -> kube::Config -> kube::Client
//! ```
//!
//! Read-only built-in kinds for the analysis and the cluster check (`builtin.rs`): core v1
//! Namespaces, Services, Pods, Secrets and apps/v1 Deployments (GET, LIST, seeded with
//! [`FakeKube::insert_builtin`]), and SelfSubjectAccessReviews answered from per-token rules
//! ([`FakeKube::add_user`], [`FakeKube::kubeconfig_with_token`]).
//!
//! Test hooks: failure injection ([`FakeKube::fail_next`], [`FakeKube::reject_apply`]),
//! slow answers ([`FakeKube::set_delay`], [`FakeKube::delay_next`]), request recording
//! ([`FakeKube::requests`], [`FakeKube::writes`] for writes that were not `dryRun=All`), direct state access ([`FakeKube::object`],
//! [`FakeKube::insert_object`]) and stop/restart on the same port ([`FakeKube::stop`],
//! [`FakeKube::restart`]).
//!
//! Simplified compared with kube-apiserver:
//! - Field ownership tracks leaf paths: lists are atomic (as in a CRD schema without
//!   `x-kubernetes-list-type`), maps are not. Of `metadata`, only labels and annotations are
//!   applied and owned; `status` in a request body is ignored (a status subresource).
//!   Conflicts are exact per path; `managedFields` are real `FieldsV1` but without `k:`/`v:`
//!   keys.
//! - No schema validation (use [`FakeKube::reject_apply`]), no Namespace objects (every
//!   namespace exists), no watch (`?watch=true` answers 405), strategic merge answers 415
//!   as for any custom resource, no finalizers or graceful deletion, one served version
//!   (`v1`) per group.
//! - Like the real one, numbers are stored as the JSON round trip of a custom resource
//!   leaves them: a whole-number float (`10.0`) comes back as an integer (`10`).
//! - The server has no keep-alive, so a stopped server always refuses connections rather
//!   than resetting pooled ones. Stopping with a request in flight takes about a second.
#![allow(dead_code)]

mod builtin;
mod fields;
mod resources;
mod selector;
mod server;
mod status;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::web;
use serde_json::Value;

#[allow(unused_imports)]
pub use builtin::Permission;
pub use resources::RESOURCES;
use server::{Running, Shared, State};

/// Makes the next `times` requests matching `method` (e.g. `"PATCH"`, case-insensitive) and
/// `path_contains` (a substring of the URL path, without the query) fail with `status`.
/// `None` matches anything. The answer is the `Status` a real API server gives for that
/// code (`NotFound`, `Conflict`, `Invalid`, `TooManyRequests` with `Retry-After`,
/// `InternalError`, `ServiceUnavailable`, ...). Rules are checked in the order added; a
/// failed request changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailRule {
    pub method: Option<&'static str>,
    pub path_contains: Option<&'static str>,
    pub status: u16,
    pub times: usize,
}

/// Delays the answer to the next `times` requests matching `method` and `path_contains`
/// (see [`FailRule`]) by `delay`. The request is processed at once (its effect is visible
/// in the state); only the answer waits, like a server that applied a write whose answer
/// never reached a client that timed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelayRule {
    pub method: Option<&'static str>,
    pub path_contains: Option<&'static str>,
    pub delay: Duration,
    pub times: usize,
}

/// One request the fake received (also requests that failed, injected or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Increasing number, unique for the fake's lifetime.
    pub id: u64,
    pub method: String,
    /// The URL path, without the query.
    pub path: String,
    /// The raw (URL-encoded) query string, without `?`.
    pub query: String,
    pub content_type: Option<String>,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The HTTP status answered.
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// A decoded query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (apply bodies sent by kube are JSON).
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// PATCH, PUT, POST or DELETE.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "PATCH" | "PUT" | "POST" | "DELETE")
            // A SelfSubjectAccessReview (a cluster check) is a question; nothing is stored.
            && !self.path.ends_with("/selfsubjectaccessreviews")
    }

    /// `?dryRun=All`, in the query (or, for a DELETE, in its `DeleteOptions` body): the API
    /// server validates and answers, and stores nothing.
    pub fn is_dry_run(&self) -> bool {
        self.query_param("dryRun").as_deref() == Some("All")
            || self
                .body_json()
                .and_then(|b| b["dryRun"].as_array().cloned())
                .is_some_and(|d| d.iter().any(|v| v == "All"))
    }
}

/// Installs rustls' ring provider as the process default, unless one is installed already.
/// Test binaries link both ring (sqlx) and aws-lc-rs (reqwest), and then rustls cannot choose
/// one by itself: building a `kube::Client` would panic, even for a plain-HTTP server.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A fake API server running inside the test process. Dropping it stops the server.
pub struct FakeKube {
    shared: web::Data<Shared>,
    port: u16,
    running: Mutex<Option<Running>>,
}

impl FakeKube {
    /// Starts a fake API server on `127.0.0.1` on a random free port.
    pub async fn start() -> FakeKube {
        install_crypto_provider();
        let shared = web::Data::new(Shared {
            token: format!("fake-{}", uuid::Uuid::new_v4().simple()),
            state: Mutex::new(State::default()),
        });
        let (running, port) = server::spawn(shared.clone(), (Ipv4Addr::LOCALHOST, 0).into())
            .expect("fake kube: bind 127.0.0.1:0");
        FakeKube {
            shared,
            port,
            running: Mutex::new(Some(running)),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bearer token the server requires (it is in [`FakeKube::kubeconfig`]).
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Whether requests need `Authorization: Bearer <token>` (default true; `/version` and
    /// the health endpoints never do). Without it the answer is 401 Unauthorized.
    pub fn set_require_auth(&self, required: bool) {
        self.shared.lock().require_auth = required;
    }

    /// A kubeconfig for this server: one cluster, a token user, one context (namespace
    /// `default`), `current-context` set.
    pub fn kubeconfig(&self) -> String {
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
users:
- name: fake-user
  user:
    token: {token}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake-user
    namespace: default
current-context: fake
preferences: {{}}
"#,
            url = self.base_url(),
            token = self.token()
        )
    }

    /// `kube::Config` from [`FakeKube::kubeconfig`], the way a service loads a kubeconfig.
    /// Note that kube retries 429/503/504 by default (`config.default_retry`).
    pub async fn config(&self) -> kube::Config {
        install_crypto_provider();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig())
            .expect("fake kube: kubeconfig parses");
        kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("fake kube: kubeconfig loads")
    }

    /// A `kube::Client` for this server built from [`FakeKube::config`].
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config().await).expect("fake kube: client builds")
    }

    // ---- lifecycle -------------------------------------------------------------------------

    pub fn is_running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Stops the server: the listening socket is closed (new connections are refused) and
    /// open connections are dropped. The state is kept. Stopping twice is a no-op.
    pub async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(running) = running {
            // Graceful with a zero shutdown timeout: waits until the workers have dropped every
            // connection (in-flight requests are cut off).
            running.handle.stop(true).await;
            let _ = running.task.await;
        }
    }

    /// Starts the server again on the same port, with the same state. A no-op when running.
    pub async fn restart(&self) {
        if self.is_running() {
            return;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut attempt = 0;
        let running = loop {
            match server::spawn(self.shared.clone(), addr) {
                Ok((running, _)) => break running,
                // The old socket may take a moment to be released.
                Err(_) if attempt < 50 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("fake kube: cannot rebind {addr}: {e}"),
            }
        };
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(running);
    }

    // ---- failure injection -----------------------------------------------------------------

    /// See [`FailRule`].
    pub fn fail_next(&self, rule: FailRule) {
        if rule.times > 0 {
            self.shared.lock().fail_rules.push(rule);
        }
    }

    /// Removes all pending [`FailRule`]s.
    pub fn clear_failures(&self) {
        self.shared.lock().fail_rules.clear();
    }

    /// Makes every server-side apply of an object named `name` (any kind, any namespace)
    /// fail with 422 Invalid, as a schema validation error would. The Status message is
    /// `Kind.group "name" is invalid: <message>`, e.g. with message
    /// `spec.trafficPolicy.tls.mode: Unsupported value: "SUPER_MUTUAL"`.
    pub fn reject_apply(&self, name: &str, message: &str) {
        self.shared
            .lock()
            .rejected_names
            .insert(name.to_string(), message.to_string());
    }

    pub fn clear_reject_apply(&self, name: &str) {
        self.shared.lock().rejected_names.remove(name);
    }

    /// Delays every answer (`None`: no delay). [`DelayRule`]s take precedence.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.shared.lock().delay = delay;
    }

    /// See [`DelayRule`].
    pub fn delay_next(&self, rule: DelayRule) {
        if rule.times > 0 {
            self.shared.lock().delay_rules.push(rule);
        }
    }

    /// The `Retry-After` (seconds) of injected 429 answers; default 1, like kube-apiserver.
    pub fn set_retry_after(&self, seconds: u64) {
        self.shared.lock().retry_after = seconds;
    }

    // ---- request recording -----------------------------------------------------------------

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Recorded PATCH, PUT, POST and DELETE requests (whatever their answer).
    pub fn write_count(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_write())
            .count()
    }

    /// Recorded PATCH, PUT, POST and DELETE requests that were not dry runs (whatever their
    /// answer): what could have changed the store.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_write() && !r.is_dry_run())
            .cloned()
            .collect()
    }

    // ---- state -----------------------------------------------------------------------------

    /// A stored object, e.g. `object("networking.istio.io", "destinationrules", "default", "x")`.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = resource_type(group, plural)?;
        self.shared.lock().store.get(rt, namespace, name).ok()
    }

    /// Every stored object, sorted by group, resource, namespace and name.
    pub fn objects(&self) -> Vec<Value> {
        self.shared.lock().store.objects.values().cloned().collect()
    }

    /// Stores an object directly (no HTTP, no failure injection), as if `manager` had created
    /// or updated it with a non-apply write (managedFields operation `Update`). An empty
    /// `manager` leaves no managed fields (an object from a tool without field tracking);
    /// `metadata.managedFields` given in `object` are kept as given. `apiVersion`, `kind`
    /// and `metadata.name` are required; the namespace defaults to `default`. uid,
    /// resourceVersion, generation and creationTimestamp are filled in. Returns the stored
    /// object.
    pub fn insert_object(&self, object: Value, manager: &str) -> Value {
        self.shared.lock().store.insert(object, manager)
    }

    /// Removes a stored object directly; returns whether it existed.
    pub fn remove_object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> bool {
        resource_type(group, plural)
            .is_some_and(|rt| self.shared.lock().store.remove(rt, namespace, name))
    }

    /// The current global resourceVersion counter.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.revision
    }
}

/// The served resource type `plural` of `group` (objects are stored only for these).
fn resource_type(group: &str, plural: &str) -> Option<&'static resources::ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(running) = self
            .running
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            // The command is sent at once; it completes if the runtime lives on.
            drop(running.handle.stop(false));
        }
    }
}
