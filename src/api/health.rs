//! Liveness and readiness probes.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;
use crate::service::Service;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The database backend (`postgres` or `sqlite`); readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(
    get, path = "/healthz", tag = "health", operation_id = "health_live", summary = "Liveness",
    responses((status = 200, description = "The process is up", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        database: None,
    })
}

/// The database is reachable.
#[utoipa::path(
    get, path = "/readyz", tag = "health", operation_id = "health_ready", summary = "Readiness",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(svc: web::Data<Service>) -> Result<HttpResponse, Error> {
    let store = svc.store();
    match tokio::time::timeout(std::time::Duration::from_secs(3), store.ping()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Health {
            status: "ready",
            database: Some(store.backend_name()),
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database error");
            Err(Error::Unavailable("the database is not reachable".into()))
        }
        Err(_) => Err(Error::Unavailable(
            "the database did not answer within 3s".into(),
        )),
    }
}
