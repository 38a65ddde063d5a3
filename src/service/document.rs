//! A stored set as an intent document (SPEC section 5), ready for git and offline rendering.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::Service;
use super::context::load_model;
use super::crud::to_resource;
use crate::domain::document::{
    DocClient, DocCompositeApp, DocInboundIntent, DocIntentSet, DocProject, IntentDocument,
};
use crate::domain::envelopes::{
    App, Client, Cluster, CompositeApp, InboundIntent, OutboundIntent, Project, Resource,
    RouteIntent, SecurityIntent, StoredFacts, TrafficIntentSet,
};
use crate::domain::model::SetAddress;
use crate::domain::resource::{Kind, ResourcePath};
use crate::error::{Error, Result};
use crate::store::{ROOT_ID, ResourceRow};

/// A row as its envelope, without server-set metadata (a document is written by people).
fn plain<R: Resource>(row: &ResourceRow) -> Result<R> {
    let resource: R = to_resource(row, &StoredFacts::default())?;
    let (metadata, spec) = resource.into_parts();
    Ok(R::from_parts(
        metadata.writable(),
        spec,
        &StoredFacts::default(),
    ))
}

impl Service {
    /// The set at `path` with its project, composite app, apps and the clusters they run on.
    /// Kubeconfigs are never part of it.
    pub async fn export_document(&self, path: &ResourcePath) -> Result<IntentDocument> {
        let address = SetAddress::from_path(path)
            .ok_or_else(|| Error::internal("export", "not a set path"))?;
        let mut tx = self.store.begin_read().await?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let (project_row, ca_row, set_row) = (&rows[0], &rows[1], &rows[2]);
        let (model, _) = load_model(&mut tx, address, ca_row.id, set_row.id).await?;
        let placed: BTreeSet<&str> = model
            .apps
            .values()
            .flat_map(|app| model.app_clusters(app))
            .map(|n| n.as_str())
            .collect();
        let clusters = tx
            .children(ROOT_ID, Kind::Cluster)
            .await?
            .iter()
            .filter(|r| placed.contains(r.name.as_str()))
            .map(|r| {
                let mut cluster: Cluster = plain(r)?;
                cluster.status = None;
                Ok(cluster)
            })
            .collect::<Result<Vec<_>>>()?;
        let apps = tx
            .children(ca_row.id, Kind::App)
            .await?
            .iter()
            .map(plain::<App>)
            .collect::<Result<Vec<_>>>()?;
        let subtree = tx.subtree(set_row.id).await?;
        let children = |parent: Uuid, kind: Kind| -> Vec<&ResourceRow> {
            let mut rows: Vec<&ResourceRow> = subtree
                .iter()
                .filter(|r| r.parent_id == Some(parent) && r.kind == kind.code())
                .collect();
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            rows
        };
        let mut inbound_intents = Vec::new();
        for row in children(set_row.id, Kind::InboundIntent) {
            let inbound: InboundIntent = plain(row)?;
            let mut clients = Vec::new();
            for client_row in children(row.id, Kind::Client) {
                let client: Client = plain(client_row)?;
                let security_intents = children(client_row.id, Kind::SecurityIntent)
                    .into_iter()
                    .map(plain::<SecurityIntent>)
                    .collect::<Result<Vec<_>>>()?;
                clients.push(DocClient {
                    metadata: client.metadata,
                    spec: client.spec,
                    security_intents,
                });
            }
            inbound_intents.push(DocInboundIntent {
                metadata: inbound.metadata,
                spec: inbound.spec,
                clients,
            });
        }
        let outbound_intents = children(set_row.id, Kind::OutboundIntent)
            .into_iter()
            .map(plain::<OutboundIntent>)
            .collect::<Result<Vec<_>>>()?;
        let route_intents = children(set_row.id, Kind::RouteIntent)
            .into_iter()
            .map(plain::<RouteIntent>)
            .collect::<Result<Vec<_>>>()?;
        let project: Project = plain(project_row)?;
        let composite_app: CompositeApp = plain(ca_row)?;
        let set: TrafficIntentSet = plain(set_row)?;
        Ok(IntentDocument {
            clusters,
            projects: vec![DocProject {
                metadata: project.metadata,
                spec: project.spec,
                composite_apps: vec![DocCompositeApp {
                    metadata: composite_app.metadata,
                    spec: composite_app.spec,
                    apps,
                    traffic_intent_sets: vec![DocIntentSet {
                        metadata: set.metadata,
                        spec: set.spec,
                        inbound_intents,
                        outbound_intents,
                        route_intents,
                    }],
                }],
            }],
        })
    }
}
