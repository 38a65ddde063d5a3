//! Reading request bodies into domain types (see `crate::input` for the error rules).

use actix_web::HttpRequest;
use actix_web::http::header;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Parses a JSON request body into `T`.
pub fn parse_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, Error> {
    check_content_type(req)?;
    crate::input::from_json_slice(body)
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
