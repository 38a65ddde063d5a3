//! Checking a deployed set against its clusters now (the reconciler's check, on demand).

use actix_web::{HttpRequest, HttpResponse, post, web};

use super::resources::path_to;
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::service::{Caller, Service, SyncStatus};

/// Check the set's latest deployment against the live clusters now.
#[utoipa::path(
    post, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/reconcile",
    tag = "deployments", operation_id = "traffic_intent_set_reconcile", summary = "Reconcile a traffic intent set now",
    description = "Runs the reconciler's check of the set now instead of at its `spec.sync.interval`: every cluster \
of the latest deployment is read (LISTs only; also clusters that are being backed off) and compared with the \
deployed revision. Drift (changed or missing objects, extra objects with the set's labels) is stored and shown in \
`GET .../status` as `sync`; with `spec.sync.selfHeal` a deploy of the same revision is queued (trigger \
`reconciler`, audit actor `system:reconciler`; see `lastRepairRevision`).",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
    ),
    responses(
        (status = 200, description = "What the check found", body = SyncStatus),
        (status = 404, description = "The set or an ancestor does not exist, or it was never deployed", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The latest deployment is not an applied deploy, or another check of the set did not end within 10 s", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[post(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/reconcile"
)]
pub async fn traffic_intent_set_reconcile(
    svc: web::Data<Service>,
    req: HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    let status = crate::reconciler::reconcile_now(&svc, &path, &caller).await?;
    Ok(HttpResponse::Ok().json(status))
}
