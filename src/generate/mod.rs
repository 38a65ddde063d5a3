//! The generator: a pure function from a traffic intent set (with its apps, the clusters and the
//! VIP allocations) to the Istio objects each cluster needs. No I/O, no clock: the same input
//! gives byte-identical output. `docs/generation.md` maps every intent field to Istio fields.

pub mod binding;
pub mod cross_cluster;
pub mod edge;
pub mod emit;
pub mod errors;
pub mod inbound;
pub mod naming;
pub mod outbound;
pub mod output;
pub mod policy;
pub mod routes;
pub mod topology;
pub mod vips;

pub use emit::{identity, sort_objects};
pub use errors::{RenderError, Subject};
pub use output::Manifests;
pub use vips::{VipNeed, VipTable};

use crate::domain::model::IntentSetModel;

/// Renders a set into the sorted objects of each cluster, or every problem found.
pub fn render(model: &IntentSetModel, vips: &VipTable) -> Result<Manifests, Vec<RenderError>> {
    let mut out = emit::Emitter::new(model);
    for name in model.inbound.keys() {
        let plan = match topology::plan_inbound(model, name) {
            Ok(plan) => plan,
            Err(errors) => {
                out.errors.extend(errors);
                continue;
            }
        };
        inbound::destination_rules(&plan, &mut out);
        inbound::peer_authentication(&plan, &mut out);
        inbound::authorization_policies(&plan, &mut out);
        edge::external_access(&plan, &mut out);
        cross_cluster::cross_cluster(&plan, vips, &mut out);
    }
    outbound::emit(model, vips, &mut out);
    routes::emit(model, &mut out);
    out.finish()
}
