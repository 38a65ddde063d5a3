//! Label selectors (`labelSelector`) and the two field selectors every resource supports.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Clone, Debug, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed `labelSelector`: requirements ANDed together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

pub fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
    });
    name_ok && prefix_ok
}

pub fn valid_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(selector: &str) -> Result<Vec<&str>, String> {
    let mut parts = vec![];
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unexpected ')'".into());
                }
            }
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed '('".into());
    }
    parts.push(&selector[start..]);
    Ok(parts)
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("found '{rest}', expected: '(' values ')'"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
        return Err(format!("invalid label value: {bad:?}"));
    }
    Ok(values)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let part = part.trim();
    if part.is_empty() {
        return Err("found '', expected: identifier".into());
    }
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        if !valid_key(key) {
            return Err(format!("invalid label key {key:?}"));
        }
        return Ok(Requirement {
            key: key.into(),
            op: Op::NotExists,
        });
    }
    let key_end = part
        .find(|c: char| c.is_whitespace() || "=!<>(".contains(c))
        .unwrap_or(part.len());
    let key = &part[..key_end];
    if !valid_key(key) {
        return Err(format!("invalid label key {key:?}"));
    }
    let rest = part[key_end..].trim_start();
    let op = if rest.is_empty() {
        Op::Exists
    } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        Op::Eq(v.trim().to_string())
    } else if let Some(v) = rest.strip_prefix("!=") {
        Op::NotEq(v.trim().to_string())
    } else if let Some(v) = rest.strip_prefix('>') {
        Op::Gt(
            v.trim()
                .parse()
                .map_err(|_| format!("invalid integer {v:?}"))?,
        )
    } else if let Some(v) = rest.strip_prefix('<') {
        Op::Lt(
            v.trim()
                .parse()
                .map_err(|_| format!("invalid integer {v:?}"))?,
        )
    } else if let Some(v) = rest.strip_prefix("notin") {
        Op::NotIn(parse_set(v)?)
    } else if let Some(v) = rest.strip_prefix("in") {
        Op::In(parse_set(v)?)
    } else {
        return Err(format!(
            "found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
        ));
    };
    if let Op::Eq(v) | Op::NotEq(v) = &op
        && !valid_value(v)
    {
        return Err(format!("invalid label value: {v:?}"));
    }
    Ok(Requirement {
        key: key.into(),
        op,
    })
}

impl LabelSelector {
    /// Parses a selector; the error text follows the API server's "unable to parse requirement".
    pub fn parse(selector: &str) -> Result<Self, String> {
        if selector.trim().is_empty() {
            return Ok(Self::default());
        }
        split_top_level(selector)
            .and_then(|parts| parts.into_iter().map(parse_requirement).collect())
            .map(Self)
            .map_err(|e| format!("unable to parse requirement: {e}"))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|req| {
            let value = get(&req.key);
            match &req.op {
                Op::Eq(v) => value == Some(v.as_str()),
                Op::NotEq(v) => value != Some(v.as_str()),
                Op::In(set) => value.is_some_and(|x| set.iter().any(|v| v == x)),
                Op::NotIn(set) => value.is_none_or(|x| !set.iter().any(|v| v == x)),
                Op::Exists => value.is_some(),
                Op::NotExists => value.is_none(),
                Op::Gt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                Op::Lt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

/// A parsed `fieldSelector`; custom resources support only `metadata.name` and
/// `metadata.namespace` (with `=`, `==` and `!=`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(selector: &str) -> Result<Self, String> {
        let mut reqs = vec![];
        for part in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = if field == "metadata.name" {
                "/metadata/name"
            } else {
                "/metadata/namespace"
            };
            let actual = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }
}
