//! Access control through real HTTP: the role x action table cell by cell, hidden projects,
//! list filtering, tokens, tenancy, the audit log and the request limits.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{CA, SET, TestApp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Reader,
    Owner,
    Editor,
    Viewer,
    /// Authenticated, with a role in another project only.
    Other,
}

use Who::*;

const EVERYONE: &[Who] = &[Admin, Reader, Owner, Editor, Viewer, Other];
const READERS_OF_SHOP: &[Who] = &[Admin, Reader, Owner, Editor, Viewer];
const WRITERS_OF_SHOP: &[Who] = &[Admin, Owner, Editor];
const ADMINS_OF_SHOP: &[Who] = &[Admin, Owner];
const ADMIN: &[Who] = &[Admin];

fn tag(who: Who) -> String {
    format!("{who:?}").to_lowercase()
}

/// The tokens of every column: the admin token, a global reader token, shop's owner, editor
/// and viewer tokens, and the owner token of another project.
struct Callers {
    tokens: Vec<(Who, String)>,
}

impl Callers {
    async fn create(app: &TestApp) -> Callers {
        app.post(
            "/v2/projects",
            json!({"metadata": {"name": "other"}, "spec": {"namespaces": ["other-ns"]}}),
        )
        .await
        .expect(201);
        let mut tokens = vec![(Admin, app.token.clone())];
        let reader = app
            .create_token(
                "/v2/tokens",
                json!({"metadata": {"name": "reader"}, "spec": {"roles": ["reader"]}}),
            )
            .await;
        tokens.push((Reader, reader));
        for (who, role) in [(Owner, "owner"), (Editor, "editor"), (Viewer, "viewer")] {
            let secret = app
                .create_token(
                    "/v2/projects/shop/tokens",
                    json!({"metadata": {"name": role}, "spec": {"role": role}}),
                )
                .await;
            tokens.push((who, secret));
        }
        let other = app
            .create_token(
                "/v2/projects/other/tokens",
                json!({"metadata": {"name": "owner"}, "spec": {"role": "owner"}}),
            )
            .await;
        tokens.push((Other, other));
        Callers { tokens }
    }

    fn of(&self, who: Who) -> &str {
        &self.tokens.iter().find(|(w, _)| *w == who).unwrap().1
    }
}

/// One row of the role table: a request (per caller, so that writes do not collide), who may
/// make it, the status it then gets, and who is refused with 404 because the project is
/// hidden from them (the other refusals are 403).
struct Row {
    what: &'static str,
    method: Method,
    path: fn(Who) -> String,
    body: Option<fn(Who) -> Value>,
    allowed: &'static [Who],
    ok: u16,
    /// Callers refused with 404: the action is on a project they cannot read.
    hidden: &'static [Who],
}

fn rows() -> Vec<Row> {
    let cluster = |who: Who| json!({"metadata": {"name": format!("c-{}", tag(who))}, "spec": {"identity": format!("{}.example.com", tag(who))}});
    vec![
        Row {
            what: "list clusters",
            method: Method::GET,
            path: |_| "/v2/clusters".into(),
            body: None,
            allowed: EVERYONE,
            ok: 200,
            hidden: &[],
        },
        Row {
            what: "get a cluster",
            method: Method::GET,
            path: |_| "/v2/clusters/cluster01".into(),
            body: None,
            allowed: EVERYONE,
            ok: 200,
            hidden: &[],
        },
        Row {
            what: "create a cluster",
            method: Method::POST,
            path: |_| "/v2/clusters".into(),
            body: Some(cluster),
            allowed: ADMIN,
            ok: 201,
            hidden: &[],
        },
        Row {
            what: "replace a cluster",
            method: Method::PUT,
            path: |w| format!("/v2/clusters/c-{}", tag(w)),
            body: Some(cluster),
            allowed: ADMIN,
            ok: 200,
            hidden: &[],
        },
        Row {
            what: "delete a cluster",
            method: Method::DELETE,
            path: |w| format!("/v2/clusters/c-{}", tag(w)),
            body: None,
            allowed: ADMIN,
            ok: 204,
            hidden: &[],
        },
        Row {
            what: "list projects",
            method: Method::GET,
            path: |_| "/v2/projects".into(),
            body: None,
            allowed: EVERYONE,
            ok: 200,
            hidden: &[],
        },
        Row {
            what: "create a project",
            method: Method::POST,
            path: |_| "/v2/projects".into(),
            body: Some(|w| json!({"metadata": {"name": format!("p-{}", tag(w))}})),
            allowed: ADMIN,
            ok: 201,
            hidden: &[],
        },
        Row {
            what: "delete a project",
            method: Method::DELETE,
            path: |w| format!("/v2/projects/p-{}", tag(w)),
            body: None,
            allowed: ADMIN,
            ok: 204,
            hidden: &[Owner, Editor, Viewer, Other],
        },
        Row {
            what: "replace a project's metadata",
            method: Method::PUT,
            path: |_| "/v2/projects/shop".into(),
            body: Some(
                |w| json!({"metadata": {"name": "shop", "description": format!("by {}", tag(w))}, "spec": {"namespaces": ["default"]}}),
            ),
            allowed: ADMINS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "change a project's namespaces",
            method: Method::PUT,
            path: |_| "/v2/projects/shop".into(),
            body: Some(
                |w| json!({"metadata": {"name": "shop"}, "spec": {"namespaces": ["default", format!("ns-{}", tag(w))]}}),
            ),
            allowed: ADMIN,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "get a project",
            method: Method::GET,
            path: |_| "/v2/projects/shop".into(),
            body: None,
            allowed: READERS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "list apps",
            method: Method::GET,
            path: |_| format!("{CA}/apps"),
            body: None,
            allowed: READERS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "get manifests",
            method: Method::GET,
            path: |_| format!("{SET}/manifests"),
            body: None,
            allowed: READERS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "list deployments",
            method: Method::GET,
            path: |_| format!("{SET}/deployments"),
            body: None,
            allowed: READERS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "create a set",
            method: Method::POST,
            path: |_| format!("{CA}/traffic-intent-sets"),
            body: Some(|w| json!({"metadata": {"name": format!("s-{}", tag(w))}})),
            allowed: WRITERS_OF_SHOP,
            ok: 201,
            hidden: &[Other],
        },
        Row {
            what: "replace a set",
            method: Method::PUT,
            path: |w| format!("{CA}/traffic-intent-sets/s-{}", tag(w)),
            body: Some(
                |w| json!({"metadata": {"name": format!("s-{}", tag(w)), "description": "x"}}),
            ),
            allowed: WRITERS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "delete a set",
            method: Method::DELETE,
            path: |w| format!("{CA}/traffic-intent-sets/s-{}", tag(w)),
            body: None,
            allowed: WRITERS_OF_SHOP,
            ok: 204,
            hidden: &[Other],
        },
        Row {
            what: "deploy",
            method: Method::POST,
            path: |_| format!("{SET}/deploy"),
            body: None,
            allowed: WRITERS_OF_SHOP,
            ok: 202,
            hidden: &[Other],
        },
        Row {
            what: "terminate",
            method: Method::POST,
            path: |_| format!("{SET}/terminate"),
            body: None,
            allowed: WRITERS_OF_SHOP,
            ok: 202,
            hidden: &[Other],
        },
        Row {
            what: "create a project role binding",
            method: Method::POST,
            path: |_| "/v2/projects/shop/role-bindings".into(),
            body: Some(
                |w| json!({"metadata": {"name": format!("rb-{}", tag(w))}, "spec": {"subject": {"kind": "User", "name": tag(w)}, "role": "viewer"}}),
            ),
            allowed: ADMINS_OF_SHOP,
            ok: 201,
            hidden: &[Other],
        },
        Row {
            what: "list project role bindings",
            method: Method::GET,
            path: |_| "/v2/projects/shop/role-bindings".into(),
            body: None,
            allowed: ADMINS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "delete a project role binding",
            method: Method::DELETE,
            path: |w| format!("/v2/projects/shop/role-bindings/rb-{}", tag(w)),
            body: None,
            allowed: ADMINS_OF_SHOP,
            ok: 204,
            hidden: &[Other],
        },
        Row {
            what: "create a project token",
            method: Method::POST,
            path: |_| "/v2/projects/shop/tokens".into(),
            body: Some(
                |w| json!({"metadata": {"name": format!("t-{}", tag(w))}, "spec": {"role": "viewer"}}),
            ),
            allowed: ADMINS_OF_SHOP,
            ok: 201,
            hidden: &[Other],
        },
        Row {
            what: "list project tokens",
            method: Method::GET,
            path: |_| "/v2/projects/shop/tokens".into(),
            body: None,
            allowed: ADMINS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "revoke a project token",
            method: Method::DELETE,
            path: |w| format!("/v2/projects/shop/tokens/t-{}", tag(w)),
            body: None,
            allowed: ADMINS_OF_SHOP,
            ok: 204,
            hidden: &[Other],
        },
        Row {
            what: "read the project's audit events",
            method: Method::GET,
            path: |_| "/v2/projects/shop/audit-events".into(),
            body: None,
            allowed: ADMINS_OF_SHOP,
            ok: 200,
            hidden: &[Other],
        },
        Row {
            what: "create a global role binding",
            method: Method::POST,
            path: |_| "/v2/role-bindings".into(),
            body: Some(
                |w| json!({"metadata": {"name": format!("g-{}", tag(w))}, "spec": {"subject": {"kind": "Group", "name": tag(w)}, "role": "reader"}}),
            ),
            allowed: ADMIN,
            ok: 201,
            hidden: &[],
        },
        Row {
            what: "list global role bindings",
            method: Method::GET,
            path: |_| "/v2/role-bindings".into(),
            body: None,
            allowed: ADMIN,
            ok: 200,
            hidden: &[],
        },
        Row {
            what: "create a global token",
            method: Method::POST,
            path: |_| "/v2/tokens".into(),
            body: Some(
                |w| json!({"metadata": {"name": format!("gt-{}", tag(w))}, "spec": {"roles": ["reader"]}}),
            ),
            allowed: ADMIN,
            ok: 201,
            hidden: &[],
        },
        Row {
            what: "list global tokens",
            method: Method::GET,
            path: |_| "/v2/tokens".into(),
            body: None,
            allowed: ADMIN,
            ok: 200,
            hidden: &[],
        },
        Row {
            what: "read every audit event",
            method: Method::GET,
            path: |_| "/v2/audit-events".into(),
            body: None,
            allowed: &[Admin, Reader],
            ok: 200,
            hidden: &[],
        },
        Row {
            what: "adapt credentials",
            method: Method::POST,
            path: |_| "/v2/adapt-credentials".into(),
            body: Some(
                |_| json!({"credentials": {"host": "a", "port": 1}, "endpoint_mappings": [{"source": {"host": "a", "port": 1}, "target": {"host": "b", "port": 2}}]}),
            ),
            allowed: EVERYONE,
            ok: 200,
            hidden: &[],
        },
    ]
}

both_backends!(every_cell_of_the_role_table, |app| {
    app.seed_storefront().await;
    let callers = Callers::create(&app).await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in rows() {
        for &who in EVERYONE {
            let body = row.body.map(|b| b(who));
            let reply = app
                .request_as(
                    Some(callers.of(who)),
                    row.method.clone(),
                    &(row.path)(who),
                    body.as_ref(),
                )
                .await;
            let allowed = row.allowed.contains(&who);
            let expected = match (allowed, row.hidden.contains(&who)) {
                (true, _) => row.ok,
                (false, true) => 404,
                (false, false) => 403,
            };
            cells += 1;
            if reply.status.as_u16() != expected {
                failures.push(format!(
                    "{} as {who:?}: expected {expected}, got {} {}",
                    row.what, reply.status, reply.body
                ));
            } else if !allowed {
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/problem+json")
                );
            }
        }
    }
    assert!(cells >= 180, "{cells} cells");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
});

both_backends!(
    refusals_name_the_role_and_hidden_projects_look_missing,
    |app| {
        app.seed_storefront().await;
        let callers = Callers::create(&app).await;
        // A readable project the caller may not change: 403 naming the roles that would do.
        let refused = app
            .request_as(
                Some(callers.of(Viewer)),
                Method::POST,
                &format!("{CA}/traffic-intent-sets"),
                Some(&json!({"metadata": {"name": "x"}})),
            )
            .await
            .expect(403);
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("role owner or editor in project \"shop\"") && detail.contains("admin"),
            "{detail}"
        );
        // An unreadable project is answered exactly like one that does not exist.
        let hidden = app
            .request_as(
                Some(callers.of(Other)),
                Method::GET,
                "/v2/projects/shop",
                None,
            )
            .await
            .expect(404);
        let missing = app.get("/v2/projects/ghost").await.expect(404);
        assert_eq!(
            hidden.body["detail"],
            json!(
                missing.body["detail"]
                    .as_str()
                    .unwrap()
                    .replace("ghost", "shop")
            )
        );
        assert_eq!(hidden.body["type"], missing.body["type"]);
        assert_eq!(hidden.body["title"], missing.body["title"]);
        // The same for anything below it, and for a project that really does not exist.
        let deep = app
            .request_as(
                Some(callers.of(Other)),
                Method::GET,
                &format!("{SET}/manifests"),
                None,
            )
            .await
            .expect(404);
        assert_eq!(deep.body["detail"], hidden.body["detail"]);
        app.request_as(
            Some(callers.of(Other)),
            Method::GET,
            "/v2/projects/ghost",
            None,
        )
        .await
        .expect(404);
    }
);

both_backends!(lists_hold_only_what_the_caller_may_read, |app| {
    app.seed_storefront().await;
    let callers = Callers::create(&app).await;
    let names = |reply: crate::helpers::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |who| app.request_as(Some(callers.of(who)), Method::GET, "/v2/projects", None);
    assert_eq!(names(list(Admin).await.expect(200)), ["other", "shop"]);
    assert_eq!(names(list(Reader).await.expect(200)), ["other", "shop"]);
    assert_eq!(names(list(Viewer).await.expect(200)), ["shop"]);
    assert_eq!(names(list(Other).await.expect(200)), ["other"]);
});

both_backends!(
    a_token_is_shown_once_and_refused_once_revoked_or_expired,
    |app| {
        let created = app
            .post(
                "/v2/tokens",
                json!({"metadata": {"name": "ci"}, "spec": {"roles": ["reader"]}}),
            )
            .await
            .expect(201);
        let secret = created.body["status"]["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(secret.starts_with("mi_") && secret.len() == 46, "{secret}");
        assert!(
            created.body["metadata"]["createdBy"]
                .as_str()
                .unwrap()
                .starts_with("token:")
        );
        // Never again: not on GET, not in lists, not in the audit log.
        let fetched = app.get("/v2/tokens/ci").await.expect(200);
        assert!(!fetched.text.contains(&secret), "{}", fetched.text);
        assert!(fetched.body["status"].get("secret").is_none());
        let listed = app.get("/v2/tokens").await.expect(200);
        assert!(!listed.text.contains(&secret));
        assert!(
            !app.get("/v2/audit-events")
                .await
                .expect(200)
                .text
                .contains(&secret)
        );
        // It works, and its use is recorded.
        app.request_as(Some(&secret), Method::GET, "/v2/projects", None)
            .await
            .expect(200);
        let used = app.get("/v2/tokens/ci").await.expect(200);
        assert!(
            used.body["status"]["lastUsedAt"].is_string(),
            "{}",
            used.body
        );
        // Tokens cannot be edited, only revoked.
        app.put(
            "/v2/tokens/ci",
            json!({"metadata": {"name": "ci"}, "spec": {"roles": ["admin"]}}),
        )
        .await
        .expect(405);
        app.delete("/v2/tokens/ci").await.expect(204);
        let revoked = app
            .request_as(Some(&secret), Method::GET, "/v2/projects", None)
            .await
            .expect(401);
        assert_eq!(
            revoked.header("www-authenticate"),
            Some(r#"Bearer realm="meshintent", error="invalid_token""#)
        );
        assert!(!revoked.text.contains(&secret));

        // An expiry in the past is refused; one that passes ends the token.
        app.post(
        "/v2/tokens",
        json!({"metadata": {"name": "old"}, "spec": {"roles": ["reader"], "expiresAt": "2020-01-01T00:00:00Z"}}),
    )
    .await
    .expect_problem(422, "/spec/expiresAt");
        let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
        let short = app.create_token("/v2/tokens", json!({"metadata": {"name": "short"}, "spec": {"roles": ["reader"], "expiresAt": soon}})).await;
        app.request_as(Some(&short), Method::GET, "/v2/clusters", None)
            .await
            .expect(200);
        tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
        app.request_as(Some(&short), Method::GET, "/v2/clusters", None)
            .await
            .expect(401);
        // A made-up token of the right shape, and garbage, are refused the same way.
        let made_up = format!("mi_{}", "A".repeat(43));
        app.request_as(Some(&made_up), Method::GET, "/v2/clusters", None)
            .await
            .expect(401);
        app.request_as(Some("not-a-token"), Method::GET, "/v2/clusters", None)
            .await
            .expect(401);
    }
);

both_backends!(a_project_token_grants_one_role_in_its_project_only, |app| {
    app.seed_storefront().await;
    let callers = Callers::create(&app).await;
    // Its actor names the project; it cannot reach the global access endpoints.
    let set = app
        .request_as(
            Some(callers.of(Editor)),
            Method::POST,
            &format!("{CA}/traffic-intent-sets"),
            Some(&json!({"metadata": {"name": "by-editor"}})),
        )
        .await
        .expect(201);
    assert_eq!(set.body["metadata"]["createdBy"], "token:shop/editor");
    assert_eq!(set.body["metadata"]["updatedBy"], "token:shop/editor");
    app.request_as(Some(callers.of(Owner)), Method::GET, "/v2/tokens", None)
        .await
        .expect(403);
    // A global token may hold roles in named projects; the project cannot be deleted
    // under it.
    let scoped = app.create_token("/v2/tokens", json!({"metadata": {"name": "shop-viewer"}, "spec": {"roles": [{"project": "shop", "role": "viewer"}]}})).await;
    app.request_as(Some(&scoped), Method::GET, "/v2/projects/shop", None)
        .await
        .expect(200);
    app.request_as(Some(&scoped), Method::GET, "/v2/projects/other", None)
        .await
        .expect(404);
    app.post(
        "/v2/tokens",
        json!({"metadata": {"name": "nowhere"}, "spec": {"roles": [{"project": "ghost", "role": "viewer"}]}}),
    )
    .await
    .expect_problem(422, "/spec/roles/0/project");
});

both_backends!(
    a_project_cannot_write_into_another_projects_namespace,
    |app| {
        app.seed_storefront().await;
        // The tenant escape: a project placing an app into a namespace shop owns.
        app.post(
            "/v2/projects",
            json!({"metadata": {"name": "intruder"}, "spec": {"namespaces": ["intruder"]}}),
        )
        .await
        .expect(201);
        app.post(
            "/v2/projects/intruder/composite-apps",
            json!({"metadata": {"name": "x"}, "spec": {"version": "v1"}}),
        )
        .await
        .expect(201);
        let refused = app
        .post(
            "/v2/projects/intruder/composite-apps/x/v1/apps",
            json!({"metadata": {"name": "reviews"}, "spec": {"namespace": "default", "placement": {"clusters": ["cluster01"]}}}),
        )
        .await
        .expect_problem(422, "/spec/namespace");
        assert!(refused.message("/spec/namespace").contains("intruder"));
        // Nor can it claim that namespace: 409 naming the owner.
        let claim = app
        .put(
            "/v2/projects/intruder",
            json!({"metadata": {"name": "intruder"}, "spec": {"namespaces": ["intruder", "default"]}}),
        )
        .await
        .expect(409);
        assert!(
            claim.body["detail"].as_str().unwrap().contains("\"shop\""),
            "{}",
            claim.body
        );
        // Gateway namespaces belong to no project, in either direction.
        app.put(
            "/v2/projects/intruder",
            json!({"metadata": {"name": "intruder"}, "spec": {"namespaces": ["istio-system"]}}),
        )
        .await
        .expect_problem(422, "/spec/namespaces/0");
        app.post(
            "/v2/clusters",
            json!({"metadata": {"name": "sneaky"}, "spec": {"identity": "sneaky.example.com",
               "istio": {"egressGateway": {"namespace": "intruder"}}}}),
        )
        .await
        .expect_problem(422, "/spec/istio/egressGateway/namespace");
        // An owner may not move its own project into new namespaces either.
        let owner = app
            .create_token(
                "/v2/projects/intruder/tokens",
                json!({"metadata": {"name": "owner"}, "spec": {"role": "owner"}}),
            )
            .await;
        app.request_as(
        Some(&owner),
        Method::PUT,
        "/v2/projects/intruder",
        Some(&json!({"metadata": {"name": "intruder"}, "spec": {"namespaces": ["intruder", "free"]}})),
    )
    .await
    .expect(403);
        // A namespace is free again once its project lets go of it.
        app.put(
            "/v2/projects/intruder",
            json!({"metadata": {"name": "intruder"}, "spec": {"namespaces": ["free"]}}),
        )
        .await
        .expect(200);
        app.post(
            "/v2/projects",
            json!({"metadata": {"name": "newcomer"}, "spec": {"namespaces": ["intruder"]}}),
        )
        .await
        .expect(201);
    }
);

both_backends!(
    two_projects_claiming_one_namespace_at_once_one_wins,
    |app| {
        for round in 0..5 {
            let claim = |name: String| {
                app.post(
                "/v2/projects",
                json!({"metadata": {"name": name}, "spec": {"namespaces": [format!("contested-{round}")]}}),
            )
            };
            let (a, b) = tokio::join!(claim(format!("a{round}")), claim(format!("b{round}")));
            let mut statuses = [a.status.as_u16(), b.status.as_u16()];
            statuses.sort();
            assert_eq!(
                statuses,
                [201, 409],
                "round {round}: {} / {}",
                a.body,
                b.body
            );
            let (winner, loser) = if a.status == 201 { (&a, &b) } else { (&b, &a) };
            let winner_name = winner.body["metadata"]["name"].as_str().unwrap();
            assert!(
                loser.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"{winner_name}\"")),
                "{}",
                loser.body
            );
        }
    }
);

both_backends!(every_change_is_audited_and_refusals_too, |app| {
    app.seed_storefront().await;
    let kubeconfig = crate::secrets::kubeconfig("https://10.0.0.9:6443");
    app.put(
        "/v2/clusters/cluster01",
        json!({"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com",
               "istio": {"ingressGateway": {"address": "198.51.100.10"}}, "kubeconfig": kubeconfig}}),
    )
    .await
    .expect(200);
    app.post(
        "/v2/projects/shop/role-bindings",
        json!({"metadata": {"name": "alice"}, "spec": {"subject": {"kind": "User", "name": "alice"}, "role": "editor"}}),
    )
    .await
    .expect(201);
    let deployer = app
        .create_token(
            "/v2/projects/shop/tokens",
            json!({"metadata": {"name": "deployer"}, "spec": {"role": "editor"}}),
        )
        .await;
    let deploy = app
        .request(
            Method::POST,
            &format!("{SET}/deploy"),
            None,
            &[
                ("authorization", &format!("Bearer {deployer}")),
                ("x-request-id", "deploy-42"),
            ],
        )
        .await
        .expect(202);
    assert_eq!(deploy.header("x-request-id"), Some("deploy-42"));
    app.post(&format!("{SET}/terminate"), json!({})).await;
    app.delete("/v2/projects/shop/tokens/deployer")
        .await
        .expect(204);
    app.delete("/v2/projects/shop/role-bindings/alice")
        .await
        .expect(204);
    app.post(
        &format!("{CA}/traffic-intent-sets"),
        json!({"metadata": {"name": "gone"}}),
    )
    .await
    .expect(201);
    app.delete(&format!("{CA}/traffic-intent-sets/gone"))
        .await
        .expect(204);
    // A failed write leaves no trace as a change.
    app.post(
        "/v2/clusters",
        json!({"metadata": {"name": "bad"}, "spec": {}}),
    )
    .await
    .expect(400);
    // Refusals: no credential (401), a reader writing (403).
    app.request_as(None, Method::DELETE, "/v2/clusters/cluster01", None)
        .await
        .expect(401);
    let reader = app
        .create_token(
            "/v2/tokens",
            json!({"metadata": {"name": "auditor"}, "spec": {"roles": ["reader"]}}),
        )
        .await;
    app.request_as(
        Some(&reader),
        Method::DELETE,
        "/v2/clusters/cluster01",
        None,
    )
    .await
    .expect(403);

    let events = app.get("/v2/audit-events?limit=1000").await.expect(200);
    let items = events.body["items"].as_array().unwrap();
    let find = |action: &str, resource: &str| {
        items
            .iter()
            .find(|e| e["action"] == action && e["resource"] == resource)
            .unwrap_or_else(|| panic!("no {action} event for {resource}: {:#}", events.body))
    };
    let created = find("create", "/v2/clusters/cluster01");
    assert_eq!(created["status"], 201);
    assert_eq!(created["revisionAfter"], 1);
    assert!(created["actor"].as_str().unwrap().starts_with("token:"));
    let replaced = find("replace", "/v2/clusters/cluster01");
    assert_eq!(
        (
            replaced["revisionBefore"].clone(),
            replaced["revisionAfter"].clone()
        ),
        (json!(1), json!(2))
    );
    find("kubeconfig.replace", "/v2/clusters/cluster01");
    find("create", "/v2/projects/shop");
    find("create", SET);
    find(
        "role-binding.create",
        "/v2/projects/shop/role-bindings/alice",
    );
    find("token.create", "/v2/projects/shop/tokens/deployer");
    find("token.revoke", "/v2/projects/shop/tokens/deployer");
    find(
        "role-binding.delete",
        "/v2/projects/shop/role-bindings/alice",
    );
    let deleted = find("delete", &format!("{CA}/traffic-intent-sets/gone"));
    assert_eq!(
        (
            deleted["revisionBefore"].clone(),
            deleted["revisionAfter"].clone(),
            deleted["status"].clone()
        ),
        (json!(1), Value::Null, json!(204))
    );
    let deployed = find("deploy", SET);
    assert_eq!(deployed["actor"], "token:shop/deployer");
    assert_eq!(deployed["requestId"], "deploy-42");
    assert_eq!(deployed["project"], "shop");
    find("terminate", SET);
    assert!(
        !items.iter().any(|e| e["resource"] == "/v2/clusters/bad"),
        "a failed write was audited"
    );
    let denied: Vec<&Value> = items.iter().filter(|e| e["action"] == "denied").collect();
    assert!(
        denied
            .iter()
            .any(|e| e["status"] == 401 && e["actor"] == "anonymous")
    );
    assert!(
        denied
            .iter()
            .any(|e| e["status"] == 403 && e["actor"] == "token:auditor")
    );
    // Events never hold a secret.
    for secret in [
        &deployer,
        &reader,
        &app.token,
        &crate::secrets::TOKEN.to_owned(),
    ] {
        assert!(!events.text.contains(secret.as_str()));
    }
    // Filters and paging.
    let by_deployer = app
        .get("/v2/audit-events?actor=token:shop/deployer")
        .await
        .expect(200);
    assert!(
        by_deployer.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "token:shop/deployer")
    );
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(&format!("/v2/audit-events?limit=3&after={after}"))
            .await
            .expect(200);
        for e in page.body["items"].as_array().unwrap() {
            seen.push(e["id"].as_i64().unwrap());
        }
        match page.body["nextAfter"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let all: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all);
    let since = items[0]["time"].as_str().unwrap();
    let until = app
        .get(&format!("/v2/audit-events?until={}", urlencode(since)))
        .await
        .expect(200);
    assert!(until.body["items"].as_array().unwrap().is_empty());
    // The project's own log holds only its events.
    let shop = app.get("/v2/projects/shop/audit-events").await.expect(200);
    assert!(
        shop.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["project"] == "shop")
    );
});

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

both_backends!(no_v2_endpoint_answers_without_a_credential, |app| {
    let api = meshintent::api::openapi();
    let mut checked = 0;
    for (template, item) in &api.paths.paths {
        if !template.starts_with("/v2/") {
            continue;
        }
        let path: String = template
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
        ] {
            if op.is_none() {
                continue;
            }
            let reply = app.request_as(None, method.clone(), &path, None).await;
            assert_eq!(reply.status, 401, "{method} {path}: {}", reply.body);
            assert_eq!(
                reply.header("www-authenticate"),
                Some(r#"Bearer realm="meshintent""#)
            );
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
            assert!(reply.header("x-request-id").is_some());
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
    // Unknown /v2 paths too: nothing is learned without a credential.
    app.request_as(None, Method::GET, "/v2/nothing-here", None)
        .await
        .expect(401);
    // The open endpoints stay open.
    for open in ["/healthz", "/readyz", "/api-docs/openapi.json", "/metrics"] {
        app.request_as(None, Method::GET, open, None)
            .await
            .expect(200);
    }
});

both_backends!(bodies_are_limited_in_size_and_depth, |app| {
    let big = "x".repeat(2 * 1024 * 1024);
    let reply = app
        .post(
            "/v2/clusters",
            json!({"metadata": {"name": "big", "description": big}, "spec": {"identity": "a.example.com"}}),
        )
        .await
        .expect(413);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let reply = app
        .raw(Method::POST, "/v2/clusters", "application/json", &deep)
        .await
        .expect(400);
    assert!(
        reply.body["detail"].as_str().unwrap().contains("64"),
        "{}",
        reply.body
    );
});

both_backends!(failed_authentication_is_rate_limited_per_address, |app| {
    let fresh = app
        .create_token(
            "/v2/tokens",
            json!({"metadata": {"name": "fresh"}, "spec": {"roles": ["reader"]}}),
        )
        .await;
    // Validated now (after the token write, which empties the cache), so cached.
    app.get("/v2/clusters").await.expect(200);
    let warmed = std::time::Instant::now();
    let mut last = 0;
    for _ in 0..25 {
        last = app
            .request_as(Some("mi_wrong"), Method::GET, "/v2/clusters", None)
            .await
            .status
            .as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "25 failures in a row are not refused");
    let limited = app
        .request_as(Some("mi_wrong"), Method::GET, "/v2/clusters", None)
        .await
        .expect(429);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // A credential validated moments ago still works from that address (others behind the
    // same proxy are not locked out) ...
    let admin = app.get("/v2/clusters").await;
    if warmed.elapsed() < std::time::Duration::from_millis(1500) {
        assert_eq!(admin.status, 200, "{}", admin.body);
    }
    // ... but nothing new is checked for it until the minute is over, valid or not.
    app.request_as(Some(&fresh), Method::GET, "/v2/clusters", None)
        .await
        .expect(429);
});

both_backends!(
    the_bootstrap_token_is_created_once_and_stays_revoked,
    |app| {
        // A second admin, then the bootstrap token revoked.
        let second = app
            .create_token(
                "/v2/tokens",
                json!({"metadata": {"name": "second-admin"}, "spec": {"roles": ["admin"]}}),
            )
            .await;
        let tokens = app.get("/v2/tokens").await.expect(200);
        let bootstrap = tokens.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["metadata"]["name"].as_str().unwrap().to_owned())
            .find(|n| n.starts_with("bootstrap-"))
            .expect("the bootstrap token is listed");
        app.request_as(
            Some(&second),
            Method::DELETE,
            &format!("/v2/tokens/{bootstrap}"),
            None,
        )
        .await
        .expect(204);
        // A restart with the same MESHINTENT_BOOTSTRAP_TOKEN does not bring it back.
        let restarted = app.another().await;
        restarted
            .request_as(Some(&app.token), Method::GET, "/v2/clusters", None)
            .await
            .expect(401);
        restarted
            .request_as(Some(&second), Method::GET, "/v2/clusters", None)
            .await
            .expect(200);
    }
);

both_backends!(
    the_served_document_declares_bearer_security_on_every_v2_operation,
    |app| {
        let doc = app
            .request_as(None, Method::GET, "/api-docs/openapi.json", None)
            .await
            .expect(200)
            .body;
        let scheme = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !path.starts_with("/v2/") {
                    assert!(op.get("security").is_none(), "{method} {path} is open");
                    continue;
                }
                operations += 1;
                assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
                // 403 where the policy refuses someone who may see the resource: every write
                // but the open credential adapter (reads answer 404 to those who may not see).
                let refusable = method != "get" && op["operationId"] != "credentials_adapt";
                for status in ["401", "403", "429"] {
                    if status == "403" && !refusable {
                        continue;
                    }
                    assert!(
                        op["responses"][status]["content"]["application/problem+json"].is_object(),
                        "{method} {path} does not document {status}"
                    );
                }
                if op.get("requestBody").is_some() {
                    assert!(op["responses"]["413"].is_object(), "{method} {path}: 413");
                }
            }
        }
        assert!(operations > 60);
    }
);

both_backends!(
    a_revoked_token_is_refused_by_every_replica_within_5_seconds,
    |app| {
        let other_replica = app.another().await;
        let created = app
            .post(
                "/v2/tokens",
                json!({"metadata": {"name": "short-lived"}, "spec": {"roles": ["reader"]}}),
            )
            .await
            .expect(201);
        let secret = created.body["status"]["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        // The other replica has it cached now.
        other_replica
            .request_as(Some(&secret), Method::GET, "/v2/clusters", None)
            .await
            .expect(200);
        app.delete("/v2/tokens/short-lived").await.expect(204);
        let revoked = std::time::Instant::now();
        loop {
            let status = other_replica
                .request_as(Some(&secret), Method::GET, "/v2/clusters", None)
                .await
                .status;
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(
                revoked.elapsed() < std::time::Duration::from_secs(5),
                "still accepted 5 s after revocation"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
);

mod two_replicas_starting_together_share_one_bootstrap_token {
    use crate::helpers::{self, DatabaseLocation};
    use meshintent::configuration::SecretKeySource;
    use meshintent::crypto::SecretBox;

    /// PostgreSQL only: replicas share a database there (SQLite is one process's file).
    #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let test = concat!(module_path!(), "::postgres");
        let Some(base) = helpers::postgres_url() else {
            eprintln!("{test}: PostgreSQL run skipped (set MESHINTENT_TEST_POSTGRES to enable)");
            return;
        };
        helpers::record_postgres_run(test);
        let location = DatabaseLocation::Postgres(helpers::fresh_postgres_schema(&base).await);
        let key = SecretKeySource::Value(SecretBox::generate_key());
        let token = helpers::new_token_secret();
        let settings = helpers::test_settings(&location, &key, false, Some(token.clone()));
        let ((a, running_a), (b, running_b)) = tokio::join!(
            helpers::start_with(&settings),
            helpers::start_with(&settings)
        );
        let client = reqwest::Client::new();
        for address in [&a, &b] {
            let reply = client
                .get(format!("{address}/v2/tokens"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 200);
            let body: serde_json::Value = reply.json().await.unwrap();
            assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
        }
        running_a.kill().await;
        running_b.kill().await;
    }
}

mod metrics_can_have_a_listener_of_its_own {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = crate::helpers::spawn_app_configured(
            crate::helpers::Backend::Sqlite,
            concat!(module_path!(), "::sqlite"),
            false,
            |settings, _| settings.metrics_listen = Some("127.0.0.1:0".into()),
        )
        .await
        .unwrap();
        let moved = app
            .request_as(None, Method::GET, "/metrics", None)
            .await
            .expect(404);
        assert!(
            moved.body["detail"]
                .as_str()
                .unwrap()
                .contains("MESHINTENT_METRICS_LISTEN")
        );
        let port = app.metrics_port().expect("a metrics port");
        let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
        assert!(
            metrics
                .text()
                .await
                .unwrap()
                .contains("meshintent_queue_depth")
        );
        // Nothing else is served there.
        let other = reqwest::get(format!("http://127.0.0.1:{port}/v2/clusters"))
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
    }
}

both_backends!(
    the_audit_trail_of_one_resource_and_what_is_below_it,
    |app| {
        app.seed_storefront().await;
        app.add_httpbin_with_sleep_client().await;
        let set = urlencoding(SET);
        let trail = app
            .get(&format!("/v2/projects/shop/audit-events?resource={set}"))
            .await
            .expect(200);
        let resources: Vec<&str> = trail.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"].as_str().unwrap())
            .collect();
        assert!(resources.contains(&SET), "{resources:?}");
        assert!(
            resources
                .iter()
                .any(|r| r.ends_with("/inbound-intents/httpbin/clients/sleep")),
            "{resources:?}"
        );
        assert!(
            resources
                .iter()
                .all(|r| *r == SET || r.starts_with(&format!("{SET}/"))),
            "only the set and what is below it: {resources:?}"
        );
        // A sibling whose name starts the same is not below it.
        let prefix = urlencoding(&SET[..SET.len() - 1]);
        let none = app
            .get(&format!("/v2/audit-events?resource={prefix}"))
            .await
            .expect(200);
        assert_eq!(none.body["items"], serde_json::json!([]));
    }
);

fn urlencoding(path: &str) -> String {
    path.replace('/', "%2F")
}
