//! Endpoints of a traffic intent set beyond CRUD: the set as a document, and its manifests.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::resources::path_to;
use super::streaming;
use crate::domain::document::IntentDocument;
use crate::domain::envelopes::TrafficIntentSet;
use crate::domain::resource::Kind;
use crate::error::Error;
use crate::generate::output::{self, ManifestList};
use crate::istio::IstioObject;
use crate::service::Service;

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
    query: web::Query<SetQuery>,
) -> Result<HttpResponse, Error> {
    match query.format.unwrap_or_default() {
        SetFormat::Resource => super::resources::get::<TrafficIntentSet>(&svc, &req).await,
        SetFormat::Document => {
            let path = path_to(&req, Kind::TrafficIntentSet)?;
            Ok(streaming::json(svc.export_document(&path).await?))
        }
    }
}

/// `ManifestList` as it is sent, borrowing the rendered objects.
#[derive(serde::Serialize)]
struct ManifestView<'a> {
    clusters: Vec<ClusterObjects<'a>>,
}

#[derive(serde::Serialize)]
struct ClusterObjects<'a> {
    cluster: &'a str,
    objects: &'a [IstioObject],
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
    query: web::Query<ManifestsQuery>,
) -> Result<HttpResponse, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    let (rendered, cluster) = svc.render(&path, query.cluster.as_deref()).await?;
    let manifests = rendered.manifests;
    // Streamed from the rendered objects, not copied into a `ManifestList` first: the answer
    // for a large set is tens of megabytes.
    Ok(match query.format.unwrap_or_default() {
        ManifestFormat::Json => streaming::streamed("application/json", move |out| {
            let clusters = output::clusters(&manifests, cluster.as_ref())
                .into_iter()
                .map(|(cluster, objects)| ClusterObjects { cluster, objects })
                .collect();
            serde_json::to_writer(out, &ManifestView { clusters }).map_err(std::io::Error::other)
        }),
        ManifestFormat::Yaml => streaming::streamed("application/yaml", move |out| {
            output::write_yaml(output::clusters(&manifests, cluster.as_ref()), out)
        }),
    })
}
