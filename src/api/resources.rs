//! CRUD endpoints for every kind of resource: thin handlers over `Service`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::body::parse_json;
use crate::domain::envelopes::Resource;
use crate::domain::names::quoted;
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::error::Error;
use crate::service::{Caller, IfMatch, Page, PageToken, Service};

/// Paging of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size: default 100; values above 1000 are treated as 1000.
    #[param(minimum = 1)]
    pub limit: Option<u32>,
    /// The `nextPage` token of the previous page.
    pub page_token: Option<String>,
}

impl ListQuery {
    /// The page asked for.
    pub fn page(self) -> Result<Page, Error> {
        Ok(Page {
            limit: self.limit,
            after: self
                .page_token
                .as_deref()
                .map(PageToken::decode)
                .transpose()?,
        })
    }
}

/// Options of a delete.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Also delete every resource below this one.
    pub cascade: Option<bool>,
}

/// The URL parameter(s) naming a resource of `kind`.
pub const fn path_params(kind: Kind) -> (&'static str, Option<&'static str>) {
    match kind {
        Kind::Cluster => ("cluster", None),
        Kind::Project => ("project", None),
        Kind::CompositeApp => ("compositeApp", Some("version")),
        Kind::App => ("app", None),
        Kind::TrafficIntentSet => ("set", None),
        Kind::InboundIntent | Kind::OutboundIntent | Kind::RouteIntent => ("intent", None),
        Kind::Client => ("client", None),
        Kind::SecurityIntent => ("rule", None),
        Kind::GlobalRoleBinding | Kind::ProjectRoleBinding => ("binding", None),
        Kind::GlobalToken | Kind::ProjectToken => ("token", None),
    }
}

/// The path of the resource of `kind` named by the request's URL parameters.
pub fn path_to(req: &HttpRequest, kind: Kind) -> Result<ResourcePath, Error> {
    let mut chain = vec![kind];
    while let Some(parent) = chain.last().and_then(|k| k.parent()) {
        chain.push(parent);
    }
    let mut path = ResourcePath::root();
    for kind in chain.into_iter().rev() {
        let (name_param, version_param) = path_params(kind);
        let raw = req.match_info().get(name_param).unwrap_or_default();
        let missing =
            |what: &str| Error::NotFound(format!("{kind} {} does not exist ({what})", quoted(raw)));
        let name = raw.parse().map_err(|_| missing("not a valid name"))?;
        let version = match version_param {
            Some(p) => {
                let raw = req.match_info().get(p).unwrap_or_default();
                Some(raw.parse().map_err(|_| {
                    Error::NotFound(format!(
                        "{kind} version {} does not exist (not a valid version)",
                        quoted(raw)
                    ))
                })?)
            }
            None => None,
        };
        path = path.child(kind, Key { name, version });
    }
    Ok(path)
}

fn parent_of(req: &HttpRequest, kind: Kind) -> Result<ResourcePath, Error> {
    match kind.parent() {
        Some(parent) => path_to(req, parent),
        None => Ok(ResourcePath::root()),
    }
}

fn if_match(req: &HttpRequest) -> Result<Option<IfMatch>, Error> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    IfMatch::parse(value.to_str().unwrap_or("\u{0}"))
        .map(Some)
        .map_err(|message| Error::BadRequest {
            detail: format!("If-Match: {message}"),
            errors: vec![crate::domain::violations::FieldError::new(
                "If-Match", message,
            )],
        })
}

fn etag_of<R: Resource>(resource: &R) -> String {
    crate::service::etag(resource.metadata().revision.unwrap_or_default())
}

pub async fn list<R: Resource>(
    svc: &Service,
    req: &HttpRequest,
    query: ListQuery,
    caller: &Caller,
) -> Result<HttpResponse, Error> {
    let parent = parent_of(req, R::KIND)?;
    let page = svc.list::<R>(&parent, query.page()?, caller).await?;
    Ok(HttpResponse::Ok().json(R::list(page.items, page.next.map(|t| t.encode()))))
}

pub async fn create<R: Resource>(
    svc: &Service,
    req: &HttpRequest,
    body: &[u8],
    caller: &Caller,
) -> Result<HttpResponse, Error> {
    let parent = parent_of(req, R::KIND)?;
    let resource: R = parse_json(req, body)?;
    let (path, created) = svc.create(&parent, resource, caller).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, path.url()))
        .insert_header((header::ETAG, etag_of(&created)))
        .json(created))
}

pub async fn get<R: Resource>(svc: &Service, req: &HttpRequest) -> Result<HttpResponse, Error> {
    let path = path_to(req, R::KIND)?;
    let resource: R = svc.get(&path).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag_of(&resource)))
        .json(resource))
}

pub async fn replace<R: Resource>(
    svc: &Service,
    req: &HttpRequest,
    body: &[u8],
    caller: &Caller,
) -> Result<HttpResponse, Error> {
    let path = path_to(req, R::KIND)?;
    let resource: R = parse_json(req, body)?;
    let replaced = svc.replace(&path, resource, if_match(req)?, caller).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag_of(&replaced)))
        .json(replaced))
}

pub async fn delete<R: Resource>(
    svc: &Service,
    req: &HttpRequest,
    query: DeleteQuery,
    caller: &Caller,
) -> Result<HttpResponse, Error> {
    let path = path_to(req, R::KIND)?;
    svc.delete(
        &path,
        query.cascade.unwrap_or(false),
        if_match(req)?,
        caller,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Declares the endpoints of one kind, each documented for the OpenAPI document, and a
/// `register` function that registers them in the order list, create, get, replace, delete.
/// With `get = custom`, the kind's GET item handler is written (and registered) by hand
/// (traffic intent sets); with `replace = none` there is no PUT (tokens: revoke and create a
/// new one instead).
macro_rules! crud_endpoints {
    (
        resource = $resource:ty, list_type = $list_type:ty, tag = $tag:tt, noun = $noun:tt,
        collection = $collection:tt, item = $item:tt,
        params = [$(($pname:tt, $pdesc:tt)),*], item_params = [$(($iname:tt, $idesc:tt)),+],
        ops = ($list:ident, $create:ident, $get:ident, $replace:ident, $delete:ident)
    ) => {
        $crate::api::resources::crud_endpoints! {
            @handlers resource = $resource, list_type = $list_type, tag = $tag, noun = $noun,
            collection = $collection, item = $item,
            params = [$(($pname, $pdesc)),*], item_params = [$(($iname, $idesc)),+],
            ops = ($list, $create, $delete)
        }
        $crate::api::resources::crud_endpoints!(@replace $resource, $tag, $noun, $item, [$(($pname, $pdesc)),*], [$(($iname, $idesc)),+], $replace);
        $crate::api::resources::crud_endpoints!(@get $resource, $tag, $noun, $item, [$(($pname, $pdesc)),*], [$(($iname, $idesc)),+], $get);
        $crate::api::resources::crud_endpoints!(@register $list, $create, $get, $replace, $delete);
    };
    (
        resource = $resource:ty, list_type = $list_type:ty, tag = $tag:tt, noun = $noun:tt,
        collection = $collection:tt, item = $item:tt,
        params = [$(($pname:tt, $pdesc:tt)),*], item_params = [$(($iname:tt, $idesc:tt)),+],
        ops = ($list:ident, $create:ident, $get:ident, $replace:ident, $delete:ident), get = custom
    ) => {
        $crate::api::resources::crud_endpoints! {
            @handlers resource = $resource, list_type = $list_type, tag = $tag, noun = $noun,
            collection = $collection, item = $item,
            params = [$(($pname, $pdesc)),*], item_params = [$(($iname, $idesc)),+],
            ops = ($list, $create, $delete)
        }
        $crate::api::resources::crud_endpoints!(@replace $resource, $tag, $noun, $item, [$(($pname, $pdesc)),*], [$(($iname, $idesc)),+], $replace);
        $crate::api::resources::crud_endpoints!(@register $list, $create, $replace, $delete);
    };
    (@replace $resource:ty, $tag:tt, $noun:tt, $item:tt, [$(($pname:tt, $pdesc:tt)),*], [$(($iname:tt, $idesc:tt)),+], $replace:ident) => {
        #[utoipa::path(
            put, path = $item, tag = $tag, operation_id = stringify!($replace),
            summary = concat!("Replace a ", $noun),
            description = "Replaces the whole resource. Send the ETag in If-Match to avoid overwriting a change made meanwhile.",
            params(
                $(($pname = String, Path, description = $pdesc),)* $(($iname = String, Path, description = $idesc),)+
                ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)$"#, example = "\"3\"", description = "Entity tag the resource must still have: the ETag of the last read, quoted (`\"3\"`), or `*`"),
            ),
            request_body(content = $resource, content_type = "application/json"),
            responses(
                (status = 200, description = "Replaced", body = $resource,
                 headers(("ETag" = String, description = "Entity tag of its revision"))),
                (status = 400, description = "Malformed JSON, unknown or missing fields, wrong types", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 404, description = "It or an ancestor does not exist", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 409, description = "A resource it refers to was deleted meanwhile", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 412, description = "If-Match names a stale revision", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 415, description = "The body is not JSON", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 422, description = "A value or a reference is invalid", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
            )
        )]
        #[put($item)]
        pub async fn $replace(
            svc: actix_web::web::Data<$crate::service::Service>,
            req: actix_web::HttpRequest,
            body: actix_web::web::Bytes,
            caller: $crate::service::Caller,
        ) -> Result<actix_web::HttpResponse, $crate::error::Error> {
            $crate::api::resources::replace::<$resource>(&svc, &req, &body, &caller).await
        }

    };
    (
        resource = $resource:ty, list_type = $list_type:ty, tag = $tag:tt, noun = $noun:tt,
        collection = $collection:tt, item = $item:tt,
        params = [$(($pname:tt, $pdesc:tt)),*], item_params = [$(($iname:tt, $idesc:tt)),+],
        ops = ($list:ident, $create:ident, $get:ident, $delete:ident), replace = none
    ) => {
        $crate::api::resources::crud_endpoints! {
            @handlers resource = $resource, list_type = $list_type, tag = $tag, noun = $noun,
            collection = $collection, item = $item,
            params = [$(($pname, $pdesc)),*], item_params = [$(($iname, $idesc)),+],
            ops = ($list, $create, $delete)
        }
        $crate::api::resources::crud_endpoints!(@get $resource, $tag, $noun, $item, [$(($pname, $pdesc)),*], [$(($iname, $idesc)),+], $get);
        $crate::api::resources::crud_endpoints!(@register $list, $create, $get, $delete);
    };
    (@register $($op:ident),+) => {
        /// Registers this kind's endpoints.
        pub fn register(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
            $(cfg.service($op);)+
        }
    };
    (@get $resource:ty, $tag:tt, $noun:tt, $item:tt, [$(($pname:tt, $pdesc:tt)),*], [$(($iname:tt, $idesc:tt)),+], $get:ident) => {
        #[utoipa::path(
            get, path = $item, tag = $tag, operation_id = stringify!($get),
            summary = concat!("Get a ", $noun),
            params($(($pname = String, Path, description = $pdesc),)* $(($iname = String, Path, description = $idesc)),+),
            responses(
                (status = 200, description = "The resource", body = $resource,
                 headers(("ETag" = String, description = "Entity tag of its revision"))),
                (status = 404, description = "It or an ancestor does not exist", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
            )
        )]
        #[get($item)]
        pub async fn $get(
            svc: actix_web::web::Data<$crate::service::Service>,
            req: actix_web::HttpRequest,
        ) -> Result<actix_web::HttpResponse, $crate::error::Error> {
            $crate::api::resources::get::<$resource>(&svc, &req).await
        }

    };
    (
        @handlers resource = $resource:ty, list_type = $list_type:ty, tag = $tag:tt, noun = $noun:tt,
        collection = $collection:tt, item = $item:tt,
        params = [$(($pname:tt, $pdesc:tt)),*], item_params = [$(($iname:tt, $idesc:tt)),+],
        ops = ($list:ident, $create:ident, $delete:ident)
    ) => {
        #[utoipa::path(
            get, path = $collection, tag = $tag, operation_id = stringify!($list),
            summary = concat!("List ", $noun, "s"),
            description = concat!("Lists ", $noun, "s in name order, a page at a time."),
            params($(($pname = String, Path, description = $pdesc),)* $crate::api::resources::ListQuery),
            responses(
                (status = 200, description = "A page of the collection", body = $list_type),
                (status = 400, description = "Bad query parameters", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 404, description = "An ancestor does not exist", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
            )
        )]
        #[get($collection)]
        pub async fn $list(
            svc: actix_web::web::Data<$crate::service::Service>,
            req: actix_web::HttpRequest,
            query: $crate::api::query::Query<$crate::api::resources::ListQuery>,
            caller: $crate::service::Caller,
        ) -> Result<actix_web::HttpResponse, $crate::error::Error> {
            $crate::api::resources::list::<$resource>(&svc, &req, query.into_inner(), &caller).await
        }

        #[utoipa::path(
            post, path = $collection, tag = $tag, operation_id = stringify!($create),
            summary = concat!("Create a ", $noun),
            params($(($pname = String, Path, description = $pdesc)),*),
            request_body(content = $resource, content_type = "application/json"),
            responses(
                (status = 201, description = "Created", body = $resource,
                 headers(("Location" = String, description = "URL of the new resource"), ("ETag" = String, description = "Entity tag of its revision"))),
                (status = 400, description = "Malformed JSON, unknown or missing fields, wrong types", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 404, description = "An ancestor does not exist", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 409, description = "The name is taken", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 415, description = "The body is not JSON", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 422, description = "A value or a reference is invalid", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
            )
        )]
        #[post($collection)]
        pub async fn $create(
            svc: actix_web::web::Data<$crate::service::Service>,
            req: actix_web::HttpRequest,
            body: actix_web::web::Bytes,
            caller: $crate::service::Caller,
        ) -> Result<actix_web::HttpResponse, $crate::error::Error> {
            $crate::api::resources::create::<$resource>(&svc, &req, &body, &caller).await
        }

        #[utoipa::path(
            delete, path = $item, tag = $tag, operation_id = stringify!($delete),
            summary = concat!("Delete a ", $noun),
            params(
                $(($pname = String, Path, description = $pdesc),)* $(($iname = String, Path, description = $idesc),)+
                ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)$"#, example = "\"3\"", description = "Entity tag the resource must still have: the ETag of the last read, quoted (`\"3\"`), or `*`"),
                $crate::api::resources::DeleteQuery,
            ),
            responses(
                (status = 204, description = "Deleted"),
                (status = 400, description = "Bad query parameters", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 404, description = "It or an ancestor does not exist", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 409, description = "It has children (use cascade=true) or is referenced", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
                (status = 412, description = "If-Match names a stale revision", body = $crate::api::problem::Problem, content_type = "application/problem+json"),
            )
        )]
        #[delete($item)]
        pub async fn $delete(
            svc: actix_web::web::Data<$crate::service::Service>,
            req: actix_web::HttpRequest,
            query: $crate::api::query::Query<$crate::api::resources::DeleteQuery>,
            caller: $crate::service::Caller,
        ) -> Result<actix_web::HttpResponse, $crate::error::Error> {
            $crate::api::resources::delete::<$resource>(&svc, &req, query.into_inner(), &caller).await
        }
    };
}

pub(crate) use crud_endpoints;
