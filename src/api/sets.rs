//! Endpoints of a traffic intent set beyond CRUD: the set as a document, and its manifests.

use actix_web::{HttpRequest, HttpResponse, get, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::body::{parse_json, read_document_body};
use super::guard::Limits;
use super::resources::path_to;
use super::streaming;
use crate::domain::document::{DocIntentSet, IntentDocument};
use crate::domain::envelopes::TrafficIntentSet;
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::generate::output::{self, ManifestList};
use crate::service::{Caller, Service, SetChanges};

#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SetFormat {
    /// The resource envelope.
    #[default]
    Resource,
    /// The set as an intent document (with its project, composite app, apps and clusters).
    Document,
}

/// What `GET` of a set returns: the resource, or with `?format=document` the intent document.
#[derive(serde::Serialize, ToSchema)]
#[serde(untagged)]
pub enum SetOrDocument {
    Resource(TrafficIntentSet),
    Document(IntentDocument),
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SetQuery {
    /// `document` returns the set as an intent document (YAML-ready JSON) for git and offline rendering.
    #[param(inline)]
    pub format: Option<SetFormat>,
}

/// Get a traffic intent set (or, with `?format=document`, the set as an intent document).
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}",
    tag = "traffic-intent-sets", operation_id = "traffic_intent_set_get",
    summary = "Get a traffic intent set",
    description = "With `?format=document` the set is returned as an intent document (SPEC section 5): \
the project, the composite app with its apps, this set with all its intents, and the clusters the apps run on \
(without kubeconfigs or server-set metadata), ready for `meshintent render -f`.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        SetQuery,
    ),
    responses(
        (status = 200, description = "The set (or the document)", body = SetOrDocument,
         headers(("ETag" = String, description = "Entity tag of its revision (resource form)"))),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "It or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}")]
pub async fn traffic_intent_set_get(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: super::query::Query<SetQuery>,
) -> Result<HttpResponse, Error> {
    match query.format.unwrap_or_default() {
        SetFormat::Resource => super::resources::get::<TrafficIntentSet>(&svc, &req).await,
        SetFormat::Document => {
            let path = path_to(&req, Kind::TrafficIntentSet)?;
            Ok(streaming::json(svc.export_document(&path).await?))
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManifestFormat {
    #[default]
    Json,
    Yaml,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ManifestsQuery {
    /// `yaml`: one document per object, grouped by cluster under a comment line.
    #[param(inline)]
    pub format: Option<ManifestFormat>,
    /// Only this cluster's objects.
    pub cluster: Option<String>,
}

/// Render the set: the Istio objects each cluster needs. Read-only: the VIPs were allocated by
/// the writes that needed them.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/manifests",
    tag = "traffic-intent-sets", operation_id = "traffic_intent_set_manifests",
    summary = "Render a traffic intent set",
    description = "Renders the set into the Istio objects each cluster needs (nothing is applied). Virtual IPs \
for services reached across clusters are allocated on first need and kept, so renders are stable.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        ManifestsQuery,
    ),
    responses(
        (status = 200, description = "The objects per cluster",
         content((ManifestList = "application/json"), (String = "application/yaml"))),
        (status = 400, description = "Bad query parameters", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set, an ancestor, or the cluster does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The set cannot be rendered (e.g. a server cluster without an ingress gateway address)", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/manifests"
)]
pub async fn traffic_intent_set_manifests(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: super::query::Query<ManifestsQuery>,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    let (rendered, cluster) = svc.render(&path, query.cluster.as_deref()).await?;
    let manifests = rendered.manifests;
    // Streamed from the rendered objects, not copied into a `ManifestList` first: the answer
    // for a large set is tens of megabytes.
    Ok(match query.format.unwrap_or_default() {
        ManifestFormat::Json => streaming::streamed("application/json", move |out| {
            let view = output::view(&manifests, cluster.as_ref());
            serde_json::to_writer(out, &view).map_err(std::io::Error::other)
        }),
        ManifestFormat::Yaml => streaming::streamed("application/yaml", move |out| {
            output::write_yaml(output::clusters(&manifests, cluster.as_ref()), out)
        }),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// Delete the set's members the document leaves out (default true). With `false` they
    /// are kept, as `meshintent apply` does.
    pub prune: Option<bool>,
}

#[utoipa::path(
    put, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/document",
    tag = "traffic-intent-sets", operation_id = "traffic_intent_set_replace_document",
    summary = "Replace a traffic intent set's members from a document",
    description = "Makes the set hold the inbound intents (with clients and security intents), outbound intents \
and route intents of the body, which is a set entry of an intent document \
(`projects[].compositeApps[].trafficIntentSets[]`, as `GET ...?format=document` shows it). One transaction: \
every rule of the item writes is checked first (errors name fields of the body, e.g. \
`/inboundIntents/3/spec/app`), then new members are created, changed ones replaced and, unless `prune=false`, \
members the body leaves out deleted. VIPs are stored as the item writes store them. The body may be larger \
than other requests (`MESHINTENT_MAX_DOCUMENT_BYTES`).",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        DocumentQuery,
    ),
    request_body(content = DocIntentSet, description = "The set with all its members"),
    responses(
        (status = 200, description = "What changed, member by member", body = SetChanges),
        (status = 400, description = "The body is not a set document", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A member to delete is referenced from outside the set, or a concurrent write", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than MESHINTENT_MAX_DOCUMENT_BYTES", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A rule is broken; nothing was written", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[put(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/document"
)]
pub async fn traffic_intent_set_replace_document(
    svc: web::Data<Service>,
    limits: web::Data<Limits>,
    req: HttpRequest,
    query: super::query::Query<DocumentQuery>,
    caller: Caller,
    mut payload: web::Payload,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    // Read here, not by the app-wide extractor, whose limit is the one for single resources.
    let body = read_document_body(&mut payload, limits.max_document_bytes).await?;
    let document: DocIntentSet = parse_json(&req, &body)?;
    let changes = svc
        .replace_set_members(&path, document, query.prune.unwrap_or(true), &caller)
        .await?;
    Ok(streaming::json(changes))
}
