//! Rendering a stored set. A render only reads the VIPs the writes stored (`super::vips`),
//! except a deploy's, which stores what is missing in its own transaction.

use uuid::Uuid;

use super::Service;
use super::context::{ModelIds, load_model};
use super::vips::{allocate, read_vips};
use crate::domain::model::{IntentSetModel, SetAddress};
use crate::domain::names::Name;
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::domain::violations::FieldError;
use crate::error::{Error, Result};
use crate::generate::binding::{Binding, BindingError};
use crate::generate::{self, Manifests, RenderError, Subject, VipTable};
use crate::store::{ROOT_ID, ResourceRow, Tx};

/// A rendered set, with the model it was rendered from.
pub struct RenderedSet {
    pub model: IntentSetModel,
    pub vips: VipTable,
    pub manifests: Manifests,
}

impl Service {
    /// Renders the set at `path` in a read-only transaction: no lock, no insert. `cluster` (the
    /// raw `?cluster=` value) is checked first: a cluster that does not exist is a 404 before
    /// anything is loaded. Returns the rendered set and the parsed cluster.
    pub async fn render(
        &self,
        path: &ResourcePath,
        cluster: Option<&str>,
    ) -> Result<(RenderedSet, Option<Name>)> {
        let (mut tx, model, ids, cluster) = self.read_model(path, cluster).await?;
        let plan = generate::SetPlan::new(&model);
        let vips = stored_vips(&mut tx, &plan, &ids, path).await?;
        tx.commit().await?;
        let manifests = generate::render_plan(&plan, &vips).map_err(|e| render_error(path, e))?;
        Ok((
            RenderedSet {
                model,
                vips,
                manifests,
            },
            cluster,
        ))
    }

    /// A client's binding, from the render's one plan of the set (read-only, like `render`).
    /// The set must render: a binding into a set that cannot be deployed would point nowhere.
    pub async fn binding(
        &self,
        set_path: &ResourcePath,
        intent: &Name,
        client: &Name,
        cluster: Option<&str>,
    ) -> Result<Binding> {
        let (mut tx, model, ids, cluster) = self.read_model(set_path, cluster).await?;
        let plan = generate::SetPlan::new(&model);
        let vips = stored_vips(&mut tx, &plan, &ids, set_path).await?;
        tx.commit().await?;
        generate::render_plan(&plan, &vips).map_err(|e| render_error(set_path, e))?;
        generate::binding::binding(&plan, &vips, intent, client, cluster.as_ref()).map_err(|e| {
            match e {
                BindingError::NotFound(message) => Error::NotFound(message),
                BindingError::Ambiguous(message) => Error::invalid_field("cluster", message),
                BindingError::Render(errors) => render_error(set_path, errors),
            }
        })
    }

    /// Opens a read-only transaction, checks `cluster` (the raw `?cluster=` value) first and
    /// loads the model of the set at `path`.
    async fn read_model(
        &self,
        path: &ResourcePath,
        cluster: Option<&str>,
    ) -> Result<(Tx, IntentSetModel, ModelIds, Option<Name>)> {
        let mut tx = self.store.begin_read().await?;
        let cluster = cluster_filter(&mut tx, cluster).await?;
        let address = set_address(path)?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let (set_id, composite_app_id) = set_ids(&rows)?;
        let (model, ids) = load_model(&mut tx, address, composite_app_id, set_id).await?;
        Ok((tx, model, ids, cluster))
    }

    /// Renders within a write transaction (a deploy): locks the set row, stores the VIPs the set
    /// needs, and renders; also returns the set's id.
    pub(crate) async fn render_in(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
    ) -> Result<(RenderedSet, Uuid)> {
        let address = set_address(path)?;
        let rows = self.resolve_path(tx, path).await?;
        let (set_id, composite_app_id) = set_ids(&rows)?;
        tx.lock(set_id).await?;
        let (model, ids) = load_model(tx, address, composite_app_id, set_id).await?;
        let plan = generate::SetPlan::new(&model);
        let needs = plan.vip_needs().map_err(|e| render_error(path, e))?;
        let vips = allocate(tx, &model, &ids, &needs)
            .await
            .map_err(|e| e.into_error(path))?;
        let manifests = generate::render_plan(&plan, &vips).map_err(|e| render_error(path, e))?;
        Ok((
            RenderedSet {
                model,
                vips,
                manifests,
            },
            set_id,
        ))
    }
}

/// The stored VIPs the planned set needs (read-only: a missing one is reported, not allocated).
async fn stored_vips(
    tx: &mut Tx,
    plan: &generate::SetPlan<'_>,
    ids: &ModelIds,
    path: &ResourcePath,
) -> Result<VipTable> {
    let needs = plan.vip_needs().map_err(|e| render_error(path, e))?;
    read_vips(tx, plan.model, ids, &needs)
        .await
        .map_err(|e| e.into_error(path))
}

fn set_address(path: &ResourcePath) -> Result<SetAddress> {
    SetAddress::from_path(path).ok_or_else(|| Error::internal("render", "not a set path"))
}

/// The set's and its composite app's ids from the resolved set path.
fn set_ids(rows: &[ResourceRow]) -> Result<(Uuid, Uuid)> {
    match rows {
        [_, composite_app, .., set] => Ok((set.id, composite_app.id)),
        _ => Err(Error::internal("render", "not a set path")),
    }
}

/// The cluster a `?cluster=` parameter names, which must exist.
async fn cluster_filter(tx: &mut Tx, raw: Option<&str>) -> Result<Option<Name>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let not_found = || Error::NotFound(format!("cluster \"{raw}\" does not exist"));
    let name: Name = raw.parse().map_err(|_| not_found())?;
    let key = Key {
        name: name.clone(),
        version: None,
    };
    tx.child(ROOT_ID, Kind::Cluster, &key)
        .await?
        .ok_or_else(not_found)?;
    Ok(Some(name))
}

/// A render error as a 422, with each field named `<resource URL>#<pointer>`.
pub fn render_error(set: &ResourcePath, errors: Vec<RenderError>) -> Error {
    let ca = set
        .ancestor(Kind::CompositeApp)
        .unwrap_or_else(ResourcePath::root);
    let url = |subject: &Subject| -> String {
        match subject {
            Subject::Cluster(n) => format!("/v2/clusters/{n}"),
            Subject::App(n) => format!("{}/apps/{n}", ca.url()),
            Subject::Inbound(n) => format!("{}/inbound-intents/{n}", set.url()),
            Subject::Client(i, c) => format!("{}/inbound-intents/{i}/clients/{c}", set.url()),
            Subject::Outbound(n) => format!("{}/outbound-intents/{n}", set.url()),
            Subject::Route(n) => format!("{}/route-intents/{n}", set.url()),
        }
    };
    let errors: Vec<FieldError> = errors
        .iter()
        .map(|e| {
            FieldError::new(
                format!("{}#{}", url(&e.subject), e.field),
                format!("{}: {}", e.subject, e.message),
            )
        })
        .collect();
    let mut error = Error::invalid(errors);
    if let Error::Invalid { detail, .. } = &mut error {
        *detail = format!("{set} cannot be rendered: {detail}");
    }
    error
}
