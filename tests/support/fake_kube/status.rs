//! Kubernetes `Status` error bodies, shaped like the ones kube-apiserver sends.

use serde_json::{Map, Value, json};

use super::resources::ResourceType;

/// An error answer: a `metav1.Status` with `status: Failure` and the matching HTTP code.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (name, group, kind, causes, retryAfterSeconds), in order.
    pub details: Vec<(&'static str, Value)>,
    /// Sent as a `Retry-After` header (and `details.retryAfterSeconds`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: vec![],
            retry_after: None,
        }
    }

    /// Adds `details.name/group/kind` the way the API server does for a resource
    /// (`kind` is the plural resource name for NotFound/AlreadyExists/Conflict).
    pub fn for_object(mut self, rt: &ResourceType, name: &str) -> Self {
        if !name.is_empty() {
            self.details.push(("name", json!(name)));
        }
        self.details.push(("group", json!(rt.group)));
        self.details.push(("kind", json!(rt.plural)));
        self
    }

    pub fn with_causes(mut self, causes: Vec<Value>) -> Self {
        self.details.push(("causes", Value::Array(causes)));
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self.details.push(("retryAfterSeconds", json!(seconds)));
        self
    }

    pub fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if !self.details.is_empty() {
            let details: Map<String, Value> = self
                .details
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            status["details"] = Value::Object(details);
        }
        status["code"] = json!(self.code);
        status
    }

    // ---- the errors the fake answers with -------------------------------------------------

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.resource_group()),
        )
        .for_object(rt, name)
    }

    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.resource_group()),
        )
        .for_object(rt, name)
    }

    /// 409 for an optimistic-concurrency failure ("the object has been modified").
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.resource_group()
            ),
        )
        .for_object(rt, name)
    }

    pub fn modified(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid for an object: `Kind.group "name" is invalid: <field errors>`.
    pub fn invalid(rt: &ResourceType, name: &str, field: &str, message: &str) -> Self {
        let full = if field.is_empty() {
            message.to_string()
        } else {
            format!("{field}: {message}")
        };
        let mut err = Self::new(
            422,
            "Invalid",
            format!("{}.{} \"{name}\" is invalid: {full}", rt.kind, rt.group),
        );
        err.details.push(("name", json!(name)));
        err.details.push(("group", json!(rt.group)));
        err.details.push(("kind", json!(rt.kind)));
        let mut cause = json!({"reason": "FieldValueInvalid", "message": message});
        if !field.is_empty() {
            cause["field"] = json!(field);
        }
        err.with_causes(vec![cause])
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// The error an injected failure answers with, with the reason and a message a real
    /// API server would give for that code.
    pub fn injected(code: u16, target: Option<(&ResourceType, &str)>, retry_after: u64) -> Self {
        let err = match (code, target) {
            (404, Some((rt, name))) if !name.is_empty() => return Self::not_found(rt, name),
            (404, _) => return Self::path_not_found(),
            (409, Some((rt, name))) => return Self::modified(rt, name),
            (422, Some((rt, name))) => {
                return Self::invalid(rt, name, "", "injected validation failure");
            }
            (400, _) => Self::bad_request("injected bad request"),
            (401, _) => Self::unauthorized(),
            (403, _) => Self::new(403, "Forbidden", "injected: forbidden"),
            (405, _) => Self::method_not_allowed(),
            (409, None) => Self::new(409, "Conflict", "injected conflict"),
            (410, _) => Self::new(410, "Expired", "injected: the resource version is too old"),
            (415, _) => Self::unsupported_media_type(),
            (422, None) => Self::new(422, "Invalid", "injected validation failure"),
            (429, _) => {
                return Self::new(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                )
                .with_retry_after(retry_after);
            }
            (500, _) => Self::new(
                500,
                "InternalError",
                "Internal error occurred: injected failure",
            ),
            (503, _) => Self::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            (504, _) => Self::new(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            (code, _) => Self::new(code, "", format!("injected failure with status {code}")),
        };
        match target {
            Some((rt, name)) => err.for_object(rt, name),
            None => err,
        }
    }
}
