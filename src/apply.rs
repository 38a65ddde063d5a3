//! `meshintent apply`: makes a meshintent server hold every resource of an intent document,
//! creating what is missing and replacing what differs, in dependency order. Running it twice
//! changes nothing. Resources the document does not mention are left alone unless `--prune` is
//! given; then, within the projects and composite apps the document names (and nowhere else),
//! what it does not hold is deleted, never before what refers to it: traffic intent sets and
//! composite apps before the document's sets are written (freeing the mesh names they claim), a
//! set's members in its document write, apps after. Clusters and projects are never deleted.
//! `--dry-run` sends only GETs and lists what a real apply would do, line for line.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::deployment::{ClusterState, DeploymentState, ObjectState};
use crate::domain::document::{
    DocClient, DocCompositeApp, DocInboundIntent, DocIntentSet, IntentDocument,
};
use crate::domain::model::SetAddress;
use crate::domain::names::{Name, VersionName};
use crate::domain::resource::{Description, Key, Kind, Metadata, ResourcePath, UserData};

/// What apply did to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Replaced,
    Unchanged,
    /// With `--prune`: a resource the document left out (a set member, a set, an app, a
    /// composite app). Also a set member whose name the document gave to another kind of intent.
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

    /// What a dry run says apply would do: `create`, `replace`, `unchanged`, `delete`.
    pub fn as_planned(self) -> &'static str {
        match self {
            Outcome::Created => "create",
            Outcome::Replaced => "replace",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "delete",
        }
    }

    /// `as_planned` in a dry run, else `as_str`.
    pub fn verb(self, dry_run: bool) -> &'static str {
        if dry_run {
            self.as_planned()
        } else {
            self.as_str()
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
    /// `--prune` could not delete `path` (409: deployed, or referenced from elsewhere); what
    /// apply would have done after it was not attempted. apply never terminates a deployment.
    #[error(
        "--prune stopped at {path}: {detail}{}{}{}",
        terminate_hint(detail),
        listed("not written", not_written),
        listed("not deleted", not_deleted)
    )]
    PruneRefused {
        path: String,
        detail: String,
        /// The traffic intent sets (with their members) not written, in order.
        not_written: Vec<String>,
        /// The deletions not attempted, in order.
        not_deleted: Vec<String>,
    },
}

/// For a set (or a composite app holding one) that is still deployed: what to do, since apply
/// does not do it.
fn terminate_hint(detail: &str) -> String {
    if detail.contains("deployed") {
        "\n  meshintent apply never terminates a deployment: terminate each deployed traffic intent set \
         (POST <set>/terminate), wait until its status is Terminated, then run apply again"
            .to_owned()
    } else {
        String::new()
    }
}

fn listed(what: &str, paths: &[String]) -> String {
    paths.iter().map(|p| format!("\n  {what}: {p}")).collect()
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
    /// For event streams: no overall timeout (a stream lasts as long as a deploy), but one
    /// between reads (the server sends a heartbeat every 15 s).
    stream_http: reqwest::Client,
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
        let stream_http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .read_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ApplyError::Transport {
                url: base.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            base,
            http,
            stream_http,
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

/// What `apply_with` is asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Also delete what the document does not hold, within the projects and composite apps it
    /// names: set members, traffic intent sets, apps, and composite apps of a named project.
    pub prune: bool,
    /// Change nothing (only GETs): each `Applied` is what a real apply would do now.
    pub dry_run: bool,
}

/// What `apply_with` did (or, in a dry run, would do).
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    /// One entry per resource, in the order apply works.
    pub applied: Vec<Applied>,
    /// Dry run only: what a real apply is expected to stumble on (a set to delete that is still
    /// deployed). Not resources; for standard error.
    pub notes: Vec<String>,
}

/// The metadata fields a client writes, for comparing with the server's.
fn writable(metadata: &Value) -> Value {
    json!({
        "description": metadata.get("description"),
        "userData1": metadata.get("userData1"),
        "userData2": metadata.get("userData2"),
    })
}

/// Whether the server's `current` already holds the writable metadata and the spec of `body`.
/// A kubeconfig in the body is left out: the server never returns one.
fn same_fields(current: &Value, body: &Value) -> bool {
    let mut spec = body["spec"].clone();
    if let Some(spec) = spec.as_object_mut() {
        spec.remove("kubeconfig");
    }
    writable(&current["metadata"]) == writable(&body["metadata"]) && current["spec"] == spec
}

/// Creates the resource at `path` from `body`, or replaces it when it differs. `secret` means the
/// body carries a write-only field the server never returns (a kubeconfig), so equality cannot
/// be seen: it is sent, and the server reports (by the revision) whether anything changed.
/// With `dry_run`, only the GET is sent.
async fn put(
    client: &ApiClient,
    path: &ResourcePath,
    body: Value,
    secret: bool,
    dry_run: bool,
) -> Result<Applied, ApplyError> {
    let url = path.url();
    let collection = path
        .parent()
        .collection_url(path.kind().expect("a resource path"));
    let outcome = match client.request(reqwest::Method::GET, &url, None).await? {
        None => {
            if !dry_run {
                client
                    .request(reqwest::Method::POST, &collection, Some(&body))
                    .await?;
            }
            Outcome::Created
        }
        Some(current) => {
            let same = same_fields(&current, &body);
            if same && !secret {
                Outcome::Unchanged
            } else if dry_run {
                if same {
                    secret_outcome(&current, &body)
                } else {
                    Outcome::Replaced
                }
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

/// A dry run's guess for a cluster whose other fields are the same: an empty kubeconfig removes
/// the stored one (a change if one is stored), a kubeconfig where none is stored is a change,
/// and one where one is stored is taken to be the same (the server never shows it).
fn secret_outcome(current: &Value, body: &Value) -> Outcome {
    let stored = current["status"]["kubeconfigStored"].as_bool() == Some(true);
    let removes = body["spec"]["kubeconfig"].as_str() == Some("");
    if removes == stored {
        Outcome::Replaced
    } else {
        Outcome::Unchanged
    }
}

/// The `{metadata, spec}` a client sends: the metadata it may write, and the spec.
fn envelope(metadata: &Metadata, spec: &impl Serialize) -> Value {
    json!({"metadata": metadata.clone().writable(), "spec": spec})
}

fn child(parent: &ResourcePath, kind: Kind, metadata: &Metadata) -> ResourcePath {
    parent.child(kind, Key::named(metadata.name.clone()))
}

fn composite_app_path(project: &ResourcePath, ca: &DocCompositeApp) -> ResourcePath {
    project.child(
        Kind::CompositeApp,
        Key {
            name: ca.metadata.name.clone(),
            version: Some(ca.spec.version.clone()),
        },
    )
}

/// Requests in flight at once for resources that do not depend on each other.
const PARALLEL_REQUESTS: usize = 8;

/// Runs `puts` with up to `PARALLEL_REQUESTS` in flight; results in the given order.
async fn all<F, T>(puts: Vec<F>) -> Result<Vec<T>, ApplyError>
where
    F: std::future::Future<Output = Result<T, ApplyError>>,
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

/// Collects what apply did, handing each entry to the caller as soon as it is known (so that
/// what happened before an error is still shown).
struct Sink<'a> {
    applied: Vec<Applied>,
    report: &'a mut dyn FnMut(&Applied),
}

impl Sink<'_> {
    fn push(&mut self, applied: Applied) {
        (self.report)(&applied);
        self.applied.push(applied);
    }

    fn extend(&mut self, applied: impl IntoIterator<Item = Applied>) {
        for a in applied {
            self.push(a);
        }
    }
}

/// Applies every resource of `document` (see `apply_with`); with `prune`, also deletes what it
/// left out within the projects and composite apps it names.
pub async fn apply(
    client: &ApiClient,
    document: &IntentDocument,
    prune: bool,
) -> Result<Vec<Applied>, ApplyError> {
    let options = ApplyOptions {
        prune,
        dry_run: false,
    };
    Ok(apply_with(client, document, options, &mut |_| {})
        .await?
        .applied)
}

/// Applies every resource of `document`, parents before children, references before referrers
/// (clusters, projects, composite apps, apps, sets), independent ones in parallel; each set's
/// members go in one request (`PUT .../document`, one transaction on the server). Without
/// `prune`, members a set holds that the document does not mention are kept (and listed as
/// unchanged, as the server reports them).
///
/// With `prune`, those members are deleted in that request, and the other resources of the
/// named projects and composite apps that the document does not hold are deleted one request
/// each, never before what refers to them: after the apps are written, the traffic intent sets
/// of each named composite app and then the composite apps of each named project (each with
/// everything below it), so that the mesh names they claim are free when the document's sets
/// are written (a renamed set, a new composite app version); after the sets, the apps of each
/// named composite app (the sets' old members may have referred to them). Only resources the
/// document does not want are deleted, and a deployed set is never deleted: the first refused
/// deletion (409: still deployed, or referenced) stops apply with `ApplyError::PruneRefused`.
///
/// With `dry_run`, only GETs are sent and the same entries come back, in the same order, with
/// what would happen: resources and sets compared with what the server holds (metadata the
/// client writes and spec; server-set fields such as revision and timestamps are not compared),
/// set members with the set's stored document (`GET ...?format=document`), by the rules of
/// `PUT .../document`. `report` sees each entry as soon as it is known.
pub async fn apply_with(
    client: &ApiClient,
    document: &IntentDocument,
    options: ApplyOptions,
    report: &mut dyn FnMut(&Applied),
) -> Result<ApplyReport, ApplyError> {
    let ApplyOptions { prune, dry_run } = options;
    // Check locally first, with pointers into the document, before anything is written; this
    // also fills the defaults the API fills, so what is sent is what the server stores.
    let mut document = document.clone();
    document
        .resolve()
        .map_err(|errors| ApplyError::Document(crate::domain::document::describe(&errors)))?;
    let mut out = Sink {
        applied: Vec::new(),
        report,
    };
    let root = ResourcePath::root();
    let clusters = document.clusters.iter().map(|cluster| {
        let mut body = envelope(&cluster.metadata, &cluster.spec);
        let kubeconfig = cluster.spec.kubeconfig.as_ref();
        if let Some(k) = kubeconfig {
            body["spec"]["kubeconfig"] = Value::String(k.expose().to_owned());
        }
        let path = child(&root, Kind::Cluster, &cluster.metadata);
        async move { put(client, &path, body, kubeconfig.is_some(), dry_run).await }
    });
    out.extend(all(clusters.collect()).await?);
    let projects = document.projects.iter().map(|project| {
        let path = child(&root, Kind::Project, &project.metadata);
        let body = envelope(&project.metadata, &project.spec);
        async move { put(client, &path, body, false, dry_run).await }
    });
    out.extend(all(projects.collect()).await?);
    let mut composite_apps = Vec::new();
    for project in &document.projects {
        let project_path = child(&root, Kind::Project, &project.metadata);
        for ca in &project.composite_apps {
            composite_apps.push((composite_app_path(&project_path, ca), ca));
        }
    }
    let cas = composite_apps.iter().map(|(path, ca)| {
        let body = envelope(&ca.metadata, &ca.spec);
        async move { put(client, path, body, false, dry_run).await }
    });
    out.extend(all(cas.collect()).await?);
    let apps = composite_apps.iter().flat_map(|(ca_path, ca)| {
        ca.apps.iter().map(move |app| {
            let path = child(ca_path, Kind::App, &app.metadata);
            let body = envelope(&app.metadata, &app.spec);
            async move { put(client, &path, body, false, dry_run).await }
        })
    });
    out.extend(all(apps.collect()).await?);
    let doomed = if prune {
        doomed(client, &document).await?
    } else {
        Doomed::default()
    };
    let sets: Vec<(ResourcePath, &DocIntentSet)> = composite_apps
        .iter()
        .flat_map(|(ca_path, ca)| {
            ca.traffic_intent_sets
                .iter()
                .map(|set| (child(ca_path, Kind::TrafficIntentSet, &set.metadata), set))
        })
        .collect();
    if dry_run {
        let notes = deployed_notes(client, &doomed.before_sets).await?;
        out.extend(deleted(&doomed.before_sets));
        for (set_path, set) in &sets {
            out.extend(plan_set(client, set_path, set, prune).await?);
        }
        out.extend(deleted(&doomed.after_sets));
        return Ok(ApplyReport {
            applied: out.applied,
            notes,
        });
    }
    let not_written: Vec<String> = sets.iter().map(|(path, _)| path.url()).collect();
    delete_all(
        client,
        &doomed.before_sets,
        &doomed.after_sets,
        &not_written,
        &mut out,
    )
    .await?;
    for (set_path, set) in &sets {
        let body = envelope(&set.metadata, &set.spec);
        out.push(put(client, set_path, body, false, false).await?);
        out.extend(put_members(client, set_path, set, prune).await?);
    }
    delete_all(client, &doomed.after_sets, &[], &[], &mut out).await?;
    Ok(ApplyReport {
        applied: out.applied,
        notes: Vec::new(),
    })
}

fn deleted(paths: &[ResourcePath]) -> Vec<Applied> {
    paths
        .iter()
        .map(|path| Applied {
            path: path.url(),
            outcome: Outcome::Deleted,
        })
        .collect()
}

/// Sends a set's members in one `PUT .../document` and reads what happened to each.
async fn put_members(
    client: &ApiClient,
    set_path: &ResourcePath,
    set: &DocIntentSet,
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

/// A dry run of one set: the set itself as `put` compares it, then its members as
/// `PUT .../document?prune=...` would report them (the same order: the members it keeps or
/// makes in document order, then the ones it deletes in path order), from one GET of the set
/// as a document.
async fn plan_set(
    client: &ApiClient,
    set_path: &ResourcePath,
    set: &DocIntentSet,
    prune: bool,
) -> Result<Vec<Applied>, ApplyError> {
    let url = format!("{}?format=document", set_path.url());
    let Some(exported) = client.request(reqwest::Method::GET, &url, None).await? else {
        // A new set: it and every member are created.
        let mut out = vec![Applied {
            path: set_path.url(),
            outcome: Outcome::Created,
        }];
        out.extend(set_members(set_path, set).into_iter().map(|m| Applied {
            path: m.url,
            outcome: Outcome::Created,
        }));
        return Ok(out);
    };
    let stored: DocIntentSet = exported
        .pointer("/projects/0/compositeApps/0/trafficIntentSets/0")
        .cloned()
        .ok_or_else(|| "no set in the document".to_owned())
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        .map_err(|message| ApplyError::Unexpected {
            path: url.clone(),
            message,
        })?;
    let same_set = same_fields(
        &envelope(&stored.metadata, &stored.spec),
        &envelope(&set.metadata, &set.spec),
    );
    let mut out = vec![Applied {
        path: set_path.url(),
        outcome: if same_set {
            Outcome::Unchanged
        } else {
            Outcome::Replaced
        },
    }];
    out.extend(member_changes(set_path, set, &stored, prune));
    Ok(out)
}

/// What `PUT .../document?prune=...` of `body` does to a set holding `stored`, member by member,
/// in the order it reports: the members of the body (without `prune`, followed by the stored
/// ones it keeps, as `merged` puts them) created, replaced or unchanged, then the stored members
/// it deletes, in path order. Mirrors `service::bulk::replace_set_members`.
fn member_changes(
    set_path: &ResourcePath,
    body: &DocIntentSet,
    stored: &DocIntentSet,
    prune: bool,
) -> Vec<Applied> {
    let wanted = if prune {
        set_members(set_path, body)
    } else {
        set_members(set_path, &merged(body, stored))
    };
    let stored: BTreeMap<String, PlannedMember> = set_members(set_path, stored)
        .into_iter()
        .map(|m| (m.url.clone(), m))
        .collect();
    let wanted_urls: BTreeSet<&str> = wanted.iter().map(|m| m.url.as_str()).collect();
    let wanted_intents: BTreeSet<&Name> = wanted
        .iter()
        .filter(|m| m.top_level)
        .map(|m| &m.name)
        .collect();
    let mut out: Vec<Applied> = wanted
        .iter()
        .map(|m| Applied {
            path: m.url.clone(),
            outcome: match stored.get(&m.url) {
                None => Outcome::Created,
                Some(s) if s.fields == m.fields && s.spec == m.spec => Outcome::Unchanged,
                Some(_) => Outcome::Replaced,
            },
        })
        .collect();
    // A stored member the body leaves out goes with `prune`; without, only an intent whose name
    // the body gives to another kind of intent (its children go with it unlisted, as the server
    // reports it).
    out.extend(
        stored
            .values()
            .filter(|s| {
                !wanted_urls.contains(s.url.as_str())
                    && (prune || (s.top_level && wanted_intents.contains(&s.name)))
            })
            .map(|s| Applied {
                path: s.url.clone(),
                outcome: Outcome::Deleted,
            }),
    );
    out
}

/// One member of a set as `PUT .../document` compares it.
struct PlannedMember {
    url: String,
    /// An intent (a child of the set): intents share one name scope.
    top_level: bool,
    name: Name,
    /// The metadata a client writes.
    fields: (Option<Description>, Option<UserData>, Option<UserData>),
    spec: Value,
}

/// A set's members, parents before children, in document order: each inbound intent with its
/// clients and their security intents, then the outbound intents, then the route intents.
fn set_members(set_path: &ResourcePath, set: &DocIntentSet) -> Vec<PlannedMember> {
    fn member(
        parent: &ResourcePath,
        kind: Kind,
        metadata: &Metadata,
        spec: &impl Serialize,
    ) -> (ResourcePath, PlannedMember) {
        let path = child(parent, kind, metadata);
        let planned = PlannedMember {
            url: path.url(),
            top_level: kind.parent() == Some(Kind::TrafficIntentSet),
            name: metadata.name.clone(),
            fields: (
                metadata.description.clone(),
                metadata.user_data1.clone(),
                metadata.user_data2.clone(),
            ),
            spec: serde_json::to_value(spec).expect("specs serialize to JSON"),
        };
        (path, planned)
    }
    let mut out = Vec::new();
    for inbound in &set.inbound_intents {
        let (path, m) = member(
            set_path,
            Kind::InboundIntent,
            &inbound.metadata,
            &inbound.spec,
        );
        out.push(m);
        for client in &inbound.clients {
            let (client_path, m) = member(&path, Kind::Client, &client.metadata, &client.spec);
            out.push(m);
            for rule in &client.security_intents {
                let (_, m) = member(
                    &client_path,
                    Kind::SecurityIntent,
                    &rule.metadata,
                    &rule.spec,
                );
                out.push(m);
            }
        }
    }
    for outbound in &set.outbound_intents {
        let (_, m) = member(
            set_path,
            Kind::OutboundIntent,
            &outbound.metadata,
            &outbound.spec,
        );
        out.push(m);
    }
    for route in &set.route_intents {
        let (_, m) = member(set_path, Kind::RouteIntent, &route.metadata, &route.spec);
        out.push(m);
    }
    out
}

/// The set `PUT .../document?prune=false` writes: the body, and after its own members, at every
/// level, the stored ones it does not mention (an inbound intent of the body keeps the stored
/// clients it leaves out; a stored intent is kept unless the body names it, as any kind).
/// Mirrors `service::bulk::merge`.
fn merged(body: &DocIntentSet, stored: &DocIntentSet) -> DocIntentSet {
    let mut into = body.clone();
    let mut stored_inbound: BTreeMap<&Name, &DocInboundIntent> = stored
        .inbound_intents
        .iter()
        .map(|i| (&i.metadata.name, i))
        .collect();
    for inbound in &mut into.inbound_intents {
        let Some(old) = stored_inbound.remove(&inbound.metadata.name) else {
            continue;
        };
        let mut old_clients: BTreeMap<&Name, &DocClient> =
            old.clients.iter().map(|c| (&c.metadata.name, c)).collect();
        for client in &mut inbound.clients {
            let Some(old) = old_clients.remove(&client.metadata.name) else {
                continue;
            };
            let named: BTreeSet<Name> = client
                .security_intents
                .iter()
                .map(|s| s.metadata.name.clone())
                .collect();
            client.security_intents.extend(
                old.security_intents
                    .iter()
                    .filter(|s| !named.contains(&s.metadata.name))
                    .cloned(),
            );
        }
        inbound.clients.extend(old_clients.into_values().cloned());
    }
    let named: BTreeSet<Name> = into
        .inbound_intents
        .iter()
        .map(|i| i.metadata.name.clone())
        .chain(
            into.outbound_intents
                .iter()
                .map(|o| o.metadata.name.clone()),
        )
        .chain(into.route_intents.iter().map(|r| r.metadata.name.clone()))
        .collect();
    into.inbound_intents.extend(
        stored_inbound
            .into_values()
            .filter(|i| !named.contains(&i.metadata.name))
            .cloned(),
    );
    into.outbound_intents.extend(
        stored
            .outbound_intents
            .iter()
            .filter(|o| !named.contains(&o.metadata.name))
            .cloned(),
    );
    into.route_intents.extend(
        stored
            .route_intents
            .iter()
            .filter(|r| !named.contains(&r.metadata.name))
            .cloned(),
    );
    into
}

/// Every item of a collection, page after page (none when its parent does not exist).
async fn list(client: &ApiClient, collection: &str) -> Result<Vec<Value>, ApplyError> {
    let mut items = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut url = format!("{collection}?limit=1000");
        if let Some(token) = &page_token {
            url.push_str("&pageToken=");
            url.extend(url::form_urlencoded::byte_serialize(token.as_bytes()));
        }
        let Some(page) = client.request(reqwest::Method::GET, &url, None).await? else {
            return Ok(items);
        };
        match page["items"].as_array() {
            Some(page_items) => items.extend(page_items.iter().cloned()),
            None => {
                return Err(ApplyError::Unexpected {
                    path: url,
                    message: "not a list (no items)".into(),
                });
            }
        }
        match page["nextPage"].as_str() {
            Some(token) => page_token = Some(token.to_owned()),
            None => return Ok(items),
        }
    }
}

/// The key of a listed resource: its name (and, for a composite app, its version).
fn listed_key(item: &Value, kind: Kind, collection: &str) -> Result<Key, ApplyError> {
    let unexpected = |message: String| ApplyError::Unexpected {
        path: collection.to_owned(),
        message,
    };
    let name: Name = item["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| unexpected(format!("an item's name: {e}")))?;
    let version = if kind == Kind::CompositeApp {
        let version: VersionName = item["spec"]["version"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e: String| unexpected(format!("an item's version: {e}")))?;
        Some(version)
    } else {
        None
    };
    Ok(Key { name, version })
}

/// The resources of `kind` below `parent` on the server whose path is not in `keep`.
async fn unlisted(
    client: &ApiClient,
    parent: &ResourcePath,
    kind: Kind,
    keep: &BTreeSet<String>,
) -> Result<Vec<ResourcePath>, ApplyError> {
    let collection = parent.collection_url(kind);
    let mut out = Vec::new();
    for item in list(client, &collection).await? {
        let path = parent.child(kind, listed_key(&item, kind, &collection)?);
        if !keep.contains(&path.url()) {
            out.push(path);
        }
    }
    Ok(out)
}

/// What `--prune` deletes besides set members, in the order it deletes them: nothing is deleted
/// before what refers to it.
#[derive(Debug, Default)]
struct Doomed {
    /// Before the sets of the document are written, so that the mesh names they claim are free
    /// for them (a set renamed, a composite app moved to a new version): the traffic intent sets
    /// of each composite app the document names, then the composite apps of each project it
    /// names. Nothing the document holds refers to them.
    before_sets: Vec<ResourcePath>,
    /// After the sets are written (their members may have referred to them): the apps of each
    /// composite app the document names.
    after_sets: Vec<ResourcePath>,
}

/// What `--prune` deletes besides set members: the resources of the named projects and
/// composite apps that the document does not hold, each group in document order of its parent
/// and name order within it. Nothing outside the named projects and composite apps; never a
/// cluster or a project.
async fn doomed(client: &ApiClient, document: &IntentDocument) -> Result<Doomed, ApplyError> {
    let root = ResourcePath::root();
    let mut sets = Vec::new();
    let mut apps = Vec::new();
    let mut composite_apps = Vec::new();
    for project in &document.projects {
        let project_path = child(&root, Kind::Project, &project.metadata);
        let keep: BTreeSet<String> = project
            .composite_apps
            .iter()
            .map(|ca| composite_app_path(&project_path, ca).url())
            .collect();
        composite_apps.extend(unlisted(client, &project_path, Kind::CompositeApp, &keep).await?);
        for ca in &project.composite_apps {
            let ca_path = composite_app_path(&project_path, ca);
            let keep: BTreeSet<String> = ca
                .traffic_intent_sets
                .iter()
                .map(|s| child(&ca_path, Kind::TrafficIntentSet, &s.metadata).url())
                .collect();
            sets.extend(unlisted(client, &ca_path, Kind::TrafficIntentSet, &keep).await?);
            let keep: BTreeSet<String> = ca
                .apps
                .iter()
                .map(|a| child(&ca_path, Kind::App, &a.metadata).url())
                .collect();
            apps.extend(unlisted(client, &ca_path, Kind::App, &keep).await?);
        }
    }
    sets.extend(composite_apps);
    Ok(Doomed {
        before_sets: sets,
        after_sets: apps,
    })
}

/// Deletes `doomed` in order, one request each (a set or composite app with everything below
/// it). One the server refuses (409: deployed, or referenced from elsewhere) stops apply: the
/// error names the rest of `doomed` and `then_deleted` as not deleted, and `not_written` (the
/// sets apply would have written next) as not written.
async fn delete_all(
    client: &ApiClient,
    doomed: &[ResourcePath],
    then_deleted: &[ResourcePath],
    not_written: &[String],
    out: &mut Sink<'_>,
) -> Result<(), ApplyError> {
    for (i, path) in doomed.iter().enumerate() {
        let url = path.url();
        let request = match path.kind() {
            Some(Kind::TrafficIntentSet | Kind::CompositeApp) => format!("{url}?cascade=true"),
            _ => url.clone(),
        };
        match client
            .request(reqwest::Method::DELETE, &request, None)
            .await
        {
            Ok(_) => out.push(Applied {
                path: url,
                outcome: Outcome::Deleted,
            }),
            // Deleted by someone else since it was listed: nothing left to do.
            Err(ApplyError::Api { status: 404, .. }) => {}
            Err(ApplyError::Api {
                status: 409,
                detail,
                ..
            }) => {
                return Err(ApplyError::PruneRefused {
                    path: url,
                    detail,
                    not_written: not_written.to_vec(),
                    not_deleted: doomed[i + 1..]
                        .iter()
                        .chain(then_deleted)
                        .map(ResourcePath::url)
                        .collect(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// For a dry run: the sets among `doomed` (or inside a doomed composite app) whose latest
/// deployment is not a finished terminate, which the server will refuse to delete.
async fn deployed_notes(
    client: &ApiClient,
    doomed: &[ResourcePath],
) -> Result<Vec<String>, ApplyError> {
    let mut sets = Vec::new();
    for path in doomed {
        match path.kind() {
            Some(Kind::TrafficIntentSet) => sets.push(path.clone()),
            Some(Kind::CompositeApp) => {
                sets.extend(unlisted(client, path, Kind::TrafficIntentSet, &BTreeSet::new()).await?)
            }
            _ => {}
        }
    }
    let statuses = sets.iter().map(|set| async move {
        let url = format!("{}/status", set.url());
        let Some(status) = client.request(reqwest::Method::GET, &url, None).await? else {
            return Ok(None);
        };
        let status: StatusView =
            serde_json::from_value(status).map_err(|e| ApplyError::Unexpected {
                path: url,
                message: e.to_string(),
            })?;
        Ok((status.state != DeploymentState::Terminated).then(|| {
            format!(
                "{} is deployed (revision {} {}): --prune will stop there; terminate it first (POST {}/terminate)",
                set.url(),
                status.revision,
                status.state,
                set.url()
            )
        }))
    });
    Ok(all(statuses.collect())
        .await?
        .into_iter()
        .flatten()
        .collect())
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
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
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

/// One cluster of a deployment followed by `follow`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterProgress {
    /// Objects finished (applied, unchanged, pruned, conflict, failed).
    pub done: usize,
    /// Objects the cluster works on (grows when prune finds labelled objects it did not know).
    pub total: usize,
    /// The cluster's final state, once it finished.
    pub finished: Option<String>,
    seen: BTreeSet<(String, String, String)>,
}

/// A deployment's progress per cluster, as `follow` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub revision: i64,
    pub clusters: BTreeMap<String, ClusterProgress>,
}

impl Progress {
    fn of(status: &StatusView) -> Self {
        let clusters = status
            .clusters
            .iter()
            .map(|c| {
                let seen: BTreeSet<(String, String, String)> = c
                    .objects
                    .iter()
                    .filter(|o| o.state != ObjectState::Desired)
                    .map(|o| (o.kind.clone(), o.namespace.clone(), o.name.clone()))
                    .collect();
                let progress = ClusterProgress {
                    done: seen.len(),
                    total: c.objects.len(),
                    finished: c.state.is_final().then(|| c.state.to_string()),
                    seen,
                };
                (c.cluster.clone(), progress)
            })
            .collect();
        Self {
            revision: status.revision,
            clusters,
        }
    }

    /// Takes one event of the set's stream in; true when it changed something.
    fn absorb(&mut self, kind: &str, data: &Value) -> bool {
        if data["revision"].as_i64() != Some(self.revision) {
            return false;
        }
        let Some(cluster) = data["cluster"].as_str() else {
            return false;
        };
        let entry = self.clusters.entry(cluster.to_owned()).or_default();
        match kind {
            "object-applied" | "object-failed" | "object-pruned" | "object-conflict" => {
                let text = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
                if !entry
                    .seen
                    .insert((text("kind"), text("namespace"), text("name")))
                {
                    return false;
                }
                entry.done = entry.seen.len();
                entry.total = entry.total.max(entry.done);
                true
            }
            "cluster-finished" => {
                entry.finished = data["state"].as_str().map(str::to_owned);
                true
            }
            _ => false,
        }
    }
}

/// The revision at the end of a deployment's URL (`.../deployments/3`).
pub fn revision_of(deployment: &str) -> Option<i64> {
    deployment.rsplit('/').next()?.parse().ok()
}

/// Opens the set's event stream after `last_id` (None: from now on).
async fn open_events(
    client: &ApiClient,
    set: &ResourcePath,
    last_id: Option<&str>,
) -> Result<reqwest::Response, ApplyError> {
    let url = format!("{}{}/events", client.base, set.url());
    let mut req = client
        .stream_http
        .get(&url)
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(token) = &client.token {
        req = req.bearer_auth(token);
    }
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id);
    }
    let response = req.send().await.map_err(|e| ApplyError::Transport {
        url: url.clone(),
        message: e.to_string(),
    })?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        return Err(ApplyError::Api {
            method: "GET",
            path: format!("{}/events", set.url()),
            status,
            detail: value["detail"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned),
            errors: Vec::new(),
        });
    }
    Ok(response)
}

/// Reads a deployment's status (`wait`'s single step).
async fn status_of(client: &ApiClient, deployment: &str) -> Result<StatusView, ApplyError> {
    let status = client
        .request(reqwest::Method::GET, deployment, None)
        .await?
        .ok_or_else(|| ApplyError::Transport {
            url: deployment.to_owned(),
            message: "the deployment disappeared".into(),
        })?;
    serde_json::from_value(status).map_err(|e| ApplyError::Transport {
        url: deployment.to_owned(),
        message: format!("the server's answer is not a deployment status: {e}"),
    })
}

/// Follows a deployment of `set` through the set's event stream (SSE) until it ends, calling
/// `progress` on every change; returns the final status. The stream is opened before the
/// status is read, so nothing between the two is missed; a dropped connection (a restarted
/// server, another replica behind a load balancer) is reopened with `Last-Event-ID`, so no
/// event is lost or seen twice.
pub async fn follow(
    client: &ApiClient,
    set: &ResourcePath,
    deployment: &str,
    mut progress: impl FnMut(&Progress),
) -> Result<StatusView, ApplyError> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;

    let mut last_id: Option<String> = None;
    let mut current: Option<Progress> = None;
    let mut failures = 0u32;
    loop {
        let response = match open_events(client, set, last_id.as_deref()).await {
            Ok(r) => r,
            Err(e @ ApplyError::Api { .. }) => return Err(e),
            Err(e) => {
                failures += 1;
                if failures > 20 {
                    return Err(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(
                    250 * u64::from(failures.min(8)),
                ))
                .await;
                continue;
            }
        };
        failures = 0;
        if current.is_none() {
            let status = status_of(client, deployment).await?;
            let first = Progress::of(&status);
            progress(&first);
            if status.state.is_final() {
                return Ok(status);
            }
            current = Some(first);
        }
        let mut events = response.bytes_stream().eventsource();
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            if !event.id.is_empty() {
                last_id = Some(event.id.clone());
            }
            let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
            let Some(state) = current.as_mut() else { break };
            if event.event == "deploy-finished" && data["revision"].as_i64() == Some(state.revision)
            {
                let status = status_of(client, deployment).await?;
                progress(&Progress::of(&status));
                return Ok(status);
            }
            if state.absorb(&event.event, &data) {
                progress(state);
            }
        }
        // The connection ended (the server stopped, a proxy timed out): reopen after the last
        // event seen, unless the deployment ended meanwhile.
        let status = status_of(client, deployment).await?;
        if status.state.is_final() {
            progress(&Progress::of(&status));
            return Ok(status);
        }
    }
}

/// Shows `follow`'s progress: a bar per cluster on a terminal, else a line per change.
pub struct ProgressDisplay {
    deployment: String,
    bars: Option<(
        indicatif::MultiProgress,
        BTreeMap<String, indicatif::ProgressBar>,
    )>,
    printed: BTreeMap<String, String>,
}

impl ProgressDisplay {
    pub fn new(deployment: &str, terminal: bool) -> Self {
        Self {
            deployment: deployment.to_owned(),
            bars: terminal.then(|| (indicatif::MultiProgress::new(), BTreeMap::new())),
            printed: BTreeMap::new(),
        }
    }

    /// One line per cluster: `<deployment>: <cluster>: <done>/<total> objects[, <state>]`.
    fn line(cluster: &str, c: &ClusterProgress) -> String {
        match &c.finished {
            Some(state) => format!("{cluster}: {}/{} objects, {state}", c.done, c.total),
            None => format!("{cluster}: {}/{} objects", c.done, c.total),
        }
    }

    pub fn update(&mut self, progress: &Progress) {
        for (cluster, c) in &progress.clusters {
            let line = Self::line(cluster, c);
            if self.printed.get(cluster) == Some(&line) {
                continue;
            }
            self.printed.insert(cluster.clone(), line.clone());
            match &mut self.bars {
                Some((multi, bars)) => {
                    let bar = bars.entry(cluster.clone()).or_insert_with(|| {
                        let bar = multi.add(indicatif::ProgressBar::new(c.total as u64));
                        bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{prefix:>12} [{bar:30}] {pos}/{len} {msg}",
                            )
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(cluster.clone());
                        bar
                    });
                    bar.set_length(c.total as u64);
                    bar.set_position(c.done as u64);
                    if let Some(state) = &c.finished {
                        bar.finish_with_message(state.clone());
                    }
                }
                None => {
                    use std::io::Write;
                    // Best effort, like the rest of the progress (a closed pipe stops nothing).
                    let _ = writeln!(std::io::stdout().lock(), "{}: {line}", self.deployment);
                }
            }
        }
    }

    /// Ends the bars (they stay on the screen).
    pub fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}
