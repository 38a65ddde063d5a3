//! Plans: what a deploy of a traffic intent set would do, found with reads and server-side
//! dry-run applies only.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::body::{parse_json, read_document_body};
use super::guard::Limits;
use super::resources::path_to;
use crate::domain::document::DocIntentSet;
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::service::{Caller, Plan, Service};

/// Plan the stored set: what `POST .../deploy` would do now.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/plan",
    tag = "deployments", operation_id = "traffic_intent_set_plan", summary = "Plan a deploy of a traffic intent set",
    description = "Renders the set as a deploy would, reads the live objects of every cluster of the set (one LIST \
per kind) and sends each object that would change through server-side apply with `dryRun=All` (the API server \
validates and admits it; nothing is stored). Per cluster and object: `action` (`create`, `update`, `unchanged`, \
`delete` for a prune candidate, `conflict` for an object another set or no set of meshintent owns, `invalid` when \
the API server refuses the dry run, with its message) and, for updates, an RFC 6902 JSON Patch from the live \
object to the API server's answer, restricted to the labels and annotations meshintent sets and `spec`. Nothing \
changes anywhere: no deployment, no audit event, no write on a cluster. A cluster that cannot be read has `error` \
and the others are still planned.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
    ),
    responses(
        (status = 200, description = "The plan", body = Plan),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The set cannot be rendered", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/plan"
)]
pub async fn traffic_intent_set_plan(
    svc: web::Data<Service>,
    req: HttpRequest,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    Ok(HttpResponse::Ok().json(svc.plan(&path).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanDocumentQuery {
    /// As for `PUT .../document`: plan with the set's members the body leaves out deleted
    /// (default true); with `false` they are kept, as `meshintent apply` keeps them.
    pub prune: Option<bool>,
}

/// Plan a proposed set: what `PUT .../document` of the body followed by a deploy would do.
#[utoipa::path(
    post, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/plan",
    tag = "deployments", operation_id = "traffic_intent_set_plan_document", summary = "Plan a proposed traffic intent set",
    description = "The body is a set entry of an intent document, as for `PUT .../document`. The write is checked \
and made inside a transaction that is rolled back (so a body that `PUT .../document` would refuse is refused the \
same way, and nothing is kept), the set is rendered from it as a deploy renders, and then planned as \
`GET .../plan` plans the stored set. What `meshintent plan -f FILE` sends. Needs the role that may write the set, \
as a server-side dry run needs the permission of the write it tries.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        PlanDocumentQuery,
    ),
    request_body(content = DocIntentSet, description = "The set with all its members"),
    responses(
        (status = 200, description = "The plan", body = Plan),
        (status = 400, description = "The body is not a set document", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The document would be refused: a member to delete is referenced from outside the set, or a mesh name is another set's", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than MESHINTENT_MAX_DOCUMENT_BYTES", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A rule is broken, or the set cannot be rendered", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[post(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/plan"
)]
pub async fn traffic_intent_set_plan_document(
    svc: web::Data<Service>,
    limits: web::Data<Limits>,
    req: HttpRequest,
    query: web::Query<PlanDocumentQuery>,
    caller: Caller,
    mut payload: web::Payload,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    // Read here, not by the app-wide extractor, whose limit is the one for single resources.
    let body = read_document_body(&mut payload, limits.max_document_bytes).await?;
    let document: DocIntentSet = parse_json(&req, &body)?;
    let plan = svc
        .plan_document(&path, document, query.prune.unwrap_or(true), &caller)
        .await?;
    Ok(HttpResponse::Ok().json(plan))
}
