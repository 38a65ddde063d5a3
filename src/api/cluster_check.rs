//! `POST /v2/clusters/{cluster}/check`.

use actix_web::{HttpRequest, HttpResponse, post, web};

use super::resources::path_to;
use crate::domain::envelopes::Cluster;
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::service::{Caller, Service};

/// Check a cluster now: reachable, Istio kinds served, credentials permitted.
#[utoipa::path(
    post, path = "/v2/clusters/{cluster}/check",
    tag = "clusters", operation_id = "cluster_check", summary = "Check a cluster",
    description = "Asks the cluster's API server, with the stored credentials: `GET /version` (condition `Reachable`, \
`status.kubernetesVersion`), discovery of `networking.istio.io/v1` and `security.istio.io/v1` for every kind deploy writes \
(`IstioServed`), and one SelfSubjectAccessReview per verb deploy needs (get, list, create, patch, delete) and kind, \
cluster-wide (`Permitted`; the message names what is denied). Also reads istiod's image tag (`status.istioVersion`). \
The result is stored as `status.conditions` (`lastTransitionTime` changes only when a condition's status does) with \
`status.lastCheckedAt`. A cluster that fails a check is still answered with 200: the conditions say what failed. \
Clusters are also checked after every create or replace that carries a kubeconfig.",
    params(("cluster" = String, Path, description = "Cluster name")),
    responses(
        (status = 200, description = "The cluster with the check's conditions", body = Cluster),
        (status = 404, description = "The cluster does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v2/clusters/{cluster}/check")]
pub async fn cluster_check(
    svc: web::Data<Service>,
    req: HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::Cluster)?;
    let cluster = svc.check_cluster(&path, &caller).await?;
    Ok(HttpResponse::Ok().json(cluster))
}
