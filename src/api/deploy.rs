//! Deploying a traffic intent set to its clusters, and what became of it.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::resources::{ListQuery, path_to};
use crate::domain::resource::{Kind, ResourcePath};
use crate::error::Error;
use crate::service::Caller;
use crate::service::{Action, DeploymentList, DeploymentStatus, DeploymentSummary, Service};

fn set_path(req: &HttpRequest) -> Result<ResourcePath, Error> {
    path_to(req, Kind::TrafficIntentSet)
}

fn queued(path: &ResourcePath, summary: DeploymentSummary) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!("{}/deployments/{}", path.url(), summary.revision),
        ))
        .json(summary)
}

/// Render the set, store the rendered objects as a new revision and apply it in the background.
#[utoipa::path(
    post, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/deploy",
    tag = "deployments", operation_id = "traffic_intent_set_deploy", summary = "Deploy a traffic intent set",
    description = "Renders the set once, stores the objects with a new deployment revision, and queues it. A worker \
applies each cluster's objects with server-side apply (clusters in parallel), prunes objects of the set no longer \
desired, and records the outcome per cluster and object. Objects already as desired are not written. Follow the \
`Location` (or `GET .../status`) for progress.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
    ),
    responses(
        (status = 202, description = "Queued", body = DeploymentSummary,
         headers(("Location" = String, description = "The deployment revision"))),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another deploy was queued at the same moment", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The set cannot be rendered", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[post(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/deploy"
)]
pub async fn traffic_intent_set_deploy(
    svc: web::Data<Service>,
    req: HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let path = set_path(&req)?;
    let summary = svc.enqueue(&path, Action::Deploy, &caller).await?;
    Ok(queued(&path, summary))
}

/// Remove everything the set applied, from every cluster.
#[utoipa::path(
    post, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/terminate",
    tag = "deployments", operation_id = "traffic_intent_set_terminate", summary = "Terminate a traffic intent set",
    description = "Queues a deployment revision that deletes every object the set applied (per the inventory, \
confirmed by label selector on each cluster), in reverse dependency order. The intents stay.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
    ),
    responses(
        (status = 202, description = "Queued", body = DeploymentSummary,
         headers(("Location" = String, description = "The deployment revision"))),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another deploy was queued at the same moment", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[post(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/terminate"
)]
pub async fn traffic_intent_set_terminate(
    svc: web::Data<Service>,
    req: HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let path = set_path(&req)?;
    let summary = svc.enqueue(&path, Action::Terminate, &caller).await?;
    Ok(queued(&path, summary))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Also read the live objects and report drift (`missing`, `changed`, extra objects).
    pub verify: Option<bool>,
}

/// The latest deployment of the set, per cluster and per object.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/status",
    tag = "deployments", operation_id = "traffic_intent_set_status", summary = "Status of a traffic intent set",
    description = "The latest deployment revision: its state (Pending, Applying, Applied, Degraded, Failed, \
Terminating, Terminated), and per cluster and object what happened (desired, applied, unchanged, pruned, conflict, \
failed) with the API server's message. With `?verify=true`, the live objects are read and compared. `sync` holds the set's reconciliation settings (`spec.sync`) and what the reconciler's last check found.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        StatusQuery,
    ),
    responses(
        (status = 200, description = "The latest deployment", body = DeploymentStatus),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set (or an ancestor) does not exist, or was never deployed", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/status"
)]
pub async fn traffic_intent_set_status(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: super::query::Query<StatusQuery>,
) -> Result<HttpResponse, Error> {
    let path = set_path(&req)?;
    let status = svc.set_status(&path, query.verify.unwrap_or(false)).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// The set's deployment revisions, newest first.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/deployments",
    tag = "deployments", operation_id = "deployment_list", summary = "List deployments",
    description = "The set's deployments and terminations, newest revision first, in pages (`limit`, `pageToken`): \
each one's action, trigger (a user, or the reconciler's repair), state and times, without its objects (GET a revision for those).",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        ListQuery,
    ),
    responses(
        (status = 200, description = "A page of deployments", body = DeploymentList),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/deployments"
)]
pub async fn deployment_list(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: super::query::Query<ListQuery>,
) -> Result<HttpResponse, Error> {
    let path = set_path(&req)?;
    let page = query.into_inner().page()?;
    Ok(HttpResponse::Ok().json(svc.list_deployments(&path, page).await?))
}

/// One deployment revision, per cluster and per object.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/deployments/{revision}",
    tag = "deployments", operation_id = "deployment_get", summary = "Get a deployment",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        ("revision" = i64, Path, description = "Deployment revision"),
    ),
    responses(
        (status = 200, description = "The deployment", body = DeploymentStatus),
        (status = 404, description = "No such revision, set or ancestor", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/deployments/{revision}"
)]
pub async fn deployment_get(
    svc: web::Data<Service>,
    req: HttpRequest,
) -> Result<HttpResponse, Error> {
    let path = set_path(&req)?;
    let raw = req.match_info().get("revision").unwrap_or_default();
    let revision: i64 = raw
        .parse()
        .map_err(|_| Error::NotFound(format!("{path} has no deployment revision \"{raw}\"")))?;
    Ok(HttpResponse::Ok().json(svc.deployment_status(&path, Some(revision)).await?))
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "health", operation_id = "metrics", summary = "Prometheus metrics",
    description = "Deploys by outcome, objects by cluster and result, apply latency, queue depth. \
Not authenticated; with `MESHINTENT_METRICS_LISTEN` set it is served on that listener only (404 here).",
    responses(
        (status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain"),
        (status = 404, description = "Metrics are served on their own listener", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    svc: web::Data<Service>,
    placement: Option<web::Data<MetricsElsewhere>>,
) -> Result<HttpResponse, Error> {
    if placement.is_some() {
        return Err(Error::NotFound(
            "metrics are served on the metrics listener (MESHINTENT_METRICS_LISTEN)".into(),
        ));
    }
    Ok(metrics_response(&svc).await)
}

/// Marks the API listener when `/metrics` has a listener of its own.
#[derive(Clone, Copy, Debug)]
pub struct MetricsElsewhere;

/// The Prometheus text, with the queue depth read just now.
pub async fn metrics_response(svc: &Service) -> HttpResponse {
    let _ = svc.queue_depth().await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::render_metrics())
}
