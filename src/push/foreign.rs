//! Fields that other managers added to meshintent's objects.
//!
//! Server-side apply never removes a field another field manager owns, so a field someone added
//! with `kubectl edit` or `kubectl patch` (say `spec.trafficPolicy.loadBalancer`) would survive
//! every redeploy. meshintent decides the whole `spec` of its objects: such fields are found in
//! `metadata.managedFields` and removed with a JSON patch of exactly those paths. Fields another
//! manager changed that meshintent also sets are not here: the forced apply takes them back.
//! Labels and annotations of others are left alone (tools add their own, legitimately).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::cluster::FIELD_MANAGER;

/// A path below `spec`, as its map keys (`["spec", "trafficPolicy", "loadBalancer"]`).
type FieldPath = Vec<String>;

/// What other managers added to an object's spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForeignFields {
    /// The topmost added fields, each with the managers that own something inside it.
    pub fields: BTreeMap<FieldPath, BTreeSet<String>>,
    /// The object's resourceVersion when read, so the removal applies to what was judged.
    resource_version: Option<String>,
}

impl ForeignFields {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The JSON patch that removes the fields: a `test` of the resourceVersion first, so that a
    /// concurrent change makes the patch fail instead of removing something else.
    pub fn removal(&self) -> json_patch::Patch {
        let mut ops = Vec::new();
        if let Some(rv) = &self.resource_version {
            ops.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}));
        }
        ops.extend(
            self.fields
                .keys()
                .map(|path| json!({"op": "remove", "path": pointer(path)})),
        );
        serde_json::from_value(Value::Array(ops)).expect("remove and test operations parse")
    }

    /// The live object as it is once the fields are removed.
    pub fn removed_from(&self, live: &Value) -> Value {
        let mut out = live.clone();
        for path in self.fields.keys() {
            if let Some((last, parents)) = path.split_last()
                && let Some(Value::Object(map)) = parents
                    .iter()
                    .try_fold(&mut out, |v, seg| v.get_mut(seg.as_str()))
            {
                map.shift_remove(last);
            }
        }
        out
    }

    /// `removed fields other managers had added: .spec.trafficPolicy.loadBalancer (set by
    /// kubectl-patch)`, after a repair.
    pub fn describe(&self) -> String {
        format!(
            "removed fields other managers had added: {}",
            self.fields_list()
        )
    }

    /// What a verify reports before any repair.
    pub fn describe_found(&self) -> String {
        format!(
            "fields other managers added (a redeploy removes them): {}",
            self.fields_list()
        )
    }

    fn fields_list(&self) -> String {
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|(path, managers)| {
                let managers: Vec<&str> = managers.iter().map(String::as_str).collect();
                format!(".{} (set by {})", path.join("."), managers.join(", "))
            })
            .collect();
        parts.join(", ")
    }
}

/// An RFC 6901 pointer.
fn pointer(path: &[String]) -> String {
    path.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The spec fields of `live` that managers other than meshintent's apply own and that
/// `desired` does not have.
pub fn foreign_fields(live: &Value, desired: &Value) -> ForeignFields {
    let mut fields: BTreeMap<FieldPath, BTreeSet<String>> = BTreeMap::new();
    let entries = live["metadata"]["managedFields"].as_array();
    for entry in entries.into_iter().flatten() {
        let manager = entry["manager"].as_str().unwrap_or_default();
        let ours = manager == FIELD_MANAGER && entry["operation"] == "Apply";
        let subresource = entry["subresource"].as_str().is_some_and(|s| !s.is_empty());
        if ours || subresource {
            continue;
        }
        let mut paths = Vec::new();
        if let Some(spec) = entry["fieldsV1"].get("f:spec") {
            collect(spec, &mut vec!["spec".to_owned()], &mut paths);
        }
        for path in paths {
            // Never `spec` itself: every object meshintent writes has one.
            if let Some(top) = first_missing(desired, &path)
                && top.len() > 1
                && get(live, &top).is_some()
            {
                fields.entry(top).or_default().insert(manager.to_owned());
            }
        }
    }
    // A field inside another removed field goes with it.
    let tops: Vec<FieldPath> = fields.keys().cloned().collect();
    fields.retain(|path, _| {
        !tops
            .iter()
            .any(|t| t.len() < path.len() && path.starts_with(t))
    });
    ForeignFields {
        fields,
        resource_version: live["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
    }
}

/// The leaf paths of a `FieldsV1` node. A key that is not a field (`k:`, `v:`, `i:`: an element
/// of a list) ends the path at the list, which is as far as a JSON pointer can safely name.
fn collect(node: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
    let Some(map) = node.as_object() else { return };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != ".").collect();
    if children.is_empty() || map.contains_key(".") {
        out.push(prefix.clone());
    }
    for (key, child) in children {
        match key.strip_prefix("f:") {
            Some(field) => {
                prefix.push(field.to_owned());
                collect(child, prefix, out);
                prefix.pop();
            }
            None => out.push(prefix.clone()),
        }
    }
}

/// The shortest prefix of `path` that `desired` does not have (None when it has all of it).
fn first_missing(desired: &Value, path: &[String]) -> Option<FieldPath> {
    (1..=path.len())
        .find(|n| get(desired, &path[..*n]).is_none())
        .map(|n| path[..n].to_vec())
}

fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, seg| v.as_object()?.get(seg.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Value {
        json!({
            "metadata": {
                "resourceVersion": "7",
                "managedFields": [
                    {"manager": "meshintent", "operation": "Apply", "fieldsV1": {
                        "f:spec": {"f:host": {}, "f:trafficPolicy": {"f:tls": {"f:mode": {}}}}}},
                    {"manager": "kubectl-patch", "operation": "Update", "fieldsV1": {
                        "f:spec": {"f:trafficPolicy": {"f:loadBalancer": {"f:simple": {}}}}}},
                    {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {
                        "f:spec": {"f:host": {}}}},
                    {"manager": "someone", "operation": "Update", "subresource": "status",
                        "fieldsV1": {"f:spec": {"f:ignored": {}}}}
                ]
            },
            "spec": {
                "host": "other.example.com",
                "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "loadBalancer": {"simple": "RANDOM"}},
                "ignored": 1
            }
        })
    }

    fn desired() -> Value {
        json!({"spec": {"host": "reviews", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}})
    }

    #[test]
    fn finds_the_topmost_added_field_and_who_added_it() {
        let found = foreign_fields(&live(), &desired());
        let expected: FieldPath = ["spec", "trafficPolicy", "loadBalancer"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            found.fields,
            BTreeMap::from([(expected, BTreeSet::from(["kubectl-patch".to_owned()]))]),
            "a changed field meshintent sets (host) is the apply's to take back"
        );
        assert_eq!(
            serde_json::to_value(found.removal()).unwrap(),
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                {"op": "remove", "path": "/spec/trafficPolicy/loadBalancer"}
            ])
        );
        assert_eq!(
            found.removed_from(&live())["spec"]["trafficPolicy"],
            json!({"tls": {"mode": "ISTIO_MUTUAL"}})
        );
        assert_eq!(
            found.describe(),
            "removed fields other managers had added: .spec.trafficPolicy.loadBalancer (set by kubectl-patch)"
        );
    }

    #[test]
    fn an_object_only_meshintent_manages_has_none() {
        let mut only_ours = live();
        let entries = only_ours["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap();
        entries.truncate(1);
        assert!(foreign_fields(&only_ours, &desired()).is_empty());
    }

    #[test]
    fn list_elements_end_the_path_at_the_list() {
        let live = json!({
            "metadata": {"managedFields": [{"manager": "x", "operation": "Update", "fieldsV1": {
                "f:spec": {"f:http": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}}}}}]},
            "spec": {"http": [{"name": "a"}]}
        });
        let found = foreign_fields(&live, &json!({"spec": {}}));
        assert_eq!(
            found.fields.keys().collect::<Vec<_>>(),
            [&vec!["spec".to_owned(), "http".to_owned()]]
        );
    }
}
