//! Read-only views of a set for people: the access query (`GET .../access`) and the
//! who-may-call-whom graph (`GET .../graph`, JSON or SVG). `docs/access-query.md`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::resources::path_to;
use crate::authz::access::{AccessAnswer, AccessQuery};
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::graph::{Graph, svg};
use crate::service::Service;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessParams {
    /// The calling app of the set's composite app: `<app>`, or `<app>@<cluster>` when it runs on
    /// several clusters (its workloads' mTLS principal is derived from its service account and
    /// its cluster's trust domain).
    #[param(example = "sleep")]
    pub from: Option<String>,
    /// The inbound intent called: `<intent>`, or `<intent>@<cluster>` to pick one of the
    /// clusters its service runs on.
    #[param(example = "httpbin")]
    pub to: Option<String>,
    /// HTTP method (HTTP, HTTP2 and GRPC intents only; default `GET`).
    #[param(example = "GET")]
    pub method: Option<String>,
    /// Request path (HTTP intents only; default `/`).
    #[param(example = "/status/200")]
    pub path: Option<String>,
    /// Destination port (default: the intent's port).
    #[param(value_type = Option<u16>, example = 8000)]
    pub port: Option<String>,
}

/// May an app call an inbound intent's service? Evaluated on the rendered AuthorizationPolicies.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/access",
    tag = "traffic-intent-sets", operation_id = "traffic_intent_set_access",
    summary = "Ask whether an app may call an inbound intent",
    description = "Renders the set (nothing is applied) and evaluates the AuthorizationPolicies of every workload \
the request passes with Istio's semantics: CUSTOM, then DENY, then ALLOW; with an ALLOW policy on the workload, a \
request no ALLOW rule matches is denied; no policy allows. Across clusters in mode `egressGateway` the client \
cluster's egress gateway is evaluated first, and the service sees its ingress gateway's principal. The answer names \
the deciding policy, its namespace, action, rule index and the intent it came from. See docs/access-query.md.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        AccessParams,
    ),
    responses(
        (status = 200, description = "The decision and the rule that made it", body = AccessAnswer),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter names no app, intent or cluster, or asks what the service cannot see (e.g. a path of a TCP service); or the set cannot be rendered", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/access"
)]
pub async fn traffic_intent_set_access(
    svc: web::Data<Service>,
    req: HttpRequest,
    params: web::Query<AccessParams>,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    let params = params.into_inner();
    let required = |field: &str, value: Option<String>| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::invalid_field(field, format!("{field} is required")))
    };
    let port = params
        .port
        .map(|p| {
            p.parse::<u16>().map_err(|_| {
                Error::invalid_field("port", format!("\"{p}\" is not a port (1-65535)"))
            })
        })
        .transpose()?;
    let query = AccessQuery {
        from: required("from", params.from)?,
        to: required("to", params.to)?,
        method: params.method,
        path: params.path,
        port,
    };
    let answer = svc.access_query(&path, &query).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GraphFormat {
    #[default]
    Json,
    Svg,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphParams {
    /// `json` (default) or `svg`.
    #[param(inline)]
    pub format: Option<GraphFormat>,
}

/// The set's graph of who may call whom.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/graph",
    tag = "traffic-intent-sets", operation_id = "traffic_intent_set_graph",
    summary = "Get the graph of who may call whom",
    description = "Nodes: the composite app's apps on each cluster, the external services of outbound intents, \
namespaces of `accessNamespaces`, clients outside the mesh (`externalAccess`), and the ingress and egress gateways \
on the paths. Edges: one per client and server cluster with the methods, paths and ports its security intents \
allow (DENY intents as their own edges, drawn dashed and red), egress edges to external services; cross-cluster \
edges list the gateways they pass (`via`). Deterministic: the same set gives byte-identical JSON and SVG. \
The set must render (as for `GET .../manifests`).",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        GraphParams,
    ),
    responses(
        (status = 200, description = "The graph",
         content((Graph = "application/json"), (String = "image/svg+xml"))),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The set cannot be rendered", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/graph"
)]
pub async fn traffic_intent_set_graph(
    svc: web::Data<Service>,
    req: HttpRequest,
    params: web::Query<GraphParams>,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    let graph = svc.graph(&path).await?;
    Ok(match params.format.unwrap_or_default() {
        GraphFormat::Json => HttpResponse::Ok()
            .content_type("application/json")
            .body(graph.to_json()),
        GraphFormat::Svg => {
            // The layout is CPU work that grows with the set: off the async workers.
            let svg = web::block(move || svg::render(&graph))
                .await
                .map_err(|e| Error::internal("graph layout", e))?;
            HttpResponse::Ok().content_type("image/svg+xml").body(svg)
        }
    })
}
