//! The query-string extractor of every endpoint: `web::Query` with errors that name the
//! parameter (`errors[].field` is its name) in plain words.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::domain::violations::FieldError;
use crate::error::Error;

/// A query string read into `T`; a bad parameter is a 400 naming it.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Query))
    }
}

/// Reads a query string into `T`.
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    // PostgreSQL text cannot hold NUL, so a filter with one would fail in the database (500);
    // no stored value has one, and none is meant.
    if let Some((name, _)) = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        let name = name.replace('\0', "\\u0000");
        return Err(Error::BadRequest {
            detail: format!("query parameter {name}: must not contain NUL (%00)"),
            errors: vec![FieldError::new(name, "must not contain NUL (%00)")],
        });
    }
    let pairs = url::form_urlencoded::parse(query.as_bytes());
    let de = serde_urlencoded::Deserializer::new(pairs);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let name = e.path().to_string();
        let given = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.into_owned());
        let message = plain(&e.inner().to_string());
        let message = match given {
            Some(v) => format!("{message} (got {})", crate::domain::names::quoted(&v)),
            None => message,
        };
        if name.is_empty() || name == "." {
            Error::BadRequest {
                detail: format!("bad query string: {message}"),
                errors: Vec::new(),
            }
        } else {
            Error::BadRequest {
                detail: format!("query parameter {name}: {message}"),
                errors: vec![FieldError::new(name, message)],
            }
        }
    })
}

/// The parsers' messages in plain words.
fn plain(message: &str) -> String {
    match message {
        "invalid digit found in string" => "must be a non-negative whole number".into(),
        "number too large to fit in target type" => "is too large".into(),
        "number too small to fit in target type" => "is too small".into(),
        "cannot parse integer from empty string" => "must be a whole number, not empty".into(),
        "provided string was not `true` or `false`" => "must be true or false".into(),
        "invalid float literal" => "must be a number".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        cascade: Option<bool>,
        page_token: Option<String>,
    }

    fn refused(query: &str) -> (String, Vec<FieldError>) {
        match parse::<Q>(query) {
            Err(Error::BadRequest { detail, errors }) => (detail, errors),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(parse::<Q>("limit=5&pageToken=x").unwrap().limit, Some(5));
        let (detail, errors) = refused("limit=-1");
        assert_eq!(
            detail,
            "query parameter limit: must be a non-negative whole number (got \"-1\")"
        );
        assert_eq!(errors[0].field, "limit");
        let (detail, errors) = refused("actor=token%00x");
        assert_eq!(detail, "query parameter actor: must not contain NUL (%00)");
        assert_eq!(errors[0].field, "actor");
        let (_, errors) = refused("pageToken=x&cascade=yes");
        assert_eq!(errors[0].field, "cascade");
        assert_eq!(errors[0].message, "must be true or false (got \"yes\")");
    }
}
