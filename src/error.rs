//! The service's error type, independent of HTTP; `api::problem` maps it to RFC 9457 responses.

use crate::domain::violations::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be read: malformed JSON, unknown fields, wrong types, bad query.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No credential, or one that is not valid. `sent` says whether one was sent (for
    /// `WWW-Authenticate: Bearer error="invalid_token"`).
    #[error("{detail}")]
    Unauthorized { detail: String, sent: bool },
    /// The caller may see the resource but not do this; the message names the role needed.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed authentications from one address.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    /// The body is larger than the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A resource or one of its ancestors does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A duplicate name, or a delete of something still in use.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named a revision that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request is well-formed but breaks a rule (value ranges, references, fit).
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The service cannot answer now (e.g. the database is down).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure. The cause is logged (with its chain), never returned.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes, outermost first, for the one log line at the boundary.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

impl Error {
    pub fn invalid(errors: Vec<FieldError>) -> Error {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Error::Invalid { detail, errors }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::invalid(vec![FieldError::new(field, message)])
    }

    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Error {
        Error::Internal {
            context: format!("{context}: {cause}"),
            source: None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        if e.is_unavailable() {
            Error::Unavailable("the database is not reachable".into())
        } else {
            Error::Internal {
                context: "the database failed".into(),
                source: Some(Box::new(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_keep_their_cause_for_the_log_but_not_the_answer() {
        let e = Error::from(StoreError::Corrupt("deployments.state: \"Bogus\"".into()));
        let logged = chain(&e);
        assert!(logged.contains("the database failed"), "{logged}");
        assert!(logged.contains("Bogus"), "{logged}");
        assert!(!e.to_string().contains("Bogus"), "{e}");
    }
}
