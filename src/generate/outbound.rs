//! Outbound intents: external services reached directly or through the egress gateway.

use std::collections::BTreeSet;

use crate::domain::model::IntentSetModel;

use super::vips::VipNeed;

/// VIPs outbound intents need (TCP services on a shared port are ambiguous without one).
pub fn vip_needs(_model: &IntentSetModel) -> BTreeSet<VipNeed> {
    BTreeSet::new()
}
