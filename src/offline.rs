//! Rendering an intent document with no database and no network (`meshintent render`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::domain::document::{DocumentSet, IntentDocument};
use crate::domain::names::Name;
use crate::domain::violations::FieldError;
use crate::error::Error;
use crate::generate::output::{ManifestView, YamlPiece};
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
    // Each set holds what it needs; the document is not needed while rendering.
    drop(document);
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
        for (cluster, mut objects) in manifests {
            // The first set's objects are taken as they are, not moved one by one.
            let all = merged.entry(cluster).or_default();
            if all.is_empty() {
                std::mem::swap(all, &mut objects);
            } else {
                all.append(&mut objects);
            }
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

/// Objects per piece of YAML serialized at a time (about 1 MB of text).
const OBJECTS_PER_PIECE: usize = 1024;

/// Writes `view` as `generate::output::yaml` would give it, serializing pieces of it on every
/// CPU and writing them in order, so that the whole text is never held at once.
pub fn write_yaml(view: &ManifestView<'_>, out: &mut impl Write) -> std::io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces: Vec<YamlPiece> = generate::output::yaml_pieces(view, OBJECTS_PER_PIECE).collect();
    for batch in pieces.chunks(threads) {
        let texts: Vec<String> = match batch {
            [one] => vec![one.to_yaml()],
            _ => std::thread::scope(|scope| {
                let others: Vec<_> = batch[1..]
                    .iter()
                    .map(|piece| scope.spawn(move || piece.to_yaml()))
                    .collect();
                let mut texts = vec![batch[0].to_yaml()];
                texts.extend(
                    others
                        .into_iter()
                        .map(|t| t.join().expect("serializing an object does not panic")),
                );
                texts
            }),
        };
        for text in texts {
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// Writes `view` as `generate::output::json` of the list it stands for.
pub fn write_json(view: &ManifestView<'_>, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, view)?;
    out.write_all(b"\n")
}
