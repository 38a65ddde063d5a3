//! Rendering an intent document with no database and no network (`meshintent render`).

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::document::{DocumentSet, IntentDocument};
use crate::domain::names::Name;
use crate::domain::violations::FieldError;
use crate::error::Error;
use crate::generate::{self, Manifests, RenderError, Subject};
use crate::input::DocumentLimits;

/// Parses, checks and renders every set of a document. VIPs are allocated from the document
/// alone, jointly for all its sets, so the same document always gives the same addresses.
pub fn render_document(text: &str) -> Result<Manifests, Error> {
    render_document_within(text, DocumentLimits::default())
}

/// `render_document` of a document read within `limits`.
pub fn render_document_within(text: &str, limits: DocumentLimits) -> Result<Manifests, Error> {
    let mut document = IntentDocument::parse_within(text, limits)?;
    let sets = document.resolve().map_err(Error::invalid)?;
    let cluster_pointers: BTreeMap<Name, String> = document
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (c.metadata.name.clone(), format!("/clusters/{i}")))
        .collect();
    let fail = |set: &DocumentSet, errors: Vec<RenderError>| {
        Error::invalid(
            errors
                .iter()
                .map(|e| {
                    FieldError::new(
                        format!(
                            "{}{}",
                            pointer_of(set, &cluster_pointers, &e.subject),
                            e.field
                        ),
                        format!("{}: {}", e.subject, e.message),
                    )
                })
                .collect(),
        )
    };

    // Each set is planned once: for its VIP needs and for its render.
    let plans: Vec<generate::SetPlan> = sets
        .iter()
        .map(|set| generate::SetPlan::new(&set.model))
        .collect();
    let mut needs = BTreeSet::new();
    for (set, plan) in sets.iter().zip(&plans) {
        needs.extend(plan.vip_needs().map_err(|e| fail(set, e))?);
    }
    let vips = match sets.first() {
        Some(first) => {
            generate::vips::allocate_offline(&first.model, &needs).map_err(|e| fail(first, e))?
        }
        None => Default::default(),
    };

    let mut merged: Manifests = BTreeMap::new();
    for (set, plan) in sets.iter().zip(&plans) {
        let manifests = generate::render_plan(plan, &vips).map_err(|e| fail(set, e))?;
        for (cluster, objects) in manifests {
            merged.entry(cluster).or_default().extend(objects);
        }
    }
    let mut errors = Vec::new();
    for (cluster, objects) in &mut merged {
        generate::sort_objects(objects);
        for pair in objects.windows(2) {
            if generate::identity(&pair[0]) == generate::identity(&pair[1]) {
                let (_, kind, namespace, name) = generate::identity(&pair[0]);
                errors.push(FieldError::new(
                    "/projects",
                    format!(
                        "two traffic intent sets produce {kind} {namespace}/{name} on cluster {cluster}; rename one of the intents"
                    ),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    Ok(merged)
}

fn pointer_of(set: &DocumentSet, clusters: &BTreeMap<Name, String>, subject: &Subject) -> String {
    let known = |map: &BTreeMap<Name, String>, name: &Name| {
        map.get(name)
            .cloned()
            .unwrap_or_else(|| set.pointer.clone())
    };
    match subject {
        Subject::Cluster(n) => known(clusters, n),
        Subject::App(n) => known(&set.app_pointers, n),
        Subject::Inbound(n) => known(&set.inbound_pointers, n),
        Subject::Client(i, c) => set
            .client_pointers
            .get(&(i.clone(), c.clone()))
            .cloned()
            .unwrap_or_else(|| known(&set.inbound_pointers, i)),
        Subject::Outbound(n) => known(&set.outbound_pointers, n),
        Subject::Route(n) => known(&set.route_pointers, n),
    }
}
