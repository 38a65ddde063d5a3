//! Test support: validates whole Kubernetes objects (as JSON) against the `openAPIV3Schema` of
//! their `apiVersion` + `kind` in the Istio 1.30 CRDs (`tests/fixtures/istio-crds/crd-all.gen.yaml`).
//!
//! Include it from a test crate with `#[path = "support/crd_schema.rs"] mod crd_schema;`, then
//! call [`validate`] or [`validate_all`].
//!
//! It agrees with `/work/shared/tools/validate_istio.py` on every schema question. The Kubernetes
//! structural-schema extensions are translated into JSON Schema Draft 4 the same way:
//! - unknown fields are errors: every `type: object` node without `additionalProperties` (maps)
//!   and without `x-kubernetes-preserve-unknown-fields: true` gets `additionalProperties: false`;
//! - `nullable: true` adds `null` to `type` (and to `enum`); otherwise `null` is an error;
//! - `x-kubernetes-int-or-string: true` becomes `type: [integer, string]`;
//! - `format: byte` must be base64; other formats (int32, double, date-time) are not checked;
//! - `description`, `default`, `example` and `x-kubernetes-*` keys are dropped; `enum`, `type`,
//!   `oneOf`/`anyOf`/`allOf`/`not`, `required`, `minimum`/`maximum`, `maxItems`, `maxLength`,
//!   `maxProperties` ... are enforced;
//! - `x-kubernetes-list-type: set | map` uniqueness is checked (map: by the list-map keys);
//! - `metadata`: `name` (DNS-1123 subdomain) required, `namespace` a DNS-1123 label, label and
//!   annotation keys/values valid, no unknown metadata fields.
//!
//! Not checked: `x-kubernetes-validations` CEL rules (the Python tool checks them in CI), and
//! schema `default`s (the Istio CRDs have none, so there is nothing to apply).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use regex::Regex;
use serde_json::{Map, Value, json};

const CRD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/istio-crds/crd-all.gen.yaml"
);

const OBJECTMETA_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Validates one Kubernetes object (with `apiVersion`, `kind`, `metadata`, `spec`).
///
/// Errors are readable messages that start with the JSON pointer of the offending value, e.g.
/// `/spec/trafficPolicy/tls/mode: "SUPER_MUTUAL" is not one of ["DISABLE", ...]`.
pub fn validate(object: &Value) -> Result<(), Vec<String>> {
    let errors = object_errors(object);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Validates several objects; each error is prefixed with `[index] Kind namespace/name: `.
pub fn validate_all(objects: &[Value]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        let label = label(object);
        errors.extend(
            object_errors(object)
                .into_iter()
                .map(|e| format!("[{i}] {label}: {e}")),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn label(object: &Value) -> String {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_owned();
    format!(
        "{} {}/{}",
        text(object.get("kind")),
        text(object.pointer("/metadata/namespace")),
        text(object.pointer("/metadata/name"))
    )
}

// ------------------------------------------------------------------------------ CRD index

/// One version of one CRD.
struct CrdVersion {
    served: bool,
    namespaced: bool,
    /// The `openAPIV3Schema` as written in the CRD (read for list types).
    raw: Value,
    /// The translated root schema the validator was built from (read for error messages).
    schema: Value,
    validator: OnceLock<jsonschema::Validator>,
}

struct Crds {
    /// (group, version, kind) -> version.
    versions: BTreeMap<(String, String, String), CrdVersion>,
    /// (group, kind) -> defined versions, in CRD order.
    kinds: BTreeMap<(String, String), Vec<String>>,
}

fn crds() -> &'static Crds {
    static CRDS: OnceLock<Crds> = OnceLock::new();
    CRDS.get_or_init(|| {
        let text = std::fs::read_to_string(CRD_FILE)
            .unwrap_or_else(|e| panic!("cannot read {CRD_FILE}: {e}"));
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("cannot parse {CRD_FILE}: {e}"));
        index(&documents)
    })
}

fn index(documents: &[Value]) -> Crds {
    let mut crds = Crds {
        versions: BTreeMap::new(),
        kinds: BTreeMap::new(),
    };
    for crd in documents {
        if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            continue;
        }
        let spec = &crd["spec"];
        let group = spec["group"].as_str().expect("CRD without spec.group");
        let kind = spec["names"]["kind"]
            .as_str()
            .expect("CRD without spec.names.kind");
        let namespaced = spec["scope"].as_str() == Some("Namespaced");
        for version in spec["versions"].as_array().into_iter().flatten() {
            let name = version["name"].as_str().expect("CRD version without name");
            let raw = version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or(Value::Null);
            let schema = if raw.is_object() {
                root_schema(&raw)
            } else {
                Value::Null
            };
            crds.versions.insert(
                (group.to_owned(), name.to_owned(), kind.to_owned()),
                CrdVersion {
                    served: version["served"].as_bool().unwrap_or(false),
                    namespaced,
                    raw,
                    schema,
                    validator: OnceLock::new(),
                },
            );
            crds.kinds
                .entry((group.to_owned(), kind.to_owned()))
                .or_default()
                .push(name.to_owned());
        }
    }
    crds
}

impl CrdVersion {
    fn validator(&self) -> &jsonschema::Validator {
        self.validator.get_or_init(|| {
            jsonschema::draft4::options()
                .with_format("byte", is_base64)
                .should_validate_formats(true)
                .build(&self.schema)
                .unwrap_or_else(|e| panic!("cannot compile the translated CRD schema: {e}"))
        })
    }
}

// ------------------------------------------------------------------------------ translation

/// The translated root schema: the CRD schema plus `apiVersion`, `kind` and `metadata`
/// (metadata itself is checked by [`metadata_errors`]).
fn root_schema(raw: &Value) -> Value {
    let mut schema = to_jsonschema(raw);
    let root = schema
        .as_object_mut()
        .expect("openAPIV3Schema is an object");
    let properties = root.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(properties) = properties {
        properties.insert("apiVersion".into(), json!({"type": "string"}));
        properties.insert("kind".into(), json!({"type": "string"}));
        properties.insert("metadata".into(), json!({"type": "object"}));
    }
    root.insert("type".into(), json!("object"));
    schema
}

/// Translates one Kubernetes structural-schema node into plain JSON Schema (Draft 4).
fn to_jsonschema(node: &Value) -> Value {
    let Value::Object(s) = node else {
        return node.clone();
    };
    let mut out = Map::new();
    for (key, value) in s {
        match key.as_str() {
            "description" | "nullable" | "default" | "example" => {}
            k if k.starts_with("x-kubernetes-") => {}
            "properties" => {
                let properties = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, p)| (name.clone(), to_jsonschema(p)))
                    .collect();
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" | "not" | "additionalProperties" => {
                out.insert(key.clone(), to_jsonschema(value));
            }
            "oneOf" | "anyOf" | "allOf" => {
                let branches = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(to_jsonschema)
                    .collect();
                out.insert(key.clone(), Value::Array(branches));
            }
            // Only `byte` is checked, like the Python tool; int32, double, date-time ... are not.
            "format" if value != "byte" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.insert("type".into(), json!(["integer", "string"]));
        out.remove("anyOf");
    }
    if s.get("nullable") == Some(&Value::Bool(true))
        && let Some(ty) = out.get("type").cloned()
    {
        let mut types = match ty {
            Value::Array(types) => types,
            single => vec![single],
        };
        types.push(json!("null"));
        out.insert("type".into(), Value::Array(types));
        if let Some(Value::Array(options)) = out.get_mut("enum")
            && !options.contains(&Value::Null)
        {
            options.push(Value::Null);
        }
    }
    if s.get("type").and_then(Value::as_str) == Some("object")
        && !s.contains_key("additionalProperties")
        && s.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// `format: byte`: standard base64 with padding (Python's `b64decode(validate=True)`).
fn is_base64(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^[A-Za-z0-9+/]*={0,2}$").expect("valid regex"));
    re.is_match(s) && s.len().is_multiple_of(4)
}

// ------------------------------------------------------------------------------ checks

fn object_errors(object: &Value) -> Vec<String> {
    let Value::Object(map) = object else {
        return vec!["/: the object is not a mapping".into()];
    };
    let (Some(api_version), Some(kind)) = (
        map.get("apiVersion").and_then(Value::as_str),
        map.get("kind").and_then(Value::as_str),
    ) else {
        return vec!["/: apiVersion and kind are required strings".into()];
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let crds = crds();
    let key = (group.to_owned(), version.to_owned(), kind.to_owned());
    let Some(crd) = crds.versions.get(&key) else {
        return vec![unknown_kind(crds, api_version, group, version, kind)];
    };
    let mut errors = Vec::new();
    if !crd.served {
        errors.push(format!(
            "/apiVersion: {api_version} is not served by the CRD"
        ));
    }
    errors.extend(metadata_errors(map.get("metadata"), crd.namespaced));
    if crd.schema.is_object() {
        errors.extend(schema_errors(crd, object));
        list_type_errors(object, &crd.raw, String::new(), &mut errors);
    }
    errors.sort();
    errors
}

fn unknown_kind(crds: &Crds, api_version: &str, group: &str, version: &str, kind: &str) -> String {
    if let Some(known) = crds.kinds.get(&(group.to_owned(), kind.to_owned())) {
        return format!(
            "/apiVersion: version {version:?} is not defined for {group}/{kind}; defined: {known:?}"
        );
    }
    let same: Vec<String> = crds
        .kinds
        .iter()
        .filter(|((_, k), _)| k.eq_ignore_ascii_case(kind))
        .map(|((g, k), versions)| format!("{g}/{} {k}", versions[0]))
        .collect();
    let in_group: Vec<&str> = crds
        .kinds
        .keys()
        .filter(|(g, _)| g == group)
        .map(|(_, k)| k.as_str())
        .collect();
    let hint = if !same.is_empty() {
        format!("; did you mean {same:?}?")
    } else if !in_group.is_empty() {
        format!("; kinds in {group}: {in_group:?}")
    } else {
        "; group not defined by the loaded CRDs".into()
    };
    format!("/kind: unknown kind {kind:?} for apiVersion {api_version:?}{hint}")
}

fn schema_errors(crd: &CrdVersion, object: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for error in crd.validator().iter_errors(object) {
        let path = match error.instance_path().as_str() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        let schema_path = error.schema_path().as_str().to_owned();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
                let known: Vec<&String> = crd
                    .schema
                    .pointer(&format!("{parent}/properties"))
                    .and_then(Value::as_object)
                    .map(|p| p.keys().collect())
                    .unwrap_or_default();
                for field in unexpected {
                    let hint = match known.iter().find(|k| k.eq_ignore_ascii_case(field)) {
                        Some(k) => format!(" (did you mean {k:?}?)"),
                        None if known.is_empty() => String::new(),
                        None => format!("; known fields: {known:?}"),
                    };
                    errors.push(format!("{path}: unknown field {field:?}{hint}"));
                }
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(Value::to_string)
                    .collect();
                errors.push(format!(
                    "{path}: {} is not one of [{}]",
                    error.instance(),
                    options.join(", ")
                ));
            }
            ValidationErrorKind::OneOfMultipleValid { .. } => {
                let names = crd.schema.pointer(&schema_path).and_then(oneof_fields);
                match (names, error.instance().as_object()) {
                    (Some(names), Some(instance)) => {
                        let present: Vec<&String> =
                            names.iter().filter(|n| instance.contains_key(*n)).collect();
                        errors.push(format!(
                            "{path}: at most one of {names:?} may be set (found {present:?})"
                        ));
                    }
                    _ => errors.push(format!("{path}: {error}")),
                }
            }
            _ => errors.push(format!("{path}: {error}")),
        }
    }
    errors
}

/// The field names of a protobuf-oneof translation: `oneOf: [{not: {anyOf: [...]}},
/// {required: [a]}, {required: [b]}, ...]` means "at most one of a, b, ...".
fn oneof_fields(branches: &Value) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for branch in branches.as_array()? {
        let branch = branch.as_object()?;
        if branch.len() == 1 && branch.contains_key("required") {
            for name in branch["required"].as_array()? {
                names.push(name.as_str()?.to_owned());
            }
        } else if !(branch.len() == 1
            && branch
                .get("not")
                .and_then(Value::as_object)
                .is_some_and(|n| n.len() == 1 && n.contains_key("anyOf")))
        {
            return None;
        }
    }
    Some(names)
}

/// `x-kubernetes-list-type: set | map` uniqueness, walking the raw schema alongside the object.
fn list_type_errors(instance: &Value, schema: &Value, path: String, errors: &mut Vec<String>) {
    let Value::Object(s) = schema else { return };
    if let Value::Array(items) = instance {
        let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
        if let Some(list_type @ ("set" | "map")) = list_type {
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, item) in items.iter().enumerate() {
                let identity = if list_type == "set" {
                    item.clone()
                } else if item.is_object() {
                    Value::Array(
                        keys.iter()
                            .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                } else {
                    continue;
                };
                let identity_text = identity.to_string();
                if let Some(first) = seen.get(&identity_text) {
                    let what = if list_type == "set" {
                        format!("value {identity_text}")
                    } else {
                        format!("map key {keys:?} = {identity_text}")
                    };
                    errors.push(format!(
                        "{path}/{i}: duplicate {what} (also at index {first}; x-kubernetes-list-type={list_type})"
                    ));
                } else {
                    seen.insert(identity_text, i);
                }
            }
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                list_type_errors(item, item_schema, format!("{path}/{i}"), errors);
            }
        }
    } else if let Value::Object(fields) = instance {
        let properties = s.get("properties").and_then(Value::as_object);
        let additional = s.get("additionalProperties").filter(|a| a.is_object());
        for (name, value) in fields {
            let child = format!("{path}/{}", name.replace('~', "~0").replace('/', "~1"));
            if let Some(p) = properties.and_then(|p| p.get(name)) {
                list_type_errors(value, p, child, errors);
            } else if let Some(a) = additional {
                list_type_errors(value, a, child, errors);
            }
        }
    }
}

// ------------------------------------------------------------------------------ metadata

fn cached(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

fn is_dns1123_label(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63 && cached(&RE, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").is_match(s)
}

fn is_dns1123_subdomain(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    s.len() <= 253
        && cached(
            &RE,
            r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        )
        .is_match(s)
}

fn is_label_value(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63 && cached(&RE, r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").is_match(s)
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS-1123 subdomain, name a qualified name.
fn qualified_key_error(key: &str) -> Option<String> {
    static NAME: OnceLock<Regex> = OnceLock::new();
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || !is_dns1123_subdomain(prefix) {
                return Some(format!(
                    "key prefix {prefix:?} must be a DNS-1123 subdomain"
                ));
            }
            name
        }
        None => key,
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && cached(&NAME, r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").is_match(name);
    (!name_ok).then(|| {
        format!("key name {name:?} must be <=63 chars of [A-Za-z0-9-_.], alphanumeric at both ends")
    })
}

fn metadata_errors(metadata: Option<&Value>, namespaced: bool) -> Vec<String> {
    let Some(Value::Object(md)) = metadata else {
        return vec!["/metadata: required object".into()];
    };
    let mut errors = Vec::new();
    for key in md
        .keys()
        .filter(|k| !OBJECTMETA_FIELDS.contains(&k.as_str()))
    {
        errors.push(format!("/metadata: unknown field {key:?}"));
    }
    match md.get("name") {
        None if md.get("generateName").is_none() => errors.push("/metadata/name: required".into()),
        None => {}
        Some(Value::String(name)) if is_dns1123_subdomain(name) => {}
        Some(name) => errors.push(format!(
            "/metadata/name: {name} is not a DNS-1123 subdomain (lowercase alphanumerics, '-', '.', <=253)"
        )),
    }
    match md.get("namespace") {
        None => {}
        Some(_) if !namespaced => {
            errors.push("/metadata/namespace: set on a cluster-scoped kind".into());
        }
        Some(Value::String(ns)) if is_dns1123_label(ns) => {}
        Some(ns) => errors.push(format!("/metadata/namespace: {ns} is not a DNS-1123 label")),
    }
    for field in ["labels", "annotations"] {
        let Some(map) = md.get(field) else { continue };
        let Value::Object(map) = map else {
            errors.push(format!(
                "/metadata/{field}: must be a map of string to string"
            ));
            continue;
        };
        for (key, value) in map {
            let at = format!(
                "/metadata/{field}/{}",
                key.replace('~', "~0").replace('/', "~1")
            );
            if let Some(e) = qualified_key_error(key) {
                errors.push(format!("{at}: {e}"));
            }
            match value {
                Value::String(v) if field == "labels" && !is_label_value(v) => {
                    errors.push(format!("{at}: invalid label value {v:?}"));
                }
                Value::String(_) => {}
                other => errors.push(format!(
                    "{at}: value must be a string, got {other} (quote it)"
                )),
            }
        }
    }
    errors
}
