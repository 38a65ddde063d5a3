//! The consumer side of the service-broker flow: a client's binding, and credential adaptation.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::parse_json;
use super::resources::path_to;
use crate::domain::credentials::{EndpointMapping, Mappings};
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::generate::binding::Binding;
use crate::service::Service;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BindingQuery {
    /// The client cluster, when the client's app runs on several.
    pub cluster: Option<String>,
}

/// Where a client reaches the service from its cluster, and the endpoint mappings for its credentials.
#[utoipa::path(
    get,
    path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}/clients/{client}/binding",
    tag = "clients", operation_id = "client_binding",
    summary = "Get a client's binding",
    description = "Where the client reaches the inbound intent's service from its own cluster (the FQDN; from \
another cluster also the VIP), and mappings that rewrite credentials issued for the service to that endpoint \
(feed them to `POST /v2/adapt-credentials`). Read-only: the VIPs were allocated by the writes that made them needed.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        ("intent" = String, Path, description = "Inbound intent name"),
        ("client" = String, Path, description = "Client name"),
        BindingQuery,
    ),
    responses(
        (status = 200, description = "The binding", body = Binding),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The client, an ancestor, or the cluster does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The client runs on several clusters and none was chosen, or the set cannot be rendered", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}/clients/{client}/binding"
)]
pub async fn client_binding(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: super::query::Query<BindingQuery>,
) -> Result<HttpResponse, Error> {
    let client_path = path_to(&req, Kind::Client)?;
    let set_path = client_path
        .ancestor(Kind::TrafficIntentSet)
        .ok_or_else(|| Error::internal("binding", "no set in path"))?;
    let intent = client_path
        .find(Kind::InboundIntent)
        .expect("in path")
        .name
        .clone();
    let client = client_path
        .find(Kind::Client)
        .expect("in path")
        .name
        .clone();
    let binding = svc
        .binding(&set_path, &intent, &client, query.cluster.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(binding))
}

/// Credentials and how to rewrite them (the Open Service Broker proxy convention, snake case kept).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdaptCredentialsRequest {
    /// The credentials of a service binding (any JSON object).
    #[schema(value_type = Object, example = json!({"host": "my-cf-service", "port": 1234, "uri": "http://my-cf-service:1234"}))]
    pub credentials: serde_json::Value,
    /// At least one mapping.
    #[schema(min_items = 1)]
    pub endpoint_mappings: Vec<EndpointMapping>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdaptCredentialsResponse {
    /// The credentials with every matching host/port (fields and URI authorities) rewritten.
    #[schema(value_type = Object, example = json!({"host": "my-k8s-service", "port": 6789, "uri": "http://my-k8s-service:6789"}))]
    pub credentials: serde_json::Value,
}

/// Rewrite service credentials for a client's cluster.
#[utoipa::path(
    post, path = "/v2/adapt-credentials", tag = "clients", operation_id = "credentials_adapt",
    summary = "Adapt credentials",
    description = "Replaces every host/port pair that matches a mapping's source by its target: `host`/`hostname` \
with `port` fields, and the authority of URI strings (`postgres://`, `amqp://`, `jdbc:...`, `http://`...), at any \
depth. Everything else is returned unchanged.",
    request_body(content = AdaptCredentialsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The adapted credentials", body = AdaptCredentialsResponse),
        (status = 400, description = "Malformed JSON or unknown fields", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "No mappings, or invalid ones", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v2/adapt-credentials")]
pub async fn credentials_adapt(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, Error> {
    let request: AdaptCredentialsRequest = parse_json(&req, &body)?;
    if !request.credentials.is_object() {
        return Err(Error::invalid_field(
            "/credentials",
            "must be a JSON object",
        ));
    }
    let mappings = Mappings::new(request.endpoint_mappings).map_err(Error::invalid)?;
    Ok(HttpResponse::Ok().json(AdaptCredentialsResponse {
        credentials: mappings.adapt(&request.credentials),
    }))
}
