//! Answers for requests no endpoint takes: 405 with `Allow` when the path exists under other
//! methods, 404 otherwise; and problem+json for errors raised by actix itself.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::OpenApi;

use super::problem::{PROBLEM_JSON, Problem};

/// The documented paths and their methods, for matching request paths.
pub struct RouteTable {
    routes: Vec<(Vec<Option<String>>, Vec<String>)>,
}

impl RouteTable {
    pub fn from_openapi(api: &OpenApi) -> Self {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template
                    .trim_matches('/')
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            None
                        } else {
                            Some(s.to_owned())
                        }
                    })
                    .collect();
                let mut methods: Vec<String> = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(m, _)| m.to_owned())
                .collect();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                (segments, methods)
            })
            .collect();
        Self { routes }
    }

    /// The methods allowed on `path`, if any documented path matches it.
    pub fn allowed(&self, path: &str) -> Option<&[String]> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.routes
            .iter()
            .find(|(segments, _)| {
                segments.len() == parts.len()
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p) && !p.is_empty())
            })
            .map(|(_, methods)| methods.as_slice())
    }
}

pub async fn not_routed(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    match table.allowed(req.path()) {
        Some(methods) if req.method() != Method::OPTIONS => {
            let allow = methods.join(", ");
            let mut response = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!(
                    "{} is not allowed on {}; allowed: {allow}",
                    req.method(),
                    req.path()
                ),
                Vec::new(),
            )
            .response();
            response.headers_mut().insert(
                header::ALLOW,
                header::HeaderValue::from_str(&allow).expect("method names are valid header text"),
            );
            response
        }
        Some(methods) => HttpResponse::NoContent()
            .insert_header((header::ALLOW, methods.join(", ")))
            .finish(),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "no endpoint at {}; see /swagger-ui/ for the API",
                req.path()
            ),
            Vec::new(),
        )
        .response(),
    }
}

/// Turns any error response that is not already problem+json (e.g. an oversized body or a bad
/// query string rejected by actix) into one.
pub fn to_problem<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let detail = res
        .response()
        .error()
        .map(|e| e.to_string())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let (req, _) = res.into_parts();
    let problem = Problem::new(status, "http", detail, Vec::new()).response();
    let res = ServiceResponse::new(req, problem.map_into_boxed_body()).map_into_right_body::<B>();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates() {
        let api = super::super::openapi();
        let table = RouteTable::from_openapi(&api);
        let allowed = table.allowed("/v2/projects/shop").unwrap();
        assert!(allowed.contains(&"PUT".to_string()));
        assert!(!allowed.contains(&"POST".to_string()));
        assert!(table.allowed("/v2/projects/shop/nonsense").is_none());
        assert!(table.allowed("/v2//shop").is_none());
    }
}
