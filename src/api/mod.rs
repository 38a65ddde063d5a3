//! HTTP: thin handlers that translate requests into service calls, and the OpenAPI document.

pub mod analysis;
pub mod audit;
pub mod bindings;
pub mod body;
pub mod cluster_check;
pub mod conformance;
pub mod deploy;
pub mod descriptions;
pub mod events;
pub mod examples;
pub mod fallback;
pub mod graph;
pub mod guard;
pub mod health;
pub mod plan;
pub mod policy;
pub mod problem;
pub mod query;
pub mod reconcile;
pub mod resources;
pub mod responses;
pub mod sets;
pub mod streaming;
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
        (name = "access", description = "Role bindings, API tokens and the audit log"),
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
    cfg.service(sets::traffic_intent_set_replace_document);
    cfg.service(bindings::client_binding);
    cfg.service(bindings::credentials_adapt);
    cfg.service(deploy::traffic_intent_set_deploy);
    cfg.service(deploy::traffic_intent_set_terminate);
    cfg.service(deploy::traffic_intent_set_status);
    cfg.service(deploy::deployment_list);
    cfg.service(deploy::deployment_get);
    cfg.service(plan::traffic_intent_set_plan);
    cfg.service(plan::traffic_intent_set_plan_document);
    cfg.service(audit::audit_event_list);
    cfg.service(audit::project_audit_event_list);
    cfg.service(deploy::metrics);
    cfg.service(health::healthz);
    cfg.service(health::readyz);
    cfg.service(reconcile::traffic_intent_set_reconcile);
    cfg.service(analysis::traffic_intent_set_analysis);
    cfg.service(cluster_check::cluster_check);
    cfg.service(events::traffic_intent_set_events);
    cfg.service(events::project_events);
    cfg.service(graph::traffic_intent_set_access);
    cfg.service(graph::traffic_intent_set_graph);
}

/// The OpenAPI document, built from the same registration as the router.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    document_access_control(&mut api);
    responses::document_error_responses(&mut api);
    responses::document_manifest_examples(&mut api);
    examples::document_request_examples(&mut api);
    examples::fix_articles(&mut api);
    descriptions::describe_operations(&mut api);
    descriptions::hoist_branch_descriptions(&mut api);
    api
}

/// Every `/v2` operation needs a bearer credential and can answer 401 and 429, 403 where the
/// policy refuses someone who may see the resource, and 413 when it takes a body: added here
/// once rather than on each endpoint (their examples: `responses`).
fn document_access_control(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Type;
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };

    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A meshintent API token (`mi_...`) or an OIDC JWT from the configured identity provider.",
                ))
                .build(),
        ),
    );
    let header = responses::header;
    for (path, item) in api.paths.paths.iter_mut() {
        if !path.starts_with("/v2/") {
            continue;
        }
        for (_, op) in responses::operations_mut(item) {
            op.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
            let id = op.operation_id.clone().unwrap_or_default();
            let has_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, response: utoipa::openapi::Response| {
                responses.entry(code.to_owned()).or_insert(response.into());
            };
            let mut unauthorized =
                responses::problem_response("No credential, or one that is not valid");
            unauthorized.headers.insert(
                "WWW-Authenticate".into(),
                header(
                    Type::String,
                    "`Bearer realm=\"meshintent\"`, with `error=\"invalid_token\"` when a credential was sent",
                )
                .into(),
            );
            add("401", unauthorized);
            if responses::refused_caller(&id, path).is_some() {
                add(
                    "403",
                    responses::problem_response(
                        "The caller may not do this; the detail names the role needed",
                    ),
                );
            }
            let mut too_many =
                responses::problem_response("Too many failed authentications from this address");
            too_many.headers.insert(
                "Retry-After".into(),
                header(Type::Integer, "Seconds until a credential is checked again").into(),
            );
            add("429", too_many);
            if has_body {
                add(
                    "413",
                    responses::problem_response(
                        "The body is larger than MESHINTENT_MAX_BODY_BYTES",
                    ),
                );
            }
        }
    }
}

/// The committed form of the document (what `meshintent openapi` prints).
pub fn openapi_json() -> String {
    let mut json = openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
