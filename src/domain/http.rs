//! HTTP vocabulary used by intents: methods, header names, request paths.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::names::{quoted, string_newtype};

/// An HTTP request method.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Connect => "CONNECT",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Trace => "TRACE",
            HttpMethod::Patch => "PATCH",
        }
    }
}

fn check_header_name(s: &str) -> Result<(), String> {
    // RFC 9110 token, lowercase: Istio rejects upper-case header names in matches.
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a lowercase HTTP header name (letters, digits and !#$%&'*+-.^_`|~; got {})",
            quoted(s)
        ))
    }
}

string_newtype!(
    /// A lowercase HTTP header (or cookie, or query parameter) name.
    HeaderName, check = check_header_name, pattern = "^[a-z0-9!#$%&'*+\\-.^_`|~]+$", min = 1, max = 256, example = "x-user"
);

fn check_path_pattern(s: &str) -> Result<(), String> {
    // Istio authorization paths: exact (`/a`), prefix (`/a/*`), suffix (`*.js`) or presence (`*`).
    let stars = s.matches('*').count();
    let well_placed = match stars {
        0 => s.starts_with('/'),
        1 => s == "*" || (s.ends_with('*') && s.starts_with('/')) || s.starts_with('*'),
        _ => false,
    };
    let printable = s.bytes().all(|b| b.is_ascii_graphic());
    if !s.is_empty() && s.len() <= 1024 && well_placed && printable {
        Ok(())
    } else {
        Err(format!(
            "must be a request path such as /status, a prefix such as /api/*, a suffix such as *.js, or * (got {})",
            quoted(s)
        ))
    }
}

string_newtype!(
    /// A request path for authorization rules: exact, `prefix*`, `*suffix`, or `*`.
    PathPattern, check = check_path_pattern, pattern = "^(\\*|/[!-~]*|\\*[!-~]+|/[!-~]*\\*)$", min = 1, max = 1024, example = "/status"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_lowercase_tokens() {
        assert!(HeaderName::try_from("x-user".to_string()).is_ok());
        assert!(HeaderName::try_from("X-User".to_string()).is_err());
        assert!(HeaderName::try_from("a b".to_string()).is_err());
    }

    #[test]
    fn path_patterns() {
        for ok in ["/status", "/api/*", "*.js", "*", "/"] {
            assert!(PathPattern::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in ["", "status", "/a/*/b", "**", "/a b"] {
            assert!(PathPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn methods_are_upper_case() {
        let m: HttpMethod = serde_json::from_str("\"GET\"").unwrap();
        assert_eq!(m.as_str(), "GET");
        assert!(serde_json::from_str::<HttpMethod>("\"get\"").is_err());
    }
}
