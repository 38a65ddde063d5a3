//! The generator: a pure function from a traffic intent set (with its apps, the clusters and the
//! VIP allocations) to the Istio objects each cluster needs. No I/O, no clock: the same input
//! gives byte-identical output. `docs/generation.md` maps every intent field to Istio fields.

pub mod binding;
pub mod cross_cluster;
pub mod edge;
pub mod egress_authz;
pub mod emit;
pub mod errors;
pub mod inbound;
pub mod naming;
pub mod outbound;
pub mod output;
pub mod plan;
pub mod policy;
pub mod routes;
pub mod topology;
pub mod vips;

pub use emit::{identity, sort_objects};
pub use errors::{RenderError, Subject};
pub use output::Manifests;
pub use plan::SetPlan;
pub use vips::{VipNeed, VipTable};

use crate::domain::model::IntentSetModel;

/// Renders a set into the sorted objects of each cluster, or every problem found.
pub fn render(model: &IntentSetModel, vips: &VipTable) -> Result<Manifests, Vec<RenderError>> {
    render_plan(&SetPlan::new(model), vips)
}

/// Every VIP the set's intents need (plans the set; `SetPlan::vip_needs` reuses a plan).
pub fn vip_needs(
    model: &IntentSetModel,
) -> Result<std::collections::BTreeSet<VipNeed>, Vec<RenderError>> {
    SetPlan::new(model).vip_needs()
}

/// `render` of a set already planned: each inbound intent's plan is used by every pass.
pub fn render_plan(plan: &SetPlan, vips: &VipTable) -> Result<Manifests, Vec<RenderError>> {
    let mut out = emit::Emitter::new(plan.model);
    out.errors.extend(plan.errors.iter().cloned());
    for inbound in plan.inbound.values() {
        inbound::destination_rules(inbound, &mut out);
        inbound::peer_authentication(inbound, &mut out);
        inbound::authorization_policies(inbound, &mut out);
        edge::external_access(inbound, &mut out);
        cross_cluster::cross_cluster(inbound, vips, &mut out);
    }
    outbound::emit(plan.model, vips, &mut out);
    routes::emit(plan, &mut out);
    out.finish()
}
