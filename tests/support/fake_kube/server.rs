//! The HTTP side: an actix-web server whose single default service routes every request
//! like kube-apiserver does for the resources the fake serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::{KeepAlive, StatusCode};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Store;
use super::{DelayRule, FailRule, RecordedRequest};

/// Everything the server and the test handle share; survives restarts.
pub struct Shared {
    pub token: String,
    pub state: Mutex<State>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the server for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct State {
    pub store: Store,
    pub requests: Vec<RecordedRequest>,
    pub next_request_id: u64,
    pub fail_rules: Vec<FailRule>,
    pub delay_rules: Vec<DelayRule>,
    pub delay: Option<Duration>,
    pub rejected_names: HashMap<String, String>,
    pub retry_after: u64,
    pub require_auth: bool,
    pub builtins: super::builtin::Builtins,
}

impl Default for State {
    fn default() -> Self {
        Self {
            store: Store::default(),
            requests: vec![],
            next_request_id: 1,
            fail_rules: vec![],
            delay_rules: vec![],
            delay: None,
            rejected_names: HashMap::new(),
            retry_after: 1,
            require_auth: true,
            builtins: Default::default(),
        }
    }
}

/// A running actix server.
pub struct Running {
    pub handle: ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `addr` (port 0 picks one) and serves in the background; returns the bound port.
pub fn spawn(shared: web::Data<Shared>, addr: SocketAddr) -> std::io::Result<(Running, u16)> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .default_service(web::to(handle))
    })
    .workers(1)
    // Without keep-alive no pooled connection outlives a stop: a stopped fake deterministically
    // answers "connection refused", never a reset on a stale connection.
    .keep_alive(KeepAlive::Disabled)
    .disable_signals()
    .shutdown_timeout(0)
    .bind(addr)?;
    let port = server
        .addrs()
        .first()
        .map(SocketAddr::port)
        .expect("a bound address");
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    Ok((Running { handle, task }, port))
}

enum Body {
    Json(Value),
    Text(&'static str),
}

struct Reply {
    code: u16,
    body: Body,
    content_type: &'static str,
    retry_after: Option<u64>,
}

impl Reply {
    fn json(code: u16, body: Value) -> Self {
        Self {
            code,
            body: Body::Json(body),
            content_type: "application/json",
            retry_after: None,
        }
    }
}

impl From<ApiError> for Reply {
    fn from(err: ApiError) -> Self {
        Self {
            code: err.code,
            body: Body::Json(err.to_json()),
            content_type: "application/json",
            retry_after: err.retry_after,
        }
    }
}

impl From<Result<(u16, Value), ApiError>> for Reply {
    fn from(result: Result<(u16, Value), ApiError>) -> Self {
        match result {
            Ok((code, body)) => Reply::json(code, body),
            Err(err) => err.into(),
        }
    }
}

enum Route<'a> {
    Health,
    Version,
    CoreVersions,
    CoreResources,
    Groups,
    Group(&'static str),
    GroupVersion(&'static str, &'static str),
    Collection(&'static ResourceType, Option<&'a str>),
    Object(&'static ResourceType, &'a str, &'a str),
    Unknown,
}

impl Route<'_> {
    fn target(&self) -> Option<(&'static ResourceType, &str)> {
        match self {
            Route::Collection(rt, _) => Some((rt, "")),
            Route::Object(rt, _, name) => Some((rt, name)),
            _ => None,
        }
    }

    fn needs_auth(&self) -> bool {
        !matches!(self, Route::Health | Route::Version)
    }
}

fn route(path: &str) -> Route<'_> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let group = |g: &str| resources::groups().into_iter().find(|x| *x == g);
    match segments.as_slice() {
        ["healthz" | "livez" | "readyz"] => Route::Health,
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["api", "v1"] => Route::CoreResources,
        ["apis"] => Route::Groups,
        ["apis", g] => group(g).map_or(Route::Unknown, Route::Group),
        ["apis", g, v] => match group(g) {
            Some(g) => resources::group_versions(g)
                .into_iter()
                .find(|x| x == v)
                .map_or(Route::Unknown, |v| Route::GroupVersion(g, v)),
            None => Route::Unknown,
        },
        ["apis", g, v, plural] => resources::by_plural(g, v, plural)
            .map_or(Route::Unknown, |rt| Route::Collection(rt, None)),
        ["apis", g, v, "namespaces", ns, plural] => resources::by_plural(g, v, plural)
            .map_or(Route::Unknown, |rt| Route::Collection(rt, Some(ns))),
        ["apis", g, v, "namespaces", ns, plural, name] => resources::by_plural(g, v, plural)
            .map_or(Route::Unknown, |rt| Route::Object(rt, ns, name)),
        _ => Route::Unknown,
    }
}

fn rule_matches(method: Option<&str>, path_contains: Option<&str>, m: &str, path: &str) -> bool {
    method.is_none_or(|x| x.eq_ignore_ascii_case(m))
        && path_contains.is_none_or(|p| path.contains(p))
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Self {
        Self(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid boolean value {other:?} for {name}"
            ))),
        }
    }

    fn dry_run(&self) -> bool {
        self.0.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
}

struct Incoming<'a> {
    method: &'a str,
    path: &'a str,
    query: Query,
    content_type: String,
    accept: &'a str,
    authorization: Option<&'a str>,
    user_agent: &'a str,
    host: String,
    body: &'a str,
}

impl Incoming<'_> {
    /// `fieldManager`, or what the API server derives from the User-Agent for non-apply writes.
    fn manager(&self) -> String {
        match self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => self
                .user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        serde_json::from_str(self.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
    }
}

impl State {
    fn process(&mut self, token: &str, req: &Incoming<'_>) -> Reply {
        let route = route(req.path);
        if self.require_auth
            && route.needs_auth()
            && req.authorization != Some(format!("Bearer {token}").as_str())
            && !self.builtins.knows(req.authorization)
        {
            return ApiError::unauthorized().into();
        }
        if let Some(rule) = take_rule(&mut self.fail_rules, req.method, req.path) {
            return ApiError::injected(rule.status, route.target(), self.retry_after).into();
        }
        if let Some(result) = super::builtin::process(
            &mut self.builtins,
            &super::builtin::BuiltinRequest {
                method: req.method,
                path: req.path,
                query: &req.query.0,
                accept: req.accept,
                authorization: req.authorization,
                body: req.body,
            },
        ) {
            return result.into();
        }
        let aggregated = req.accept.contains("as=APIGroupDiscoveryList");
        let get_only = |reply: Reply| {
            if req.method == "GET" {
                reply
            } else {
                ApiError::method_not_allowed().into()
            }
        };
        match route {
            Route::Health => Reply {
                code: 200,
                body: Body::Text("ok"),
                content_type: "text/plain; charset=utf-8",
                retry_after: None,
            },
            Route::Version => get_only(Reply::json(200, resources::version_info())),
            Route::CoreVersions if aggregated => get_only(Reply {
                content_type: resources::AGGREGATED_CONTENT_TYPE,
                ..Reply::json(200, resources::aggregated_core())
            }),
            Route::CoreVersions => {
                get_only(Reply::json(200, resources::core_api_versions(&req.host)))
            }
            Route::CoreResources => get_only(Reply::json(200, resources::core_resource_list())),
            Route::Groups if aggregated => get_only(Reply {
                content_type: resources::AGGREGATED_CONTENT_TYPE,
                ..Reply::json(200, resources::aggregated_apis())
            }),
            Route::Groups => get_only(Reply::json(200, resources::api_group_list())),
            Route::Group(g) => get_only(Reply::json(200, resources::api_group(g))),
            Route::GroupVersion(g, v) => {
                get_only(Reply::json(200, resources::api_resource_list(g, v)))
            }
            Route::Collection(rt, ns) => self.collection(rt, ns, req).unwrap_or_else(Reply::from),
            Route::Object(rt, ns, name) => {
                self.object(rt, ns, name, req).unwrap_or_else(Reply::from)
            }
            Route::Unknown => ApiError::path_not_found().into(),
        }
    }

    fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    fn collection(
        &mut self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        req: &Incoming<'_>,
    ) -> Result<Reply, ApiError> {
        let store = &mut self.store;
        match (req.method, ns) {
            ("GET", _) => {
                if req.query.flag("watch")? {
                    return Err(ApiError::new(
                        405,
                        "MethodNotAllowed",
                        "the fake API server does not support watch",
                    ));
                }
                let (labels, fields) = Self::selectors(&req.query)?;
                let limit = match req.query.get("limit") {
                    None | Some("") => None,
                    Some(l) => Some(
                        l.parse::<usize>()
                            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
                    ),
                };
                let list = store.list(rt, ns, &labels, &fields, limit, req.query.get("continue"));
                Ok(Reply::json(200, list))
            }
            ("POST", Some(ns)) => {
                let body = req.json_body()?;
                Ok(store
                    .create(rt, ns, body, &req.manager(), req.query.dry_run())
                    .into())
            }
            ("DELETE", Some(ns)) => {
                let (labels, fields) = Self::selectors(&req.query)?;
                let list = store.delete_collection(rt, ns, &labels, &fields, req.query.dry_run());
                Ok(Reply::json(200, list))
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    fn object(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        req: &Incoming<'_>,
    ) -> Result<Reply, ApiError> {
        let dry_run = req.query.dry_run();
        match req.method {
            "GET" => Ok(Reply::json(200, self.store.get(rt, ns, name)?)),
            "PUT" => {
                let body = req.json_body()?;
                Ok(self
                    .store
                    .replace(rt, ns, name, body, &req.manager(), dry_run)
                    .into())
            }
            "DELETE" => {
                let options = if req.body.trim().is_empty() {
                    json!({})
                } else {
                    req.json_body()?
                };
                let dry_run = dry_run
                    || options["dryRun"]
                        .as_array()
                        .is_some_and(|d| d.iter().any(|x| x == "All"));
                Ok(self.store.delete(rt, ns, name, &options, dry_run).into())
            }
            "PATCH" => match req.content_type.as_str() {
                "application/apply-patch+yaml" => {
                    let Some(manager) = req.query.get("fieldManager").filter(|m| !m.is_empty())
                    else {
                        let mut err = ApiError::new(
                            422,
                            "Invalid",
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        );
                        err.details.push(("group", json!("meta.k8s.io")));
                        err.details.push(("kind", json!("PatchOptions")));
                        return Err(err.with_causes(vec![json!({
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        })]));
                    };
                    let force = req.query.flag("force")?;
                    if let Some(message) = self.rejected_names.get(name) {
                        return Err(ApiError::invalid(rt, name, "", message));
                    }
                    Ok(self
                        .store
                        .apply(rt, ns, name, req.body, manager, force, dry_run)
                        .into())
                }
                "application/merge-patch+json" => {
                    let patch = req.json_body()?;
                    Ok(self
                        .store
                        .merge_patch(rt, ns, name, patch, &req.manager(), dry_run)
                        .into())
                }
                "application/json-patch+json" => {
                    let patch: json_patch::Patch = serde_json::from_str(req.body)
                        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                    Ok(self
                        .store
                        .json_patch(rt, ns, name, &patch, &req.manager(), dry_run)
                        .into())
                }
                _ => Err(ApiError::unsupported_media_type()),
            },
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    fn take_delay(&mut self, method: &str, path: &str) -> Option<Duration> {
        take_rule(&mut self.delay_rules, method, path)
            .map(|rule| rule.delay)
            .or(self.delay)
    }
}

/// A fail or delay rule: which requests it matches, and how many more times.
trait Rule: Clone {
    fn matches(&self, method: &str, path: &str) -> bool;
    fn times(&mut self) -> &mut usize;
}

impl Rule for FailRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        rule_matches(self.method, self.path_contains, method, path)
    }

    fn times(&mut self) -> &mut usize {
        &mut self.times
    }
}

impl Rule for DelayRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        rule_matches(self.method, self.path_contains, method, path)
    }

    fn times(&mut self) -> &mut usize {
        &mut self.times
    }
}

/// Uses up one time of the first rule (with times left) matching the request; returns it.
/// Rules used up are dropped.
fn take_rule<T: Rule>(rules: &mut Vec<T>, method: &str, path: &str) -> Option<T> {
    let i = rules
        .iter_mut()
        .position(|r| *r.times() > 0 && r.matches(method, path))?;
    *rules[i].times() -= 1;
    let rule = rules[i].clone();
    rules.retain_mut(|r| *r.times() > 0);
    Some(rule)
}

async fn handle(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let content_type = header("content-type");
    let body_text = String::from_utf8_lossy(&body);
    let incoming = Incoming {
        method: req.method().as_str(),
        path: req.path(),
        query: Query::parse(req.query_string()),
        content_type: content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
        accept: header("accept"),
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        user_agent: header("user-agent"),
        host: req.connection_info().host().to_string(),
        body: &body_text,
    };
    let (reply, delay) = {
        let mut state = shared.lock();
        let reply = state.process(&shared.token, &incoming);
        let id = state.next_request_id;
        state.next_request_id += 1;
        state.requests.push(RecordedRequest {
            id,
            method: incoming.method.to_string(),
            path: incoming.path.to_string(),
            query: req.query_string().to_string(),
            content_type: (!content_type.is_empty()).then(|| content_type.to_string()),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body_text.to_string(),
            status: Some(reply.code),
        });
        let delay = state.take_delay(incoming.method, incoming.path);
        (reply, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = HttpResponse::build(
        StatusCode::from_u16(reply.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    response.content_type(reply.content_type);
    if let Some(seconds) = reply.retry_after {
        response.insert_header(("Retry-After", seconds.to_string()));
    }
    match reply.body {
        Body::Json(value) => response.body(value.to_string()),
        Body::Text(text) => response.body(text),
    }
}
