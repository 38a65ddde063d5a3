//! Every golden scenario, applied through the API, renders the same manifests as offline; a
//! second apply changes nothing.

use meshintent::apply::{Outcome, apply};
use meshintent::domain::document::IntentDocument;

use crate::both_backends;
use crate::golden_files;
use crate::helpers::TestApp;

/// Returns whether the scenario could also check `--prune`.
async fn check_scenario(app: &TestApp, name: &str) -> bool {
    let document = IntentDocument::parse(&golden_files::read(name, "input.yaml")).unwrap();
    let client = app.api_client();
    let first = apply(&client, &document, false)
        .await
        .unwrap_or_else(|e| panic!("{name}: apply failed: {e}"));
    assert!(
        first.iter().all(|a| a.outcome == Outcome::Created),
        "{name}: {first:?}"
    );
    let set = &document.projects[0].composite_apps[0];
    let url = format!(
        "/v2/projects/{}/composite-apps/{}/{}/traffic-intent-sets/{}/manifests?format=yaml",
        document.projects[0].metadata.name,
        set.metadata.name,
        set.spec.version,
        set.traffic_intent_sets[0].metadata.name
    );
    let yaml = app.get(&url).await.expect(200).text;
    assert_eq!(
        yaml,
        golden_files::read(name, "expected.yaml"),
        "{name}: the API renders other manifests than offline"
    );
    let second = apply(&client, &document, false).await.unwrap();
    assert!(
        second.iter().all(|a| a.outcome == Outcome::Unchanged),
        "{name}: a second apply changed {second:?}"
    );
    // With --prune, a set member the document no longer mentions is deleted; without, kept.
    let mut smaller = document.clone();
    let sets = &mut smaller.projects[0].composite_apps[0].traffic_intent_sets[0];
    let untargeted = sets.inbound_intents.iter().position(|i| {
        sets.route_intents
            .iter()
            .all(|r| r.spec.target.inbound_intent.as_ref() != Some(&i.metadata.name))
    });
    if let Some(index) = untargeted {
        let dropped = sets.inbound_intents.remove(index);
        let kept = apply(&client, &smaller, false).await.unwrap();
        assert!(
            kept.iter().all(|a| a.outcome == Outcome::Unchanged),
            "{name}: {kept:?}"
        );
        let pruned = apply(&client, &smaller, true).await.unwrap();
        let deleted: Vec<&str> = pruned
            .iter()
            .filter(|a| a.outcome == Outcome::Deleted)
            .map(|a| a.path.as_str())
            .collect();
        assert!(
            deleted
                .iter()
                .any(|p| p.ends_with(&format!("/inbound-intents/{}", dropped.metadata.name))),
            "{name}: {deleted:?}"
        );
        let restored = apply(&client, &document, false).await.unwrap();
        assert!(
            restored.iter().any(|a| a.outcome == Outcome::Created),
            "{name}: {restored:?}"
        );
        return true;
    }
    false
}

both_backends!(
    every_golden_scenario_renders_the_same_through_the_api,
    |app| {
        let names = golden_files::scenarios();
        assert!(
            names.len() >= 13,
            "the golden scenarios are found: {names:?}"
        );
        let mut pruned = 0;
        for name in &names {
            // A fresh set of resources per scenario: scenarios reuse names.
            // (Registered under this test's name, so CI's count of PostgreSQL runs stays exact.)
            let test = format!(
                "{}::{}",
                module_path!(),
                if app.backend == crate::helpers::Backend::Postgres {
                    "postgres"
                } else {
                    "sqlite"
                }
            );
            let app = crate::helpers::spawn_app(app.backend, &test).await.unwrap();
            pruned += usize::from(check_scenario(&app, name).await);
        }
        assert!(pruned > 0, "some scenario exercises --prune");
    }
);
