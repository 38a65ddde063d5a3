//! Reading request bodies into domain types, with errors that name the field.
//!
//! Structural problems (malformed JSON, unknown or missing fields, wrong JSON types) are 400;
//! values that do not parse into their domain type (a port of 0, a bad name, an unknown enum
//! value) are 422. Both carry a JSON pointer to the field.

use actix_web::HttpRequest;
use actix_web::http::header;
use serde::de::DeserializeOwned;

use crate::domain::violations::{FieldError, pointer_token};
use crate::error::Error;

/// Parses a JSON request body into `T`.
pub fn parse_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, Error> {
    check_content_type(req)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| from_path_error(e.path(), e.inner()))?;
    de.end().map_err(|e| Error::BadRequest {
        detail: format!(
            "the body is not valid JSON: {}",
            strip_location(&e.to_string())
        ),
        errors: Vec::new(),
    })?;
    Ok(value)
}

/// Parses an already-read JSON value (e.g. one converted from YAML) into `T`.
pub fn parse_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        match from_path_error(e.path(), e.inner()) {
            Error::BadRequest { detail, errors } => Error::BadRequest {
                detail: format!("{prefix}{detail}"),
                errors: prefixed(prefix, errors),
            },
            Error::Invalid { detail, errors } => Error::Invalid {
                detail: format!("{prefix}{detail}"),
                errors: prefixed(prefix, errors),
            },
            other => other,
        }
    })
}

fn prefixed(prefix: &str, errors: Vec<FieldError>) -> Vec<FieldError> {
    crate::domain::violations::prefixed(prefix, errors)
}

fn check_content_type(req: &HttpRequest) -> Result<(), Error> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType(format!(
            "the body must be JSON (Content-Type: application/json), not {}",
            if essence.is_empty() {
                "an empty media type".to_owned()
            } else {
                essence
            }
        )))
    }
}

/// serde_json appends " at line L column C"; the pointer says where, so drop it.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// The JSON pointer of a serde path.
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", pointer_token(key))),
            Segment::Enum { variant } => out.push_str(&format!("/{}", pointer_token(variant))),
            Segment::Unknown => {}
        }
    }
    out
}

/// The name between the first pair of backticks, e.g. "unknown field `foo`, ..." -> "foo".
fn quoted_name(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

fn from_path_error(path: &serde_path_to_error::Path, inner: &serde_json::Error) -> Error {
    use serde_json::error::Category;
    let message = strip_location(&inner.to_string());
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => Error::BadRequest {
            detail: format!(
                "the body is not valid JSON: {message} (line {}, column {})",
                inner.line(),
                inner.column()
            ),
            errors: Vec::new(),
        },
        Category::Data => {
            let mut field = pointer(path);
            let structural = ["unknown field", "missing field", "duplicate field"]
                .iter()
                .any(|p| message.starts_with(p));
            if structural && let Some(name) = quoted_name(&message) {
                let token = format!("/{}", pointer_token(name));
                if !field.ends_with(&token) {
                    field.push_str(&token);
                }
            }
            let structural = structural
                || message.starts_with("invalid type")
                || message.starts_with("invalid length");
            let detail = format!("{}: {message}", if field.is_empty() { "/" } else { &field });
            let errors = vec![FieldError::new(field, message)];
            if structural {
                Error::BadRequest { detail, errors }
            } else {
                Error::Invalid { detail, errors }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelopes::InboundIntent;
    use actix_web::test::TestRequest;

    fn parse(body: &str) -> Result<InboundIntent, Error> {
        let req = TestRequest::default()
            .insert_header(("content-type", "application/json"))
            .to_http_request();
        parse_json(&req, body.as_bytes())
    }

    fn field_of(e: &Error) -> String {
        match e {
            Error::BadRequest { errors, .. } | Error::Invalid { errors, .. } => {
                errors[0].field.clone()
            }
            other => panic!("{other:?}"),
        }
    }

    const VALID: &str = r#"{"metadata":{"name":"httpbin"},"spec":{"app":"httpbin","serviceName":"httpbin","port":8000,"protocol":"HTTP"}}"#;

    #[test]
    fn valid_body_parses() {
        assert!(parse(VALID).is_ok());
    }

    #[test]
    fn unknown_field_is_400_naming_it() {
        let e = parse(&VALID.replace(r#""port":8000"#, r#""port":8000,"prot":1"#)).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }), "{e:?}");
        assert_eq!(field_of(&e), "/spec/prot");
    }

    #[test]
    fn missing_field_is_400_naming_it() {
        let e = parse(&VALID.replace(r#""port":8000,"#, "")).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }), "{e:?}");
        assert_eq!(field_of(&e), "/spec/port");
    }

    #[test]
    fn bad_value_is_422_naming_it() {
        let e = parse(&VALID.replace("8000", "70000")).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert_eq!(field_of(&e), "/spec/port");
        let e = parse(&VALID.replace(r#""HTTP""#, r#""SMTP""#)).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert_eq!(field_of(&e), "/spec/protocol");
    }

    #[test]
    fn wrong_type_and_syntax_are_400() {
        let e = parse(&VALID.replace("8000", "\"8000\"")).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }));
        assert_eq!(field_of(&e), "/spec/port");
        let e = parse("{\"metadata\":").unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }));
        let e = parse(&format!("{VALID} trailing")).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }));
    }

    #[test]
    fn non_json_content_type_is_rejected() {
        let req = TestRequest::default()
            .insert_header(("content-type", "text/plain"))
            .to_http_request();
        assert!(parse_json::<InboundIntent>(&req, VALID.as_bytes()).is_err());
    }
}
