//! `meshintent apply`: makes a meshintent server hold every resource of an intent document,
//! creating what is missing and replacing what differs, in dependency order. Running it twice
//! changes nothing. Resources the document does not mention are left alone unless `--prune`
//! is given (then a set's members the document leaves out are deleted; nothing else is).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::deployment::{ClusterState, DeploymentState, ObjectState};
use crate::domain::document::IntentDocument;
use crate::domain::model::SetAddress;
use crate::domain::resource::{Key, Kind, Metadata, ResourcePath};

/// What apply did to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Replaced,
    Unchanged,
    /// A set member the document left out (with `--prune`), or whose name it gave to another
    /// kind of intent.
    Deleted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Replaced => "replaced",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Applied {
    /// The resource's API path.
    pub path: String,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The server refused a request; `detail` and `errors` come from its problem document.
    #[error("{method} {path}: {status} {detail}{}", fields(errors))]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        detail: String,
        errors: Vec<(String, String)>,
    },
    #[error("cannot reach the server at {url}: {message}")]
    Transport { url: String, message: String },
    #[error("the document is invalid:\n{0}")]
    Document(String),
    /// The server answered with something this client does not understand.
    #[error("{path}: unexpected answer: {message}")]
    Unexpected { path: String, message: String },
}

fn fields(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(f, m)| format!("\n  {f}: {m}"))
        .collect()
}

/// A small client of the meshintent API.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

/// Never prints the token.
impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ApiClient {
    pub fn new(base: &str) -> Result<Self, ApplyError> {
        let base = base.trim_end_matches('/').to_owned();
        url::Url::parse(&base).map_err(|e| ApplyError::Transport {
            url: base.clone(),
            message: e.to_string(),
        })?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ApplyError::Transport {
                url: base.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            base,
            http,
            token: None,
        })
    }

    /// Sends `token` as `Authorization: Bearer` on every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; a problem answer becomes `ApplyError::Api`, 404 on GET becomes None.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ApplyError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let response = req.send().await.map_err(|e| ApplyError::Transport {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ApplyError::Transport {
            url: url.clone(),
            message: e.to_string(),
        })?;
        if method == reqwest::Method::GET && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(Some(value));
        }
        let method_name = match method.as_str() {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            _ => "request",
        };
        Err(ApplyError::Api {
            method: method_name,
            path: path.to_owned(),
            status: status.as_u16(),
            detail: value["detail"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned),
            errors: value["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("").to_owned(),
                        e["message"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect(),
        })
    }
}

/// The metadata fields a client writes, for comparing with the server's.
fn writable(metadata: &Value) -> Value {
    json!({
        "description": metadata.get("description"),
        "userData1": metadata.get("userData1"),
        "userData2": metadata.get("userData2"),
    })
}

/// Creates the resource at `path` from `body`, or replaces it when it differs. `secret` means the
/// body carries a write-only field the server never returns, so equality cannot be seen: it is
/// sent, and the server reports (by the revision) whether anything changed.
async fn put(
    client: &ApiClient,
    path: &ResourcePath,
    body: Value,
    secret: bool,
) -> Result<Applied, ApplyError> {
    let url = path.url();
    let collection = path
        .parent()
        .collection_url(path.kind().expect("a resource path"));
    let outcome = match client.request(reqwest::Method::GET, &url, None).await? {
        None => {
            client
                .request(reqwest::Method::POST, &collection, Some(&body))
                .await?;
            Outcome::Created
        }
        Some(current) => {
            let same = writable(&current["metadata"]) == writable(&body["metadata"])
                && current["spec"] == body["spec"];
            if same && !secret {
                Outcome::Unchanged
            } else {
                let replaced = client
                    .request(reqwest::Method::PUT, &url, Some(&body))
                    .await?
                    .unwrap_or_default();
                if replaced["metadata"]["revision"] == current["metadata"]["revision"] {
                    Outcome::Unchanged
                } else {
                    Outcome::Replaced
                }
            }
        }
    };
    Ok(Applied { path: url, outcome })
}

/// The `{metadata, spec}` a client sends: the metadata it may write, and the spec.
fn envelope(metadata: &Metadata, spec: &impl Serialize) -> Value {
    json!({"metadata": metadata.clone().writable(), "spec": spec})
}

fn child(parent: &ResourcePath, kind: Kind, metadata: &Metadata) -> ResourcePath {
    parent.child(kind, Key::named(metadata.name.clone()))
}

/// Requests in flight at once for resources that do not depend on each other.
const PARALLEL_REQUESTS: usize = 8;

/// Runs `puts` with up to `PARALLEL_REQUESTS` in flight; results in the given order.
async fn all<F>(puts: Vec<F>) -> Result<Vec<Applied>, ApplyError>
where
    F: std::future::Future<Output = Result<Applied, ApplyError>>,
{
    use futures::StreamExt;
    futures::stream::iter(puts)
        .buffered(PARALLEL_REQUESTS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The answer of `PUT .../document`, as far as apply reads it.
#[derive(Deserialize)]
struct SetChanges {
    changes: Vec<MemberChange>,
}

#[derive(Deserialize)]
struct MemberChange {
    path: String,
    change: String,
}

/// Applies every resource of `document`, parents before children, references before referrers
/// (clusters, projects, composite apps, apps, sets), independent ones in parallel; each set's
/// members go in one request (`PUT .../document`, one transaction on the server). Without
/// `prune`, members a set holds that the document does not mention are kept.
pub async fn apply(
    client: &ApiClient,
    document: &IntentDocument,
    prune: bool,
) -> Result<Vec<Applied>, ApplyError> {
    // Check locally first, with pointers into the document, before anything is written; this
    // also fills the defaults the API fills, so what is sent is what the server stores.
    let mut document = document.clone();
    document
        .resolve()
        .map_err(|errors| ApplyError::Document(crate::domain::document::describe(&errors)))?;
    let mut applied = Vec::new();
    let root = ResourcePath::root();
    let clusters = document.clusters.iter().map(|cluster| {
        let mut body = envelope(&cluster.metadata, &cluster.spec);
        let kubeconfig = cluster.spec.kubeconfig.as_ref();
        if let Some(k) = kubeconfig {
            body["spec"]["kubeconfig"] = Value::String(k.expose().to_owned());
        }
        let path = child(&root, Kind::Cluster, &cluster.metadata);
        async move { put(client, &path, body, kubeconfig.is_some()).await }
    });
    applied.extend(all(clusters.collect()).await?);
    let projects = document.projects.iter().map(|project| {
        let path = child(&root, Kind::Project, &project.metadata);
        let body = envelope(&project.metadata, &project.spec);
        async move { put(client, &path, body, false).await }
    });
    applied.extend(all(projects.collect()).await?);
    let mut composite_apps = Vec::new();
    for project in &document.projects {
        let project_path = child(&root, Kind::Project, &project.metadata);
        for ca in &project.composite_apps {
            let ca_path = project_path.child(
                Kind::CompositeApp,
                Key {
                    name: ca.metadata.name.clone(),
                    version: Some(ca.spec.version.clone()),
                },
            );
            composite_apps.push((ca_path, ca));
        }
    }
    let cas = composite_apps.iter().map(|(path, ca)| {
        let body = envelope(&ca.metadata, &ca.spec);
        async move { put(client, path, body, false).await }
    });
    applied.extend(all(cas.collect()).await?);
    let apps = composite_apps.iter().flat_map(|(ca_path, ca)| {
        ca.apps.iter().map(move |app| {
            let path = child(ca_path, Kind::App, &app.metadata);
            let body = envelope(&app.metadata, &app.spec);
            async move { put(client, &path, body, false).await }
        })
    });
    applied.extend(all(apps.collect()).await?);
    for (ca_path, ca) in &composite_apps {
        for set in &ca.traffic_intent_sets {
            let set_path = child(ca_path, Kind::TrafficIntentSet, &set.metadata);
            let body = envelope(&set.metadata, &set.spec);
            applied.push(put(client, &set_path, body, false).await?);
            applied.extend(put_members(client, &set_path, set, prune).await?);
        }
    }
    Ok(applied)
}

/// Sends a set's members in one `PUT .../document` and reads what happened to each.
async fn put_members(
    client: &ApiClient,
    set_path: &ResourcePath,
    set: &crate::domain::document::DocIntentSet,
    prune: bool,
) -> Result<Vec<Applied>, ApplyError> {
    let url = format!("{}/document?prune={prune}", set_path.url());
    let body = serde_json::to_value(set).map_err(|e| ApplyError::Unexpected {
        path: url.clone(),
        message: e.to_string(),
    })?;
    let answer = client
        .request(reqwest::Method::PUT, &url, Some(&body))
        .await?
        .unwrap_or_default();
    let changes: SetChanges =
        serde_json::from_value(answer).map_err(|e| ApplyError::Unexpected {
            path: url.clone(),
            message: e.to_string(),
        })?;
    changes
        .changes
        .into_iter()
        .map(|c| {
            let outcome = match c.change.as_str() {
                "created" => Outcome::Created,
                "replaced" => Outcome::Replaced,
                "unchanged" => Outcome::Unchanged,
                "deleted" => Outcome::Deleted,
                other => {
                    return Err(ApplyError::Unexpected {
                        path: url.clone(),
                        message: format!("unknown change \"{other}\""),
                    });
                }
            };
            Ok(Applied {
                path: c.path,
                outcome,
            })
        })
        .collect()
}

/// The API paths of every traffic intent set of a document.
pub fn set_paths(document: &IntentDocument) -> Vec<ResourcePath> {
    let mut out = Vec::new();
    for project in &document.projects {
        for ca in &project.composite_apps {
            for set in &ca.traffic_intent_sets {
                let address = SetAddress {
                    project: project.metadata.name.clone(),
                    composite_app: ca.metadata.name.clone(),
                    version: ca.spec.version.clone(),
                    set: set.metadata.name.clone(),
                };
                out.push(address.path());
            }
        }
    }
    out
}

/// Queues a deploy of the set; returns the deployment's URL.
pub async fn deploy(client: &ApiClient, set: &ResourcePath) -> Result<String, ApplyError> {
    /// The part of the API's `DeploymentSummary` this needs.
    #[derive(Deserialize)]
    struct Queued {
        revision: i64,
    }
    let path = format!("{}/deploy", set.url());
    let queued = client
        .request(reqwest::Method::POST, &path, None)
        .await?
        .unwrap_or_default();
    let queued: Queued = serde_json::from_value(queued).map_err(|e| ApplyError::Unexpected {
        path,
        message: e.to_string(),
    })?;
    Ok(format!("{}/deployments/{}", set.url(), queued.revision))
}

/// A deployment's status as `meshintent apply` reads it (the API's `DeploymentStatus`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub revision: i64,
    pub state: DeploymentState,
    #[serde(default)]
    pub clusters: Vec<ClusterView>,
}

/// One cluster of a `StatusView`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub cluster: String,
    pub state: ClusterState,
    pub message: Option<String>,
    #[serde(default)]
    pub objects: Vec<ObjectView>,
}

/// One object of a `ClusterView`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectView {
    pub state: ObjectState,
}

/// Polls a deployment until it ends, calling `progress` with each new status; returns the last.
pub async fn wait(
    client: &ApiClient,
    deployment: &str,
    mut progress: impl FnMut(&StatusView),
    poll: std::time::Duration,
) -> Result<StatusView, ApplyError> {
    let mut last: Option<StatusView> = None;
    loop {
        let status = client
            .request(reqwest::Method::GET, deployment, None)
            .await?
            .ok_or_else(|| ApplyError::Transport {
                url: deployment.to_owned(),
                message: "the deployment disappeared".into(),
            })?;
        let status: StatusView =
            serde_json::from_value(status).map_err(|e| ApplyError::Transport {
                url: deployment.to_owned(),
                message: format!("the server's answer is not a deployment status: {e}"),
            })?;
        if last.as_ref() != Some(&status) {
            progress(&status);
            last = Some(status.clone());
        }
        if status.state.is_final() {
            return Ok(status);
        }
        tokio::time::sleep(poll).await;
    }
}

/// A one-line summary of a deployment's progress: state and object counts per cluster.
pub fn progress_line(status: &StatusView) -> String {
    let clusters: Vec<String> = status
        .clusters
        .iter()
        .map(|c| {
            let done = c
                .objects
                .iter()
                .filter(|o| o.state != ObjectState::Desired)
                .count();
            format!(
                "{} {} ({done}/{} objects)",
                c.cluster,
                c.state,
                c.objects.len()
            )
        })
        .collect();
    format!(
        "revision {} {}: {}",
        status.revision,
        status.state,
        if clusters.is_empty() {
            "no clusters".to_owned()
        } else {
            clusters.join(", ")
        }
    )
}
