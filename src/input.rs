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
    /// Reads a document from YAML or JSON text, checking every value, within the default
    /// `DocumentLimits`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_within(text, DocumentLimits::default())
    }

    /// `parse` within `limits`.
    pub fn parse_within(text: &str, limits: DocumentLimits) -> Result<Self, Error> {
        let value = yaml_to_value_within(text, limits)?;
        if !value.is_object() {
            return Err(not_an_object("document", json_kind(&value)));
        }
        from_value(value, "")
    }
}

/// The default of `DocumentLimits::max_nodes`: 20 million nodes. A generated document of
/// 100,000 inbound intents with 3 clients each (`benches/support/documents.rs`) has about 12
/// million; as a `serde_json::Value` each node takes some 100 bytes, so the limit holds a
/// document's parse to about 2 GB.
pub const DEFAULT_MAX_DOCUMENT_NODES: usize = 20_000_000;

/// How deep an intent document may nest (mappings and sequences). The deepest field of a
/// document (a route rule's header match) is about 20 levels down; 64 is also the JSON body limit.
pub const MAX_DOCUMENT_DEPTH: usize = 64;

/// Where `meshintent render` and `meshintent apply` take `DocumentLimits::max_nodes` from.
pub const MAX_DOCUMENT_NODES_FLAG: &str = "--max-document-nodes";
pub const MAX_DOCUMENT_NODES_ENV: &str = "MESHINTENT_MAX_DOCUMENT_NODES";

/// What reading an intent document's YAML may cost, so that a hostile document (an alias bomb,
/// deep nesting) is refused instead of exhausting memory.
///
/// - at most `max_nodes` nodes (mappings, sequences and scalars), aliases expanded;
/// - aliases and anchors: at most `max_nodes / 20` (at the default, serde-saphyr's own default
///   of a million) nodes replayed from aliases, events retained for anchors, aliases and
///   anchors, so that an alias bomb is refused after a fraction of the work the node limit
///   allows;
/// - scalar text at most twice the document's size or 64 MiB, whichever is more (without
///   aliases it cannot exceed the document's size);
/// - nesting at most `MAX_DOCUMENT_DEPTH` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentLimits {
    pub max_nodes: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            max_nodes: DEFAULT_MAX_DOCUMENT_NODES,
        }
    }
}

impl DocumentLimits {
    fn max_alias_nodes(&self) -> usize {
        self.max_nodes / 20
    }

    fn max_scalar_bytes(&self, text: &str) -> usize {
        text.len().saturating_mul(2).max(64 * 1024 * 1024)
    }

    fn options(&self, text: &str) -> serde_saphyr::Options {
        let aliases = self.max_alias_nodes();
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = self.max_nodes;
        // Every node is one event, every mapping and sequence one more (its end), plus the
        // stream's and the document's start and end: the node limit is reached first.
        budget.max_events = self.max_nodes.saturating_mul(2).saturating_add(8);
        budget.max_depth = MAX_DOCUMENT_DEPTH;
        // Flow collections (`[[[...]]]`) are limited by the scanner, before the budget sees them.
        budget.flow_nesting_limit = MAX_DOCUMENT_DEPTH;
        budget.max_total_scalar_bytes = self.max_scalar_bytes(text);
        budget.max_aliases = aliases;
        budget.max_anchors = aliases;
        budget.max_recorded_anchor_events = aliases;
        // Replayed events count against the limits above, so the alias/anchor ratio heuristic
        // adds no protection; it would refuse a large document that shares one anchor widely.
        budget.enforce_alias_anchor_ratio = false;
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        options.alias_limits.max_total_replayed_events = aliases;
        options
    }

    /// The message for a document that breaks a limit, or `None` for any other YAML error.
    fn refusal(&self, error: &serde_saphyr::Error, text: &str) -> Option<String> {
        use serde_saphyr::Error as E;
        use serde_saphyr::budget::BudgetBreach as B;
        let mut error = error;
        while let E::WithSnippet { error: inner, .. } | E::AliasError { error: inner, .. } = error {
            error = inner;
        }
        let raise = format!(
            "raise the limit with {MAX_DOCUMENT_NODES_FLAG} or {MAX_DOCUMENT_NODES_ENV} (now {})",
            self.max_nodes
        );
        let aliases = self.max_alias_nodes();
        let alias_limit = || {
            format!(
                "the document's aliases and anchors take more than {aliases} nodes (a twentieth of the node limit); write repeated parts out or {raise}"
            )
        };
        Some(match error {
            E::Budget { breach, .. } => match breach {
                B::Nodes { .. } | B::Events { .. } => format!(
                    "the document has more than {} YAML nodes (mappings, sequences and scalars, aliases expanded); {raise}",
                    self.max_nodes
                ),
                B::Aliases { .. }
                | B::Anchors { .. }
                | B::RecordedAnchorEvents { .. }
                | B::RecordedAnchorBytes { .. } => alias_limit(),
                B::Depth { .. } => {
                    format!("the document nests deeper than {MAX_DOCUMENT_DEPTH} levels")
                }
                B::ScalarBytes { .. } => format!(
                    "the document's text values take more than {} bytes (aliases expanded; the limit is twice the document's size or 64 MiB)",
                    self.max_scalar_bytes(text)
                ),
                other => format!("the document exceeds a YAML parsing limit: {other:?}"),
            },
            E::AliasReplayLimitExceeded { .. } => alias_limit(),
            E::AliasReplayStackDepthExceeded { max_depth, .. } => {
                format!("the document's aliases nest deeper than {max_depth} levels")
            }
            E::ExternalMessage { source, .. }
                if matches!(
                    source.as_ref(),
                    serde_saphyr::localizer::ExternalMessageSource::Parser(e)
                        if *e.kind() == serde_saphyr::granit_parser::ErrorKind::RecursionLimitExceeded
                ) =>
            {
                format!("the document nests deeper than {MAX_DOCUMENT_DEPTH} levels")
            }
            _ => return None,
        })
    }
}

/// Parses a JSON object's bytes into `T` (every API body is an object; serde would read an
/// array into a struct field by field, so anything else is refused first).
pub fn from_json_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace())
        && first != b'{'
    {
        return Err(not_an_object(
            "body",
            match first {
                b'[' => "an array",
                b'"' => "a string",
                b't' | b'f' => "a boolean",
                b'n' => "null",
                b'-' | b'0'..=b'9' => "a number",
                _ => "not JSON",
            },
        ));
    }
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

/// Reads YAML (or JSON, which is YAML) into a JSON value, within the default `DocumentLimits`.
pub fn yaml_to_value(text: &str) -> Result<serde_json::Value, Error> {
    yaml_to_value_within(text, DocumentLimits::default())
}

/// `yaml_to_value` within `limits`; a document that breaks one is refused with a message naming
/// the limit.
pub fn yaml_to_value_within(
    text: &str,
    limits: DocumentLimits,
) -> Result<serde_json::Value, Error> {
    serde_saphyr::from_str_with_options::<serde_json::Value>(text, limits.options(text)).map_err(
        |e| Error::BadRequest {
            detail: match limits.refusal(&e, text) {
                Some(refusal) => format!("the document is refused: {refusal}"),
                None => format!("the document is not valid YAML: {e}"),
            },
            errors: Vec::new(),
        },
    )
}

/// The refusal of a body or document that is not a JSON object (a YAML mapping).
fn not_an_object(what: &str, got: &str) -> Error {
    let message = format!("must be an object (got {got})");
    Error::BadRequest {
        detail: format!("the {what} {message}"),
        errors: vec![FieldError::new("", message)],
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value as V;
    match value {
        V::Null => "null",
        V::Bool(_) => "a boolean",
        V::Number(_) => "a number",
        V::String(_) => "a string",
        V::Array(_) => "an array",
        V::Object(_) => "an object",
    }
}

/// serde's messages in JSON's terms rather than Rust's: "invalid type: string \"8000\", expected
/// u16" reads "must be an integer from 0 to 65535 (got the string \"8000\")".
fn plain_message(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((got, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "must be {} (got {})",
                plain_expected(expected),
                plain_unexpected(got)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("must be {}", plain_expected(expected));
    }
    message.to_owned()
}

fn plain_expected(expected: &str) -> String {
    let integer = |max: &str| format!("an integer from 0 to {max}");
    match expected {
        "u8" => integer("255"),
        "u16" => integer("65535"),
        "u32" => integer("4294967295"),
        "u64" | "u128" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "an integer" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a string" | "a borrowed string" | "string" | "a string or bytes" | "a char" => {
            "a string".into()
        }
        "a boolean" => "true or false".into(),
        "unit" => "null".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => "an object".into(),
        e if e.starts_with("a sequence") || e.starts_with("tuple") || e.starts_with("an array") => {
            "an array".into()
        }
        e if e.starts_with("enum ") => "one of the documented values".into(),
        other => other.to_owned(),
    }
}

fn plain_unexpected(got: &str) -> String {
    let literal = |s: &str| s.trim_matches('`').to_owned();
    if let Some(s) = got.strip_prefix("string ") {
        return format!("the string {s}");
    }
    for prefix in ["integer ", "floating point ", "boolean "] {
        if let Some(v) = got.strip_prefix(prefix) {
            return literal(v);
        }
    }
    match got {
        "sequence" => "an array".into(),
        "map" => "an object".into(),
        "unit value" | "null" | "unit" => "null".into(),
        other => literal(other),
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
            let message = plain_message(&message);
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

    fn refusal(text: &str, limits: DocumentLimits) -> String {
        match IntentDocument::parse_within(text, limits) {
            Err(Error::BadRequest { detail, .. }) => detail,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// The "billion laughs": nine levels of ten aliases, 10^9 strings once expanded.
    fn alias_bomb() -> String {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..=9 {
            let previous = format!("*a{}", level - 1);
            let items = [previous.as_str(); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
        }
        text
    }

    /// A document of `intents` inbound intents with 3 clients each, in the shape of
    /// `benches/support/documents.rs` (about 115 nodes per intent).
    fn large_document(intents: usize) -> String {
        let mut text = String::from(
            "clusters:\n  - metadata: {name: cluster01}\n    spec: {identity: cluster01.mesh.example.com}\nprojects:\n  - metadata: {name: fleet}\n    compositeApps:\n      - metadata: {name: fleet}\n        spec: {version: v1}\n        apps:\n          - metadata: {name: app}\n            spec: {namespace: default, placement: {clusters: [cluster01]}}\n        trafficIntentSets:\n          - metadata: {name: all}\n            inboundIntents:\n",
        );
        for i in 0..intents {
            text.push_str(&format!(
                "              - metadata: {{name: svc{i}}}\n                spec: {{app: app, serviceName: svc{i}, port: 8000, protocol: HTTP, trafficPolicy: {{connectionPool: {{maxConnections: 100, connectTimeout: 5s}}, outlierDetection: {{consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 1m}}}}}}\n                clients:\n"
            ));
            for k in 0..3 {
                text.push_str(&format!(
                    "                  - metadata: {{name: client{k}}}\n                    spec: {{app: app}}\n                    securityIntents:\n                      - metadata: {{name: read}}\n                        spec: {{rules: [{{methods: [GET], paths: [/status, /api/*]}}]}}\n"
                ));
            }
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_refused_naming_the_limit() {
        let detail = refusal(&alias_bomb(), DocumentLimits::default());
        assert!(
            detail.starts_with("the document is refused: the document's aliases and anchors take more than 1000000 nodes"),
            "{detail}"
        );
        assert!(
            detail.contains("--max-document-nodes or MESHINTENT_MAX_DOCUMENT_NODES (now 20000000)"),
            "{detail}"
        );
    }

    #[test]
    fn too_many_nodes_are_refused_naming_the_limit() {
        let detail = refusal(&large_document(10), DocumentLimits { max_nodes: 1_000 });
        assert_eq!(
            detail,
            "the document is refused: the document has more than 1000 YAML nodes (mappings, sequences and scalars, aliases expanded); raise the limit with --max-document-nodes or MESHINTENT_MAX_DOCUMENT_NODES (now 1000)"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let flow = format!("{}{}", "[".repeat(1_000), "]".repeat(1_000));
        let block: String = (0..1_000)
            .map(|i| format!("{}-\n", " ".repeat(2 * i)))
            .collect();
        for text in [flow, block] {
            assert_eq!(
                refusal(&text, DocumentLimits::default()),
                "the document is refused: the document nests deeper than 64 levels"
            );
        }
    }

    fn accepts(intents: usize) {
        let document = IntentDocument::parse(&large_document(intents)).expect("accepted");
        let set = &document.projects[0].composite_apps[0].traffic_intent_sets[0];
        assert_eq!(set.inbound_intents.len(), intents);
        assert_eq!(set.inbound_intents[intents - 1].clients.len(), 3);
    }

    #[test]
    fn messages_speak_json_not_rust() {
        use crate::domain::envelopes::Project;
        let message = |body: &str| match from_json_slice::<Project>(body.as_bytes()) {
            Err(Error::BadRequest { errors, .. } | Error::Invalid { errors, .. }) => {
                (errors[0].field.clone(), errors[0].message.clone())
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(r#"{"metadata": {"name": 5}}"#),
            ("/metadata/name".into(), "must be a string (got 5)".into())
        );
        assert_eq!(
            message(r#"{"metadata": []}"#),
            ("/metadata".into(), "must be an object".into())
        );
        assert_eq!(
            message(r#"[{"name": "x"}]"#),
            ("".into(), "must be an object (got an array)".into())
        );
        assert!(matches!(
            IntentDocument::parse("- a\n- b\n"),
            Err(Error::BadRequest { detail, .. }) if detail == "the document must be an object (got an array)"
        ));
    }

    #[test]
    fn a_large_document_is_accepted() {
        // About 350,000 nodes: beyond serde-saphyr's default budget of 250,000.
        accepts(3_000);
    }

    #[test]
    #[ignore = "a minute in a debug build; run with --release -- --ignored"]
    fn a_document_of_100000_intents_is_accepted() {
        // About 11.5 million nodes.
        accepts(100_000);
    }

    #[test]
    fn aliases_for_shared_parts_are_accepted() {
        let mut text = large_document(1);
        text = text.replace(
            "trafficPolicy: {connectionPool",
            "trafficPolicy: &policy {connectionPool",
        );
        for i in 1..300 {
            text.push_str(&format!(
                "              - metadata: {{name: more{i}}}\n                spec: {{app: app, serviceName: more{i}, port: 8000, protocol: HTTP, trafficPolicy: *policy}}\n"
            ));
        }
        let document = IntentDocument::parse(&text).expect("accepted");
        let set = &document.projects[0].composite_apps[0].traffic_intent_sets[0];
        assert_eq!(set.inbound_intents.len(), 300);
        assert_eq!(
            set.inbound_intents[299].spec.traffic_policy,
            set.inbound_intents[0].spec.traffic_policy
        );
    }
}
