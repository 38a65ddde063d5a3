//! `GET .../traffic-intent-sets/{set}/analysis`.

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::resources::path_to;
use crate::analysis::Analysis;
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::service::Service;

/// Check the set against its live clusters.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/analysis",
    tag = "traffic-intent-sets", operation_id = "traffic_intent_set_analysis",
    summary = "Analyse a traffic intent set against its clusters",
    description = "Renders the set and reads what its objects rely on from every cluster involved (nothing is written): \
the apps' namespaces and their sidecar injection, the inbound intents' Services and ports, the gateway workloads matching \
each rendered Gateway's selector, the `credentialName` Secrets in the gateway namespaces (metadata only), DestinationRules \
that disable TLS towards a STRICT service, objects meshintent does not manage that overlap rendered ones, and istiod's \
version. Each finding has a stable code (`istioctl analyze`'s where it has one, e.g. `IST0101`; `MI1xxx` otherwise: \
docs/deploy.md lists them), a severity, the cluster, the object, the intent it comes from and what to do. A cluster that \
cannot be read is one finding (`MI1000`), not a failure.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
    ),
    responses(
        (status = 200, description = "The findings (an empty list when everything is in place)", body = Analysis),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The set cannot be rendered", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/analysis"
)]
pub async fn traffic_intent_set_analysis(
    svc: web::Data<Service>,
    req: HttpRequest,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    Ok(HttpResponse::Ok().json(svc.analyse(&path).await?))
}
