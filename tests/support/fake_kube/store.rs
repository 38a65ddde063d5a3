//! The object store: what the fake API server keeps, and the write semantics
//! (server-side apply, create, update, JSON merge patch, delete).

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::fields::{
    FieldPath, FieldSet, ManagerEntry, get_path, leaves, overlaps, path_string, read_entries,
    remove_path, set_path, tracked_config, write_entries,
};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector, valid_key, valid_value};
use super::status::ApiError;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        Self {
            group: rt.group.into(),
            plural: rt.plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What a successful write answers: the HTTP code and the body.
pub type WriteResult = Result<(u16, Value), ApiError>;

#[derive(Default)]
pub struct Store {
    pub objects: BTreeMap<Key, Value>,
    /// The global resourceVersion counter (like etcd's revision).
    pub revision: u64,
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Everything but `metadata` and `status`: a change here bumps `metadata.generation`.
fn generation_relevant(object: &Value) -> Map<String, Value> {
    let mut map = object.as_object().cloned().unwrap_or_default();
    map.shift_remove("metadata");
    map.shift_remove("status");
    map
}

/// Stores whole-number floats as integers, as the API server's JSON round trip of a custom
/// resource does (`10.0` comes back as `10`).
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = json!(f as i64);
            }
        }
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Reorders an object like the API server serialises it: apiVersion, kind, metadata, rest.
fn normalize(object: Value) -> Value {
    let Value::Object(mut map) = object else {
        return object;
    };
    let mut out = Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(v) = map.shift_remove(key) {
            out.insert(key.into(), v);
        }
    }
    if let Some(Value::Object(mut meta)) = map.shift_remove("metadata") {
        let mut ordered = Map::new();
        for key in [
            "name",
            "generateName",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "labels",
            "annotations",
        ] {
            if let Some(v) = meta.shift_remove(key) {
                ordered.insert(key.into(), v);
            }
        }
        let managed = meta.shift_remove("managedFields");
        ordered.extend(meta);
        if let Some(m) = managed {
            ordered.insert("managedFields".into(), m);
        }
        out.insert("metadata".into(), Value::Object(ordered));
    }
    out.extend(map);
    Value::Object(out)
}

/// Validates `metadata.labels` / `metadata.annotations` roughly like the API server.
fn validate_meta(rt: &ResourceType, name: &str, object: &Value) -> Result<(), ApiError> {
    for key in ["labels", "annotations"] {
        let Some(map) = object.pointer(&format!("/metadata/{key}")) else {
            continue;
        };
        if map.is_null() {
            continue;
        }
        let Some(map) = map.as_object() else {
            return Err(ApiError::bad_request(format!(
                "metadata.{key}: expected a map of strings"
            )));
        };
        for (k, v) in map {
            let Some(v) = v.as_str() else {
                return Err(ApiError::bad_request(format!(
                    "metadata.{key}.{k}: expected a string, got {v}"
                )));
            };
            if !valid_key(k) {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    &format!("metadata.{key}"),
                    &format!(
                        "Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    ),
                ));
            }
            if key == "labels" && !valid_value(v) {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    "metadata.labels",
                    &format!(
                        "Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks `apiVersion` and `kind` of a request body against the URL.
fn check_type(rt: &ResourceType, body: &Value, what: &str) -> Result<(), ApiError> {
    let api_version = str_at(body, "/apiVersion").unwrap_or("");
    let kind = str_at(body, "/kind").unwrap_or("");
    if kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in {what}"
        )));
    }
    if api_version.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'apiVersion' is missing in {what}"
        )));
    }
    if api_version != rt.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if kind != rt.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

/// Checks `metadata.name` / `metadata.namespace` of a body against the URL.
fn check_name(body: &Value, namespace: &str, name: &str) -> Result<(), ApiError> {
    let body_name = str_at(body, "/metadata/name").unwrap_or("");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace(body, namespace)
}

fn check_namespace(body: &Value, namespace: &str) -> Result<(), ApiError> {
    match str_at(body, "/metadata/namespace") {
        Some(ns) if !ns.is_empty() && ns != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

/// Parses an apply body: YAML (of which JSON is a subset).
pub fn parse_yaml(body: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => Ok(v),
        Err(_) => serde_saphyr::from_str::<Value>(body).map_err(|e| e.to_string()),
    }
}

/// A configuration's leaves for ownership, as a map from path to value.
fn tracked(object: &Value) -> (Value, FieldSet) {
    let config = tracked_config(object);
    let set = leaves(&config);
    (config, set)
}

/// The ownership bookkeeping of an Update-type write (create, update, merge patch): the
/// writer takes the fields it changed; removed or changed fields leave other managers.
fn update_ownership(
    entries: &mut Vec<ManagerEntry>,
    live: Option<&Value>,
    new: &Value,
    manager: &str,
    api_version: &str,
) {
    let (new_config, new_set) = tracked(new);
    let (old_config, old_set) = live.map(tracked).unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| get_path(&old_config, p) != get_path(&new_config, p))
        .cloned()
        .collect();
    let removed: Vec<&FieldPath> = old_set.difference(&new_set).collect();
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    for entry in entries.iter_mut() {
        entry.fields.retain(|q| {
            !removed.iter().any(|r| overlaps(q, r)) && !changed.iter().any(|c| overlaps(q, c))
        });
    }
    if changed.is_empty() {
        return;
    }
    match entries.iter_mut().find(|e| e.is(manager, "Update")) {
        Some(entry) => {
            entry.fields.extend(changed);
            entry.time = now();
            entry.api_version = api_version.into();
        }
        None => entries.push(ManagerEntry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: now(),
            subresource: None,
            fields: changed,
        }),
    }
}

impl Store {
    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Key::new(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// Lists a resource in one namespace or all (`namespace: None`), sorted by namespace
    /// and name, with `limit`/`continue` paging (the continue token is opaque).
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Value {
        let after = continue_token.and_then(|t| t.split_once('/'));
        let matching: Vec<&Value> = self
            .objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .filter(|(k, _)| {
                after.is_none_or(|(ns, name)| (k.namespace.as_str(), k.name.as_str()) > (ns, name))
            })
            .map(|(_, v)| v)
            .filter(|v| labels.matches(v) && fields.matches(v))
            .collect();
        let take = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let items: Vec<Value> = matching.iter().take(take).map(|v| (*v).clone()).collect();
        let mut metadata = json!({"resourceVersion": self.revision.to_string()});
        if matching.len() > items.len()
            && let Some(last) = items.last()
        {
            metadata["continue"] = json!(format!(
                "{}/{}",
                str_at(last, "/metadata/namespace").unwrap_or(""),
                str_at(last, "/metadata/name").unwrap_or("")
            ));
            metadata["remainingItemCount"] = json!(matching.len() - items.len());
        }
        json!({
            "apiVersion": rt.api_version(),
            "kind": format!("{}List", rt.kind),
            "metadata": metadata,
            "items": items,
        })
    }

    /// Stores a written object: fills the server-set metadata, bumps the revision and the
    /// generation (when anything but metadata/status changed). Returns what was stored.
    fn commit(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        live: Option<&Value>,
        mut object: Value,
        dry_run: bool,
    ) -> Value {
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        let generation = match live {
            None => 1,
            Some(live) => {
                let old = live
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                if generation_relevant(live) == generation_relevant(&object) {
                    old
                } else {
                    old + 1
                }
            }
        };
        let revision = if dry_run {
            live.and_then(|l| str_at(l, "/metadata/resourceVersion"))
                .map(str::to_string)
        } else {
            self.revision += 1;
            Some(self.revision.to_string())
        };
        let meta = object["metadata"]
            .as_object_mut()
            .expect("objects have metadata");
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(namespace));
        let (uid, created) = match live {
            Some(live) => (
                live.pointer("/metadata/uid")
                    .cloned()
                    .unwrap_or(Value::Null),
                live.pointer("/metadata/creationTimestamp")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            None => (json!(uuid::Uuid::new_v4().to_string()), json!(now())),
        };
        meta.insert("uid".into(), uid);
        meta.insert("creationTimestamp".into(), created);
        meta.insert("generation".into(), json!(generation));
        match revision {
            Some(rv) => meta.insert("resourceVersion".into(), json!(rv)),
            None => meta.shift_remove("resourceVersion"),
        };
        let mut object = normalize(object);
        whole_numbers(&mut object);
        if !dry_run {
            self.objects
                .insert(Key::new(rt, namespace, name), object.clone());
        }
        object
    }

    /// Server-side apply (`PATCH` with `application/apply-patch+yaml`).
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: &str,
        manager: &str,
        force: bool,
        dry_run: bool,
    ) -> WriteResult {
        if body.trim().is_empty() {
            return Err(ApiError::bad_request(
                "the body of an apply patch must not be empty",
            ));
        }
        let applied = parse_yaml(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: an apply patch must be a map",
            ));
        }
        check_type(rt, &applied, "the apply patch")?;
        check_name(&applied, namespace, name)?;
        if applied
            .pointer("/metadata/managedFields")
            .is_some_and(|m| !m.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        validate_meta(rt, name, &applied)?;

        let key = Key::new(rt, namespace, name);
        let live = self.objects.get(&key).cloned();
        if let Some(rv) = str_at(&applied, "/metadata/resourceVersion").filter(|s| !s.is_empty()) {
            let live_rv = live
                .as_ref()
                .and_then(|l| str_at(l, "/metadata/resourceVersion"));
            if live_rv != Some(rv) {
                return Err(ApiError::modified(rt, name));
            }
        }

        let (config, new_fields) = tracked(&applied);
        let mut entries = live.as_ref().map(read_entries).unwrap_or_default();
        let mine = entries.iter().position(|e| e.is(manager, "Apply"));
        let previous = mine.map(|i| entries[i].fields.clone()).unwrap_or_default();
        let base = live.clone().unwrap_or_else(|| {
            json!({
                "apiVersion": rt.api_version(),
                "kind": rt.kind,
                "metadata": {"name": name, "namespace": namespace},
            })
        });

        // Conflicts: a field another manager owns whose value this apply would change.
        let mut merged = base.clone();
        for path in &new_fields {
            let value = get_path(&config, path).cloned().unwrap_or(Value::Null);
            set_path(&mut merged, path, value);
        }
        let mut conflicts: Vec<(usize, FieldPath)> = vec![];
        for (i, entry) in entries.iter().enumerate() {
            if Some(i) == mine {
                continue;
            }
            for owned in &entry.fields {
                // Maps are not atomic: adding fields under a map another manager owns (say
                // `spec: {}`) is no conflict.
                let owned_is_map = get_path(&base, owned).is_some_and(Value::is_object);
                let touches = new_fields
                    .iter()
                    .any(|p| overlaps(p, owned) && !(owned_is_map && owned.len() < p.len()));
                if touches && get_path(&base, owned) != get_path(&merged, owned) {
                    conflicts.push((i, owned.clone()));
                }
            }
        }
        if !conflicts.is_empty() {
            if !force {
                return Err(conflict_error(&entries, &conflicts, rt, name));
            }
            for (i, path) in &conflicts {
                entries[*i].fields.remove(path);
            }
        }

        // Fields this manager applied before but no longer does are removed, unless another
        // manager still owns them; then the applied fields are set.
        let mut result = base.clone();
        for path in previous.difference(&new_fields) {
            let kept = entries
                .iter()
                .enumerate()
                .any(|(i, e)| Some(i) != mine && e.fields.iter().any(|q| overlaps(path, q)));
            if !kept {
                remove_path(&mut result, path);
            }
        }
        for path in &new_fields {
            let value = get_path(&config, path).cloned().unwrap_or(Value::Null);
            set_path(&mut result, path, value);
        }

        let stamp = now();
        match mine {
            Some(i) => {
                entries[i].fields = new_fields;
                entries[i].api_version = rt.api_version();
            }
            None => entries.push(ManagerEntry {
                manager: manager.into(),
                operation: "Apply".into(),
                api_version: rt.api_version(),
                time: stamp.clone(),
                subresource: None,
                fields: new_fields,
            }),
        }
        write_entries(&mut result, &entries);
        whole_numbers(&mut result);
        if let Some(live) = &live
            && normalize(result.clone()) == *live
        {
            // A no-op apply does not write: same resourceVersion, same timestamps.
            return Ok((200, live.clone()));
        }
        if let Some(i) = mine {
            entries[i].time = stamp;
            write_entries(&mut result, &entries);
        }
        let code = if live.is_some() { 200 } else { 201 };
        let stored = self.commit(rt, namespace, name, live.as_ref(), result, dry_run);
        Ok((code, stored))
    }

    /// `POST` to a namespaced collection.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut body: Value,
        manager: &str,
        dry_run: bool,
    ) -> WriteResult {
        if !body.is_object() {
            return Err(ApiError::bad_request("the request body must be an object"));
        }
        check_type(rt, &body, "the request body")?;
        check_namespace(&body, namespace)?;
        if !body.get("metadata").is_some_and(Value::is_object) {
            body["metadata"] = json!({});
        }
        let mut name = str_at(&body, "/metadata/name").unwrap_or("").to_string();
        if name.is_empty() {
            match str_at(&body, "/metadata/generateName").filter(|g| !g.is_empty()) {
                Some(prefix) => {
                    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].into();
                    name = format!("{prefix}{suffix}");
                }
                None => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ));
                }
            }
        }
        validate_meta(rt, &name, &body)?;
        let key = Key::new(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        let mut object = body;
        if let Some(meta) = object["metadata"].as_object_mut() {
            for k in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "managedFields",
            ] {
                meta.shift_remove(k);
            }
        }
        if let Some(obj) = object.as_object_mut() {
            obj.shift_remove("status");
        }
        let mut entries = vec![];
        update_ownership(&mut entries, None, &object, manager, &rt.api_version());
        write_entries(&mut object, &entries);
        let stored = self.commit(rt, namespace, &name, None, object, dry_run);
        Ok((201, stored))
    }

    /// `PUT` of an object: needs `metadata.resourceVersion`, equal to the stored one.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        manager: &str,
        dry_run: bool,
    ) -> WriteResult {
        if !body.is_object() {
            return Err(ApiError::bad_request("the request body must be an object"));
        }
        check_type(rt, &body, "the request body")?;
        check_name(&body, namespace, name)?;
        let live = self.get(rt, namespace, name)?;
        match str_at(&body, "/metadata/resourceVersion").filter(|s| !s.is_empty()) {
            None => {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                ));
            }
            Some(rv) if Some(rv) != str_at(&live, "/metadata/resourceVersion") => {
                return Err(ApiError::modified(rt, name));
            }
            Some(_) => {}
        }
        self.update_from(rt, namespace, name, live, body, manager, dry_run)
    }

    /// `PATCH` with `application/merge-patch+json` (RFC 7386).
    #[allow(clippy::too_many_arguments)]
    pub fn merge_patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch: Value,
        manager: &str,
        dry_run: bool,
    ) -> WriteResult {
        let live = self.get(rt, namespace, name)?;
        if !patch.is_object() {
            return Err(ApiError::bad_request("a merge patch must be a JSON object"));
        }
        let mut merged = live.clone();
        json_merge_patch(&mut merged, &patch);
        check_type(rt, &merged, "the patched object")?;
        check_name(&merged, namespace, name)?;
        if str_at(&merged, "/metadata/resourceVersion")
            != str_at(&live, "/metadata/resourceVersion")
        {
            return Err(ApiError::modified(rt, name));
        }
        self.update_from(rt, namespace, name, live, merged, manager, dry_run)
    }

    /// `PATCH` with `application/json-patch+json` (RFC 6902). A failed operation (a `test`
    /// that does not hold, a `remove` of a missing path) changes nothing and answers 422.
    #[allow(clippy::too_many_arguments)]
    pub fn json_patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch: &json_patch::Patch,
        manager: &str,
        dry_run: bool,
    ) -> WriteResult {
        let live = self.get(rt, namespace, name)?;
        let mut patched = live.clone();
        json_patch::patch(&mut patched, patch).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {e}"),
            )
        })?;
        check_type(rt, &patched, "the patched object")?;
        check_name(&patched, namespace, name)?;
        if str_at(&patched, "/metadata/resourceVersion")
            != str_at(&live, "/metadata/resourceVersion")
        {
            return Err(ApiError::modified(rt, name));
        }
        self.update_from(rt, namespace, name, live, patched, manager, dry_run)
    }

    #[allow(clippy::too_many_arguments)]
    fn update_from(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        live: Value,
        body: Value,
        manager: &str,
        dry_run: bool,
    ) -> WriteResult {
        validate_meta(rt, name, &body)?;
        // The new object: the body's content, with the server-owned metadata and the
        // status (a subresource) of the stored object.
        let mut object = body;
        let live_meta = live["metadata"].as_object().cloned().unwrap_or_default();
        let mut meta = object["metadata"].as_object().cloned().unwrap_or_default();
        for k in ["uid", "resourceVersion", "generation", "creationTimestamp"] {
            meta.shift_remove(k);
            if let Some(v) = live_meta.get(k) {
                meta.insert(k.into(), v.clone());
            }
        }
        meta.shift_remove("managedFields");
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(namespace));
        object["metadata"] = Value::Object(meta);
        if let Some(obj) = object.as_object_mut() {
            obj.shift_remove("status");
            if let Some(status) = live.get("status") {
                obj.insert("status".into(), status.clone());
            }
        }
        let mut entries = read_entries(&live);
        update_ownership(
            &mut entries,
            Some(&live),
            &object,
            manager,
            &rt.api_version(),
        );
        write_entries(&mut object, &entries);
        whole_numbers(&mut object);
        if normalize(object.clone()) == live {
            return Ok((200, live));
        }
        let stored = self.commit(rt, namespace, name, Some(&live), object, dry_run);
        Ok((200, stored))
    }

    /// `DELETE` of an object, honouring `preconditions` (uid, resourceVersion).
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> WriteResult {
        let live = self.get(rt, namespace, name)?;
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(expected) = options
                .pointer(&format!("/preconditions/{field}"))
                .and_then(Value::as_str)
            {
                let actual = str_at(&live, &format!("/metadata/{field}")).unwrap_or("");
                if expected != actual {
                    return Err(ApiError::conflict(
                        rt,
                        name,
                        &format!(
                            "Precondition failed: {label} in precondition: {expected}, {label} in object meta: {actual}"
                        ),
                    ));
                }
            }
        }
        if !dry_run {
            self.remove(rt, namespace, name);
        }
        Ok((
            200,
            json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.plural,
                    "uid": str_at(&live, "/metadata/uid").unwrap_or(""),
                },
            }),
        ))
    }

    /// `DELETE` of a namespaced collection: answers the list of deleted objects.
    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        labels: &LabelSelector,
        fields: &FieldSelector,
        dry_run: bool,
    ) -> Value {
        let list = self.list(rt, Some(namespace), labels, fields, None, None);
        if !dry_run {
            for item in list["items"].as_array().into_iter().flatten() {
                self.remove(rt, namespace, str_at(item, "/metadata/name").unwrap_or(""));
            }
        }
        list
    }

    /// Removes an object, bumping the revision; returns whether it existed.
    pub fn remove(&mut self, rt: &ResourceType, namespace: &str, name: &str) -> bool {
        let removed = self
            .objects
            .remove(&Key::new(rt, namespace, name))
            .is_some();
        if removed {
            self.revision += 1;
        }
        removed
    }

    /// Test access: stores an object as if `manager` had created or updated it
    /// (operation `Update`). An empty manager records no managed fields; managed fields
    /// present in `object` are kept as they are.
    pub fn insert(&mut self, mut object: Value, manager: &str) -> Value {
        let api_version = str_at(&object, "/apiVersion").unwrap_or("").to_string();
        let kind = str_at(&object, "/kind").unwrap_or("").to_string();
        let rt = resources::by_kind(&api_version, &kind).unwrap_or_else(|| {
            panic!("fake kube: {api_version} {kind} is not a served resource type")
        });
        let name = str_at(&object, "/metadata/name")
            .filter(|n| !n.is_empty())
            .expect("fake kube: insert_object needs metadata.name")
            .to_string();
        let namespace = str_at(&object, "/metadata/namespace")
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
            .to_string();
        let key = Key::new(rt, &namespace, &name);
        let live = self.objects.get(&key).cloned();
        if object.pointer("/metadata/managedFields").is_none() {
            let mut entries = live.as_ref().map(read_entries).unwrap_or_default();
            if !manager.is_empty() {
                update_ownership(&mut entries, live.as_ref(), &object, manager, &api_version);
            }
            write_entries(&mut object, &entries);
        }
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.shift_remove("resourceVersion");
        }
        self.commit(rt, &namespace, &name, live.as_ref(), object, false)
    }
}

/// RFC 7386 JSON merge patch.
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("just made an object");
    for (k, v) in patch {
        if v.is_null() {
            map.shift_remove(k);
        } else {
            json_merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The 409 an apply answers on conflicts, worded like the API server.
fn conflict_error(
    entries: &[ManagerEntry],
    conflicts: &[(usize, FieldPath)],
    rt: &ResourceType,
    name: &str,
) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|(i, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", entries[*i].describe()),
                "field": path_string(path),
            })
        })
        .collect();
    let message = if let [(i, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entries[*i].describe(),
            path_string(path)
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, path) in conflicts {
            by_manager
                .entry(entries[*i].describe())
                .or_default()
                .push(path_string(path));
        }
        let lines: Vec<String> = by_manager
            .into_iter()
            .flat_map(|(manager, paths)| {
                std::iter::once(format!("conflicts with {manager}:"))
                    .chain(paths.into_iter().map(|p| format!("- {p}")))
            })
            .collect();
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::new(409, "Conflict", message)
        .for_object(rt, name)
        .with_causes(causes)
}
