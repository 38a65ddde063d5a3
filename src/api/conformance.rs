//! HTTP conformance in front of every route (`startup::run`, outside the gate):
//! - `HEAD` is answered wherever `GET` is: the request goes on as a GET and actix's HTTP/1
//!   codec, which saw the HEAD, sends the GET's status and headers (`Content-Length` included)
//!   without the body.
//! - A request target longer than `MAX_TARGET_BYTES` is a 414 problem, request headers beyond
//!   `MAX_HEADER_BYTES` a 431 problem. (Longer heads never reach the application: a URI of
//!   more than 65,534 bytes is an empty 400 and a head of more than 128 KiB an empty 431 from
//!   actix's HTTP codec.)
//! - Every JSON answer (`application/json`, `application/problem+json`) ends with a newline.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};

use super::problem::Problem;

/// The longest request target (path and query) served.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The most request-header bytes (names and values) served.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The middleware (an actix `from_fn`).
pub async fn conform(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_TARGET_BYTES {
        let problem = Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!(
                "the request target (path and query) is {target} bytes; at most {MAX_TARGET_BYTES} are served"
            ),
            Vec::new(),
        );
        return Ok(finish(req.into_response(problem.response())));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        let problem = Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!(
                "the request headers take {headers} bytes; at most {MAX_HEADER_BYTES} are served"
            ),
            Vec::new(),
        );
        return Ok(finish(req.into_response(problem.response())));
    }
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let res = next.call(req).await?;
    Ok(finish(res.map_into_boxed_body()))
}

/// Adds the final newline to a JSON body held in memory (streamed JSON writes its own).
fn finish(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().ends_with("json"));
    if !is_json {
        return res;
    }
    res.map_body(|_, body| match body.try_into_bytes() {
        Ok(bytes) if !bytes.is_empty() && !bytes.ends_with(b"\n") => {
            let mut with = BytesMut::with_capacity(bytes.len() + 1);
            with.extend_from_slice(&bytes);
            with.extend_from_slice(b"\n");
            BoxBody::new(Bytes::from(with))
        }
        Ok(bytes) => BoxBody::new(bytes),
        Err(body) => body,
    })
}
