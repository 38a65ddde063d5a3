//! The floor of the deploy benchmark: the least a deploy of a set of objects can cost, a bare
//! parallel server-side apply loop written directly with kube. No discovery (the resource is
//! derived from each object's apiVersion and kind), no reads, no bookkeeping: one forced apply
//! PATCH per object, `FLOOR_CONCURRENCY` in flight.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind, TypeMeta};
use serde_json::Value;

/// Requests in flight, as in the raw client the issue measured meshintent against.
pub const FLOOR_CONCURRENCY: usize = 16;
/// The floor's field manager, so its objects are not mistaken for meshintent's.
pub const FLOOR_FIELD_MANAGER: &str = "floor";

/// Applies every object (each a complete Kubernetes object with apiVersion, kind, metadata
/// name and namespace) and returns how long that took. Panics on a failed apply: a floor that
/// skipped objects would be no floor.
pub async fn apply_all(client: &kube::Client, objects: &[Value]) -> Duration {
    let params = PatchParams::apply(FLOOR_FIELD_MANAGER).force();
    let started = Instant::now();
    let failures: Vec<String> = futures::stream::iter(objects)
        .map(|object| apply_one(client, &params, object))
        .buffer_unordered(FLOOR_CONCURRENCY)
        .filter_map(|result| async move { result.err() })
        .collect()
        .await;
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "floor: {} of {} applies failed, e.g. {}",
        failures.len(),
        objects.len(),
        failures[0]
    );
    elapsed
}

/// One forced server-side apply; the error names the object.
async fn apply_one(
    client: &kube::Client,
    params: &PatchParams,
    object: &Value,
) -> Result<(), String> {
    let (api, name) = api_for(client, object)?;
    api.patch(&name, params, &Patch::Apply(object))
        .await
        .map(drop)
        .map_err(|e| format!("{name}: {e}"))
}

/// The namespaced API of the object's kind, and the object's name. The plural is kube's guess
/// from the kind (right for every Istio kind), so the floor sends no discovery request.
fn api_for(client: &kube::Client, object: &Value) -> Result<(Api<DynamicObject>, String), String> {
    let field = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("an object without {pointer}: {object}"))
    };
    let types = TypeMeta {
        api_version: field("/apiVersion")?,
        kind: field("/kind")?,
    };
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| e.to_string())?;
    let resource = ApiResource::from_gvk(&gvk);
    let api = Api::namespaced_with(client.clone(), &field("/metadata/namespace")?, &resource);
    Ok((api, field("/metadata/name")?))
}
