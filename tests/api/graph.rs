//! SPEC section 9 through the API: the access query on a stored set (allow and deny with the
//! deciding rule, 422 naming the parameter, refusals) and the who-may-call-whom graph (JSON and
//! SVG, deterministic).

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{SET, TestApp};

fn access(query: &str) -> String {
    format!("{SET}/access?{query}")
}

/// httpbin (cluster01) with client sleep (cluster02, mode direct) that may GET /status, and a
/// DENY intent refusing it DELETE.
async fn seed(app: &TestApp) {
    app.seed_storefront().await;
    app.add_httpbin_with_sleep_client().await;
    app.add_status_rule().await;
    app.post(
        &format!("{SET}/inbound-intents/httpbin/clients/sleep/security-intents"),
        json!({"metadata": {"name": "no-deletes"},
               "spec": {"action": "DENY", "rules": [{"methods": ["DELETE"]}]}}),
    )
    .await
    .expect(201);
}

fn rule(answer: &Value) -> &Value {
    &answer["decidedBy"]["decision"]["rule"]
}

both_backends!(
    access_answers_allow_and_deny_with_the_deciding_rule,
    |app| {
        seed(&app).await;
        let intent = format!("{SET}/inbound-intents/httpbin");
        let allowed = app
            .get(&access("from=sleep&to=httpbin&method=GET&path=/status"))
            .await
            .expect(200)
            .body;
        assert_eq!(allowed["decision"], "allow", "{allowed:#}");
        assert_eq!(allowed["reach"], "direct");
        assert_eq!(
            allowed["from"]["principal"],
            "cluster.local/ns/default/sa/sleep"
        );
        assert_eq!(allowed["decidedBy"]["cluster"], "cluster01");
        assert_eq!(allowed["decidedBy"]["decision"]["reason"], "allowMatched");
        assert_eq!(
            rule(&allowed),
            &json!({"policy": "httpbin-allow", "namespace": "default", "action": "ALLOW",
                    "ruleIndex": 0, "intent": intent})
        );
        assert_eq!(
            allowed["request"],
            json!({"method": "GET", "path": "/status", "port": 8000})
        );

        // Not in the rule: no ALLOW rule matches while an ALLOW policy selects httpbin.
        let other_path = app
            .get(&access("from=sleep&to=httpbin&method=GET&path=/headers"))
            .await
            .expect(200)
            .body;
        assert_eq!(other_path["decision"], "deny");
        assert_eq!(
            other_path["decidedBy"]["decision"]["reason"],
            "noAllowMatched"
        );
        assert_eq!(
            other_path["decidedBy"]["decision"]["allowPolicies"][0]["policy"],
            "httpbin-allow"
        );

        // The DENY intent's own policy decides before any ALLOW.
        let deleted = app
            .get(&access(
                "from=sleep@cluster02&to=httpbin@cluster01&method=DELETE&path=/status",
            ))
            .await
            .expect(200)
            .body;
        assert_eq!(deleted["decision"], "deny");
        assert_eq!(deleted["decidedBy"]["decision"]["reason"], "denyMatched");
        assert_eq!(rule(&deleted)["policy"], "httpbin-deny");
        assert_eq!(rule(&deleted)["action"], "DENY");
        assert_eq!(rule(&deleted)["ruleIndex"], 0);
        assert_eq!(rule(&deleted)["intent"], json!(intent));

        // An app that is no client of the intent is denied.
        let stranger = app
            .get(&access("from=httpbin&to=httpbin&path=/status"))
            .await
            .expect(200)
            .body;
        assert_eq!(stranger["decision"], "deny");
        assert_eq!(stranger["reach"], "local");

        // A second ask gives the same answer (read-only, nothing stored).
        assert_eq!(
            app.get(&access("from=sleep&to=httpbin&method=GET&path=/status"))
                .await
                .expect(200)
                .body,
            allowed
        );
    }
);

both_backends!(access_names_the_parameter_it_cannot_answer, |app| {
    seed(&app).await;
    for (query, field) in [
        ("from=nobody&to=httpbin", "from"),
        ("from=sleep&to=nothing", "to"),
        ("to=httpbin", "from"),
        ("from=sleep", "to"),
        ("from=sleep@cluster01&to=httpbin", "from"),
        ("from=sleep&to=httpbin@cluster02", "to"),
        ("from=sleep&to=httpbin&method=get", "method"),
        ("from=sleep&to=httpbin&path=status", "path"),
        ("from=sleep&to=httpbin&port=http", "port"),
        ("from=sleep&to=httpbin&port=0", "port"),
    ] {
        let reply = app.get(&access(query)).await;
        assert_eq!(reply.status.as_u16(), 422, "{query}: {:#}", reply.body);
        reply.expect_problem(422, field);
    }
    app.get(
        "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/none/access?from=sleep&to=httpbin",
    )
    .await
    .expect(404);
});

both_backends!(access_and_graph_refuse_callers_who_may_not_read, |app| {
    seed(&app).await;
    let paths = [
        access("from=sleep&to=httpbin"),
        format!("{SET}/graph"),
        format!("{SET}/graph?format=svg"),
    ];
    for path in &paths {
        let reply = app.request_as(None, Method::GET, path, None).await;
        assert_eq!(reply.status.as_u16(), 401, "{path}");
    }
    // A viewer of another project does not see this one.
    app.post(
        "/v2/projects",
        json!({"metadata": {"name": "other"}, "spec": {}}),
    )
    .await
    .expect(201);
    let outsider = app
        .create_token(
            "/v2/projects/other/tokens",
            json!({"metadata": {"name": "viewer"}, "spec": {"role": "viewer"}}),
        )
        .await;
    let viewer = app
        .create_token(
            "/v2/projects/shop/tokens",
            json!({"metadata": {"name": "viewer"}, "spec": {"role": "viewer"}}),
        )
        .await;
    for path in &paths {
        let reply = app
            .request_as(Some(&outsider), Method::GET, path, None)
            .await;
        assert_eq!(reply.status.as_u16(), 404, "{path}: {:#}", reply.body);
        let reply = app.request_as(Some(&viewer), Method::GET, path, None).await;
        assert_eq!(reply.status.as_u16(), 200, "a viewer may read {path}");
    }
});

both_backends!(graph_is_json_or_svg_and_deterministic, |app| {
    seed(&app).await;
    let json_reply = app.get(&format!("{SET}/graph")).await.expect(200);
    assert_eq!(json_reply.header("content-type"), Some("application/json"));
    let graph = &json_reply.body;
    let edges = graph["edges"].as_array().unwrap();
    let allow = edges
        .iter()
        .find(|e| e["kind"] == "allow" && e["from"] == "app:sleep@cluster02")
        .unwrap_or_else(|| panic!("{graph:#}"));
    assert_eq!(allow["to"], "app:httpbin@cluster01");
    assert_eq!(allow["via"], json!(["ingress:cluster01"]));
    assert_eq!(allow["label"], "GET /status");
    assert_eq!(allow["intent"], format!("{SET}/inbound-intents/httpbin"));
    let deny = edges.iter().find(|e| e["kind"] == "deny").unwrap();
    assert_eq!(deny["label"], "DELETE");
    let clusters: Vec<&Value> = graph["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["cluster"])
        .collect();
    assert_eq!(clusters, [&json!("cluster01"), &json!("cluster02")]);

    let svg = app
        .get(&format!("{SET}/graph?format=svg"))
        .await
        .expect(200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(
        svg.text.starts_with("<?xml") && svg.text.contains("<svg"),
        "{}",
        svg.text
    );
    assert!(svg.text.contains("data-id=\"app:sleep@cluster02\""));
    assert!(svg.text.contains("class=\"edge deny\""));
    let again = app
        .get(&format!("{SET}/graph?format=svg"))
        .await
        .expect(200);
    assert_eq!(svg.text, again.text, "the same set draws the same SVG");
    assert_eq!(app.get(&format!("{SET}/graph")).await.text, json_reply.text);
    app.get(&format!("{SET}/graph?format=png"))
        .await
        .expect(400);
});
