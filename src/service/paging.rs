//! Keyset pagination with opaque page tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::domain::violations::FieldError;
use crate::error::Error;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// The last key of a page: the next page starts after it. Opaque to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageToken {
    pub name: String,
    pub version: String,
}

impl PageToken {
    pub fn encode(&self) -> String {
        let json = serde_json::json!([self.name, self.version]);
        B64.encode(json.to_string())
    }

    pub fn decode(token: &str) -> Result<Self, Error> {
        let bad = || Error::BadRequest {
            detail: "pageToken is not a token this server issued".into(),
            errors: vec![FieldError::new(
                "pageToken",
                "must be the nextPage value of a previous response",
            )],
        };
        let bytes = B64.decode(token).map_err(|_| bad())?;
        let (name, version): (String, String) =
            serde_json::from_slice(&bytes).map_err(|_| bad())?;
        // Issued tokens hold stored names, which have no NUL (PostgreSQL refuses it in text).
        if name.contains('\0') || version.contains('\0') {
            return Err(bad());
        }
        Ok(PageToken { name, version })
    }
}

/// Which page of a collection to read.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub limit: Option<u32>,
    pub after: Option<PageToken>,
}

impl Page {
    /// The page size: the requested limit (1..=MAX_LIMIT), or the default.
    pub fn limit(&self) -> Result<u32, Error> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(0) => Err(Error::BadRequest {
                detail: "limit must be at least 1".into(),
                errors: vec![FieldError::new("limit", "must be at least 1")],
            }),
            Some(n) => Ok(n.min(MAX_LIMIT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = PageToken {
            name: "storefront".into(),
            version: "v1".into(),
        };
        assert_eq!(PageToken::decode(&t.encode()).unwrap(), t);
        assert!(PageToken::decode("garbage!").is_err());
        assert!(PageToken::decode(&B64.encode("{}")).is_err());
    }

    #[test]
    fn limits_are_capped() {
        let p = Page {
            limit: Some(5000),
            after: None,
        };
        assert_eq!(p.limit().unwrap(), MAX_LIMIT);
        assert!(
            Page {
                limit: Some(0),
                after: None
            }
            .limit()
            .is_err()
        );
        assert_eq!(Page::default().limit().unwrap(), DEFAULT_LIMIT);
    }
}
