//! Server-Sent Events streams of a set and of a project (SPEC 8 "Events"), framed by
//! `actix_web_lab::sse`. Each event carries `id:` (its position in the event table), `event:`
//! (its type) and `data:` (a JSON object); `Last-Event-ID` (or `?since=`) resumes strictly after
//! that id from the database.

use std::convert::Infallible;

use actix_web::{HttpRequest, get, web};
use actix_web_lab::sse;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::resources::path_to;
use crate::domain::resource::Kind;
use crate::domain::violations::FieldError;
use crate::error::Error;
use crate::service::Service;
use crate::service::events::StoredEvent;
use crate::store::EventScope;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event id, for clients that cannot send `Last-Event-ID` (the header
    /// wins when both are given). Without either, the stream starts with the next event.
    #[param(minimum = 0)]
    pub since: Option<i64>,
}

/// Where the stream starts: the `Last-Event-ID` header, else `?since=`, else now.
fn resume_after(req: &HttpRequest, query: &EventsQuery) -> Result<Option<i64>, Error> {
    let bad = |field: &str| Error::BadRequest {
        detail: format!("{field} must be an event id (a whole number of at least 0)"),
        errors: vec![FieldError::new(field, "not an event id")],
    };
    if let Some(value) = req.headers().get("last-event-id") {
        let text = value.to_str().map_err(|_| bad("Last-Event-ID"))?.trim();
        if text.is_empty() {
            return Ok(query.since);
        }
        let id: i64 = text.parse().map_err(|_| bad("Last-Event-ID"))?;
        if id < 0 {
            return Err(bad("Last-Event-ID"));
        }
        return Ok(Some(id));
    }
    match query.since {
        Some(id) if id < 0 => Err(bad("since")),
        other => Ok(other),
    }
}

/// One event of a stream, as an `EventSource` reads it (the stream also carries comment lines,
/// which are no events). Documentation only: `frame` writes the event.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServerSentEvent {
    /// The event's id, increasing; send it as `Last-Event-ID` (or `?since=`) to resume after it.
    #[schema(example = "42")]
    id: String,
    /// The event's type.
    #[schema(example = "intent-written")]
    event: String,
    /// A JSON object: the set's URL and what the event is about.
    #[schema(
        example = r#"{"set":"/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default","kind":"inbound-intents","resource":"/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents/httpbin","revision":2,"operation":"replace"}"#,
        content_media_type = "application/json"
    )]
    data: String,
}

fn frame(event: StoredEvent) -> Result<sse::Event, Infallible> {
    Ok(sse::Event::Data(
        sse::Data::new(event.data.to_string())
            .id(event.id.to_string())
            .event(event.kind),
    ))
}

async fn stream(
    svc: &Service,
    scope: EventScope,
    after: Option<i64>,
) -> Result<sse::Sse<impl futures::Stream<Item = Result<sse::Event, Infallible>> + use<>>, Error> {
    let heartbeat = svc.event_settings().heartbeat;
    let events = svc.follow(scope, after).await?;
    Ok(sse::Sse::from_stream(events.map(frame)).with_keep_alive(heartbeat))
}

/// What happens to a set, as Server-Sent Events.
#[utoipa::path(
    get, path = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/events",
    tag = "deployments", operation_id = "traffic_intent_set_events", summary = "Stream a set's events",
    description = "A `text/event-stream` (Server-Sent Events) of what happens to the set, from the database: \
`intent-written` (a create, replace or delete of the set or below it), `deploy-queued` (with each cluster's \
object count), `object-applied` (`state` applied or unchanged), `object-failed`, `object-pruned`, \
`object-conflict`, `cluster-finished` (with its state and writes), `deploy-finished`, `drift-found`, \
`drift-repaired`. Each event has `id:` (increasing), `event:` (the type) and `data:` (a JSON object with the \
set's URL, the revision, cluster, object kind/namespace/name, state and message as they apply). Send \
`Last-Event-ID` (or `?since=`) to resume strictly after an event, on any replica; without it the stream \
starts with the next event. A comment line is sent every 15 seconds without events. Events are kept for the \
server's `--event-retention`.",
    params(
        ("project" = String, Path, description = "Project name"),
        ("compositeApp" = String, Path, description = "Composite app name"),
        ("version" = String, Path, description = "Composite app version"),
        ("set" = String, Path, description = "Traffic intent set name"),
        ("Last-Event-ID" = Option<i64>, Header, nullable = false, minimum = 0, description = "Resume after this event id (an `id:` of the stream)"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "The event stream: each event is one `ServerSentEvent`", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 400, description = "`Last-Event-ID` or `since` is not an event id", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The set or an ancestor does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get(
    "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/events"
)]
pub async fn traffic_intent_set_events(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: web::Query<EventsQuery>,
) -> Result<impl actix_web::Responder, Error> {
    let path = path_to(&req, Kind::TrafficIntentSet)?;
    let after = resume_after(&req, &query)?;
    let scope = svc.set_event_scope(&path).await?;
    stream(&svc, scope, after).await
}

/// What happens to every set of a project, as Server-Sent Events.
#[utoipa::path(
    get, path = "/v2/projects/{project}/events",
    tag = "deployments", operation_id = "project_events", summary = "Stream a project's events",
    description = "The events of every traffic intent set of the project, in one `text/event-stream`: the same \
events, ids and resumption (`Last-Event-ID`, `?since=`) as `GET .../traffic-intent-sets/{set}/events`; each \
event's data names its set (`set`).",
    params(
        ("project" = String, Path, description = "Project name"),
        ("Last-Event-ID" = Option<i64>, Header, nullable = false, minimum = 0, description = "Resume after this event id (an `id:` of the stream)"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "The event stream: each event is one `ServerSentEvent`", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 400, description = "`Last-Event-ID` or `since` is not an event id", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The project does not exist", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v2/projects/{project}/events")]
pub async fn project_events(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: web::Query<EventsQuery>,
) -> Result<impl actix_web::Responder, Error> {
    let path = path_to(&req, Kind::Project)?;
    let after = resume_after(&req, &query)?;
    let scope = svc.project_event_scope(&path).await?;
    stream(&svc, scope, after).await
}
