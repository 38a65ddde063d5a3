//! The error responses of the OpenAPI document, as the server answers them.
//!
//! Handler annotations declare the statuses particular to an operation, and
//! `document_access_control` those of the gate (401, 403, 429, 413). This module completes the
//! list with what every operation of a kind can answer: 405 (another method on the path:
//! `fallback::not_routed`), 415 (a body that is not JSON), 500 and 503 (every `/v2` operation
//! reads the database, if only to authenticate). It drops what an operation cannot answer (the
//! 404 of a top-level collection, which has no ancestor; the 409 of deleting a kind that nothing
//! refers to and that has no children). Then it gives every error response an example Problem
//! naming that operation's resource, parameter or body field, made where it can be by the code
//! that answers it: the body parser on a broken copy of the operation's request example, the
//! query parser, the policy, `render_error`, the router's table of methods.
//!
//! The examples use the names of the request examples (`super::examples`): project `shop`,
//! composite app `storefront` v1, set `default`, inbound intent `httpbin` with client `sleep`.
//! `tests/api/responses.rs` provokes a sample of them over HTTP and compares.

use actix_web::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use super::policy::{OperationTable, action_of};
use super::problem::{PROBLEM_JSON, Problem};
use crate::domain::access::{Actor, Decision, GlobalRole, Principal, ProjectRole, decide};
use crate::domain::envelopes as env;
use crate::domain::names::Name;
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::domain::violations::FieldError;
use crate::error::Error;

/// Completes every operation's error responses and gives each its example.
pub fn document_error_responses(api: &mut OpenApi) {
    let table = OperationTable::from_openapi(api);
    for (template, item) in api.paths.paths.iter_mut() {
        for (method, op) in operations_mut(item) {
            let Some(id) = op.operation_id.clone() else {
                continue;
            };
            let endpoint = Endpoint::new(&id, method, template, op, &table);
            complete(op, &endpoint);
            for (status, response) in op.responses.responses.iter_mut() {
                let Ok(code) = status.parse::<u16>() else {
                    continue;
                };
                if code < 400 {
                    continue;
                }
                let RefOr::T(response) = response else {
                    continue;
                };
                if let Some(RefOr::T(content)) = response.content.get_mut(PROBLEM_JSON) {
                    content.example = serde_json::to_value(endpoint.example(code)).ok();
                }
            }
        }
    }
}

/// The operations of a path with their methods.
pub fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("PATCH", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
    .collect()
}

/// A Problem response (its example is filled in afterwards).
pub fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// A response header's documentation.
pub fn header(
    schema_type: utoipa::openapi::schema::Type,
    description: &str,
) -> utoipa::openapi::Header {
    utoipa::openapi::HeaderBuilder::new()
        .schema(Some(
            utoipa::openapi::schema::ObjectBuilder::new().schema_type(schema_type),
        ))
        .description(Some(description))
        .build()
}

/// Adds what the operation can answer and is not declared, drops what it cannot answer.
fn complete(op: &mut Operation, endpoint: &Endpoint) {
    let has_body = op.request_body.is_some();
    let responses = &mut op.responses.responses;
    responses.entry("405".to_owned()).or_insert_with(|| {
        let mut response =
            problem_response("The path does not take this method; `Allow` lists the ones it takes");
        response.headers.insert(
            "Allow".into(),
            header(
                utoipa::openapi::schema::Type::String,
                "The methods the path takes (with HEAD where GET is)",
            )
            .into(),
        );
        response.into()
    });
    let mut add = |code: &str, description: &str| {
        responses
            .entry(code.to_owned())
            .or_insert_with(|| problem_response(description).into());
    };
    if has_body {
        add(
            "415",
            "The body is not JSON (a `Content-Type` other than `application/json` or `*+json`)",
        );
    }
    if endpoint.reads_database() {
        add(
            "500",
            "A bug or an unexpected failure; the cause is logged, never returned",
        );
        add("503", "The database does not answer");
    }
    let cannot_404 =
        matches!(&endpoint.target, Target::Collection(parent, _) if parent.segments().is_empty());
    if cannot_404 {
        responses.remove("404");
    }
    if let (Target::Item(path), "DELETE") = (&endpoint.target, endpoint.method)
        && path.kind().is_some_and(|k| !can_block_delete(k))
    {
        responses.remove("409");
    }
}

/// Whether deleting a resource of `kind` can be refused: it has children, others refer to it
/// (an app's clusters, an intent's or client's app, a route's target, a global token's
/// project), or its objects may be deployed.
fn can_block_delete(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::SecurityIntent
            | Kind::RouteIntent
            | Kind::GlobalRoleBinding
            | Kind::ProjectRoleBinding
            | Kind::GlobalToken
            | Kind::ProjectToken
    )
}

/// What a path template addresses, with the example names.
#[derive(Clone, Debug)]
enum Target {
    /// A resource (`.../inbound-intents/{intent}`).
    Item(ResourcePath),
    /// A collection of `Kind` under a parent (the root for top-level ones).
    Collection(ResourcePath, Kind),
    /// Something below a resource (`.../manifests`, `.../deployments/{revision}`): the
    /// resource and the rest of the template.
    Below(ResourcePath, String),
    /// No resource (`/healthz`, `/v2/adapt-credentials`, `/v2/audit-events`).
    Root,
}

/// The example name of a resource of `kind`: the names of the request examples.
fn sample_key(kind: Kind) -> Key {
    let (name, version) = match kind {
        Kind::Cluster => ("cluster01", None),
        Kind::Project => ("shop", None),
        Kind::CompositeApp => ("storefront", Some("v1")),
        Kind::App => ("httpbin", None),
        Kind::TrafficIntentSet => ("default", None),
        Kind::InboundIntent => ("httpbin", None),
        Kind::Client => ("sleep", None),
        Kind::SecurityIntent => ("status-and-headers", None),
        Kind::OutboundIntent => ("partner-api", None),
        Kind::RouteIntent => ("httpbin-canary", None),
        Kind::GlobalRoleBinding => ("auditors", None),
        Kind::ProjectRoleBinding => ("alice-edits", None),
        Kind::GlobalToken => ("ci-reader", None),
        Kind::ProjectToken => ("deployer", None),
    };
    Key {
        name: name.parse().expect("example names are names"),
        version: version.map(|v| v.parse().expect("example versions are versions")),
    }
}

fn name(s: &str) -> Name {
    s.parse().expect("example names are names")
}

fn target(template: &str) -> Target {
    let mut parts = template.trim_start_matches('/').split('/');
    if parts.next() != Some("v2") {
        return Target::Root;
    }
    let mut path = ResourcePath::root();
    while let Some(segment) = parts.next() {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.parent() == path.kind() && k.collection() == segment);
        let Some(kind) = kind else {
            if path.segments().is_empty() {
                return Target::Root;
            }
            let rest: Vec<&str> = std::iter::once(segment).chain(parts).collect();
            return Target::Below(path, rest.join("/"));
        };
        if parts.next().is_none() {
            return Target::Collection(path, kind);
        }
        if kind.is_versioned() {
            parts.next();
        }
        path = path.child(kind, sample_key(kind));
    }
    Target::Item(path)
}

/// One operation, as much as its examples need.
struct Endpoint {
    id: String,
    method: &'static str,
    template: String,
    target: Target,
    /// The example URL (the template with the example names).
    url: String,
    /// The first request example of the body, if it takes one.
    body: Option<Value>,
    /// `Allow` of a 405 on this path.
    allowed: Vec<String>,
}

impl Endpoint {
    fn new(
        id: &str,
        method: &'static str,
        template: &str,
        op: &Operation,
        table: &OperationTable,
    ) -> Self {
        let target = target(template);
        let url = match &target {
            Target::Item(path) => path.url(),
            Target::Collection(parent, kind) => parent.collection_url(*kind),
            Target::Below(path, rest) => {
                format!("{}/{}", path.url(), rest.replace("{revision}", "3"))
            }
            Target::Root => template.to_owned(),
        };
        let body = op.request_body.as_ref().and(
            super::examples::request_examples(id)
                .into_iter()
                .next()
                .map(|(_, _, body)| body),
        );
        Self {
            id: id.to_owned(),
            method,
            template: template.to_owned(),
            allowed: table.allowed(&url).unwrap_or_default(),
            target,
            url,
            body,
        }
    }

    fn is_v2(&self) -> bool {
        self.template.starts_with("/v2/")
    }

    /// Everything under `/v2` reads the database (if only the caller's token), and readiness
    /// asks it; liveness and metrics do not.
    fn reads_database(&self) -> bool {
        self.is_v2()
    }

    /// The resource the operation is about: the item, the collection's parent, or what a path
    /// below a resource belongs to.
    fn resource(&self) -> Option<&ResourcePath> {
        match &self.target {
            Target::Item(path) | Target::Below(path, _) => Some(path),
            Target::Collection(parent, _) if !parent.segments().is_empty() => Some(parent),
            _ => None,
        }
    }

    /// The kind a request body holds (create and replace).
    fn body_kind(&self) -> Option<Kind> {
        match &self.target {
            Target::Collection(_, kind) => Some(*kind),
            Target::Item(path) => path.kind(),
            _ => None,
        }
    }

    fn set_path(&self) -> Option<ResourcePath> {
        self.resource()?.ancestor(Kind::TrafficIntentSet)
    }

    /// The example Problem of `status`.
    fn example(&self, status: u16) -> Problem {
        let error = match status {
            400 => self.bad_request(),
            401 => Error::Unauthorized {
                detail: "this endpoint needs a credential: send Authorization: Bearer <API token or OIDC token>".into(),
                sent: false,
            },
            403 => self.forbidden(),
            404 => self.not_found(),
            405 => return self.method_not_allowed(),
            409 => self.conflict(),
            412 => self.precondition_failed(),
            413 => Error::PayloadTooLarge(self.too_large()),
            415 => Error::UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json), not text/plain".into(),
            ),
            422 => self.invalid(),
            429 => Error::TooManyRequests {
                detail: "too many failed authentications from this address; retry later".into(),
                retry_after_secs: 60,
            },
            500 => Error::internal("example", "a failure"),
            503 => Error::Unavailable("the database is not reachable".into()),
            other => {
                let status = StatusCode::from_u16(other).unwrap_or(StatusCode::BAD_REQUEST);
                return Problem::new(status, "http", status.canonical_reason().unwrap_or("error"), Vec::new());
            }
        };
        error.problem()
    }

    fn method_not_allowed(&self) -> Problem {
        let method = ["GET", "POST", "PUT", "DELETE", "PATCH"]
            .into_iter()
            .find(|m| !self.allowed.iter().any(|a| a == m))
            .unwrap_or("PATCH");
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!(
                "{method} is not allowed on {}; allowed: {}",
                self.url,
                self.allowed.join(", ")
            ),
            Vec::new(),
        )
    }

    fn bad_request(&self) -> Error {
        if let Some(body) = &self.body {
            let broken = match self.id.as_str() {
                // snake_case, as the service-broker API spells it
                "credentials_adapt" => with(body, "/endpointMappings", json!([])),
                "traffic_intent_set_replace_document" | "traffic_intent_set_plan_document" => with(
                    body,
                    "/inboundIntents/0/clients/0/securityIntent",
                    json!({}),
                ),
                _ => match self.body_kind() {
                    Some(Kind::Cluster) => with(body, "/spec/kubeConfig", json!("apiVersion: v1")),
                    Some(Kind::Project) => with(body, "/spec/namespace", json!("default")),
                    Some(Kind::CompositeApp) => with(body, "/metadata/version", json!("v1")),
                    Some(Kind::App) => with(body, "/spec/cluster", json!("cluster02")),
                    Some(Kind::TrafficIntentSet) => {
                        with(body, "/metadata/labels", json!({"team": "web"}))
                    }
                    Some(Kind::InboundIntent) => with(body, "/spec/targetPort", json!(8080)),
                    Some(Kind::Client) => with(body, "/spec/serviceAccount", json!("sleep")),
                    Some(Kind::SecurityIntent) => with(body, "/spec/rules/0/method", json!("GET")),
                    Some(Kind::OutboundIntent) => {
                        with(body, "/spec/host", json!("api.partner.example"))
                    }
                    Some(Kind::RouteIntent) => with(body, "/spec/http/1/weight", json!(90)),
                    Some(Kind::GlobalRoleBinding) => {
                        with(body, "/spec/subject/type", json!("Group"))
                    }
                    Some(Kind::ProjectRoleBinding) => with(body, "/spec/roles", json!(["editor"])),
                    Some(Kind::GlobalToken) => with(body, "/spec/role", json!("reader")),
                    Some(Kind::ProjectToken) => with(body, "/spec/roles", json!(["editor"])),
                    None => body.clone(),
                },
            };
            if let Some(e) = self.parse_body(&broken) {
                return e;
            }
        }
        let query = |q: &str| -> Option<Error> {
            use super::query::parse;
            match self.id.as_str() {
                "traffic_intent_set_get" => parse::<super::sets::SetQuery>(q).err(),
                "traffic_intent_set_manifests" => parse::<super::sets::ManifestsQuery>(q).err(),
                "traffic_intent_set_graph" => parse::<super::graph::GraphParams>(q).err(),
                "traffic_intent_set_status" => parse::<super::deploy::StatusQuery>(q).err(),
                "client_binding" => parse::<super::bindings::BindingQuery>(q).err(),
                "audit_event_list" | "project_audit_event_list" => {
                    parse::<super::audit::AuditQuery>(q).err()
                }
                id if id.ends_with("_delete") => parse::<super::resources::DeleteQuery>(q).err(),
                _ => parse::<super::resources::ListQuery>(q).err(),
            }
        };
        let broken = match self.id.as_str() {
            "traffic_intent_set_get" => query("format=yaml"),
            "traffic_intent_set_manifests" => query("format=xml"),
            "traffic_intent_set_graph" => query("format=png"),
            "traffic_intent_set_status" => query("verify=yes"),
            "client_binding" => query("cluster=cluster01&cluster=cluster02"),
            "audit_event_list" | "project_audit_event_list" => query("since=yesterday"),
            "traffic_intent_set_events" | "project_events" => Some(Error::BadRequest {
                detail: "Last-Event-ID must be an event id (a whole number of at least 0)".into(),
                errors: vec![FieldError::new("Last-Event-ID", "not an event id")],
            }),
            "traffic_intent_set_access" => Some(Error::BadRequest {
                detail: "bad query parameters: Query deserialize error: duplicate field `from`"
                    .into(),
                errors: Vec::new(),
            }),
            id if id.ends_with("_delete") => query("cascade=yes"),
            _ => query("limit=-1"),
        };
        broken.unwrap_or_else(|| Error::BadRequest {
            detail: "bad query string".into(),
            errors: Vec::new(),
        })
    }

    /// What the body parser says of `body` as this operation's request.
    fn parse_body(&self, body: &Value) -> Option<Error> {
        let bytes = serde_json::to_vec(body).ok()?;
        fn refused<T: DeserializeOwned>(bytes: &[u8]) -> Option<Error> {
            crate::input::from_json_slice::<T>(bytes).err()
        }
        match self.id.as_str() {
            "credentials_adapt" => {
                match crate::input::from_json_slice::<super::bindings::AdaptCredentialsRequest>(
                    &bytes,
                ) {
                    Err(e) => Some(e),
                    // What the handler checks after parsing.
                    Ok(request) => {
                        crate::domain::credentials::Mappings::new(request.endpoint_mappings)
                            .err()
                            .map(Error::invalid)
                    }
                }
            }
            "traffic_intent_set_replace_document" | "traffic_intent_set_plan_document" => {
                refused::<crate::domain::document::DocIntentSet>(&bytes)
            }
            _ => match self.body_kind()? {
                Kind::Cluster => refused::<env::Cluster>(&bytes),
                Kind::Project => refused::<env::Project>(&bytes),
                Kind::CompositeApp => refused::<env::CompositeApp>(&bytes),
                Kind::App => refused::<env::App>(&bytes),
                Kind::TrafficIntentSet => refused::<env::TrafficIntentSet>(&bytes),
                Kind::InboundIntent => refused::<env::InboundIntent>(&bytes),
                Kind::Client => refused::<env::Client>(&bytes),
                Kind::SecurityIntent => refused::<env::SecurityIntent>(&bytes),
                Kind::OutboundIntent => refused::<env::OutboundIntent>(&bytes),
                Kind::RouteIntent => refused::<env::RouteIntent>(&bytes),
                Kind::GlobalRoleBinding => refused::<env::GlobalRoleBinding>(&bytes),
                Kind::ProjectRoleBinding => refused::<env::ProjectRoleBinding>(&bytes),
                Kind::GlobalToken => refused::<env::GlobalToken>(&bytes),
                Kind::ProjectToken => refused::<env::ProjectToken>(&bytes),
            },
        }
    }

    /// The gate's refusal of the first of a few callers the policy refuses (a viewer of `shop`
    /// for its writes, a global reader for global writes, an editor for a project's access
    /// control).
    fn forbidden(&self) -> Error {
        match refused_caller(&self.id, &self.template) {
            Some((caller, needed)) => Error::Forbidden(format!(
                "{} may not call {} ({}): it needs {needed}",
                caller.actor, self.id, self.method
            )),
            None => Error::Forbidden(format!(
                "operation {} has no authorization policy, so nobody may call it",
                self.id
            )),
        }
    }

    fn not_found(&self) -> Error {
        let missing = |path: &ResourcePath| Error::NotFound(format!("{path} does not exist"));
        match (&self.target, self.id.as_str()) {
            (_, "metrics") => Error::NotFound(
                "metrics are served on the metrics listener (MESHINTENT_METRICS_LISTEN)".into(),
            ),
            (Target::Below(path, _), "deployment_get") => {
                Error::NotFound(format!("{path} has no deployment revision 3"))
            }
            (
                Target::Below(path, _),
                "traffic_intent_set_status" | "traffic_intent_set_reconcile",
            ) => Error::NotFound(format!("{path} has not been deployed")),
            (Target::Below(_, _), "client_binding") => Error::NotFound(
                "client \"sleep\" of inbound intent \"httpbin\" does not exist".into(),
            ),
            _ => match self.resource() {
                Some(path) => missing(path),
                None => {
                    missing(&ResourcePath::root().child(Kind::Project, sample_key(Kind::Project)))
                }
            },
        }
    }

    fn conflict(&self) -> Error {
        let owner = "project shop, composite app checkout v1, traffic intent set default \
(intent /v2/projects/shop/composite-apps/checkout/v1/traffic-intent-sets/default/inbound-intents/httpbin)";
        let claimed = |kind, host: &str| {
            let claim = crate::domain::claim::Claim {
                cluster: name("cluster02"),
                kind,
                name: host.to_owned(),
            };
            Error::Conflict(format!(
                "{claim} is already claimed by {owner}: Istio keeps one configuration per host, so two sets cannot both decide it; remove it there first, or move this intent into that set"
            ))
        };
        let intent_claim = |kind: Kind| match kind {
            Kind::OutboundIntent => claimed(
                crate::domain::claim::ClaimKind::ServiceEntryHost,
                "api.partner.example",
            ),
            _ => claimed(
                crate::domain::claim::ClaimKind::DestinationRuleHost,
                "httpbin.default.svc.cluster.local",
            ),
        };
        match (&self.target, self.method, self.id.as_str()) {
            (_, _, "traffic_intent_set_deploy" | "traffic_intent_set_terminate") => {
                Error::Conflict("another deploy was queued at the same moment; retry".into())
            }
            (Target::Below(path, _), _, "traffic_intent_set_reconcile") => Error::Conflict(format!(
                "{path} has nothing to reconcile: its latest deployment (revision 2) is a terminate that is applied; only an applied deploy is checked"
            )),
            // A document write or plan: a mesh name of the document is another set's.
            (Target::Below(_, _), _, _) => intent_claim(Kind::InboundIntent),
            (Target::Collection(parent, kind), "POST", _) => {
                Error::Conflict(duplicate(&parent.child(*kind, sample_key(*kind))))
            }
            (Target::Item(path), "PUT", _) => match path.kind() {
                Some(Kind::Project) => Error::Conflict(
                    "namespace \"payments\" belongs to project \"billing\"; a namespace can belong to one project only".into(),
                ),
                Some(kind @ (Kind::InboundIntent | Kind::OutboundIntent | Kind::RouteIntent)) => {
                    intent_claim(kind)
                }
                _ => Error::Conflict(
                    "a resource this one refers to was deleted at the same moment; retry".into(),
                ),
            },
            (Target::Item(path), "DELETE", _) => {
                let reason = match path.kind() {
                    // httpbin runs on cluster02 in the request examples.
                    Some(Kind::Cluster) => {
                        return Error::Conflict(
                            "cluster \"cluster02\" cannot be deleted: it is referenced by app \"httpbin\" (/spec/placement/clusters/0)".into(),
                        );
                    }
                    Some(Kind::App) => {
                        "it is referenced by inbound intent \"httpbin\" (/spec/app)".to_owned()
                    }
                    Some(Kind::OutboundIntent) => {
                        "it is referenced by route intent \"partner-api-retries\" (/spec/target/outboundIntent)".to_owned()
                    }
                    _ => "it has 2 child resources; delete them first or use ?cascade=true".to_owned(),
                };
                Error::Conflict(format!("{path} cannot be deleted: {reason}"))
            }
            _ => Error::Conflict(format!("{} conflicts with another write; retry", self.url)),
        }
    }

    fn precondition_failed(&self) -> Error {
        let path = self.resource().cloned().unwrap_or_else(ResourcePath::root);
        Error::PreconditionFailed(format!(
            "{path} is at revision 4 (ETag {}); If-Match did not name it. Fetch it again and retry.",
            crate::service::etag(4)
        ))
    }

    fn too_large(&self) -> String {
        use crate::configuration::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DOCUMENT_BYTES};
        let (limit, setting) = match self.id.as_str() {
            "traffic_intent_set_replace_document" | "traffic_intent_set_plan_document" => {
                (DEFAULT_MAX_DOCUMENT_BYTES, "MESHINTENT_MAX_DOCUMENT_BYTES")
            }
            _ => (DEFAULT_MAX_BODY_BYTES, "MESHINTENT_MAX_BODY_BYTES"),
        };
        format!("the request body is larger than the limit of {limit} bytes ({setting})")
    }

    fn invalid(&self) -> Error {
        if let Some(body) = &self.body {
            let broken = match self.id.as_str() {
                "credentials_adapt" => with(body, "/endpoint_mappings", json!([])),
                "traffic_intent_set_replace_document" | "traffic_intent_set_plan_document" => {
                    with(body, "/inboundIntents/0/spec/port", json!(70000))
                }
                _ => match self.body_kind() {
                    Some(Kind::Cluster) => with(body, "/metadata/name", json!("Cluster01")),
                    Some(Kind::Project) => with(body, "/spec/namespaces/1", json!("Payments")),
                    Some(Kind::CompositeApp) => with(body, "/spec/version", json!("v1/beta")),
                    Some(Kind::App) => with(body, "/spec/namespace", json!("Default")),
                    Some(Kind::TrafficIntentSet) => {
                        with(body, "/metadata/name", json!("default set"))
                    }
                    Some(Kind::InboundIntent) => with(body, "/spec/port", json!(70000)),
                    Some(Kind::Client) => with(body, "/metadata/name", json!("Sleep")),
                    Some(Kind::SecurityIntent) => with(body, "/spec/action", json!("PERMIT")),
                    Some(Kind::OutboundIntent) => with(body, "/spec/ports/0/number", json!(0)),
                    Some(Kind::RouteIntent) => {
                        with(body, "/spec/http/1/timeout", json!("5 seconds"))
                    }
                    Some(Kind::GlobalRoleBinding) => with(body, "/spec/role", json!("owner")),
                    Some(Kind::ProjectRoleBinding) => with(body, "/spec/role", json!("admin")),
                    Some(Kind::GlobalToken) => with(body, "/spec/roles/0", json!("writer")),
                    Some(Kind::ProjectToken) => with(body, "/spec/role", json!("admin")),
                    None => body.clone(),
                },
            };
            if let Some(e) = self.parse_body(&broken) {
                return e;
            }
        }
        match (self.id.as_str(), self.set_path()) {
            ("traffic_intent_set_access", _) => Error::invalid_field("from", "from is required"),
            ("client_binding", _) => Error::invalid_field(
                "cluster",
                "client \"sleep\" runs on several clusters (cluster01, cluster03); choose one with ?cluster=",
            ),
            (_, Some(set)) => crate::service::render_error(
                &set,
                vec![crate::generate::RenderError::new(
                    crate::generate::Subject::Cluster(name("cluster02")),
                    "/spec/istio/ingressGateway/address",
                    "needed because clients on other clusters (\"sleep\" on cluster01) call inbound intent \"httpbin\" through this cluster's ingress gateway",
                )],
            ),
            _ => Error::invalid_field("/metadata/name", "is invalid"),
        }
    }
}

/// The document the manifests examples are rendered from: the walk-through's httpbin on
/// cluster02 with its client sleep on cluster01.
const MANIFESTS_EXAMPLE: &str = r#"
clusters:
  - metadata: {name: cluster01}
    spec: {identity: cluster01.mesh.example.com, istio: {ingressGateway: {address: 198.51.100.10}}}
  - metadata: {name: cluster02}
    spec: {identity: cluster02.mesh.example.com, istio: {ingressGateway: {address: 198.51.100.20}}}
projects:
  - metadata: {name: shop}
    spec: {namespaces: [default]}
    compositeApps:
      - metadata: {name: storefront}
        spec: {version: v1}
        apps:
          - metadata: {name: httpbin}
            spec: {namespace: default, placement: {clusters: [cluster02]}}
          - metadata: {name: sleep}
            spec: {namespace: default, placement: {clusters: [cluster01]}}
        trafficIntentSets:
          - metadata: {name: default}
            inboundIntents:
              - metadata: {name: httpbin}
                spec: {app: httpbin, serviceName: httpbin, port: 8000, protocol: HTTP}
                clients:
                  - metadata: {name: sleep}
                    spec: {app: sleep}
"#;

/// Examples of both forms of `GET .../manifests` (JSON and YAML), rendered by the renderer
/// from `MANIFESTS_EXAMPLE`, for one cluster (`?cluster=cluster02`) to keep them short.
pub fn document_manifest_examples(api: &mut OpenApi) {
    let Ok(manifests) = crate::offline::render_document(MANIFESTS_EXAMPLE) else {
        return;
    };
    let cluster = name("cluster02");
    let list = crate::generate::output::list(&manifests, Some(&cluster));
    let json = serde_json::to_value(&list).ok();
    let yaml = crate::generate::output::yaml(&list);
    let op = api
        .paths
        .paths
        .values_mut()
        .filter_map(|item| item.get.as_mut())
        .find(|op| op.operation_id.as_deref() == Some("traffic_intent_set_manifests"));
    let Some(RefOr::T(ok)) = op.and_then(|op| op.responses.responses.get_mut("200")) else {
        return;
    };
    if let Some(RefOr::T(content)) = ok.content.get_mut("application/json") {
        content.example = json;
    }
    if let Some(RefOr::T(content)) = ok.content.get_mut("application/yaml") {
        content.example = Some(Value::String(yaml));
    }
}

/// A caller the policy refuses the operation (403), and the roles it would need; None when the
/// policy refuses nobody who may see the resource (reads: those who may not are answered 404).
pub fn refused_caller(operation_id: &str, template: &str) -> Option<(Principal, String)> {
    let shop = name("shop");
    let project = template.contains("{project}").then_some(&shop);
    let action = action_of(operation_id)?;
    callers(project.is_some()).into_iter().find_map(|caller| {
        match decide(&caller, action, project) {
            Decision::Forbidden { needed } => Some((caller, needed)),
            _ => None,
        }
    })
}

/// Callers to find a refusal with: for project operations a viewer, then an editor, of `shop`;
/// otherwise a global reader.
fn callers(in_project: bool) -> Vec<Principal> {
    let shop = name("shop");
    let viewer = Principal::new(Actor::ProjectToken {
        project: shop.clone(),
        name: name("dashboard"),
    })
    .with_project(shop.clone(), ProjectRole::Viewer);
    let editor =
        Principal::new(Actor::User("alice".into())).with_project(shop, ProjectRole::Editor);
    let reader = Principal::new(Actor::Token(name("ci-reader"))).with_global(GlobalRole::Reader);
    if in_project {
        vec![viewer, editor, reader]
    } else {
        vec![reader, viewer]
    }
}

/// The 409 of a create whose name is taken (as `service::crud` words it).
fn duplicate(path: &ResourcePath) -> String {
    let (kind, key) = path.segments().last().expect("a resource path");
    let parent = path.parent();
    let intent = kind.name_scope() == "intent";
    let within = if parent.segments().is_empty() {
        String::new()
    } else {
        format!(" in {parent}")
    };
    let scope = if intent {
        " (inbound, outbound and route intents share one set of names, because generated object names derive from them)"
    } else {
        ""
    };
    let noun = if intent { "an intent" } else { kind.noun() };
    format!("{noun} {key} already exists{within}{scope}")
}

/// `value` with `pointer` set (objects along the way are made as needed); unchanged when the
/// pointer runs past an array's end.
fn with(value: &Value, pointer: &str, new: Value) -> Value {
    let mut out = value.clone();
    let mut at = &mut out;
    for token in pointer.split('/').skip(1) {
        at = match at {
            Value::Array(items) => match token.parse::<usize>() {
                Ok(i) if i < items.len() => &mut items[i],
                _ => return value.clone(),
            },
            Value::Object(map) => map
                .entry(token)
                .or_insert(Value::Object(Default::default())),
            _ => return value.clone(),
        };
    }
    *at = new;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_their_resource() {
        let Target::Item(path) = target(
            "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}",
        ) else {
            panic!("an item")
        };
        assert_eq!(path.to_string(), "inbound intent \"httpbin\"");
        assert_eq!(
            path.url(),
            "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents/httpbin"
        );
        assert!(matches!(
            target("/v2/projects/{project}/role-bindings"),
            Target::Collection(p, Kind::ProjectRoleBinding) if p.kind() == Some(Kind::Project)
        ));
        assert!(matches!(
            target("/v2/role-bindings"),
            Target::Collection(p, Kind::GlobalRoleBinding) if p.segments().is_empty()
        ));
        assert!(matches!(
            target("/v2/clusters/{cluster}/check"),
            Target::Below(p, rest) if p.kind() == Some(Kind::Cluster) && rest == "check"
        ));
        assert!(matches!(target("/v2/audit-events"), Target::Root));
        assert!(matches!(target("/healthz"), Target::Root));
    }

    #[test]
    fn pointers_are_set_in_copies() {
        let body = json!({"spec": {"ports": [{"number": 443}]}});
        assert_eq!(
            with(&body, "/spec/ports/0/number", json!(0)),
            json!({"spec": {"ports": [{"number": 0}]}})
        );
        assert_eq!(
            with(&body, "/metadata/name", json!("x")),
            json!({"spec": {"ports": [{"number": 443}]}, "metadata": {"name": "x"}})
        );
        assert_eq!(with(&body, "/spec/ports/3/number", json!(0)), body);
    }
}
