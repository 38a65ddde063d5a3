//! `meshintent apply --prune` and `--dry-run`, the real binary against a server: prune deletes
//! exactly what the file dropped within the projects and composite apps it names, deepest first,
//! and stops at a deployed set; a dry run changes nothing and lists what the apply after it does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::fake_kube::FakeKube;
use crate::golden_files;
use crate::helpers::{CA, SET, TestApp};
use meshintent::apply::{ApplyOptions, Outcome, apply, apply_with};
use meshintent::domain::document::IntentDocument;

const EXTRA: &str = "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/extra";

fn cluster(name: &str, address: &str, kubeconfig: Option<String>) -> Value {
    let mut spec = json!({"identity": format!("{name}.mesh.example.com"),
                          "istio": {"ingressGateway": {"address": address}}});
    if let Some(kubeconfig) = kubeconfig {
        spec["kubeconfig"] = json!(kubeconfig);
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

fn app_on(name: &str, namespace: &str, cluster: &str) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"namespace": namespace, "placement": {"clusters": [cluster]}}})
}

fn inbound(name: &str, port: u16, clients: Value) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"app": name, "serviceName": name, "port": port, "protocol": "HTTP"},
           "clients": clients})
}

fn client(app: &str) -> Value {
    json!({"metadata": {"name": app}, "spec": {"app": app}})
}

/// Project shop, composite app storefront v1 with five apps, set `default` (httpbin with
/// clients sleep, which has a security intent, and curl; reviews with client sleep) and set
/// `extra` (ratings with client curl).
fn shop(kubeconfigs: [Option<String>; 2]) -> Value {
    let [a, b] = kubeconfigs;
    let mut sleep = client("sleep");
    sleep["securityIntents"] = json!([{"metadata": {"name": "status"},
        "spec": {"rules": [{"methods": ["GET"], "paths": ["/status"]}]}}]);
    json!({
        "clusters": [cluster("cluster01", "198.51.100.10", a), cluster("cluster02", "198.51.100.20", b)],
        "projects": [{"metadata": {"name": "shop"}, "spec": {"namespaces": ["default"]}, "compositeApps": [{
            "metadata": {"name": "storefront"}, "spec": {"version": "v1"},
            "apps": [
                app_on("httpbin", "default", "cluster01"),
                app_on("reviews", "default", "cluster01"),
                app_on("ratings", "default", "cluster01"),
                app_on("sleep", "default", "cluster02"),
                app_on("curl", "default", "cluster02"),
            ],
            "trafficIntentSets": [
                {"metadata": {"name": "default"}, "inboundIntents": [
                    inbound("httpbin", 8000, json!([sleep, client("curl")])),
                    inbound("reviews", 9080, json!([client("sleep")])),
                ]},
                {"metadata": {"name": "extra"}, "inboundIntents": [
                    inbound("ratings", 9080, json!([client("curl")])),
                ]},
            ]
        }]}]
    })
}

/// Another project, not in the shop file: the same composite app, app and set names.
fn outlet() -> Value {
    json!({
        "clusters": [cluster("cluster01", "198.51.100.10", None), cluster("cluster02", "198.51.100.20", None)],
        "projects": [{"metadata": {"name": "outlet"}, "spec": {"namespaces": ["outlet"]}, "compositeApps": [{
            "metadata": {"name": "storefront"}, "spec": {"version": "v1"},
            "apps": [app_on("httpbin", "outlet", "cluster01"), app_on("sleep", "outlet", "cluster02")],
            "trafficIntentSets": [
                {"metadata": {"name": "default"}, "inboundIntents": [inbound("httpbin", 8000, json!([client("sleep")]))]},
                {"metadata": {"name": "extra"}, "inboundIntents": [inbound("sleep", 80, json!([client("httpbin")]))]},
            ]
        }]}]
    })
}

fn composite_app(document: &mut Value) -> &mut Value {
    &mut document["projects"][0]["compositeApps"][0]
}

/// A temporary directory for the test's files, removed at the end.
struct Files(PathBuf);

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("meshintent-prune-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, document: &Value) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(document).unwrap()).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(str::to_owned).collect()
    }

    #[track_caller]
    fn expect_ok(self) -> Run {
        assert!(self.ok, "apply failed:\n{}{}", self.stdout, self.stderr);
        self
    }
}

/// `meshintent apply -f FILE --server URL FLAGS...` with the admin token.
async fn cli(app: &TestApp, file: &Path, flags: &[&str]) -> Run {
    let (file, server, token) = (file.to_owned(), app.address.clone(), app.token.clone());
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_meshintent"))
            .env("MESHINTENT_TOKEN", token)
            .args(["apply", "-f"])
            .arg(&file)
            .args(["--server", &server])
            .args(&flags)
            .output()
            .unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// The lines a real apply prints for what a dry run planned.
fn done(planned: &[String]) -> Vec<String> {
    planned
        .iter()
        .map(|line| {
            let (verb, path) = line.split_once(' ').unwrap();
            let verb = match verb {
                "create" => "created",
                "replace" => "replaced",
                "unchanged" => "unchanged",
                "delete" => "deleted",
                other => panic!("a dry run printed \"{other}\": {line}"),
            };
            format!("{verb} {path}")
        })
        .collect()
}

/// Every resource of the tree (clusters, projects and everything below them) by URL, as its
/// collection lists it: revisions and timestamps included, so any write shows.
async fn tree(app: &TestApp) -> BTreeMap<String, Value> {
    fn below(collection: &str) -> &'static [&'static str] {
        match collection.rsplit('/').next().unwrap() {
            "projects" => &["composite-apps"],
            "composite-apps" => &["apps", "traffic-intent-sets"],
            "traffic-intent-sets" => &["inbound-intents", "outbound-intents", "route-intents"],
            "inbound-intents" => &["clients"],
            "clients" => &["security-intents"],
            _ => &[],
        }
    }
    let mut out = BTreeMap::new();
    let mut collections = vec!["/v2/clusters".to_owned(), "/v2/projects".to_owned()];
    while let Some(collection) = collections.pop() {
        let page = app
            .get(&format!("{collection}?limit=1000"))
            .await
            .expect(200)
            .body;
        assert!(page["nextPage"].is_null(), "one page: {page}");
        for item in page["items"].as_array().unwrap() {
            let mut url = format!(
                "{collection}/{}",
                item["metadata"]["name"].as_str().unwrap()
            );
            if collection.ends_with("/composite-apps") {
                url = format!("{url}/{}", item["spec"]["version"].as_str().unwrap());
            }
            for kind in below(&collection) {
                collections.push(format!("{url}/{kind}"));
            }
            out.insert(url, item.clone());
        }
    }
    out
}

/// `tree` without the resources at `deleted` and below them.
fn without(tree: &BTreeMap<String, Value>, deleted: &[&str]) -> BTreeMap<String, Value> {
    let mut tree = tree.clone();
    tree.retain(|url, _| {
        !deleted
            .iter()
            .any(|d| url == d || url.starts_with(&format!("{d}/")))
    });
    tree
}

both_backends!(
    apply_prune_removes_exactly_what_the_file_dropped_and_dry_run_changes_nothing,
    |app| {
        let files = Files::new();
        let full = files.write("shop.json", &shop([None, None]));
        let mut smaller = shop([None, None]);
        {
            let sets = &mut composite_app(&mut smaller)["trafficIntentSets"];
            // A client, an intent (with its client) and a whole set.
            sets[0]["inboundIntents"][0]["clients"]
                .as_array_mut()
                .unwrap()
                .remove(1);
            sets[0]["inboundIntents"].as_array_mut().unwrap().remove(1);
            sets.as_array_mut().unwrap().remove(1);
        }
        let smaller = files.write("smaller.json", &smaller);

        // On an empty server a dry run lists every resource as created and creates none; the
        // apply then does exactly that.
        let empty = tree(&app).await;
        let plan = cli(&app, &full, &["--dry-run", "--prune"])
            .await
            .expect_ok();
        let planned = plan.lines();
        assert_eq!(planned.len(), 2 + 1 + 1 + 5 + 7 + 3, "{planned:#?}");
        assert!(
            planned.iter().all(|l| l.starts_with("create ")),
            "{planned:#?}"
        );
        assert_eq!(tree(&app).await, empty, "a dry run writes nothing");
        let applied = cli(&app, &full, &["--prune"]).await.expect_ok();
        assert_eq!(applied.lines(), done(&planned));
        cli(&app, &files.write("outlet.json", &outlet()), &[])
            .await
            .expect_ok();
        let before = tree(&app).await;

        // Without --prune nothing is deleted: the members the file dropped are kept (and listed
        // unchanged, as the set's document write reports them), and the dropped set is not
        // mentioned.
        let plan = cli(&app, &smaller, &["--dry-run"]).await.expect_ok();
        let planned = plan.lines();
        assert!(
            planned.iter().all(|l| l.starts_with("unchanged ")),
            "{planned:#?}"
        );
        assert!(
            planned.contains(&format!(
                "unchanged {SET}/inbound-intents/httpbin/clients/curl"
            )),
            "{planned:#?}"
        );
        assert!(!plan.stdout.contains(EXTRA), "{planned:#?}");
        let applied = cli(&app, &smaller, &[]).await.expect_ok();
        assert_eq!(applied.lines(), done(&planned));
        assert_eq!(tree(&app).await, before);

        // A dry run with --prune lists exactly the dropped client, intent (with its client) and
        // set as deleted, everything else unchanged, in apply order, and changes nothing.
        let plan = cli(&app, &smaller, &["--dry-run", "--prune"])
            .await
            .expect_ok();
        let mut expected: Vec<String> = [
            "/v2/clusters/cluster01",
            "/v2/clusters/cluster02",
            "/v2/projects/shop",
            CA,
        ]
        .iter()
        .map(|p| format!("unchanged {p}"))
        .collect();
        for app in ["httpbin", "reviews", "ratings", "sleep", "curl"] {
            expected.push(format!("unchanged {CA}/apps/{app}"));
        }
        // The dropped set goes before the sets are written; the dropped members in their set's
        // write (after the members it keeps, in path order; a deleted intent's client too).
        expected.push(format!("delete {EXTRA}"));
        for member in [
            "",
            "/inbound-intents/httpbin",
            "/inbound-intents/httpbin/clients/sleep",
            "/inbound-intents/httpbin/clients/sleep/security-intents/status",
        ] {
            expected.push(format!("unchanged {SET}{member}"));
        }
        let members = [
            format!("{SET}/inbound-intents/httpbin/clients/curl"),
            format!("{SET}/inbound-intents/reviews"),
            format!("{SET}/inbound-intents/reviews/clients/sleep"),
        ];
        expected.extend(members.iter().map(|p| format!("delete {p}")));
        let doomed: Vec<String> = [EXTRA.to_owned()].into_iter().chain(members).collect();
        assert_eq!(plan.lines(), expected, "{}", plan.stderr);
        assert!(plan.stderr.is_empty(), "{}", plan.stderr);
        assert_eq!(tree(&app).await, before, "a dry run writes nothing");
        let again = cli(&app, &smaller, &["--dry-run", "--prune"])
            .await
            .expect_ok();
        assert_eq!(again.lines(), expected, "a dry run is deterministic");

        // --prune deletes exactly those: every other resource, here and in project outlet
        // (which has a composite app, apps and sets of the same names), keeps its revision.
        let applied = cli(&app, &smaller, &["--prune"]).await.expect_ok();
        assert_eq!(applied.lines(), done(&expected));
        let doomed: Vec<&str> = doomed.iter().map(String::as_str).collect();
        let after = tree(&app).await;
        assert_eq!(after, without(&before, &doomed));
        assert!(
            after.contains_key("/v2/projects/outlet/composite-apps/storefront/v1/traffic-intent-sets/extra")
                && after.contains_key("/v2/projects/outlet/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents/httpbin/clients/sleep"),
            "{after:#?}"
        );
        for path in &doomed {
            app.get(path).await.expect(404);
        }

        // Nothing is left to do.
        let plan = cli(&app, &smaller, &["--dry-run", "--prune"])
            .await
            .expect_ok();
        assert!(
            plan.lines().iter().all(|l| l.starts_with("unchanged ")),
            "{}",
            plan.stdout
        );
        assert_eq!(plan.lines().len(), expected.len() - doomed.len());
    }
);

/// Polls the set's status until `state`.
async fn wait_for(app: &TestApp, set: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.get(&format!("{set}/status")).await.expect(200).body;
        if status["state"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "never {state}: {status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(
    prune_deletes_sets_apps_and_composite_apps_deepest_first_and_stops_at_a_deployed_set,
    |app| {
        let a = FakeKube::start().await;
        let b = FakeKube::start().await;
        let files = Files::new();
        let kubeconfigs = || [Some(a.kubeconfig()), Some(b.kubeconfig())];
        let full = files.write("shop.json", &shop(kubeconfigs()));
        cli(&app, &full, &[]).await.expect_ok();
        // Another version of the composite app, which the file does not hold.
        let v2 = "/v2/projects/shop/composite-apps/storefront/v2";
        app.post(
            "/v2/projects/shop/composite-apps",
            json!({"metadata": {"name": "storefront"}, "spec": {"version": "v2"}}),
        )
        .await
        .expect(201);
        app.post(
            &format!("{v2}/apps"),
            app_on("httpbin", "default", "cluster01"),
        )
        .await
        .expect(201);
        app.post(
            &format!("{v2}/traffic-intent-sets"),
            json!({"metadata": {"name": "default"}}),
        )
        .await
        .expect(201);
        app.request(Method::POST, &format!("{EXTRA}/deploy"), None, &[])
            .await
            .expect(202);
        wait_for(&app, EXTRA, "Applied").await;

        // The file drops set extra and app ratings (only extra used it), changes an intent and
        // adds a client.
        let mut changed = shop(kubeconfigs());
        {
            let ca = composite_app(&mut changed);
            ca["apps"].as_array_mut().unwrap().remove(2);
            let sets = ca["trafficIntentSets"].as_array_mut().unwrap();
            sets.remove(1);
            sets[0]["inboundIntents"][0]["metadata"]["description"] = json!("httpbin, described");
            sets[0]["inboundIntents"][1]["clients"]
                .as_array_mut()
                .unwrap()
                .push(client("curl"));
        }
        let changed = files.write("changed.json", &changed);
        let before = tree(&app).await;
        let plan = cli(&app, &changed, &["--dry-run", "--prune"])
            .await
            .expect_ok();
        let planned = plan.lines();
        let changes: Vec<&String> = planned
            .iter()
            .filter(|l| !l.starts_with("unchanged "))
            .collect();
        // The set and the composite app version before the sets are written (nothing the file
        // holds refers to them), the app after (the sets' old members might have).
        let expected_changes = [
            format!("delete {EXTRA}"),
            format!("delete {v2}"),
            format!("replace {SET}/inbound-intents/httpbin"),
            format!("create {SET}/inbound-intents/reviews/clients/curl"),
            format!("delete {CA}/apps/ratings"),
        ];
        assert_eq!(
            changes,
            expected_changes.iter().collect::<Vec<_>>(),
            "{planned:#?}"
        );
        assert_eq!(planned.last(), Some(&format!("delete {CA}/apps/ratings")));
        assert!(
            planned.contains(&"unchanged /v2/clusters/cluster01".to_owned()),
            "a stored kubeconfig is taken to be the same: {planned:#?}"
        );
        assert!(
            plan.stderr.contains(&format!("note: {EXTRA} is deployed"))
                && plan.stderr.contains(&format!("POST {EXTRA}/terminate")),
            "{}",
            plan.stderr
        );
        assert_eq!(tree(&app).await, before, "a dry run writes nothing");

        // The apply does everything up to the deployed set, then stops, saying why, what it did
        // not write and what it did not delete, and exits non-zero. It terminates nothing.
        let refused = cli(&app, &changed, &["--prune"]).await;
        assert!(!refused.ok, "{}{}", refused.stdout, refused.stderr);
        let stop = planned
            .iter()
            .position(|l| *l == format!("delete {EXTRA}"))
            .unwrap();
        assert_eq!(refused.lines(), done(&planned[..stop]));
        for expected in [
            format!("--prune stopped at {EXTRA}: "),
            "deployed on clusters".to_owned(),
            "terminate".to_owned(),
            format!("not written: {SET}\n"),
            format!("not deleted: {v2}\n"),
            format!("not deleted: {CA}/apps/ratings\n"),
        ] {
            assert!(refused.stderr.contains(&expected), "{}", refused.stderr);
        }
        for path in [EXTRA, &format!("{CA}/apps/ratings"), v2] {
            app.get(path).await.expect(200);
        }
        assert_eq!(
            tree(&app).await,
            before,
            "nothing was written before the refusal"
        );
        assert_eq!(
            app.get(&format!("{EXTRA}/status")).await.body["state"],
            "Applied"
        );

        // Once the set is terminated, the same apply finishes the job.
        app.request(Method::POST, &format!("{EXTRA}/terminate"), None, &[])
            .await
            .expect(202);
        wait_for(&app, EXTRA, "Terminated").await;
        let before = tree(&app).await;
        let plan = cli(&app, &changed, &["--dry-run", "--prune"])
            .await
            .expect_ok();
        let planned = plan.lines();
        let changes: Vec<&String> = planned
            .iter()
            .filter(|l| !l.starts_with("unchanged "))
            .collect();
        assert_eq!(changes, expected_changes.iter().collect::<Vec<_>>());
        assert!(plan.stderr.is_empty(), "{}", plan.stderr);
        let applied = cli(&app, &changed, &["--prune"]).await.expect_ok();
        assert_eq!(applied.lines(), done(&planned));
        let (ratings, httpbin, curl) = (
            format!("{CA}/apps/ratings"),
            format!("{SET}/inbound-intents/httpbin"),
            format!("{SET}/inbound-intents/reviews/clients/curl"),
        );
        let mut after = tree(&app).await;
        assert_eq!(
            after.remove(&httpbin).unwrap()["metadata"]["description"],
            "httpbin, described"
        );
        assert!(after.remove(&curl).is_some());
        let mut expected = without(&before, &[EXTRA, &ratings, v2]);
        expected.remove(&httpbin);
        assert_eq!(after, expected);
    }
);

/// Applies `document` for real or as a dry run; the paths and outcomes.
async fn outcomes(
    app: &TestApp,
    document: &IntentDocument,
    prune: bool,
    dry_run: bool,
) -> Vec<(String, Outcome)> {
    let report = apply_with(
        &app.api_client(),
        document,
        ApplyOptions { prune, dry_run },
        &mut |_| {},
    )
    .await
    .unwrap();
    report
        .applied
        .into_iter()
        .map(|a| (a.path, a.outcome))
        .collect()
}

/// The golden scenario `name`, with its first set and every intent of it described anew and the last route intent
/// (else outbound intent, else security intent, else client) of its first set dropped; and
/// whether there was one to drop.
fn variant(name: &str) -> (IntentDocument, bool) {
    let text = golden_files::read(name, "input.yaml");
    let document = IntentDocument::parse(&text).unwrap();
    let mut value = serde_json::to_value(&document).unwrap();
    let set = &mut value["projects"][0]["compositeApps"][0]["trafficIntentSets"][0];
    set["metadata"]["description"] = json!("the set, described");
    for list in ["inboundIntents", "outboundIntents", "routeIntents"] {
        for intent in set[list].as_array_mut().into_iter().flatten() {
            intent["metadata"]["description"] = json!(format!("{list}, described"));
        }
    }
    let last = |v: &mut Value| {
        v.as_array_mut()
            .filter(|a| !a.is_empty())
            .map(|a| a.len() - 1)
    };
    let mut dropped = true;
    if let Some(i) = last(&mut set["routeIntents"]) {
        set["routeIntents"].as_array_mut().unwrap().remove(i);
    } else if let Some(i) = last(&mut set["outboundIntents"]) {
        set["outboundIntents"].as_array_mut().unwrap().remove(i);
    } else if let Some(inbound) = set["inboundIntents"]
        .as_array_mut()
        .and_then(|a| a.first_mut())
        && let Some(i) = last(&mut inbound["clients"])
    {
        let client = &mut inbound["clients"][i];
        match last(&mut client["securityIntents"]) {
            Some(s) => {
                client["securityIntents"].as_array_mut().unwrap().remove(s);
            }
            None => {
                inbound["clients"].as_array_mut().unwrap().remove(i);
            }
        }
    } else {
        dropped = false;
    }
    (IntentDocument::parse(&value.to_string()).unwrap(), dropped)
}

both_backends!(
    a_dry_run_lists_what_the_apply_after_it_does_for_every_golden_scenario,
    |app| {
        let names = golden_files::scenarios();
        assert!(names.len() >= 13, "{names:?}");
        for name in &names {
            // A fresh server per scenario: scenarios reuse names. (Registered under this test's
            // name, so CI's count of PostgreSQL runs stays exact.)
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
            let document = IntentDocument::parse(&golden_files::read(name, "input.yaml")).unwrap();
            let planned = outcomes(&app, &document, true, true).await;
            assert_eq!(
                outcomes(&app, &document, true, false).await,
                planned,
                "{name}"
            );
            // What the server stores compares equal to the document, field by field.
            let again = outcomes(&app, &document, true, true).await;
            assert!(
                again.iter().all(|(_, o)| *o == Outcome::Unchanged),
                "{name}: {again:#?}"
            );
            assert_eq!(again.len(), planned.len(), "{name}");
            // Changed and smaller: without prune (the dropped member kept), then with.
            let (changed, dropped) = variant(name);
            for prune in [false, true] {
                let planned = outcomes(&app, &changed, prune, true).await;
                let has = |outcome| planned.iter().any(|(_, o)| *o == outcome);
                assert!(
                    if prune {
                        has(Outcome::Deleted) || !dropped
                    } else {
                        has(Outcome::Replaced) && !has(Outcome::Deleted)
                    },
                    "{name} (prune {prune}): {planned:#?}"
                );
                assert_eq!(
                    outcomes(&app, &changed, prune, false).await,
                    planned,
                    "{name} (prune {prune})"
                );
                let again = outcomes(&app, &changed, prune, true).await;
                assert!(
                    again.iter().all(|(_, o)| *o == Outcome::Unchanged),
                    "{name} (prune {prune}): {again:#?}"
                );
            }
            // `apply` is `apply_with` without a dry run.
            let restored = apply(&app.api_client(), &document, true).await.unwrap();
            assert!(
                restored.iter().any(|a| a.outcome == Outcome::Replaced),
                "{name}: {restored:?}"
            );
        }
    }
);

both_backends!(
    an_intent_name_given_to_another_kind_is_listed_as_the_server_reports_it,
    |app| {
        let parse = |v: &Value| IntentDocument::parse(&v.to_string()).unwrap();
        let original = shop([None, None]);
        apply(&app.api_client(), &parse(&original), false)
            .await
            .unwrap();
        // Inbound intent reviews (with client sleep) becomes an outbound intent reviews.
        let mut changed = original.clone();
        let set = &mut composite_app(&mut changed)["trafficIntentSets"][0];
        set["inboundIntents"].as_array_mut().unwrap().remove(1);
        set["outboundIntents"] = json!([{
            "metadata": {"name": "reviews"},
            "spec": {
                "hosts": ["api.reviews.example.com"],
                "ports": [{"number": 80, "name": "http", "protocol": "HTTP"},
                          {"number": 443, "name": "https", "protocol": "HTTPS"}],
                "resolution": "DNS", "egressGateway": false,
                "tls": {"mode": "ORIGINATE_SIMPLE", "subjectAltNames": ["api.reviews.example.com"]},
                "clients": ["sleep"]
            }
        }]);
        let changed = parse(&changed);
        // Even without --prune the old intent goes (its client with it, unlisted), as
        // `PUT .../document` does it; the dry run says so, and the apply does it.
        let planned = outcomes(&app, &changed, false, true).await;
        let changes: Vec<&(String, Outcome)> = planned
            .iter()
            .filter(|(_, o)| *o != Outcome::Unchanged)
            .collect();
        assert_eq!(
            changes,
            [
                &(format!("{SET}/outbound-intents/reviews"), Outcome::Created),
                &(format!("{SET}/inbound-intents/reviews"), Outcome::Deleted),
            ],
            "{planned:#?}"
        );
        assert_eq!(outcomes(&app, &changed, false, false).await, planned);
        app.get(&format!("{SET}/inbound-intents/reviews/clients/sleep"))
            .await
            .expect(404);
        app.get(&format!("{SET}/outbound-intents/reviews"))
            .await
            .expect(200);
    }
);

both_backends!(
    a_renamed_set_or_a_new_composite_app_version_takes_over_its_mesh_names_in_one_apply,
    |app| {
        let parse = |v: &Value| IntentDocument::parse(&v.to_string()).unwrap();
        let client = app.api_client();
        apply(&client, &parse(&shop([None, None])), false)
            .await
            .unwrap();
        let v2 = "/v2/projects/shop/composite-apps/storefront/v2";
        let mut moved = shop([None, None]);
        composite_app(&mut moved)["spec"]["version"] = json!("v2");
        let moved = parse(&moved);

        // Without --prune the old version keeps its hosts, so the new one's intents are refused.
        let err = apply(&client, &moved, false).await.unwrap_err();
        assert!(
            matches!(&err, meshintent::apply::ApplyError::Api { status: 409, detail, .. }
                if detail.contains("already claimed")),
            "{err}"
        );

        // With --prune the old version goes before the new one's sets are written.
        let planned = outcomes(&app, &moved, true, true).await;
        let old = planned
            .iter()
            .position(|p| *p == (CA.to_owned(), Outcome::Deleted))
            .expect("the old version is deleted");
        let first_set = planned
            .iter()
            .position(|(p, _)| p.starts_with(&format!("{v2}/traffic-intent-sets/")))
            .unwrap();
        assert!(old < first_set, "{planned:#?}");
        assert_eq!(outcomes(&app, &moved, true, false).await, planned);
        app.get(CA).await.expect(404);
        app.get(&format!(
            "{v2}/traffic-intent-sets/extra/inbound-intents/ratings"
        ))
        .await
        .expect(200);

        // Renaming a set: the old one goes first.
        let mut renamed = serde_json::to_value(&moved).unwrap();
        composite_app(&mut renamed)["trafficIntentSets"][1]["metadata"]["name"] = json!("ratings");
        let renamed = parse(&renamed);
        let planned = outcomes(&app, &renamed, true, true).await;
        let changes: Vec<&(String, Outcome)> = planned
            .iter()
            .filter(|(_, o)| *o != Outcome::Unchanged)
            .collect();
        let sets = format!("{v2}/traffic-intent-sets");
        assert_eq!(
            changes,
            [
                &(format!("{sets}/extra"), Outcome::Deleted),
                &(format!("{sets}/ratings"), Outcome::Created),
                &(
                    format!("{sets}/ratings/inbound-intents/ratings"),
                    Outcome::Created
                ),
                &(
                    format!("{sets}/ratings/inbound-intents/ratings/clients/curl"),
                    Outcome::Created
                ),
            ]
        );
        assert_eq!(outcomes(&app, &renamed, true, false).await, planned);

        // An intent moved between two sets that both stay: refused while the set receiving it
        // is written first, done when the set giving it is.
        let mut value = serde_json::to_value(&renamed).unwrap();
        let sets_value = composite_app(&mut value)["trafficIntentSets"]
            .as_array_mut()
            .unwrap();
        let ratings_intent = sets_value[1]["inboundIntents"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        sets_value[0]["inboundIntents"]
            .as_array_mut()
            .unwrap()
            .push(ratings_intent);
        let receiving_first = parse(&value);
        let err = apply(&client, &receiving_first, true).await.unwrap_err();
        assert!(
            matches!(&err, meshintent::apply::ApplyError::Api { status: 409, .. }),
            "{err}"
        );
        composite_app(&mut value)["trafficIntentSets"]
            .as_array_mut()
            .unwrap()
            .swap(0, 1);
        let giving_first = parse(&value);
        let planned = outcomes(&app, &giving_first, true, true).await;
        assert_eq!(outcomes(&app, &giving_first, true, false).await, planned);
        app.get(&format!("{sets}/default/inbound-intents/ratings"))
            .await
            .expect(200);
        app.get(&format!("{sets}/ratings/inbound-intents/ratings"))
            .await
            .expect(404);
    }
);
