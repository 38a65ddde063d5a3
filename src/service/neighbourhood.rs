//! The part of a traffic intent set that a write to one member is checked against, loaded with
//! indexed look-ups: a write costs the same number of statements in a set of ten intents and in
//! one of ten thousand. Each loader returns the rows the member's rules (`domain::rules`) read,
//! as stored before the write; the caller applies the write and runs the rule.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::context::ModelBuilder;
use crate::domain::client::ClientSpec;
use crate::domain::inbound::InboundIntentSpec;
use crate::domain::model::SetAddress;
use crate::domain::names::Name;
use crate::domain::outbound::OutboundIntentSpec;
use crate::domain::resource::Kind;
use crate::domain::route::RouteIntentSpec;
use crate::error::Result;
use crate::store::{ResourceRow, Tx};

/// The reference field through which a route intent targets an inbound intent.
pub(crate) const ROUTE_TO_INBOUND: &str = "/spec/target/inboundIntent";
/// The reference field through which a route intent targets an outbound intent.
pub(crate) const ROUTE_TO_OUTBOUND: &str = "/spec/target/outboundIntent";

/// Where the written member lives: its set and the set's composite app (whose apps it names).
#[derive(Clone, Debug)]
pub(crate) struct SetSite {
    pub address: SetAddress,
    pub composite_app: Uuid,
    pub set: Uuid,
}

impl SetSite {
    fn builder(&self) -> ModelBuilder {
        ModelBuilder::new(self.address.clone())
    }

    /// Adds the apps of the composite app named in `names` (one statement).
    async fn apps<'a>(
        &self,
        tx: &mut Tx,
        builder: &mut ModelBuilder,
        names: impl IntoIterator<Item = &'a Name>,
    ) -> Result<()> {
        let names: BTreeSet<&str> = names.into_iter().map(Name::as_str).collect();
        let names: Vec<&str> = names.into_iter().collect();
        builder.apps(
            tx.children_named(self.composite_app, Kind::App, &names)
                .await?,
        )
    }
}

/// For an inbound intent: the intents of the set exposing the same Kubernetes Service (the
/// one-intent-per-service rule), its own clients and security intents and the route intents
/// targeting it (a change must keep them valid), and the apps all of these name.
pub(crate) async fn inbound(
    tx: &mut Tx,
    site: &SetSite,
    own: Option<Uuid>,
    spec: &InboundIntentSpec,
) -> Result<ModelBuilder> {
    let mut b = site.builder();
    if let Some(id) = own {
        b.members(tx.subtree(id).await?)?;
        b.members(tx.referring(id, ROUTE_TO_INBOUND).await?)?;
    }
    let same_service: Vec<ResourceRow> = tx
        .inbound_with_service(site.set, spec.service_name.as_str())
        .await?
        .into_iter()
        .filter(|row| Some(row.id) != own)
        .collect();
    b.members(same_service)?;
    let mut apps: Vec<Name> = vec![spec.app.clone()];
    for intent in b.model.inbound.values() {
        apps.push(intent.spec.app.clone());
        apps.extend(intent.clients.values().map(|c| c.spec.app.clone()));
    }
    site.apps(tx, &mut b, &apps).await?;
    Ok(b)
}

/// For a client (or what its inbound intent needs once a client is gone): the inbound intent
/// with all its clients (the VIPs it needs depend on where each client runs) and their apps.
pub(crate) async fn inbound_with_clients(
    tx: &mut Tx,
    site: &SetSite,
    inbound: Uuid,
    client: Option<&ClientSpec>,
) -> Result<ModelBuilder> {
    let mut b = site.builder();
    b.members(tx.subtree(inbound).await?)?;
    let mut apps: Vec<Name> = client.map(|c| c.app.clone()).into_iter().collect();
    for intent in b.model.inbound.values() {
        apps.push(intent.spec.app.clone());
        apps.extend(intent.clients.values().map(|c| c.spec.app.clone()));
    }
    site.apps(tx, &mut b, &apps).await?;
    Ok(b)
}

/// For a security intent: its inbound intent and client, already resolved along its path.
pub(crate) fn security_intent(
    site: &SetSite,
    inbound: &ResourceRow,
    client: &ResourceRow,
) -> Result<ModelBuilder> {
    let mut b = site.builder();
    b.members(vec![inbound.clone(), client.clone()])?;
    Ok(b)
}

/// For an outbound intent: the set's other outbound intents (one host belongs to one of them;
/// wildcards make this a comparison, not a key look-up), the route intents targeting it, and
/// the apps it names (every app of the composite app when it names none: then all use it).
pub(crate) async fn outbound(
    tx: &mut Tx,
    site: &SetSite,
    own: Option<Uuid>,
    spec: &OutboundIntentSpec,
) -> Result<ModelBuilder> {
    let mut b = site.builder();
    b.members(tx.children(site.set, Kind::OutboundIntent).await?)?;
    if let Some(id) = own {
        b.members(tx.referring(id, ROUTE_TO_OUTBOUND).await?)?;
    }
    if spec.clients.is_empty() {
        b.apps(tx.children(site.composite_app, Kind::App).await?)?;
    } else {
        site.apps(tx, &mut b, &spec.clients).await?;
    }
    Ok(b)
}

/// For a route intent: its target and the route intents on the same target (rules on one host
/// are merged, so they must not conflict).
pub(crate) async fn route(
    tx: &mut Tx,
    site: &SetSite,
    spec: &RouteIntentSpec,
) -> Result<ModelBuilder> {
    let mut b = site.builder();
    let targets = [
        (
            Kind::InboundIntent,
            &spec.target.inbound_intent,
            ROUTE_TO_INBOUND,
        ),
        (
            Kind::OutboundIntent,
            &spec.target.outbound_intent,
            ROUTE_TO_OUTBOUND,
        ),
    ];
    for (kind, target, field) in targets {
        let Some(target) = target else { continue };
        let rows = tx
            .children_named(site.set, kind, &[target.as_str()])
            .await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        b.members(rows)?;
        for id in ids {
            b.members(tx.referring(id, field).await?)?;
        }
    }
    Ok(b)
}
