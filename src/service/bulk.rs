//! Replacing a traffic intent set's members from a document in one transaction: what
//! `meshintent apply` sends instead of one request per resource.
//!
//! The set as stored (with its project, composite app, apps and clusters) and the body are put
//! together into one intent document, which `IntentDocument::resolve` checks with every rule the
//! item writes check; errors name fields of the body. Then the difference is written: new
//! members inserted in batches, changed ones replaced, and (with `prune`) members the body
//! leaves out deleted; the set's VIPs are planned once, and one audit event records the change.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Service;
use super::access::{Caller, audit_change};
use super::context::{ModelIds, name_of};
use super::events::{Event, EventType};
use super::neighbourhood;
use super::vips::{AllocationError, allocate};
use crate::domain::document::{DocClient, DocInboundIntent, DocIntentSet};
use crate::domain::names::Name;
use crate::domain::resource::{Key, Kind, Metadata, ResourcePath};
use crate::domain::violations::FieldError;
use crate::error::{Error, Result};
use crate::generate;
use crate::store::{NewResource, NewRow, ResourceRow, StoreError, Tx};

/// What a document write did to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Replaced,
    Deleted,
    Unchanged,
}

/// One resource of the set and what the write did to it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemberChange {
    /// The resource's API path.
    pub path: String,
    pub change: Change,
}

/// The outcome of a document write: the counts, and each member's change in document order
/// (deletions last).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetChanges {
    pub created: usize,
    pub replaced: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub changes: Vec<MemberChange>,
}

/// The pointer of the set inside the document built for checking.
const SET_POINTER: &str = "/projects/0/compositeApps/0/trafficIntentSets/0";

/// A member of the document's set: kind, path, metadata, spec as stored, and the references
/// it holds (as item writes store them).
struct Member {
    kind: Kind,
    path: ResourcePath,
    parent: ResourcePath,
    metadata: Metadata,
    spec: serde_json::Value,
    refs: Vec<(String, Target)>,
}

/// What a reference points at, before ids are known.
enum Target {
    App(Name),
    /// An intent of the set, by its path.
    Intent(ResourcePath),
}

impl Service {
    /// Makes the set at `path` hold the members of `body` (with `prune`, only them), checked as
    /// item writes are and written in one transaction.
    pub async fn replace_set_members(
        &self,
        path: &ResourcePath,
        body: DocIntentSet,
        prune: bool,
        caller: &Caller,
    ) -> Result<SetChanges> {
        let mut tx = self.store.begin_write().await?;
        let counts = self
            .replace_set_members_in(&mut tx, path, body, prune, caller)
            .await?;
        tx.commit().await?;
        self.events_committed();
        tracing::info!(resource = %path.url(), created = counts.created, replaced = counts.replaced,
            deleted = counts.deleted, actor = %caller.principal.actor, "set document applied");
        Ok(counts)
    }

    /// `replace_set_members` within `tx`, which the caller commits (or, for a plan, rolls back).
    pub(crate) async fn replace_set_members_in(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        body: DocIntentSet,
        prune: bool,
        caller: &Caller,
    ) -> Result<SetChanges> {
        let key = path
            .key()
            .ok_or_else(|| Error::internal("document", "empty path"))?;
        if body.metadata.name != key.name {
            return Err(Error::invalid_field(
                "/metadata/name",
                format!(
                    "must match the name in the URL (\"{}\"); sets cannot be renamed",
                    key.name
                ),
            ));
        }
        let rows = self.resolve_path(tx, path).await?;
        let set_row = rows
            .last()
            .ok_or_else(|| Error::internal("document", "empty path"))?
            .clone();
        tx.lock(set_row.id).await?;
        let mut document = self.stored_document(tx, &rows).await?;
        let body_counts = Counts::of(&body);
        let stored_set = std::mem::replace(
            &mut document.projects[0].composite_apps[0].traffic_intent_sets[0],
            body,
        );
        let merged = &mut document.projects[0].composite_apps[0].traffic_intent_sets[0];
        if !prune {
            merge(merged, stored_set);
        }
        let resolved = document
            .resolve()
            .map_err(|errors| Error::invalid(body_errors(errors, &body_counts, path)))?;
        let set = resolved
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("document", "the set did not resolve"))?;
        let merged = document.projects[0].composite_apps[0].traffic_intent_sets[0].clone();

        let wanted = members(path, &merged);
        let changes = write_difference(tx, path, &set_row, &wanted, prune, caller).await?;
        let ids = self.model_ids(tx, &rows, set_row.id).await?;
        let needs = generate::SetPlan::new(&set.model).vip_needs();
        if let Ok(needs) = needs {
            match allocate(tx, &set.model, &ids, &needs).await {
                Ok(_) | Err(AllocationError::Render(_)) => {}
                Err(AllocationError::Other(e)) => return Err(e),
            }
        }
        let refuse = super::claims::OnTaken::Refuse;
        self.derive_model(tx, set_row.id, &set.model, &ids, refuse)
            .await?;
        let events = document_events(path, &changes);
        let counts = summarize(changes);
        if counts.created + counts.replaced + counts.deleted > 0 {
            audit_change(
                tx,
                caller,
                "document.replace",
                path,
                (Some(set_row.revision), Some(set_row.revision)),
                200,
            )
            .await?;
        }
        self.publish(tx, events).await?;
        Ok(counts)
    }

    /// Ids of the set's intents (after the write), its composite app's apps and every cluster,
    /// for storing VIPs.
    async fn model_ids(&self, tx: &mut Tx, rows: &[ResourceRow], set: Uuid) -> Result<ModelIds> {
        let mut ids = ModelIds::default();
        (_, ids.clusters) = super::context::load_clusters(tx).await?;
        for row in tx.children(rows[1].id, Kind::App).await? {
            ids.apps.insert(name_of(&row)?, row.id);
        }
        for kind in [Kind::InboundIntent, Kind::OutboundIntent, Kind::RouteIntent] {
            for row in tx.children(set, kind).await? {
                ids.intents.insert(name_of(&row)?, row.id);
            }
        }
        Ok(ids)
    }
}

/// How many of each member the body holds (the merged document lists them first).
struct Counts {
    inbound: usize,
    clients: Vec<usize>,
    security: Vec<Vec<usize>>,
    outbound: usize,
    routes: usize,
}

impl Counts {
    fn of(set: &DocIntentSet) -> Self {
        Self {
            inbound: set.inbound_intents.len(),
            clients: set
                .inbound_intents
                .iter()
                .map(|i| i.clients.len())
                .collect(),
            security: set
                .inbound_intents
                .iter()
                .map(|i| i.clients.iter().map(|c| c.security_intents.len()).collect())
                .collect(),
            outbound: set.outbound_intents.len(),
            routes: set.route_intents.len(),
        }
    }

    /// Whether the member at `pointer` (below the set) is one of the body's.
    fn in_body(&self, pointer: &str) -> bool {
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        let index = |i: usize| parts.get(i).and_then(|p| p.parse::<usize>().ok());
        match parts.first().copied() {
            Some("inboundIntents") => {
                let Some(i) = index(1) else { return true };
                if i >= self.inbound {
                    return false;
                }
                match (parts.get(2).copied(), index(3)) {
                    (Some("clients"), Some(c)) => {
                        if c >= self.clients[i] {
                            return false;
                        }
                        match (parts.get(4).copied(), index(5)) {
                            (Some("securityIntents"), Some(s)) => s < self.security[i][c],
                            _ => true,
                        }
                    }
                    _ => true,
                }
            }
            Some("outboundIntents") => index(1).is_none_or(|i| i < self.outbound),
            Some("routeIntents") => index(1).is_none_or(|i| i < self.routes),
            _ => true,
        }
    }
}

/// The document's errors as errors on the body: pointers into the set become pointers into
/// the body; an error on a stored member the body left in place (no prune) names that member's
/// URL, and one elsewhere in the document (a stored app or cluster) is kept as it is.
fn body_errors(errors: Vec<FieldError>, counts: &Counts, set: &ResourcePath) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|e| match e.field.strip_prefix(SET_POINTER) {
            Some(rest) if counts.in_body(rest) => FieldError {
                field: if rest.is_empty() {
                    "/".into()
                } else {
                    rest.to_owned()
                },
                message: e.message,
            },
            Some(rest) => FieldError {
                field: format!("{}#{rest}", set.url()),
                message: format!("{} (a stored member this document keeps)", e.message),
            },
            None => e,
        })
        .collect()
}

/// Adds to `into` (the body) the stored members it does not mention, after its own, at every
/// level: an inbound intent in the body keeps its stored clients the body leaves out.
fn merge(into: &mut DocIntentSet, stored: DocIntentSet) {
    let mut stored_inbound: BTreeMap<_, DocInboundIntent> = stored
        .inbound_intents
        .into_iter()
        .map(|i| (i.metadata.name.clone(), i))
        .collect();
    for inbound in &mut into.inbound_intents {
        let Some(old) = stored_inbound.remove(&inbound.metadata.name) else {
            continue;
        };
        let mut old_clients: BTreeMap<_, DocClient> = old
            .clients
            .into_iter()
            .map(|c| (c.metadata.name.clone(), c))
            .collect();
        for client in &mut inbound.clients {
            let Some(old) = old_clients.remove(&client.metadata.name) else {
                continue;
            };
            let named: BTreeSet<_> = client
                .security_intents
                .iter()
                .map(|s| s.metadata.name.clone())
                .collect();
            client.security_intents.extend(
                old.security_intents
                    .into_iter()
                    .filter(|s| !named.contains(&s.metadata.name)),
            );
        }
        inbound.clients.extend(old_clients.into_values());
    }
    // Intents share one name scope: a stored intent is kept unless the body names it, as any
    // kind (then the body's definition wins, and a changed kind is a delete and a create).
    let named: BTreeSet<_> = into
        .inbound_intents
        .iter()
        .map(|i| i.metadata.name.clone())
        .chain(
            into.outbound_intents
                .iter()
                .map(|o| o.metadata.name.clone()),
        )
        .chain(into.route_intents.iter().map(|r| r.metadata.name.clone()))
        .collect();
    into.inbound_intents.extend(
        stored_inbound
            .into_values()
            .filter(|i| !named.contains(&i.metadata.name)),
    );
    into.outbound_intents.extend(
        stored
            .outbound_intents
            .into_iter()
            .filter(|o| !named.contains(&o.metadata.name)),
    );
    into.route_intents.extend(
        stored
            .route_intents
            .into_iter()
            .filter(|r| !named.contains(&r.metadata.name)),
    );
}

/// The members of a resolved set, parents before children, in document order.
fn members(set: &ResourcePath, doc: &DocIntentSet) -> Vec<Member> {
    let named = |kind: Kind, parent: &ResourcePath, metadata: &Metadata| {
        parent.child(kind, Key::named(metadata.name.clone()))
    };
    let app = |name: &Name| vec![("/spec/app".to_owned(), Target::App(name.clone()))];
    let mut out = Vec::new();
    for inbound in &doc.inbound_intents {
        let path = named(Kind::InboundIntent, set, &inbound.metadata);
        out.push(Member {
            kind: Kind::InboundIntent,
            path: path.clone(),
            parent: set.clone(),
            metadata: inbound.metadata.clone(),
            spec: value(&inbound.spec),
            refs: app(&inbound.spec.app),
        });
        for client in &inbound.clients {
            let client_path = named(Kind::Client, &path, &client.metadata);
            out.push(Member {
                kind: Kind::Client,
                path: client_path.clone(),
                parent: path.clone(),
                metadata: client.metadata.clone(),
                spec: value(&client.spec),
                refs: app(&client.spec.app),
            });
            for rule in &client.security_intents {
                out.push(Member {
                    kind: Kind::SecurityIntent,
                    path: named(Kind::SecurityIntent, &client_path, &rule.metadata),
                    parent: client_path.clone(),
                    metadata: rule.metadata.clone(),
                    spec: value(&rule.spec),
                    refs: Vec::new(),
                });
            }
        }
    }
    for outbound in &doc.outbound_intents {
        let refs = outbound
            .spec
            .clients
            .iter()
            .enumerate()
            .map(|(i, app)| (format!("/spec/clients/{i}"), Target::App(app.clone())))
            .collect();
        out.push(Member {
            kind: Kind::OutboundIntent,
            path: named(Kind::OutboundIntent, set, &outbound.metadata),
            parent: set.clone(),
            metadata: outbound.metadata.clone(),
            spec: value(&outbound.spec),
            refs,
        });
    }
    for route in &doc.route_intents {
        let target = &route.spec.target;
        let refs = [
            (
                Kind::InboundIntent,
                &target.inbound_intent,
                neighbourhood::ROUTE_TO_INBOUND,
            ),
            (
                Kind::OutboundIntent,
                &target.outbound_intent,
                neighbourhood::ROUTE_TO_OUTBOUND,
            ),
        ]
        .into_iter()
        .filter_map(|(kind, name, field)| {
            let name = name.as_ref()?;
            Some((
                field.to_owned(),
                Target::Intent(set.child(kind, Key::named(name.clone()))),
            ))
        })
        .collect();
        out.push(Member {
            kind: Kind::RouteIntent,
            path: named(Kind::RouteIntent, set, &route.metadata),
            parent: set.clone(),
            metadata: route.metadata.clone(),
            spec: value(&route.spec),
            refs,
        });
    }
    out
}

/// A spec as the JSON the store keeps.
fn value<T: Serialize>(spec: &T) -> serde_json::Value {
    serde_json::to_value(spec).expect("specs serialize to JSON")
}

/// A stored member's path below the set, from the set's subtree (parents first).
fn stored_paths(
    set: &ResourcePath,
    set_id: Uuid,
    rows: &[ResourceRow],
) -> Vec<(ResourcePath, usize)> {
    let mut paths: BTreeMap<Uuid, ResourcePath> = BTreeMap::from([(set_id, set.clone())]);
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let (Some(kind), Some(parent)) = (
            Kind::from_code(&row.kind),
            row.parent_id.and_then(|p| paths.get(&p)),
        ) else {
            continue;
        };
        if row.id == set_id {
            continue;
        }
        let Ok(name) = row.name.parse() else { continue };
        let path = parent.child(kind, Key::named(name));
        paths.insert(row.id, path.clone());
        out.push((path, i));
    }
    out
}

/// Writes what differs between the stored members and `wanted`; returns each member's change.
/// Stored members `wanted` leaves out are deleted with `prune`, and without it when the body
/// gives their name to an intent of another kind.
async fn write_difference(
    tx: &mut Tx,
    set_path: &ResourcePath,
    set_row: &ResourceRow,
    wanted: &[Member],
    prune: bool,
    caller: &Caller,
) -> Result<Vec<MemberChange>> {
    let stored_rows = tx.subtree(set_row.id).await?;
    let stored: BTreeMap<String, &ResourceRow> = stored_paths(set_path, set_row.id, &stored_rows)
        .into_iter()
        .map(|(path, i)| (path.url(), &stored_rows[i]))
        .collect();
    let wanted_urls: BTreeSet<String> = wanted.iter().map(|m| m.path.url()).collect();
    let wanted_intents: BTreeSet<String> = wanted
        .iter()
        .filter(|m| m.parent == *set_path)
        .map(|m| m.metadata.name.to_string())
        .collect();
    let top_level = |row: &ResourceRow| row.parent_id == Some(set_row.id);

    // Deletions first (a name may move to another kind of intent), outermost first: a subtree
    // goes with its children and their references.
    let mut deleted: Vec<MemberChange> = Vec::new();
    let mut deleted_roots: Vec<String> = Vec::new();
    for (url, row) in &stored {
        let doomed = !wanted_urls.contains(url)
            && (prune || (top_level(row) && wanted_intents.contains(&row.name)));
        if !doomed {
            continue;
        }
        let below = deleted_roots
            .iter()
            .any(|root| url.starts_with(&format!("{root}/")));
        if !below {
            tx.delete(row.id, true).await.map_err(|e| match e {
                StoreError::ForeignKey => Error::Conflict(format!(
                    "{url} cannot be deleted: a resource outside this set refers to it"
                )),
                e => e.into(),
            })?;
            deleted_roots.push(url.clone());
        }
        deleted.push(MemberChange {
            path: url.clone(),
            change: Change::Deleted,
        });
    }

    // Ids by URL: the set and the stored members that stay, then the new ones as they are made.
    let mut ids: BTreeMap<String, Uuid> = stored
        .iter()
        .filter(|(url, _)| wanted_urls.contains(*url))
        .map(|(url, row)| (url.clone(), row.id))
        .collect();
    ids.insert(set_path.url(), set_row.id);
    let mut inserts: Vec<NewRow> = Vec::new();
    let mut changes = Vec::with_capacity(wanted.len() + deleted.len());
    let mut replaced: Vec<Uuid> = Vec::new();
    for member in wanted {
        let url = member.path.url();
        let new = NewResource {
            actor: caller.actor(),
            description: member.metadata.description.as_ref().map(|d| d.to_string()),
            user_data1: member.metadata.user_data1.as_ref().map(|d| d.to_string()),
            user_data2: member.metadata.user_data2.as_ref().map(|d| d.to_string()),
            spec: member.spec.clone(),
        };
        let change = match ids.get(&url).and_then(|_| stored.get(&url)) {
            Some(row) => {
                let same = row.description == new.description
                    && row.user_data1 == new.user_data1
                    && row.user_data2 == new.user_data2
                    && row.spec.0 == new.spec;
                if same {
                    Change::Unchanged
                } else {
                    tx.update(row.id, new).await?;
                    replaced.push(row.id);
                    Change::Replaced
                }
            }
            None => {
                let parent = *ids
                    .get(&member.parent.url())
                    .ok_or_else(|| Error::internal("document", "a member before its parent"))?;
                let id = Uuid::new_v4();
                ids.insert(url.clone(), id);
                let key = member
                    .path
                    .key()
                    .cloned()
                    .ok_or_else(|| Error::internal("document", "empty member path"))?;
                inserts.push(NewRow {
                    id,
                    parent,
                    kind: member.kind,
                    key,
                    new,
                });
                Change::Created
            }
        };
        changes.push(MemberChange { path: url, change });
    }
    tx.insert_many(&inserts).await.map_err(|e| match e {
        StoreError::Duplicate => Error::Conflict(
            "a member of the document was created by another write at the same moment; retry"
                .into(),
        ),
        e => e.into(),
    })?;

    // The references of every created or replaced member, now that every id is known.
    let app_ids: BTreeMap<String, Uuid> = tx
        .children(
            set_row
                .parent_id
                .ok_or_else(|| Error::internal("document", "a set without a composite app"))?,
            Kind::App,
        )
        .await?
        .into_iter()
        .map(|row| (row.name, row.id))
        .collect();
    let mut refs: Vec<(Uuid, String, Uuid)> = Vec::new();
    for (member, change) in wanted.iter().zip(&changes) {
        if change.change == Change::Unchanged {
            continue;
        }
        let from = ids[&change.path];
        for (field, target) in &member.refs {
            let to = match target {
                Target::App(name) => app_ids.get(name.as_str()),
                Target::Intent(path) => ids.get(&path.url()),
            };
            if let Some(to) = to {
                refs.push((from, field.clone(), *to));
            }
        }
    }
    tx.replace_refs(&replaced, &refs)
        .await
        .map_err(|e| match e {
            StoreError::ForeignKey => Error::Conflict(
                "a resource the document refers to was deleted at the same moment; retry".into(),
            ),
            e => e.into(),
        })?;
    changes.extend(deleted);
    Ok(changes)
}

/// One `intent-written` event per member the document created, replaced or deleted.
fn document_events(set: &ResourcePath, changes: &[MemberChange]) -> Vec<Event> {
    changes
        .iter()
        .filter_map(|m| {
            let operation = match m.change {
                Change::Created => "create",
                Change::Replaced => "replace",
                Change::Deleted => "delete",
                Change::Unchanged => return None,
            };
            Some(Event::new(
                set,
                EventType::IntentWritten,
                serde_json::json!({ "resource": m.path, "operation": operation }),
            ))
        })
        .collect()
}

fn summarize(changes: Vec<MemberChange>) -> SetChanges {
    let count = |c: Change| changes.iter().filter(|m| m.change == c).count();
    SetChanges {
        created: count(Change::Created),
        replaced: count(Change::Replaced),
        deleted: count(Change::Deleted),
        unchanged: count(Change::Unchanged),
        changes,
    }
}
