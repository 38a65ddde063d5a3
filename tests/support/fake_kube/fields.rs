//! Field paths, field sets, `managedFields` entries and their `FieldsV1` encoding.
//!
//! The model is a simplification of structured-merge-diff: a field set is the set of
//! *leaf* paths of a configuration, where a leaf is a scalar, a list (lists are atomic,
//! as in a CRD schema without `x-kubernetes-list-type`) or an empty map.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

/// `.spec.trafficPolicy.tls.mode`, the way the API server prints a field path.
pub fn path_string(path: &[String]) -> String {
    path.iter().map(|s| format!(".{s}")).collect()
}

/// Whether one path is a prefix of the other (or both are equal).
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

pub fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, seg| v.as_object()?.get(seg))
}

/// Sets a value, creating (or replacing non-map) intermediate maps. Setting an empty map
/// where a map is keeps that map (applying `x: {}` merges nothing into `x`).
pub fn set_path(value: &mut Value, path: &[String], new: Value) {
    if new.as_object().is_some_and(Map::is_empty)
        && get_path(value, path).is_some_and(Value::is_object)
    {
        return;
    }
    let Some((last, parents)) = path.split_last() else {
        *value = new;
        return;
    };
    let mut current = value;
    for seg in parents {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        current = current
            .as_object_mut()
            .expect("just made an object")
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !current.is_object() {
        *current = Value::Object(Map::new());
    }
    current
        .as_object_mut()
        .expect("just made an object")
        .insert(last.clone(), new);
}

/// Removes a field and then every map on its way up that became empty (but never
/// `metadata` itself).
pub fn remove_path(value: &mut Value, path: &[String]) {
    fn rec(value: &mut Value, path: &[String], depth: usize) {
        let Value::Object(map) = value else { return };
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            map.shift_remove(first);
            return;
        }
        if let Some(child) = map.get_mut(first) {
            rec(child, rest, depth + 1);
            let empty = child.as_object().is_some_and(Map::is_empty);
            if empty && !(depth == 0 && first == "metadata") {
                map.shift_remove(first);
            }
        }
    }
    rec(value, path, 0);
}

/// Drops `null` members of maps, recursively (an explicit null in an applied configuration
/// means "not set").
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The part of an object that field management tracks: every top-level field except
/// `apiVersion`, `kind`, `metadata` and `status`, plus `metadata.labels` and
/// `metadata.annotations`. Nulls and empty label/annotation maps are dropped.
pub fn tracked_config(object: &Value) -> Value {
    let mut out = Map::new();
    let Some(obj) = object.as_object() else {
        return Value::Object(out);
    };
    let mut meta = Map::new();
    if let Some(m) = obj.get("metadata").and_then(Value::as_object) {
        for key in ["labels", "annotations"] {
            if let Some(Value::Object(map)) = m.get(key)
                && !map.is_empty()
            {
                meta.insert(key.into(), Value::Object(map.clone()));
            }
        }
    }
    if !meta.is_empty() {
        out.insert("metadata".into(), Value::Object(meta));
    }
    for (k, v) in obj {
        if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
            out.insert(k.clone(), v.clone());
        }
    }
    let mut out = Value::Object(out);
    drop_nulls(&mut out);
    out
}

/// The leaf paths of a configuration (see the module docs for what a leaf is).
pub fn leaves(value: &Value) -> FieldSet {
    fn rec(value: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    prefix.push(k.clone());
                    rec(v, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    rec(value, &mut vec![], &mut out);
    out
}

/// Encodes a field set as `FieldsV1` (`{"f:spec":{"f:host":{}}}`).
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in set {
        let mut node = &mut root;
        for seg in path {
            node = node
                .as_object_mut()
                .expect("fieldsV1 nodes are maps")
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    // A path that is both a leaf and a parent is marked with ".".
    for path in set {
        let node = path
            .iter()
            .try_fold(&mut root, |n, seg| n.get_mut(format!("f:{seg}")));
        if let Some(Value::Object(map)) = node
            && !map.is_empty()
        {
            map.insert(".".into(), json!({}));
        }
    }
    root
}

/// Decodes `FieldsV1`. Keys other than `f:` (`k:`, `v:`, `i:`) are kept as opaque segments.
pub fn from_fields_v1(fields: &Value) -> FieldSet {
    fn rec(node: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        let Some(map) = node.as_object() else { return };
        if (map.is_empty() || map.contains_key(".")) && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (k, v) in map {
            if k == "." {
                continue;
            }
            prefix.push(k.strip_prefix("f:").unwrap_or(k).to_string());
            rec(v, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    rec(fields, &mut vec![], &mut out);
    out
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagerEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagerEntry {
    pub fn is(&self, manager: &str, operation: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.is_none()
    }

    /// How the API server names a manager in a conflict message.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
            if !self.time.is_empty() {
                s.push_str(&format!(" at {}", self.time));
            }
        }
        s
    }

    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }

    fn from_json(entry: &Value) -> Self {
        let s = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Self {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: s("time"),
            subresource: entry
                .get("subresource")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            fields: entry
                .get("fieldsV1")
                .map(from_fields_v1)
                .unwrap_or_default(),
        }
    }
}

pub fn read_entries(object: &Value) -> Vec<ManagerEntry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| entries.iter().map(ManagerEntry::from_json).collect())
        .unwrap_or_default()
}

/// Writes `metadata.managedFields`, dropping entries that own nothing.
pub fn write_entries(object: &mut Value, entries: &[ManagerEntry]) {
    let entries: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(ManagerEntry::to_json)
        .collect();
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
}
