//! Mesh-name claims kept in step with the intents (SPEC 7). Every write that changes what a set
//! renders re-derives the claims of the intents it changes, in its own transaction: an intent's
//! claims are the names its objects decide, found by rendering that intent alone (with its
//! clients, the route intents on it, the apps and every cluster). A name another set already
//! owns refuses the write with 409; nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use uuid::Uuid;

use super::Service;
use super::context::{ModelBuilder, ModelIds, load_clusters, load_model, name_of, stored_spec};
use super::neighbourhood::{ROUTE_TO_INBOUND, ROUTE_TO_OUTBOUND};
use crate::domain::claim::{Claim, ClaimKind, MeshNameCollision, claims_of};
use crate::domain::inbound::InboundIntentSpec;
use crate::domain::model::{IntentSetModel, SetAddress};
use crate::domain::names::Name;
use crate::domain::outbound::OutboundIntentSpec;
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::domain::route::RouteIntentSpec;
use crate::error::{Error, Result};
use crate::generate;
use crate::store::{ClaimHolder, ClaimKey, ResourceRow, SetLocation, Tx};

/// The names an intent's objects decide: its model alone rendered (None when it does not render
/// on its own; then its claims are left as they were, and the set's render reports why).
pub fn intent_claims(model: &IntentSetModel, intent: &Name) -> Option<BTreeSet<Claim>> {
    let mut alone = IntentSetModel::new(model.address.clone());
    alone.clusters = model.clusters.clone();
    alone.apps = model.apps.clone();
    if let Some(inbound) = model.inbound.get(intent) {
        alone.inbound.insert(intent.clone(), inbound.clone());
    } else if let Some(outbound) = model.outbound.get(intent) {
        alone.outbound.insert(intent.clone(), outbound.clone());
    } else {
        return Some(BTreeSet::new());
    }
    for (name, route) in &model.routes {
        let target = route
            .target
            .inbound_intent
            .as_ref()
            .or(route.target.outbound_intent.as_ref());
        if target == Some(intent) {
            alone.routes.insert(name.clone(), route.clone());
        }
    }
    let plan = generate::SetPlan::new(&alone);
    let needs = plan.vip_needs().ok()?;
    // Addresses do not change names: any valid allocation will do.
    let vips = generate::vips::allocate_offline(&alone, &needs).ok()?;
    let manifests = generate::render_plan(&plan, &vips).ok()?;
    Some(
        manifests
            .iter()
            .flat_map(|(cluster, objects)| objects.iter().flat_map(|o| claims_of(cluster, o)))
            .collect(),
    )
}

/// What a write does when another set owns a name it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnTaken {
    /// 409, nothing written: every write through the API.
    Refuse,
    /// Record the need as a collision (deriving data stored before claims existed).
    Record,
}

/// Where a set lives, for claims: its id and address.
struct SetRef {
    id: Uuid,
    address: SetAddress,
}

impl Service {
    /// After a create, replace or delete of the resource at `path` (`rows`: its resolved
    /// ancestors, root first, and for a write the resource itself last; `before` / `after`: its
    /// spec before and after), re-derives the claims of every intent whose render it changes.
    pub(crate) async fn claims_after_change(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        rows: &[ResourceRow],
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<()> {
        let Some(kind) = path.kind() else {
            return Ok(());
        };
        match kind {
            Kind::InboundIntent | Kind::OutboundIntent => {
                let set = set_ref(path, rows)?;
                match after {
                    Some(_) => {
                        let key = path
                            .key()
                            .ok_or_else(|| Error::internal("claims", "no key"))?;
                        derive_named(tx, &set, path, rows, kind, &key.name).await
                    }
                    // The sources went with the row; what it held is released by
                    // `claims_before_delete`.
                    None => Ok(()),
                }
            }
            Kind::Client => {
                let set = set_ref(path, rows)?;
                let inbound = path
                    .find(Kind::InboundIntent)
                    .ok_or_else(|| Error::internal("claims", "client outside an inbound intent"))?
                    .name
                    .clone();
                derive_named(tx, &set, path, rows, Kind::InboundIntent, &inbound).await
            }
            Kind::RouteIntent => {
                let set = set_ref(path, rows)?;
                let mut targets = BTreeSet::new();
                for spec in [before, after].into_iter().flatten() {
                    let route: RouteIntentSpec = serde_json::from_value(spec.clone())
                        .map_err(|e| Error::internal("stored route intent", e))?;
                    if let Some(t) = route.target.inbound_intent {
                        targets.insert((Kind::InboundIntent, t));
                    }
                    if let Some(t) = route.target.outbound_intent {
                        targets.insert((Kind::OutboundIntent, t));
                    }
                }
                for (kind, target) in targets {
                    derive_named(tx, &set, path, rows, kind, &target).await?;
                }
                Ok(())
            }
            Kind::App => {
                let ca = ancestor(path, rows, Kind::CompositeApp)?;
                for set in tx.sets(Some(ca.id)).await? {
                    self.derive_set(tx, &set).await?;
                }
                Ok(())
            }
            Kind::Cluster => {
                for set in tx.sets(None).await? {
                    self.derive_set(tx, &set).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Before an intent (or anything holding intents) is deleted: the names its intents hold,
    /// to release after the delete with `claims_after_delete`.
    pub(crate) async fn claims_before_delete(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        id: Uuid,
        rows: &[ResourceRow],
    ) -> Result<Option<(Uuid, Vec<ClaimKey>)>> {
        match path.kind() {
            Some(Kind::InboundIntent | Kind::OutboundIntent) => {
                let set = ancestor(path, rows, Kind::TrafficIntentSet)?.id;
                Ok(Some((set, tx.claim_sources_of(id).await?)))
            }
            _ => Ok(None),
        }
    }

    pub(crate) async fn claims_after_delete(
        &self,
        tx: &mut Tx,
        held: Option<(Uuid, Vec<ClaimKey>)>,
    ) -> Result<()> {
        if let Some((set, keys)) = held {
            tx.release_unneeded(set, &keys).await?;
        }
        Ok(())
    }

    /// Re-derives the claims of every intent of a set (after its apps, the clusters or the
    /// whole set changed).
    pub(crate) async fn derive_set(&self, tx: &mut Tx, set: &SetLocation) -> Result<()> {
        let address = super::vips::set_address(set)?;
        let (model, ids) = load_model(tx, address, set.composite_app_id, set.set_id).await?;
        self.derive_model(tx, set.set_id, &model, &ids, OnTaken::Refuse)
            .await
    }

    /// At start-up: derives the claims of data stored before claims existed (once), and warns
    /// about every collision in the stored data (two sets deciding one name), which the API
    /// refuses to create but older data may hold.
    pub async fn derive_stored_claims(&self) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        if !tx.claims_derived().await? {
            let sets = tx.sets(None).await?;
            for set in &sets {
                tx.lock(set.set_id).await?;
                let address = super::vips::set_address(set)?;
                let (model, ids) =
                    load_model(&mut tx, address, set.composite_app_id, set.set_id).await?;
                self.derive_model(&mut tx, set.set_id, &model, &ids, OnTaken::Record)
                    .await?;
            }
            tx.mark_claims_derived().await?;
            tracing::info!(
                sets = sets.len(),
                "mesh-name claims derived from the stored intents"
            );
        }
        let collisions = tx.claim_collisions(None).await?;
        tx.commit().await?;
        for c in &collisions {
            tracing::warn!(cluster_id = %c.cluster_id, kind = %c.kind, name = %c.name,
                owner_set = %c.owner_set_id, set = %c.set_id, intent = %c.intent_id,
                "two traffic intent sets decide one mesh name; Istio keeps one of them: remove it from one set");
        }
        Ok(())
    }

    /// Re-derives the claims of every intent of `model` (the set `set_id`, loaded with `ids`:
    /// its intents' and every cluster's), and releases the names none of them needs any more.
    pub(crate) async fn derive_model(
        &self,
        tx: &mut Tx,
        set_id: Uuid,
        model: &IntentSetModel,
        ids: &ModelIds,
        on_taken: OnTaken,
    ) -> Result<()> {
        let set_ref = SetRef {
            id: set_id,
            address: model.address.clone(),
        };
        for name in model.inbound.keys().chain(model.outbound.keys()) {
            let Some(&intent) = ids.intents.get(name) else {
                continue;
            };
            if let Some(claims) = intent_claims(model, name) {
                store_claims(tx, &set_ref, intent, &claims, &ids.clusters, on_taken).await?;
            }
        }
        tx.release_unneeded_of_set(set_id).await?;
        Ok(())
    }
}

impl Service {
    /// The rendered objects of a set that decide a name another set owns, with why.
    pub(crate) async fn claim_conflicts(
        &self,
        tx: &mut Tx,
        set_id: Uuid,
        manifests: &crate::store::Manifests,
    ) -> Result<BTreeMap<crate::domain::deployment::ObjectRef, String>> {
        let (_, cluster_ids) = load_clusters(tx).await?;
        let mut by_key: BTreeMap<ClaimKey, Vec<crate::domain::deployment::ObjectRef>> =
            BTreeMap::new();
        for (cluster, objects) in manifests {
            let Some(&cluster_id) = cluster_ids.get(cluster) else {
                continue;
            };
            for object in objects {
                let Ok(key) = crate::domain::deployment::ObjectRef::of(cluster, object) else {
                    continue;
                };
                for claim in claims_of(cluster, object) {
                    by_key
                        .entry(ClaimKey {
                            cluster_id,
                            kind: claim.kind.as_str().to_owned(),
                            name: claim.name,
                        })
                        .or_default()
                        .push(key.clone());
                }
            }
        }
        let keys: Vec<ClaimKey> = by_key.keys().cloned().collect();
        let mut out = BTreeMap::new();
        for holder in tx.claim_holders(set_id, &keys).await? {
            let key = ClaimKey {
                cluster_id: holder.cluster_id,
                kind: holder.kind.clone(),
                name: holder.name.clone(),
            };
            let message = match taken_error(tx, &holder, &cluster_ids).await {
                Error::Conflict(m) => m,
                other => other.to_string(),
            };
            for object in by_key.get(&key).into_iter().flatten() {
                out.entry(object.clone()).or_insert_with(|| message.clone());
            }
        }
        Ok(out)
    }
}

impl Service {
    /// The collisions of stored data (two sets deciding one name on a cluster) that involve the
    /// set `set_id`, as it sees them: for the analysis (`MI1004`) and `GET .../status`.
    pub(crate) async fn collisions_of_set(
        &self,
        tx: &mut Tx,
        set_id: Uuid,
    ) -> Result<Vec<MeshNameCollision>> {
        let collisions = tx.claim_collisions(Some(set_id)).await?;
        if collisions.is_empty() {
            return Ok(Vec::new());
        }
        let (_, cluster_ids) = load_clusters(tx).await?;
        let sets: BTreeMap<Uuid, SetAddress> = tx
            .sets(None)
            .await?
            .iter()
            .map(|s| Ok((s.set_id, super::vips::set_address(s)?)))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(collisions.len());
        for c in collisions {
            let (Some(cluster), Some(owner), Some(other)) = (
                cluster_named(&cluster_ids, c.cluster_id),
                sets.get(&c.owner_set_id),
                sets.get(&c.set_id),
            ) else {
                continue;
            };
            let claim = claim_text(cluster, &c.kind, &c.name)
                .unwrap_or_else(|| format!("{} {} on cluster {cluster}", c.kind, c.name));
            let Some(row) = tx.by_id(c.intent_id).await? else {
                continue;
            };
            let intent = member_path(&other.path(), &row)?.url();
            let owner = owner.path().url();
            let owned_here = c.owner_set_id == set_id;
            let message = if owned_here {
                format!(
                    "{claim} is this set's, but {intent} decides it too (data stored before claims existed): Istio keeps one of them; remove it from one of the sets"
                )
            } else {
                format!(
                    "{claim} belongs to {owner}, but this set's {intent} decides it too (data stored before claims existed): its objects deciding it are not applied (conflict); remove it from one of the sets"
                )
            };
            out.push(MeshNameCollision {
                cluster: cluster.to_string(),
                claim,
                owned_here,
                owner,
                intent,
                message,
            });
        }
        out.sort();
        Ok(out)
    }
}

/// The set the resource at `path` belongs to.
fn set_ref(path: &ResourcePath, rows: &[ResourceRow]) -> Result<SetRef> {
    Ok(SetRef {
        id: ancestor(path, rows, Kind::TrafficIntentSet)?.id,
        address: SetAddress::from_path(path)
            .ok_or_else(|| Error::internal("claims", "not inside a set"))?,
    })
}

fn ancestor<'r>(
    path: &ResourcePath,
    rows: &'r [ResourceRow],
    kind: Kind,
) -> Result<&'r ResourceRow> {
    path.segments()
        .iter()
        .position(|(k, _)| *k == kind)
        .and_then(|i| rows.get(i))
        .ok_or_else(|| Error::internal("claims", format!("no {kind:?} on the path")))
}

/// Loads one intent of `set` by kind and name, with what its render needs, and stores its
/// claims.
async fn derive_named(
    tx: &mut Tx,
    set: &SetRef,
    path: &ResourcePath,
    rows: &[ResourceRow],
    kind: Kind,
    name: &Name,
) -> Result<()> {
    let key = Key {
        name: name.clone(),
        version: None,
    };
    let Some(row) = tx.child(set.id, kind, &key).await? else {
        return Ok(());
    };
    let ca = ancestor(path, rows, Kind::CompositeApp)?.id;
    let mut builder = ModelBuilder::new(set.address.clone());
    builder.load_clusters(tx).await?;
    let (field, apps) = match kind {
        Kind::InboundIntent => {
            let subtree = tx.subtree(row.id).await?;
            let spec: InboundIntentSpec = stored_spec(&row)?;
            let mut apps: BTreeSet<Name> = BTreeSet::from([spec.app.clone()]);
            for child in subtree.iter().filter(|r| r.kind == Kind::Client.code()) {
                let client: crate::domain::client::ClientSpec = stored_spec(child)?;
                apps.insert(client.app);
            }
            builder.members(subtree)?;
            (ROUTE_TO_INBOUND, Some(apps))
        }
        _ => {
            let spec: OutboundIntentSpec = stored_spec(&row)?;
            builder.members(vec![row.clone()])?;
            let apps = (!spec.clients.is_empty()).then(|| spec.clients.iter().cloned().collect());
            (ROUTE_TO_OUTBOUND, apps)
        }
    };
    builder.members(tx.referring(row.id, field).await?)?;
    match apps {
        Some(apps) => {
            let names: Vec<&str> = apps.iter().map(Name::as_str).collect();
            builder.apps(tx.children_named(ca, Kind::App, &names).await?)?;
        }
        None => builder.apps(tx.children(ca, Kind::App).await?)?,
    }
    let (model, ids) = builder.finish();
    let Some(claims) = intent_claims(&model, &name_of(&row)?) else {
        return Ok(());
    };
    store_claims(tx, set, row.id, &claims, &ids.clusters, OnTaken::Refuse).await
}

/// Stores the difference between an intent's recorded claims and `claims`; 409 when another
/// set owns one of the new ones.
async fn store_claims(
    tx: &mut Tx,
    set: &SetRef,
    intent: Uuid,
    claims: &BTreeSet<Claim>,
    cluster_ids: &BTreeMap<Name, Uuid>,
    on_taken: OnTaken,
) -> Result<()> {
    let wanted: BTreeSet<ClaimKey> = claims
        .iter()
        .filter_map(|c| {
            Some(ClaimKey {
                cluster_id: *cluster_ids.get(&c.cluster)?,
                kind: c.kind.as_str().to_owned(),
                name: c.name.clone(),
            })
        })
        .collect();
    let held: BTreeSet<ClaimKey> = tx.claim_sources_of(intent).await?.into_iter().collect();
    let added: Vec<ClaimKey> = wanted.difference(&held).cloned().collect();
    let removed: Vec<ClaimKey> = held.difference(&wanted).cloned().collect();
    if !added.is_empty() {
        let taken = tx.claim_names(set.id, &added).await?;
        if let Some(holder) = taken.first()
            && on_taken == OnTaken::Refuse
        {
            return Err(taken_error(tx, holder, cluster_ids).await);
        }
        tx.add_claim_sources(intent, set.id, &added).await?;
    }
    if !removed.is_empty() {
        tx.drop_claim_sources(intent, set.id, &removed).await?;
    }
    Ok(())
}

/// The 409 for a name another set owns, naming that set and its intent.
async fn taken_error(
    tx: &mut Tx,
    holder: &ClaimHolder,
    cluster_ids: &BTreeMap<Name, Uuid>,
) -> Error {
    let claim = cluster_named(cluster_ids, holder.cluster_id)
        .and_then(|cluster| claim_text(cluster, &holder.kind, &holder.name))
        .unwrap_or_else(|| holder.name.clone());
    let owner = match owner_path(tx, holder).await {
        Ok(Some(path)) => path,
        _ => "another traffic intent set".to_owned(),
    };
    Error::Conflict(format!(
        "{claim} is already claimed by {owner}: Istio keeps one configuration per host, so two sets cannot both decide it; remove it there first, or move this intent into that set"
    ))
}

/// The name of the cluster whose id is `id`.
fn cluster_named(cluster_ids: &BTreeMap<Name, Uuid>, id: Uuid) -> Option<&Name> {
    cluster_ids
        .iter()
        .find(|(_, cluster_id)| **cluster_id == id)
        .map(|(name, _)| name)
}

/// A stored claim as a person reads it (`DestinationRule host h on cluster c`); None for a kind
/// this release does not know.
fn claim_text(cluster: &Name, kind: &str, name: &str) -> Option<String> {
    Some(
        Claim {
            cluster: cluster.clone(),
            kind: ClaimKind::parse(kind)?,
            name: name.to_owned(),
        }
        .to_string(),
    )
}

/// The path of the set member stored as `row` in the set at `set_path`.
fn member_path(set_path: &ResourcePath, row: &ResourceRow) -> Result<ResourcePath> {
    let kind = Kind::from_code(&row.kind)
        .ok_or_else(|| Error::internal("stored kind", row.kind.clone()))?;
    Ok(set_path.child(
        kind,
        Key {
            name: name_of(row)?,
            version: None,
        },
    ))
}

/// `traffic intent set /v2/projects/p/.../traffic-intent-sets/s (inbound intent reviews)`.
async fn owner_path(tx: &mut Tx, holder: &ClaimHolder) -> Result<Option<String>> {
    let Some(set) = tx
        .sets(None)
        .await?
        .into_iter()
        .find(|s| s.set_id == holder.set_id)
    else {
        return Ok(None);
    };
    let address = super::vips::set_address(&set)?;
    let set_path = address.path();
    let intent = match holder.intent_id {
        Some(id) => tx.by_id(id).await?,
        None => None,
    };
    Ok(Some(match intent {
        Some(row) => {
            let path = member_path(&set_path, &row)?;
            format!(
                "project {}, composite app {} {}, traffic intent set {} (intent {})",
                address.project,
                address.composite_app,
                address.version,
                address.set,
                path.url()
            )
        }
        None => format!(
            "project {}, composite app {} {}, traffic intent set {}",
            address.project, address.composite_app, address.version, address.set
        ),
    }))
}
