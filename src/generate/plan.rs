//! A set's inbound intents planned once per render (`topology::plan_inbound`), shared by the VIP
//! needs, every emit pass and the routes pass.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::model::IntentSetModel;
use crate::domain::names::Name;

use super::errors::RenderError;
use super::topology::{InboundPlan, Reach, plan_inbound};
use super::vips::VipNeed;

/// The plans of a set's inbound intents, and why the others could not be planned.
pub struct SetPlan<'m> {
    pub model: &'m IntentSetModel,
    /// Every inbound intent that could be planned, by name.
    pub inbound: BTreeMap<&'m Name, InboundPlan<'m>>,
    /// The problems of the ones that could not (the set does not render while there are any).
    pub errors: Vec<RenderError>,
}

impl<'m> SetPlan<'m> {
    pub fn new(model: &'m IntentSetModel) -> Self {
        let mut inbound = BTreeMap::new();
        let mut errors = Vec::new();
        for name in model.inbound.keys() {
            match plan_inbound(model, name) {
                Ok(plan) => {
                    inbound.insert(name, plan);
                }
                Err(e) => errors.extend(e),
            }
        }
        Self {
            model,
            inbound,
            errors,
        }
    }

    /// Every VIP the set's intents need, or the planning problems.
    pub fn vip_needs(&self) -> Result<BTreeSet<VipNeed>, Vec<RenderError>> {
        if !self.errors.is_empty() {
            return Err(self.errors.clone());
        }
        let mut out = BTreeSet::new();
        for (name, plan) in &self.inbound {
            let mut remote = false;
            for client in plan.clients.iter().filter(|c| c.reach != Reach::Local) {
                remote = true;
                for host in plan.all_hosts() {
                    out.insert(VipNeed {
                        cluster: client.site.name.clone(),
                        host: host.clone(),
                        intent: (*name).clone(),
                    });
                }
            }
            // Instance hosts of a headless service reached from elsewhere get ServiceEntries on
            // the server clusters too; TCP ServiceEntries need an address to be unambiguous.
            if remote {
                for server in &plan.servers {
                    for host in &plan.instance_hosts {
                        out.insert(VipNeed {
                            cluster: server.name.clone(),
                            host: host.clone(),
                            intent: (*name).clone(),
                        });
                    }
                }
            }
        }
        out.extend(super::outbound::vip_needs(self.model));
        Ok(out)
    }
}
