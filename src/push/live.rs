//! What a cluster has: the Istio objects of every kind meshintent writes, read with one paged
//! LIST per kind, and who owns each of them.

use std::collections::BTreeMap;

use kube::Api;
use kube::api::{DynamicObject, ListParams};
use serde_json::Value;

use super::error::PushError;
use super::gate::Gate;
use super::kinds::api_resource;
use super::retry::{RetryPolicy, with_retries};
use crate::domain::claim::{Claim, claims_of_value};
use crate::domain::deployment::{IstioKind, ObjectRef};
use crate::domain::names::Name;
use crate::generate::naming::{
    LABEL_COMPOSITE_APP, LABEL_PROJECT, LABEL_SET, LABEL_VERSION, MANAGED_BY, MANAGED_BY_VALUE,
};

/// Objects per LIST page: bounds the size of one answer on a cluster with many objects.
const PAGE: u32 = 500;

/// The objects found on a cluster, split by whether they are the set's.
#[derive(Debug, Default)]
pub struct LiveObjects {
    /// Labelled as the set's: prune candidates, and what an apply compares with.
    pub owned: BTreeMap<ObjectRef, Value>,
    /// Everything else of the kinds meshintent writes (without `managedFields`): a desired
    /// object found here belongs to someone else.
    pub others: BTreeMap<ObjectRef, Value>,
    /// The mesh names that objects meshintent does not manage decide, with one such object
    /// (`DestinationRule/default/reviews`): a desired object deciding one of them would make
    /// Istio's choice between the two undefined.
    pub unmanaged_claims: BTreeMap<Claim, String>,
}

impl LiveObjects {
    pub fn get(&self, key: &ObjectRef) -> Option<&Value> {
        self.owned.get(key).or_else(|| self.others.get(key))
    }

    /// An unmanaged object that decides one of the names `object` (of `key`) would.
    pub fn overlap(&self, key: &ObjectRef, object: &Value) -> Option<(Claim, &str)> {
        claims_of_value(&key.cluster, key.kind, object)
            .into_iter()
            .find_map(|claim| {
                let holder = self.unmanaged_claims.get(&claim)?;
                Some((claim, holder.as_str()))
            })
    }
}

/// The label selector of a set's objects.
fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every object of every kind meshintent writes, in all namespaces: one LIST per kind (paged),
/// so that no object needs a GET of its own to learn whether it exists or whose it is.
pub async fn list_all(
    client: &kube::Client,
    cluster: &Name,
    set_labels: &BTreeMap<String, String>,
    retry: &RetryPolicy,
    gate: &Gate,
) -> Result<LiveObjects, PushError> {
    let mut live = LiveObjects::default();
    let params = ListParams::default().limit(PAGE);
    for kind in IstioKind::ALL {
        for (key, mut value) in list_kind(client, cluster, kind, &params, retry, gate).await? {
            if is_owned(&value, set_labels) {
                live.owned.insert(key, value);
            } else {
                if value["metadata"]["labels"][MANAGED_BY].as_str() != Some(MANAGED_BY_VALUE) {
                    let name = format!("{}/{}/{}", kind, key.namespace, key.name);
                    for claim in claims_of_value(cluster, kind, &value) {
                        live.unmanaged_claims
                            .entry(claim)
                            .or_insert_with(|| name.clone());
                    }
                }
                if let Some(meta) = value["metadata"].as_object_mut() {
                    meta.shift_remove("managedFields");
                }
                live.others.insert(key, value);
            }
        }
    }
    Ok(live)
}

/// The set's objects only, found by its labels (for verify, which judges nothing else).
pub async fn list_owned(
    client: &kube::Client,
    cluster: &Name,
    set_labels: &BTreeMap<String, String>,
    retry: &RetryPolicy,
) -> Result<BTreeMap<ObjectRef, Value>, PushError> {
    let params = ListParams::default()
        .labels(&selector(set_labels))
        .limit(PAGE);
    let gate = Gate::unhalted();
    let mut out = BTreeMap::new();
    for kind in IstioKind::ALL {
        out.extend(list_kind(client, cluster, kind, &params, retry, &gate).await?);
    }
    Ok(out)
}

/// All pages of one kind's LIST.
async fn list_kind(
    client: &kube::Client,
    cluster: &Name,
    kind: IstioKind,
    params: &ListParams,
    retry: &RetryPolicy,
    gate: &Gate,
) -> Result<Vec<(ObjectRef, Value)>, PushError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(kind));
    let mut params = params.clone();
    let mut out = Vec::new();
    loop {
        let (list, _) = with_retries(retry, gate, || api.list(&params)).await;
        let list = list
            .map_err(|e| PushError::from_kube(e).during(format!("cannot list {kind} objects")))?;
        for item in &list.items {
            if let Some(entry) = keyed(cluster, kind, item) {
                out.push(entry);
            }
        }
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => return Ok(out),
        }
    }
}

/// A listed object with its identity.
fn keyed(cluster: &Name, kind: IstioKind, item: &DynamicObject) -> Option<(ObjectRef, Value)> {
    let namespace = item.metadata.namespace.as_deref().unwrap_or_default();
    let name = item.metadata.name.as_deref().unwrap_or_default();
    // The API server validates names, so a name that does not parse is a broken answer. Skipped
    // rather than failing the cluster: no desired object can have such a name, so a skipped
    // object is one meshintent neither deletes nor reports as extra, left alone like any object
    // it does not own; an error would instead block every deploy and terminate of the set here.
    let key = match ObjectRef::parse(cluster.clone(), kind, namespace, name) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(%cluster, error = %e, "skipping a listed object that has no valid name");
            return None;
        }
    };
    let mut value = serde_json::to_value(item).unwrap_or(Value::Null);
    value["apiVersion"] = Value::String(kind.api_version().to_owned());
    value["kind"] = Value::String(kind.name().to_owned());
    Some((key, value))
}

fn is_owned(live: &Value, set_labels: &BTreeMap<String, String>) -> bool {
    let labels = &live["metadata"]["labels"];
    labels[MANAGED_BY].as_str() == Some(MANAGED_BY_VALUE)
        && set_labels
            .iter()
            .all(|(k, v)| labels[k].as_str() == Some(v.as_str()))
}

/// Who owns an object found on the cluster: None when it is this set's.
pub fn foreign_owner(live: &Value, set_labels: &BTreeMap<String, String>) -> Option<String> {
    if is_owned(live, set_labels) {
        return None;
    }
    let labels = &live["metadata"]["labels"];
    if labels[MANAGED_BY].as_str() != Some(MANAGED_BY_VALUE) {
        return Some(format!(
            "exists and is not managed by meshintent (no {MANAGED_BY}: {MANAGED_BY_VALUE} label); left untouched"
        ));
    }
    let owner: Vec<&str> = [LABEL_PROJECT, LABEL_COMPOSITE_APP, LABEL_VERSION, LABEL_SET]
        .iter()
        .map(|k| labels[*k].as_str().unwrap_or("?"))
        .collect();
    Some(format!(
        "belongs to traffic intent set {}; left untouched",
        owner.join("/")
    ))
}
