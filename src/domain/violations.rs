//! Field-level validation errors, addressed by JSON pointers (RFC 6901).

use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

/// One rule a request broke, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer into the request body (or intent document), e.g. `/spec/port`.
    #[schema(example = "/spec/port")]
    pub field: String,
    /// What is wrong, in words a user can act on.
    #[schema(example = "must be between 1 and 65535")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects every violation of a resource so that one response lists them all.
#[derive(Debug, Default)]
pub struct Violations {
    errors: Vec<FieldError>,
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Adds a violation when `failed` holds.
    pub fn check(&mut self, failed: bool, field: impl Into<String>, message: impl Into<String>) {
        if failed {
            self.add(field, message);
        }
    }

    /// Adds a violation at `{at}/{i}` for each item that repeats an earlier one.
    pub fn no_repeats<T: PartialEq + fmt::Display>(&mut self, items: &[T], at: &str, noun: &str) {
        for (i, item) in items.iter().enumerate() {
            self.check(
                items[..i].contains(item),
                format!("{at}/{i}"),
                format!("{noun} \"{item}\" is listed twice"),
            );
        }
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.errors.extend(errors);
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// Escapes one reference token of a JSON pointer (`~` -> `~0`, `/` -> `~1`).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Prefixes every field of `errors` with `prefix` (a JSON pointer without trailing slash).
pub fn prefixed(prefix: &str, errors: Vec<FieldError>) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|e| FieldError {
            field: format!("{prefix}{}", e.field),
            message: e.message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn collects_all_violations_in_order() {
        let mut v = Violations::new();
        v.check(false, "/a", "fine");
        v.check(true, "/b", "bad");
        v.add("/c", "worse");
        let errors = v.into_result().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "/b");
        assert_eq!(errors[1].message, "worse");
    }
}
