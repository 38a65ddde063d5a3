//! The audit log: every change and every refused request, oldest first.

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::resources::path_to;
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::service::{AuditEventList, Service};
use crate::store::AuditFilter;

/// Filters and paging of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events of this project.
    pub project: Option<String>,
    /// Only events of this actor (`user:alice`, `token:ci`, `token:shop/deployer`, `anonymous`).
    pub actor: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Only events of this resource (its URL path, e.g.
    /// `/v2/projects/shop/composite-apps/storefront/v1`) and of everything below it.
    pub resource: Option<String>,
    /// The `nextAfter` of the previous page.
    pub after: Option<i64>,
    /// Page size: default 100, at most 1000.
    #[param(minimum = 1)]
    pub limit: Option<u32>,
}

impl AuditQuery {
    fn filter(self, project: Option<String>) -> (AuditFilter, u32) {
        (
            AuditFilter {
                project: project.or(self.project),
                actor: self.actor,
                since: self.since,
                until: self.until,
                resource: self.resource,
                after_id: self.after.unwrap_or(0),
            },
            self.limit.unwrap_or(100),
        )
    }
}

/// Every audit event (admins and readers).
#[utoipa::path(
    get, path = "/v2/audit-events", tag = "access", operation_id = "audit_event_list",
    summary = "List audit events",
    description = "Every change (create, replace, delete, deploy, terminate, token create and revoke, role-binding changes, \
kubeconfig replaced) and every refused request (401, 403, and 404 for a project the caller may not see), oldest first. \
Events are immutable and hold no secrets.",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = AuditEventList),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v2/audit-events")]
pub async fn audit_event_list(
    svc: web::Data<Service>,
    query: super::query::Query<AuditQuery>,
) -> Result<HttpResponse, Error> {
    let (filter, limit) = query.into_inner().filter(None);
    Ok(HttpResponse::Ok().json(svc.audit_events(filter, limit).await?))
}

/// A project's audit events (its owners and admins).
#[utoipa::path(
    get, path = "/v2/projects/{project}/audit-events", tag = "access", operation_id = "project_audit_event_list",
    summary = "List a project's audit events",
    description = "The audit events of one project, oldest first, in pages (`limit`, `pageToken`): every change made in it \
(writes, deploys, terminates, its tokens and role bindings), with who, when, the resource's path and the status. \
Its owners see it (and admins, who also have the global list); the filters are the global list's.",
    params(("project" = String, Path, description = "Project name"), AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = AuditEventList),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The project does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v2/projects/{project}/audit-events")]
pub async fn project_audit_event_list(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: super::query::Query<AuditQuery>,
) -> Result<HttpResponse, Error> {
    let project = path_to(&req, Kind::Project)?;
    svc.get::<crate::domain::envelopes::Project>(&project)
        .await?;
    let name = project.key().map(|k| k.name.to_string());
    let (filter, limit) = query.into_inner().filter(name);
    Ok(HttpResponse::Ok().json(svc.audit_events(filter, limit).await?))
}
