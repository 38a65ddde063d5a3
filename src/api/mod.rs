//! HTTP: thin handlers that translate requests into service calls, and the OpenAPI document.

pub mod bindings;
pub mod body;
pub mod deploy;
pub mod fallback;
pub mod health;
pub mod problem;
pub mod resources;
pub mod sets;
pub mod tree;

use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::violations::FieldError;
use problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "meshintent",
        description = "Traffic intents for Istio service meshes: describe which services exist, who may call them, \
how traffic to internal and external services is shaped, and how services are reached across clusters; \
meshintent renders the Istio resources for every cluster and applies them.\n\n\
Errors are `application/problem+json` (RFC 9457); validation errors list the fields as JSON pointers.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "clusters", description = "Registered target clusters"),
        (name = "projects", description = "Tenants"),
        (name = "composite-apps", description = "Versioned groups of apps"),
        (name = "apps", description = "Member apps of a composite app version: namespace, placement, identity"),
        (name = "traffic-intent-sets", description = "Units of intents rendered and deployed together"),
        (name = "inbound-intents", description = "Services exposed in the mesh"),
        (name = "clients", description = "Apps allowed to call an inbound intent's service"),
        (name = "security-intents", description = "What a client may do"),
        (name = "outbound-intents", description = "External services the mesh may reach"),
        (name = "route-intents", description = "Traffic management on a service"),
        (name = "deployments", description = "Deploying sets to clusters, and their status"),
        (name = "health", description = "Probes and metrics"),
    ),
    components(schemas(Problem, FieldError))
)]
struct ApiDoc;

/// Registers every documented endpoint (router and document share this one registration).
pub fn routes(cfg: &mut ServiceConfig) {
    tree::register(cfg);
    cfg.service(sets::traffic_intent_set_get);
    cfg.service(sets::traffic_intent_set_manifests);
    cfg.service(bindings::client_binding);
    cfg.service(bindings::credentials_adapt);
    cfg.service(deploy::traffic_intent_set_deploy);
    cfg.service(deploy::traffic_intent_set_terminate);
    cfg.service(deploy::traffic_intent_set_status);
    cfg.service(deploy::deployment_list);
    cfg.service(deploy::deployment_get);
    cfg.service(deploy::metrics);
    cfg.service(health::healthz);
    cfg.service(health::readyz);
}

/// The OpenAPI document, built from the same registration as the router.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    api
}

/// The committed form of the document (what `meshintent openapi` prints).
pub fn openapi_json() -> String {
    let mut json = openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
