//! Reading JSON (API bodies) and YAML (intent documents) into domain types, with errors that
//! name the field.
//!
//! Structural problems (malformed input, unknown or missing fields, wrong JSON types) are
//! `Error::BadRequest`; values that do not parse into their domain type (a port of 0, a bad
//! name, an unknown enum value) are `Error::Invalid`. Both carry a JSON pointer to the field.

use serde::de::DeserializeOwned;

use crate::domain::document::IntentDocument;
use crate::domain::violations::{FieldError, pointer_token, prefixed};
use crate::error::Error;

impl IntentDocument {
    /// Reads a document from YAML or JSON text, checking every value.
    pub fn parse(text: &str) -> Result<Self, Error> {
        from_value(yaml_to_value(text)?, "")
    }
}

/// Parses JSON bytes into `T`.
pub fn from_json_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
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

/// Parses a JSON value (e.g. one read from YAML) into `T`; pointers are prefixed with `prefix`.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, prefix: &str) -> Result<T, Error> {
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

/// Reads YAML (or JSON, which is YAML) into a JSON value.
pub fn yaml_to_value(text: &str) -> Result<serde_json::Value, Error> {
    serde_saphyr::from_str::<serde_json::Value>(text).map_err(|e| Error::BadRequest {
        detail: format!("the document is not valid YAML: {e}"),
        errors: Vec::new(),
    })
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
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&format!("/{}", pointer_token(key)))
            }
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
