//! What a deploy would do on one cluster, without doing it: the live objects read once per
//! kind (as a deploy reads them), each object that would change sent through server-side apply
//! with `dryRun=All` (the API server validates and admits it and stores nothing), and a JSON
//! Patch (RFC 6902) from the live object to the API server's answer. Only GETs, LISTs and
//! dry-run PATCHes reach the cluster.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::cluster::{FIELD_MANAGER, PushSettings, check_istio_served};
use super::error::PushError;
use super::foreign::foreign_fields;
use super::gate::Gate;
use super::hash::{ANNOTATION_HASH, content_hash, desired_hash};
use super::kinds::api_resource;
use super::live::{LiveObjects, foreign_owner, list_all};
use super::retry::with_retries;
use crate::domain::deployment::{DesiredObject, ObjectRef};
use crate::domain::names::Name;

/// What a deploy would do to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    /// Not on the cluster: it would be created.
    Create,
    /// On the cluster and different: it would be applied (see the JSON Patch).
    Update,
    /// On the cluster as desired: nothing would be sent.
    Unchanged,
    /// Labelled as the set's but no longer wanted: it would be pruned.
    Delete,
    /// Owned by another set, or not managed by meshintent, or overlapping an unmanaged
    /// object's mesh names: a deploy would leave it alone and report a conflict.
    Conflict,
    /// The API server refused the dry-run apply: a deploy would fail on it.
    Invalid,
}

impl PlanAction {
    /// Whether a deploy would write (create, update or delete).
    pub fn is_change(self) -> bool {
        matches!(
            self,
            PlanAction::Create | PlanAction::Update | PlanAction::Delete
        )
    }

    /// Whether a deploy would fail or refuse the object.
    pub fn is_problem(self) -> bool {
        matches!(self, PlanAction::Conflict | PlanAction::Invalid)
    }
}

/// One cluster's input: what the set wants there and what it is known to have.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub cluster: Name,
    /// The labels that identify the set's objects.
    pub set_labels: BTreeMap<String, String>,
    pub desired: Vec<DesiredObject>,
    /// Objects the inventory says the set has there.
    pub inventory: Vec<ObjectRef>,
    /// Desired objects deciding a mesh name another set owns (the deploy's claim re-check),
    /// with the message a deploy would record.
    pub claimed: BTreeMap<ObjectRef, String>,
}

/// One object of the plan.
#[derive(Clone, Debug)]
pub struct PlannedObject {
    pub key: ObjectRef,
    pub action: PlanAction,
    /// Why it is a conflict or invalid (the API server's message), or a note.
    pub message: Option<String>,
    /// For `update`: the RFC 6902 patch from `live` to `desired`.
    pub patch: Option<json_patch::Patch>,
    /// What matters of the live object (identity, the labels and annotations meshintent sets,
    /// spec); for `update` and `delete`.
    pub live: Option<Value>,
    /// The same of the object as the API server would store it (the dry-run answer); for
    /// `create` and `update`.
    pub desired: Option<Value>,
}

impl PlannedObject {
    fn new(key: ObjectRef, action: PlanAction, message: Option<String>) -> Self {
        Self {
            key,
            action,
            message,
            patch: None,
            live: None,
            desired: None,
        }
    }
}

/// Plans one cluster: the desired objects (in the generator's order), then the prune
/// candidates. An error when the cluster cannot be read, or stops answering.
pub async fn plan_cluster(
    client: &kube::Client,
    input: &PlanInput,
    settings: &PushSettings,
) -> Result<Vec<PlannedObject>, PushError> {
    let gate = Gate::unhalted();
    check_istio_served(client, &settings.retry, &gate).await?;
    let live = list_all(
        client,
        &input.cluster,
        &input.set_labels,
        &settings.retry,
        &gate,
    )
    .await?;
    let concurrency = settings.object_concurrency.max(1);
    let planned: Vec<Result<PlannedObject, PushError>> = stream::iter(&input.desired)
        .map(|desired| plan_one(client, input, &live, desired, settings, &gate))
        .buffered(concurrency)
        .collect()
        .await;
    let mut out = planned.into_iter().collect::<Result<Vec<_>, _>>()?;

    let wanted: BTreeSet<&ObjectRef> = input.desired.iter().map(|d| &d.key).collect();
    let stale: BTreeSet<&ObjectRef> = input
        .inventory
        .iter()
        .chain(live.owned.keys())
        .filter(|k| k.cluster == input.cluster && !wanted.contains(k))
        .collect();
    for key in stale {
        if let Some(current) = live.owned.get(key) {
            let mut object = PlannedObject::new(key.clone(), PlanAction::Delete, None);
            object.live = Some(view(current, current, None));
            out.push(object);
        } else if live.others.contains_key(key) {
            let message = "no longer labelled as this set's; left untouched".to_owned();
            out.push(PlannedObject::new(
                key.clone(),
                PlanAction::Conflict,
                Some(message),
            ));
        }
        // Listed in the inventory but gone: nothing to do.
    }
    Ok(out)
}

/// Plans one desired object by the rules of the deploy's `apply_one`.
async fn plan_one(
    client: &kube::Client,
    input: &PlanInput,
    live: &LiveObjects,
    desired: &DesiredObject,
    settings: &PushSettings,
    gate: &Gate,
) -> Result<PlannedObject, PushError> {
    let key = &desired.key;
    let conflict = |message: String| {
        Ok(PlannedObject::new(
            key.clone(),
            PlanAction::Conflict,
            Some(message),
        ))
    };
    if let Some(message) = input.claimed.get(key) {
        return conflict(message.clone());
    }
    let mut object = serde_json::to_value(&desired.object)
        .map_err(|e| PushError::Access(format!("cannot serialize {key}: {e}")))?;
    let hash = desired_hash(&object);
    object["metadata"]["annotations"][ANNOTATION_HASH] = Value::String(hash.clone());

    if let Some((claim, holder)) = live.overlap(key, &object) {
        let same = format!("{}/{}/{}", key.kind, key.namespace, key.name);
        if holder != same {
            return conflict(format!(
                "{holder} (not managed by meshintent) already decides {claim}; left untouched, and this object not applied"
            ));
        }
    }
    let current = live.get(key);
    let mut foreign = None;
    if let Some(current) = current {
        if let Some(owner) = foreign_owner(current, &input.set_labels) {
            return conflict(owner);
        }
        let found = foreign_fields(current, &object);
        let recorded =
            current["metadata"]["annotations"][ANNOTATION_HASH].as_str() == Some(hash.as_str());
        if found.is_empty() && recorded && content_hash(current, &object) == hash {
            return Ok(PlannedObject::new(key.clone(), PlanAction::Unchanged, None));
        }
        foreign = (!found.is_empty()).then_some(found);
    }

    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        key.namespace.as_str(),
        &api_resource(key.kind),
    );
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    let patch = Patch::Apply(&object);
    let (result, _) = with_retries(&settings.retry, gate, || {
        api.patch(key.name.as_str(), &params, &patch)
    })
    .await;
    let answer = match result {
        Ok(answer) => serde_json::to_value(answer).unwrap_or(Value::Null),
        Err(kube::Error::Api(status)) => {
            return Ok(PlannedObject::new(
                key.clone(),
                PlanAction::Invalid,
                Some(status.message.clone()),
            ));
        }
        // No answer (or one that cannot be read): the cluster is not plannable now.
        Err(e) => {
            return Err(PushError::from_kube(e).during(format!("dry-run apply of {key}")));
        }
    };
    // A deploy also removes the spec fields other managers added (one JSON patch).
    let answer = match &foreign {
        Some(foreign) => foreign.removed_from(&answer),
        None => answer,
    };
    let mut planned = match current {
        None => {
            let mut planned = PlannedObject::new(key.clone(), PlanAction::Create, None);
            planned.desired = Some(view(&answer, &object, None));
            planned
        }
        Some(current) => {
            let before = view(current, &object, Some(&answer));
            let after = view(&answer, &object, Some(current));
            let patch = json_patch::diff(&before, &after);
            if patch.0.is_empty() {
                // Only the bookkeeping annotation differs (or nothing the API server keeps).
                let note = "only meshintent's spec-hash annotation would be written";
                PlannedObject::new(key.clone(), PlanAction::Unchanged, Some(note.to_owned()))
            } else {
                let mut planned = PlannedObject::new(key.clone(), PlanAction::Update, None);
                planned.patch = Some(patch);
                planned.live = Some(before);
                planned.desired = Some(after);
                planned
            }
        }
    };
    if let Some(foreign) = foreign
        && planned.action == PlanAction::Update
    {
        planned.message = Some(foreign.describe());
    }
    Ok(planned)
}

/// What matters of an object for a plan: apiVersion, kind, name, namespace, the labels and
/// annotations `reference` sets (plus those `other` no longer has, which an apply removes), and
/// spec. Server bookkeeping (resourceVersion, managedFields, uid, generation, timestamps) and
/// meshintent's spec-hash annotation are left out.
pub fn view(object: &Value, reference: &Value, other: Option<&Value>) -> Value {
    let meta = &object["metadata"];
    let pick = |field: &str| -> Option<Value> {
        let mut keys: BTreeSet<&String> = reference["metadata"][field]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if let (Some(other), Some(mine)) = (other, meta[field].as_object()) {
            // Keys this object has that the other side lost (an apply removed them).
            keys.extend(
                mine.keys()
                    .filter(|k| other["metadata"][field].get(k.as_str()).is_none()),
            );
        }
        let mut out = Map::new();
        for key in keys.into_iter().filter(|k| *k != ANNOTATION_HASH) {
            if let Some(value) = meta[field].get(key.as_str()) {
                out.insert(key.clone(), value.clone());
            }
        }
        (!out.is_empty()).then_some(Value::Object(out))
    };
    let mut metadata = Map::new();
    metadata.insert("name".into(), meta["name"].clone());
    metadata.insert("namespace".into(), meta["namespace"].clone());
    if let Some(labels) = pick("labels") {
        metadata.insert("labels".into(), labels);
    }
    if let Some(annotations) = pick("annotations") {
        metadata.insert("annotations".into(), annotations);
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), object["apiVersion"].clone());
    out.insert("kind".into(), object["kind"].clone());
    out.insert("metadata".into(), Value::Object(metadata));
    if let Some(spec) = object.get("spec") {
        out.insert("spec".into(), spec.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_view_keeps_what_meshintent_decides_and_drops_server_bookkeeping() {
        let live = json!({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "a", "namespace": "default", "resourceVersion": "7", "uid": "u",
                "generation": 3, "managedFields": [], "creationTimestamp": "t",
                "labels": {"mine": "1", "theirs": "2", "dropped": "3"},
                "annotations": {ANNOTATION_HASH: "h", "note": "x"}},
            "spec": {"host": "a"}, "status": {"x": 1}
        });
        let desired = json!({"metadata": {"labels": {"mine": "1"}}, "spec": {"host": "b"}});
        // The apply keeps the others' label and annotation, and removes `dropped`.
        let answer = json!({"metadata": {"labels": {"mine": "1", "theirs": "2"},
                                         "annotations": {"note": "x"}}});
        assert_eq!(
            view(&live, &desired, Some(&answer)),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                   "metadata": {"name": "a", "namespace": "default",
                                "labels": {"dropped": "3", "mine": "1"}},
                   "spec": {"host": "a"}})
        );
    }

    #[test]
    fn changes_and_problems() {
        assert!(PlanAction::Delete.is_change());
        assert!(!PlanAction::Unchanged.is_change());
        assert!(PlanAction::Invalid.is_problem());
        assert!(!PlanAction::Create.is_problem());
    }
}
