//! RFC 9457 problem details: the one mapping from `Error` to HTTP.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::violations::FieldError;
use crate::error::Error;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "https://meshintent.io/problems/validation")]
    pub problem_type: String,
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "/spec/port: must be between 1 and 65535 (got 70000)")]
    pub detail: String,
    /// The fields that are wrong (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &str,
        detail: impl Into<String>,
        errors: Vec<FieldError>,
    ) -> Self {
        Self {
            problem_type: format!("https://meshintent.io/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors,
        }
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .json(self)
    }
}

impl Error {
    fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { .. } => "bad-request",
            Error::UnsupportedMediaType(_) => "unsupported-media-type",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::TooManyRequests { .. } => "too-many-requests",
            Error::PayloadTooLarge(_) => "payload-too-large",
            Error::NotFound(_) => "not-found",
            Error::Conflict(_) => "conflict",
            Error::PreconditionFailed(_) => "precondition-failed",
            Error::Invalid { .. } => "validation",
            Error::Unavailable(_) => "unavailable",
            Error::Internal { .. } => "internal",
        }
    }

    pub fn problem(&self) -> Problem {
        let (detail, errors) = match self {
            Error::BadRequest { detail, errors } | Error::Invalid { detail, errors } => {
                (detail.clone(), errors.clone())
            }
            // Internal details are logged (see `error_response`), never returned.
            Error::Internal { .. } => (
                "the server failed to handle the request; the failure is logged".to_owned(),
                Vec::new(),
            ),
            other => (other.to_string(), Vec::new()),
        };
        Problem::new(self.status_code(), self.code(), detail, errors)
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Error::Internal { .. } => {
                tracing::error!(cause = %crate::error::chain(self), "request failed")
            }
            Error::Unavailable(cause) => tracing::warn!(%cause, "request failed"),
            _ => {}
        }
        let mut response = self.problem().response();
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized { sent, .. } => {
                let challenge = if *sent {
                    r#"Bearer realm="meshintent", error="invalid_token""#
                } else {
                    r#"Bearer realm="meshintent""#
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            Error::TooManyRequests {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
