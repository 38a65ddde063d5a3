//! Reading request bodies into domain types (see `crate::input` for the error rules).

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// JSON nested deeper than this is refused before parsing (SPEC section 6, "Limits").
pub const MAX_JSON_DEPTH: usize = 64;

/// Parses a JSON request body into `T`.
pub fn parse_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, Error> {
    check_content_type(req)?;
    check_depth(body)?;
    crate::input::from_json_slice(body)
}

/// Refuses bodies whose arrays and objects nest deeper than `MAX_JSON_DEPTH`. Brackets inside
/// strings do not count; malformed JSON is left for the parser to explain.
fn check_depth(body: &[u8]) -> Result<(), Error> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Error::BadRequest {
                        detail: format!(
                            "the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
                        ),
                        errors: Vec::new(),
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
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

/// Reads a set document's body (`PUT .../document`, `POST .../plan`) up to `limit` bytes
/// (`MESHINTENT_MAX_DOCUMENT_BYTES`), which is larger than the single-resource limit.
pub async fn read_document_body(
    payload: &mut web::Payload,
    limit: usize,
) -> Result<web::BytesMut, Error> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Error::BadRequest {
            detail: format!("reading the request body: {e}"),
            errors: Vec::new(),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Error::PayloadTooLarge(format!(
                "the request body is larger than the limit of {limit} bytes (MESHINTENT_MAX_DOCUMENT_BYTES)"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_limited_but_brackets_in_strings_do_not_count() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_depth(deep(64).as_bytes()).is_ok());
        let e = check_depth(deep(65).as_bytes()).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }), "{e:?}");
        let quoted = format!(r#"{{"a": "{}\" {}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(check_depth(quoted.as_bytes()).is_ok());
    }
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
