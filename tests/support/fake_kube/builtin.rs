//! Built-in Kubernetes kinds the fake serves read-only, for meshintent's analysis: core v1
//! Namespaces (cluster-scoped), Services, Pods and Secrets, and apps/v1 Deployments (GET and
//! LIST with label selectors, `metadata.name` field selectors and the PartialObjectMetadata
//! form of a GET), plus `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`,
//! answered from per-token permission rules.
//!
//! Objects are seeded with [`FakeKube::insert_builtin`]; extra users with limited permissions
//! with [`FakeKube::add_user`] (their token is accepted like the default one). The default
//! token may do everything. Requests of a limited user to the built-in kinds are checked
//! against its rules (403 Forbidden, as kube-apiserver's RBAC answers); requests to the Istio
//! kinds are not checked (only the review answers for them).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::FakeKube;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::now;

/// A served built-in kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinKind {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl BuiltinKind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

pub const BUILTINS: &[BuiltinKind] = &[
    BuiltinKind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    BuiltinKind {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
    },
    BuiltinKind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
    },
    BuiltinKind {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    BuiltinKind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
    },
];

/// One RBAC-like rule of a limited user: `"*"` matches anything. `namespace: None` is a
/// cluster-wide grant (a ClusterRoleBinding); `Some(ns)` only that namespace (a RoleBinding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verbs: Vec<String>,
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub namespace: Option<String>,
}

impl Permission {
    /// `verbs` on `resources` of `group`, cluster-wide.
    pub fn cluster_wide(verbs: &[&str], group: &str, resources: &[&str]) -> Self {
        Self {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            groups: vec![group.to_string()],
            resources: resources.iter().map(|s| s.to_string()).collect(),
            namespace: None,
        }
    }

    fn allows(&self, verb: &str, group: &str, resource: &str, namespace: &str) -> bool {
        let has = |list: &[String], x: &str| list.iter().any(|v| v == "*" || v == x);
        has(&self.verbs, verb)
            && has(&self.groups, group)
            && has(&self.resources, resource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| !namespace.is_empty() && ns == namespace)
    }
}

/// A user other than the default one.
#[derive(Clone, Debug)]
struct User {
    name: String,
    permissions: Vec<Permission>,
}

/// The state of the built-in kinds and of the extra users.
#[derive(Default)]
pub struct Builtins {
    /// (plural, namespace or "", name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    revision: u64,
    users: HashMap<String, User>,
}

impl Builtins {
    /// Whether `authorization` is `Bearer <token>` of an extra user.
    pub fn knows(&self, authorization: Option<&str>) -> bool {
        self.user(authorization).is_some()
    }

    fn user(&self, authorization: Option<&str>) -> Option<&User> {
        let token = authorization?.strip_prefix("Bearer ")?;
        self.users.get(token)
    }

    fn allowed(
        &self,
        authorization: Option<&str>,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
    ) -> bool {
        match self.user(authorization) {
            // The default token (or none, when auth is off) may do everything.
            None => true,
            Some(user) => user
                .permissions
                .iter()
                .any(|p| p.allows(verb, group, resource, ns)),
        }
    }

    fn insert(&mut self, mut object: Value) -> Value {
        let api_version = object["apiVersion"].as_str().unwrap_or("").to_string();
        let kind_name = object["kind"].as_str().unwrap_or("").to_string();
        let kind = BUILTINS
            .iter()
            .find(|k| k.api_version() == api_version && k.kind == kind_name)
            .unwrap_or_else(|| {
                panic!("fake kube: {api_version} {kind_name} is not a built-in kind")
            });
        let name = object["metadata"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .expect("fake kube: insert_builtin needs metadata.name")
            .to_string();
        let namespace = if kind.namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        self.revision += 1;
        let meta = object["metadata"]
            .as_object_mut()
            .expect("fake kube: metadata is an object");
        if kind.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("resourceVersion".into(), json!(self.revision.to_string()));
        meta.entry("creationTimestamp").or_insert(json!(now()));
        self.objects
            .insert((kind.plural.to_string(), namespace, name), object.clone());
        object
    }

    fn remove(&mut self, plural: &str, namespace: &str, name: &str) -> bool {
        let removed = self
            .objects
            .remove(&(plural.to_string(), namespace.to_string(), name.to_string()))
            .is_some();
        if removed {
            self.revision += 1;
        }
        removed
    }
}

/// A request the built-in handlers see.
pub struct BuiltinRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub accept: &'a str,
    pub authorization: Option<&'a str>,
    pub body: &'a str,
}

impl BuiltinRequest<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Target<'a> {
    Collection(&'static BuiltinKind, Option<&'a str>),
    Object(&'static BuiltinKind, &'a str, &'a str),
    AccessReview,
}

fn kind_of(group: &str, version: &str, plural: &str) -> Option<&'static BuiltinKind> {
    BUILTINS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

fn target(path: &str) -> Option<Target<'_>> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => {
            return Some(Target::AccessReview);
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    match rest {
        [plural] => kind_of(group, version, plural).map(|k| Target::Collection(k, None)),
        // A namespace itself: /api/v1/namespaces/{name}.
        ["namespaces", name] if group.is_empty() => {
            kind_of("", version, "namespaces").map(|k| Target::Object(k, "", name))
        }
        ["namespaces", ns, plural] => kind_of(group, version, plural)
            .filter(|k| k.namespaced)
            .map(|k| Target::Collection(k, Some(ns))),
        ["namespaces", ns, plural, name] => kind_of(group, version, plural)
            .filter(|k| k.namespaced)
            .map(|k| Target::Object(k, ns, name)),
        _ => None,
    }
}

fn forbidden(user: &str, verb: &str, kind: &BuiltinKind, ns: &str) -> ApiError {
    let resource = if kind.group.is_empty() {
        format!("resource \"{}\" in API group \"\"", kind.plural)
    } else {
        format!(
            "resource \"{}\" in API group \"{}\"",
            kind.plural, kind.group
        )
    };
    let scope = if ns.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{ns}\"")
    };
    let mut err = ApiError::new(
        403,
        "Forbidden",
        format!(
            "{} is forbidden: User \"{user}\" cannot {verb} {resource} {scope}",
            kind.plural
        ),
    );
    err.details.push(("group", json!(kind.group)));
    err.details.push(("kind", json!(kind.plural)));
    err
}

fn not_found(kind: &BuiltinKind, name: &str) -> ApiError {
    let what = if kind.group.is_empty() {
        kind.plural.to_string()
    } else {
        format!("{}.{}", kind.plural, kind.group)
    };
    let mut err = ApiError::new(404, "NotFound", format!("{what} \"{name}\" not found"));
    err.details.push(("name", json!(name)));
    err.details.push(("group", json!(kind.group)));
    err.details.push(("kind", json!(kind.plural)));
    err
}

/// Handles a request to a built-in kind or an access review; `None` for any other path.
pub fn process(
    builtins: &mut Builtins,
    req: &BuiltinRequest<'_>,
) -> Option<Result<(u16, Value), ApiError>> {
    let target = target(req.path)?;
    Some(match target {
        Target::AccessReview => review(builtins, req),
        Target::Collection(kind, ns) => read(builtins, req, kind, ns.unwrap_or(""), None),
        Target::Object(kind, ns, name) => read(builtins, req, kind, ns, Some(name)),
    })
}

fn read(
    builtins: &Builtins,
    req: &BuiltinRequest<'_>,
    kind: &'static BuiltinKind,
    ns: &str,
    name: Option<&str>,
) -> Result<(u16, Value), ApiError> {
    if req.method != "GET" {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the fake API server serves built-in kinds read-only (seed them with insert_builtin)",
        ));
    }
    let verb = if name.is_some() { "get" } else { "list" };
    if !builtins.allowed(req.authorization, verb, kind.group, kind.plural, ns) {
        let user = builtins
            .user(req.authorization)
            .map(|u| u.name.as_str())
            .unwrap_or("");
        return Err(forbidden(user, verb, kind, ns));
    }
    if let Some(name) = name {
        let object = builtins
            .objects
            .get(&(kind.plural.to_string(), ns.to_string(), name.to_string()))
            .ok_or_else(|| not_found(kind, name))?;
        if req.accept.contains("as=PartialObjectMetadata") {
            return Ok((
                200,
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object["metadata"],
                }),
            ));
        }
        return Ok((200, object.clone()));
    }
    if req.param("watch").is_some_and(|w| w == "true" || w == "1") {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the fake API server does not support watch",
        ));
    }
    let labels = LabelSelector::parse(req.param("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(req.param("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let items: Vec<Value> = builtins
        .objects
        .iter()
        .filter(|((plural, namespace, _), _)| {
            plural == kind.plural && (ns.is_empty() || namespace == ns)
        })
        .map(|(_, v)| v)
        .filter(|v| labels.matches(v) && fields.matches(v))
        .cloned()
        .collect();
    Ok((
        200,
        json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind),
            "metadata": {"resourceVersion": builtins.revision.to_string()},
            "items": items,
        }),
    ))
}

/// `SelfSubjectAccessReview`: whether the caller may do what `spec.resourceAttributes` says.
fn review(builtins: &Builtins, req: &BuiltinRequest<'_>) -> Result<(u16, Value), ApiError> {
    if req.method != "POST" {
        return Err(ApiError::method_not_allowed());
    }
    let mut body: Value = serde_json::from_str(req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    if body["kind"] != "SelfSubjectAccessReview" {
        return Err(ApiError::bad_request(
            "the body must be a SelfSubjectAccessReview",
        ));
    }
    let attributes = &body["spec"]["resourceAttributes"];
    if !attributes.is_object() {
        return Err(ApiError::new(
            422,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let get = |k: &str| attributes[k].as_str().unwrap_or("");
    let allowed = builtins.allowed(
        req.authorization,
        get("verb"),
        get("group"),
        get("resource"),
        get("namespace"),
    );
    let mut status = json!({"allowed": allowed});
    if allowed {
        status["reason"] = json!("RBAC: allowed by the fake's rules");
    }
    body["status"] = status;
    body["metadata"] = json!({"creationTimestamp": null});
    Ok((201, body))
}

impl FakeKube {
    /// Stores a built-in object (Namespace, Service, Pod, Secret, Deployment) directly;
    /// `apiVersion`, `kind` and `metadata.name` are required (namespace default `default`).
    pub fn insert_builtin(&self, object: Value) -> Value {
        self.shared.lock().builtins.insert(object)
    }

    /// Removes a built-in object (`namespace` "" for a Namespace); returns whether it existed.
    pub fn remove_builtin(&self, plural: &str, namespace: &str, name: &str) -> bool {
        self.shared.lock().builtins.remove(plural, namespace, name)
    }

    /// Adds a user with only `permissions`; returns its bearer token.
    pub fn add_user(&self, name: &str, permissions: Vec<Permission>) -> String {
        let token = format!("fake-user-{}", uuid::Uuid::new_v4().simple());
        self.shared.lock().builtins.users.insert(
            token.clone(),
            User {
                name: name.to_string(),
                permissions,
            },
        );
        token
    }

    /// A kubeconfig like [`FakeKube::kubeconfig`] with another bearer token.
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        self.kubeconfig().replace(self.token(), token)
    }
}
