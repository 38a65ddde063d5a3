//! Answers for requests no endpoint takes: 405 with `Allow` when the path exists under other
//! methods, 404 otherwise; and problem+json for errors raised by actix itself.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, web};

use super::policy::OperationTable;
use super::problem::{PROBLEM_JSON, Problem};

pub async fn not_routed(req: HttpRequest, table: web::Data<OperationTable>) -> HttpResponse {
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
        None => {
            let path = req.path();
            let trimmed = path.trim_end_matches('/');
            let detail = if trimmed.len() < path.len() && table.allowed(trimmed).is_some() {
                format!("no endpoint at {path}: paths take no trailing slash; use {trimmed}")
            } else {
                format!("no endpoint at {path}; see /swagger-ui/ for the API")
            };
            Problem::new(StatusCode::NOT_FOUND, "not-found", detail, Vec::new()).response()
        }
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
        let table = OperationTable::from_openapi(&api);
        let allowed = table.allowed("/v2/projects/shop").unwrap();
        assert!(allowed.contains(&"PUT".to_string()));
        assert!(!allowed.contains(&"POST".to_string()));
        assert!(table.allowed("/v2/projects/shop/nonsense").is_none());
        assert!(table.allowed("/v2//shop").is_none());
        assert!(
            table.allowed("/v2/projects/").is_none(),
            "a trailing slash is another path"
        );
        assert!(table.allowed("/v2/projects").is_some());
    }
}
