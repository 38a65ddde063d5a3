//! The gate in front of every `/v2` endpoint: authentication, the one authorization policy,
//! the body-size limit, and audit events for refused requests.

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::policy::{OperationTable, action_of};
use crate::auth::Authenticator;
use crate::domain::access::{Actor, Decision, decide};
use crate::domain::names::{Name, quoted};
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::error::Error;
use crate::service::{Caller, Service};
use crate::store::NewAuditEvent;

/// The request's id: from a well-formed `X-Request-Id` header, else a new UUID. Every response
/// carries it back, and audit events record it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub const REQUEST_ID: &str = "x-request-id";

impl RequestId {
    pub fn of(req: &ServiceRequest) -> Self {
        let given = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 128
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            });
        Self(given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned))
    }
}

/// Limits the gate enforces besides access control.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// For set documents (`PUT .../document`), which hold a whole set.
    pub max_document_bytes: usize,
}

/// Handlers take the caller the gate let through. A request that reached a handler without
/// one is a wiring bug: refused, never served as someone.
impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Caller, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            Error::internal(
                "authorization",
                "a handler ran without an authenticated caller",
            )
        }))
    }
}

/// The gate (an actix `from_fn` middleware).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path().to_owned();
    if path != "/v2" && !path.starts_with("/v2/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let (Some(svc), Some(auth), Some(table), Some(limits)) = (
        req.app_data::<web::Data<Service>>().cloned(),
        req.app_data::<web::Data<Authenticator>>().cloned(),
        req.app_data::<web::Data<OperationTable>>().cloned(),
        req.app_data::<web::Data<Limits>>().cloned(),
    ) else {
        let e = Error::internal("authorization", "the gate is not configured");
        return Ok(req.error_response(e).map_into_boxed_body());
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| RequestId::of(&req).0, |r| r.0.clone());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let peer = req.peer_addr().map(|a| a.ip());
    let denied = |actor: String, status: u16, message: String| NewAuditEvent {
        actor,
        action: "denied".into(),
        resource: path.clone(),
        project: None,
        revision_before: None,
        revision_after: None,
        status,
        request_id: request_id.clone(),
        message: Some(message),
    };

    let principal = match auth
        .authenticate(&svc, authorization.as_deref(), peer)
        .await
    {
        Ok(principal) => principal,
        Err(e) => {
            if let Error::Unauthorized { detail, .. } = &e {
                record(
                    &svc,
                    denied(Actor::Anonymous.to_string(), 401, detail.clone()),
                )
                .await;
            }
            return Ok(req.error_response(e).map_into_boxed_body());
        }
    };

    // Unknown paths and methods go on to the router's 404/405 answers.
    let Some(operation) = table.find(req.method(), &path) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(action) = action_of(&operation.id) else {
        tracing::error!(operation = %operation.id, "no authorization policy for this operation; refused");
        let e = Error::Forbidden(format!(
            "operation {} has no authorization policy, so nobody may call it",
            operation.id
        ));
        return Ok(req.error_response(e).map_into_boxed_body());
    };
    let project = match operation.project.as_deref().map(str::parse::<Name>) {
        Some(Ok(name)) => Some(name),
        Some(Err(_)) => {
            let raw = operation.project.unwrap_or_default();
            let e = Error::NotFound(format!(
                "project {} does not exist (not a valid name)",
                quoted(&raw)
            ));
            return Ok(req.error_response(e).map_into_boxed_body());
        }
        None => None,
    };
    let actor = principal.actor.to_string();
    let refused = match decide(&principal, action, project.as_ref()) {
        Decision::Allow => None,
        Decision::Forbidden { needed } => Some((
            403,
            Error::Forbidden(format!(
                "{actor} may not call {} ({}): it needs {needed}",
                operation.id,
                req.method()
            )),
        )),
        Decision::Hidden => {
            let project = project.clone().expect("hidden only for project actions");
            let path = ResourcePath::root().child(
                Kind::Project,
                Key {
                    name: project,
                    version: None,
                },
            );
            Some((404, Error::NotFound(format!("{path} does not exist"))))
        }
    };
    if let Some((status, e)) = refused {
        let mut event = denied(actor, status, e.to_string());
        event.project = project.map(|p| p.to_string());
        record(&svc, event).await;
        return Ok(req.error_response(e).map_into_boxed_body());
    }

    let (limit, setting) = if is_document_write(&req) {
        (limits.max_document_bytes, "MESHINTENT_MAX_DOCUMENT_BYTES")
    } else {
        (limits.max_body_bytes, "MESHINTENT_MAX_BODY_BYTES")
    };
    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64);
    if too_large {
        let e = Error::PayloadTooLarge(format!(
            "the request body is larger than the limit of {limit} bytes ({setting})"
        ));
        return Ok(req.error_response(e).map_into_boxed_body());
    }
    req.extensions_mut()
        .insert(Caller::new(principal, request_id));
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether the request writes a whole set document (which has its own body limit).
pub fn is_document_write(req: &ServiceRequest) -> bool {
    req.method() == actix_web::http::Method::PUT && req.path().ends_with("/document")
        // A proposed set document to plan (`POST .../plan`) is as large.
        || req.method() == actix_web::http::Method::POST && req.path().ends_with("/plan")
}

/// Refusals are recorded on a best-effort basis: a database outage must not turn a 401 into
/// a 500 (it is logged instead).
async fn record(svc: &Service, event: NewAuditEvent) {
    if let Err(e) = svc.record_denied(event).await {
        tracing::warn!(error = %e, "could not record a refused request in the audit log");
    }
}
