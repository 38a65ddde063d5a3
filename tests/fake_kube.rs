//! Tests of the fake Kubernetes API server, driven through kube's real client.

#[path = "support/fake_kube/mod.rs"]
mod fake_kube;

use std::time::Duration;

use fake_kube::{DelayRule, FailRule, FakeKube};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::discovery::{self, Discovery, Scope, verbs};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const NS: &str = "default";

fn destination_rule() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "DestinationRule"),
        "destinationrules",
    )
}

fn authorization_policy() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("security.istio.io", "v1", "AuthorizationPolicy"),
        "authorizationpolicies",
    )
}

fn dr_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &destination_rule())
}

fn dr(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn dr_labeled(name: &str, labels: Value, spec: Value) -> Value {
    let mut obj = dr(name, spec);
    obj["metadata"]["labels"] = labels;
    obj
}

fn apply_params(manager: &str) -> PatchParams {
    PatchParams::apply(manager)
}

/// The `kube::Error::Api` status, or a panic naming what came instead.
fn api_status<T: std::fmt::Debug>(result: kube::Result<T>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected a kube::Error::Api, got {other:?}"),
    }
}

/// A client without kube's default retry of 429/503/504, to see those answers.
async fn client_without_retry(fake: &FakeKube) -> Client {
    let mut config = fake.config().await;
    config.default_retry = false;
    Client::try_from(config).expect("client")
}

fn statuses(fake: &FakeKube, method: &str) -> Vec<u16> {
    fake.requests()
        .iter()
        .filter(|r| r.method == method)
        .filter_map(|r| r.status)
        .collect()
}

fn is_connection_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        current = e.source();
    }
    false
}

#[tokio::test]
async fn kubeconfig_builds_a_client_that_reaches_the_fake() {
    let fake = FakeKube::start().await;
    assert!(
        fake.kubeconfig()
            .contains(&format!("server: {}", fake.base_url()))
    );
    let client = fake.client().await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36")
    );
    assert_eq!(client.default_namespace(), "default");

    // The kubeconfig's bearer token is sent, and required.
    dr_api(&client, NS)
        .list(&ListParams::default())
        .await
        .expect("list");
    let last = fake.requests().pop().expect("recorded");
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {}", fake.token()).as_str())
    );
    let anonymous = reqwest::get(format!("{}/apis", fake.base_url()))
        .await
        .expect("get");
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.expect("json");
    assert_eq!(body["reason"], "Unauthorized");
}

#[tokio::test]
async fn discovery_finds_the_istio_groups_and_kinds() {
    let fake = FakeKube::start().await;
    let client = fake.client().await;

    for discovery in [
        Discovery::new(client.clone())
            .run()
            .await
            .expect("discovery"),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .expect("aggregated discovery"),
    ] {
        for group in ["networking.istio.io", "security.istio.io"] {
            let api_group = discovery.get(group).expect(group);
            assert_eq!(api_group.preferred_version(), Some("v1"));
        }
        let networking = discovery.get("networking.istio.io").expect("group");
        for (kind, plural) in [
            ("ServiceEntry", "serviceentries"),
            ("DestinationRule", "destinationrules"),
            ("VirtualService", "virtualservices"),
            ("Gateway", "gateways"),
        ] {
            let (ar, caps) = networking.recommended_kind(kind).expect(kind);
            assert_eq!(ar.plural, plural);
            assert_eq!(ar.api_version, "networking.istio.io/v1");
            assert_eq!(caps.scope, Scope::Namespaced);
            for verb in [
                verbs::GET,
                verbs::LIST,
                verbs::PATCH,
                verbs::DELETE,
                verbs::WATCH,
            ] {
                assert!(caps.supports_operation(verb), "{kind} {verb}");
            }
        }
        let security = discovery.get("security.istio.io").expect("group");
        for kind in ["AuthorizationPolicy", "PeerAuthentication"] {
            assert!(security.recommended_kind(kind).is_some(), "{kind}");
        }
    }

    let (ar, caps) = discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("security.istio.io", "v1", "PeerAuthentication"),
    )
    .await
    .expect("pinned kind");
    assert_eq!(ar.plural, "peerauthentications");
    assert_eq!(caps.scope, Scope::Namespaced);
    let group = discovery::group(&client, "networking.istio.io")
        .await
        .expect("group");
    assert_eq!(group.preferred_version_or_latest(), "v1");
}

#[tokio::test]
async fn server_side_apply_creates_then_is_idempotent_then_updates() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    let pp = apply_params("meshintent");
    let config = dr_labeled(
        "reviews",
        json!({"app": "reviews"}),
        json!({"host": "reviews.default.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
    );

    let created = api
        .patch("reviews", &pp, &Patch::Apply(&config))
        .await
        .expect("create");
    let rv1 = created.resource_version().expect("resourceVersion");
    assert!(created.uid().is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.namespace().as_deref(), Some(NS));
    assert_eq!(
        created.labels().get("app").map(String::as_str),
        Some("reviews")
    );
    let managed = created
        .metadata
        .managed_fields
        .as_ref()
        .expect("managedFields");
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("meshintent"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    assert_eq!(
        managed[0].api_version.as_deref(),
        Some("networking.istio.io/v1")
    );
    assert_eq!(managed[0].fields_type.as_deref(), Some("FieldsV1"));
    let fields = &managed[0].fields_v1.as_ref().expect("fieldsV1").0;
    assert_eq!(
        fields["f:spec"]["f:trafficPolicy"]["f:tls"]["f:mode"],
        json!({})
    );
    assert_eq!(fields["f:metadata"]["f:labels"]["f:app"], json!({}));

    let again = api
        .patch("reviews", &pp, &Patch::Apply(&config))
        .await
        .expect("re-apply");
    assert_eq!(again.resource_version().as_deref(), Some(rv1.as_str()));
    assert_eq!(
        again.metadata.managed_fields,
        created.metadata.managed_fields
    );

    let mut changed = config.clone();
    changed["spec"]["trafficPolicy"]["tls"]["mode"] = json!("DISABLE");
    let updated = api
        .patch("reviews", &pp, &Patch::Apply(&changed))
        .await
        .expect("update");
    assert_ne!(updated.resource_version(), Some(rv1.clone()));
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(
        updated.data["spec"]["trafficPolicy"]["tls"]["mode"],
        "DISABLE"
    );
    assert_eq!(updated.uid(), created.uid());

    // A label-only change is a write but not a new generation.
    let mut relabeled = changed.clone();
    relabeled["metadata"]["labels"]["tier"] = json!("backend");
    let relabeled = api
        .patch("reviews", &pp, &Patch::Apply(&relabeled))
        .await
        .expect("labels");
    assert_ne!(relabeled.resource_version(), updated.resource_version());
    assert_eq!(relabeled.metadata.generation, Some(2));

    // 201 on create, 200 afterwards; the fake's state matches what the client saw.
    assert_eq!(statuses(&fake, "PATCH"), vec![201, 200, 200, 200]);
    let stored = fake
        .object("networking.istio.io", "destinationrules", NS, "reviews")
        .expect("stored");
    assert_eq!(
        stored["metadata"]["resourceVersion"],
        json!(relabeled.resource_version())
    );
    assert_eq!(stored["kind"], "DestinationRule");
}

#[tokio::test]
async fn apply_removes_fields_the_manager_no_longer_applies_and_keeps_others() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    let first = dr_labeled(
        "ratings",
        json!({"app": "ratings", "old": "yes"}),
        json!({"host": "ratings", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 10}}}, "exportTo": ["."]}),
    );
    api.patch(
        "ratings",
        &apply_params("meshintent"),
        &Patch::Apply(&first),
    )
    .await
    .expect("apply");
    // Another manager adds a label and a field of its own.
    let other = dr_labeled(
        "ratings",
        json!({"team": "a"}),
        json!({"subsets": [{"name": "v1"}]}),
    );
    api.patch("ratings", &apply_params("other"), &Patch::Apply(&other))
        .await
        .expect("other apply");

    let second = dr_labeled(
        "ratings",
        json!({"app": "ratings"}),
        json!({"host": "ratings"}),
    );
    let result = api
        .patch(
            "ratings",
            &apply_params("meshintent"),
            &Patch::Apply(&second),
        )
        .await
        .expect("second apply");
    assert_eq!(
        result.data["spec"],
        json!({"host": "ratings", "subsets": [{"name": "v1"}]}),
        "trafficPolicy and exportTo removed, the other manager's subsets kept"
    );
    let labels = result.labels();
    assert_eq!(labels.get("app").map(String::as_str), Some("ratings"));
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert!(!labels.contains_key("old"));
    assert_eq!(
        result.metadata.managed_fields.as_ref().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn apply_without_field_manager_is_invalid() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    let status = api_status(
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Apply(dr("x", json!({"host": "x"}))),
        )
        .await,
    );
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    assert!(
        status.message.contains("fieldManager"),
        "{}",
        status.message
    );
    assert!(fake.objects().is_empty());
}

#[tokio::test]
async fn conflicting_managers_get_409_unless_forced() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    api.patch(
        "db",
        &apply_params("team-a"),
        &Patch::Apply(dr("db", json!({"host": "db-a"}))),
    )
    .await
    .expect("team-a applies");

    // Same value: shared ownership, no conflict.
    api.patch(
        "db",
        &apply_params("team-c"),
        &Patch::Apply(dr("db", json!({"host": "db-a"}))),
    )
    .await
    .expect("same value is no conflict");
    fake.object("networking.istio.io", "destinationrules", NS, "db")
        .expect("stored");

    let status = api_status(
        api.patch(
            "db",
            &apply_params("meshintent"),
            &Patch::Apply(dr("db", json!({"host": "db-b"}))),
        )
        .await,
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(
        status.message.starts_with("Apply failed with 2 conflicts"),
        "{}",
        status.message
    );
    assert!(status.message.contains("\"team-a\""), "{}", status.message);
    assert!(status.message.contains(".spec.host"), "{}", status.message);
    let causes = &status.details.as_ref().expect("details").causes;
    assert_eq!(causes.len(), 2);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.host");
    let stored = fake
        .object("networking.istio.io", "destinationrules", NS, "db")
        .expect("stored");
    assert_eq!(stored["spec"]["host"], "db-a", "a conflict changes nothing");

    let forced = api
        .patch(
            "db",
            &apply_params("meshintent").force(),
            &Patch::Apply(dr("db", json!({"host": "db-b"}))),
        )
        .await
        .expect("forced apply");
    assert_eq!(forced.data["spec"]["host"], "db-b");
    let managers: Vec<_> = forced
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(
        managers,
        vec!["meshintent"],
        "the others lost their only field"
    );

    // Now team-a is the one in conflict.
    let status = api_status(
        api.patch(
            "db",
            &apply_params("team-a"),
            &Patch::Apply(dr("db", json!({"host": "db-a"}))),
        )
        .await,
    );
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"meshintent\": .spec.host"
    );
}

#[tokio::test]
async fn fields_set_by_an_update_conflict_with_apply() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    // Someone else's object, created with kubectl (no meshintent labels).
    fake.insert_object(
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "legacy", "namespace": NS},
            "spec": {"host": "legacy"},
        }),
        "kubectl-create",
    );
    let got = api.get("legacy").await.expect("get");
    assert!(got.labels().is_empty());
    assert_eq!(got.metadata.generation, Some(1));
    assert_eq!(
        got.metadata.managed_fields.as_ref().expect("managed")[0]
            .operation
            .as_deref(),
        Some("Update")
    );

    let status = api_status(
        api.patch(
            "legacy",
            &apply_params("meshintent"),
            &Patch::Apply(dr("legacy", json!({"host": "new"}))),
        )
        .await,
    );
    assert_eq!(status.code, 409);
    assert!(
        status
            .message
            .contains("\"kubectl-create\" using networking.istio.io/v1 at "),
        "{}",
        status.message
    );

    // An unmanaged object (no managedFields) can be taken over without conflict.
    fake.insert_object(dr("unmanaged", json!({"host": "u", "exportTo": ["*"]})), "");
    let taken = api
        .patch(
            "unmanaged",
            &apply_params("meshintent"),
            &Patch::Apply(dr("unmanaged", json!({"host": "v"}))),
        )
        .await
        .expect("apply over unmanaged");
    assert_eq!(taken.data["spec"], json!({"host": "v", "exportTo": ["*"]}));
}

#[tokio::test]
async fn get_of_a_missing_object_is_a_404_status() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    let status = api_status(api.get("nope").await);
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert!(status.is_not_found());
    assert_eq!(
        status.message,
        "destinationrules.networking.istio.io \"nope\" not found"
    );
    let details = status.details.as_ref().expect("details");
    assert_eq!(details.name, "nope");
    assert_eq!(details.group, "networking.istio.io");
    assert_eq!(details.kind, "destinationrules");
    assert!(api.get_opt("nope").await.expect("get_opt").is_none());
}

#[tokio::test]
async fn list_filters_by_label_selector_in_a_namespace_and_across_namespaces() {
    let fake = FakeKube::start().await;
    let client = fake.client().await;
    let pp = apply_params("meshintent");
    for (ns, name, labels) in [
        (
            "default",
            "a",
            json!({"managed-by": "meshintent", "env": "prod"}),
        ),
        (
            "default",
            "b",
            json!({"managed-by": "meshintent", "env": "dev"}),
        ),
        ("default", "c", json!({"env": "prod"})),
        (
            "other",
            "d",
            json!({"managed-by": "meshintent", "env": "prod"}),
        ),
    ] {
        dr_api(&client, ns)
            .patch(
                name,
                &pp,
                &Patch::Apply(dr_labeled(name, labels, json!({"host": name}))),
            )
            .await
            .expect("apply");
    }
    let names = |list: kube::api::ObjectList<DynamicObject>| -> Vec<String> {
        list.items.iter().map(|o| o.name_any()).collect()
    };
    let default = dr_api(&client, "default");
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &destination_rule());

    let list = default
        .list(&ListParams::default().labels("managed-by=meshintent"))
        .await
        .expect("list");
    assert_eq!(list.types.kind, "DestinationRuleList");
    assert!(list.metadata.resource_version.is_some());
    assert!(list.items.iter().all(|o| {
        o.types
            .as_ref()
            .is_some_and(|t| t.kind == "DestinationRule")
    }));
    assert_eq!(names(list), ["a", "b"]);

    let cases = [
        ("managed-by=meshintent", vec!["a", "b", "d"]),
        ("managed-by==meshintent,env=prod", vec!["a", "d"]),
        ("env!=prod", vec!["b"]),
        ("!managed-by", vec!["c"]),
        ("managed-by", vec!["a", "b", "d"]),
        ("env in (dev, test)", vec!["b"]),
        ("managed-by,env notin (dev)", vec!["a", "d"]),
        ("", vec!["a", "b", "c", "d"]),
    ];
    for (selector, expected) in cases {
        let list = all
            .list(&ListParams::default().labels(selector))
            .await
            .expect(selector);
        assert_eq!(names(list), expected, "{selector}");
    }
    let by_name = all
        .list(&ListParams::default().fields("metadata.name=d"))
        .await
        .expect("field selector");
    assert_eq!(names(by_name), ["d"]);

    // Paging.
    let page = all
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    let token = page.metadata.continue_.clone().expect("continue");
    assert_eq!(names(page), ["a", "b", "c"]);
    let page = all
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(names(page), ["d"]);

    let status = api_status(all.list(&ListParams::default().labels("a in (b")).await);
    assert_eq!(status.code, 400);
    assert_eq!(status.reason, "BadRequest");

    let policies: Api<DynamicObject> = Api::all_with(client.clone(), &authorization_policy());
    assert!(
        policies
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn delete_removes_the_object() {
    let fake = FakeKube::start().await;
    let client = fake.client().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, "istio-system", &authorization_policy());
    let policy = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny-all"},
        "spec": {},
    });
    let created = api
        .patch(
            "deny-all",
            &apply_params("meshintent"),
            &Patch::Apply(&policy),
        )
        .await
        .expect("apply");

    // A precondition on a stale uid fails.
    let status = api_status(
        api.delete(
            "deny-all",
            &DeleteParams::default().preconditions(kube::api::Preconditions {
                uid: Some("not-the-uid".into()),
                resource_version: None,
            }),
        )
        .await,
    );
    assert_eq!(status.code, 409);

    let deleted = api
        .delete("deny-all", &DeleteParams::default())
        .await
        .expect("delete");
    let status = deleted.right().expect("a Status");
    assert!(status.is_success());
    assert_eq!(
        status.details.as_ref().map(|d| d.uid.clone()),
        Some(created.uid().unwrap())
    );
    assert!(api_status(api.get("deny-all").await).is_not_found());
    assert_eq!(
        api_status(api.delete("deny-all", &DeleteParams::default()).await).code,
        404
    );
    assert!(fake.objects().is_empty());
}

#[tokio::test]
async fn injected_500_and_429_surface_with_their_codes() {
    let fake = FakeKube::start().await;
    let api = dr_api(&client_without_retry(&fake).await, NS);
    let config = dr("flaky", json!({"host": "flaky"}));
    fake.fail_next(FailRule {
        method: Some("PATCH"),
        path_contains: Some("destinationrules"),
        status: 500,
        times: 2,
    });
    for _ in 0..2 {
        let status = api_status(
            api.patch("flaky", &apply_params("m"), &Patch::Apply(&config))
                .await,
        );
        assert_eq!(status.code, 500);
        assert_eq!(status.reason, "InternalError");
    }
    assert!(
        fake.objects().is_empty(),
        "a failed request changes nothing"
    );
    api.patch("flaky", &apply_params("m"), &Patch::Apply(&config))
        .await
        .expect("third attempt succeeds");

    fake.fail_next(FailRule {
        method: Some("GET"),
        path_contains: None,
        status: 429,
        times: 1,
    });
    let status = api_status(api.get("flaky").await);
    assert_eq!(status.code, 429);
    assert_eq!(status.reason, "TooManyRequests");
    let throttled = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.status == Some(429))
        .expect("429");
    assert_eq!(throttled.method, "GET");

    for (code, reason) in [
        (404, "NotFound"),
        (409, "Conflict"),
        (422, "Invalid"),
        (503, "ServiceUnavailable"),
    ] {
        fake.fail_next(FailRule {
            method: None,
            path_contains: Some("/flaky"),
            status: code,
            times: 1,
        });
        let status = api_status(api.get("flaky").await);
        assert_eq!((status.code, status.reason.as_str()), (code, reason));
    }
}

#[tokio::test]
async fn kube_retries_a_429_by_default_honouring_retry_after() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    fake.set_retry_after(0);
    fake.fail_next(FailRule {
        method: Some("PATCH"),
        path_contains: None,
        status: 429,
        times: 2,
    });
    api.patch(
        "retried",
        &apply_params("m"),
        &Patch::Apply(dr("retried", json!({"host": "r"}))),
    )
    .await
    .expect("kube retries 429 transparently");
    assert_eq!(statuses(&fake, "PATCH"), vec![429, 429, 201]);
    let throttled = fake
        .requests()
        .into_iter()
        .find(|r| r.status == Some(429))
        .expect("429");
    assert_eq!(throttled.query_param("fieldManager").as_deref(), Some("m"));
}

#[tokio::test]
async fn rejected_names_fail_apply_with_422() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    fake.reject_apply(
        "bad",
        "spec.trafficPolicy.tls.mode: Unsupported value: \"SUPER_MUTUAL\": supported values: \"DISABLE\", \"SIMPLE\", \"MUTUAL\", \"ISTIO_MUTUAL\"",
    );
    let status = api_status(
        api.patch(
            "bad",
            &apply_params("m"),
            &Patch::Apply(dr("bad", json!({"host": "bad"}))),
        )
        .await,
    );
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    assert!(
        status.message.starts_with("DestinationRule.networking.istio.io \"bad\" is invalid: spec.trafficPolicy.tls.mode: Unsupported value"),
        "{}",
        status.message
    );
    api.patch(
        "good",
        &apply_params("m"),
        &Patch::Apply(dr("good", json!({"host": "good"}))),
    )
    .await
    .expect("other names apply");
    fake.clear_reject_apply("bad");
    api.patch(
        "bad",
        &apply_params("m"),
        &Patch::Apply(dr("bad", json!({"host": "bad"}))),
    )
    .await
    .expect("accepted again");
}

#[tokio::test]
async fn a_delayed_answer_times_out_the_client_but_the_write_happened() {
    let fake = FakeKube::start().await;
    let mut config = fake.config().await;
    config.read_timeout = Some(Duration::from_millis(200));
    let api = dr_api(&Client::try_from(config).expect("client"), NS);
    fake.delay_next(DelayRule {
        method: Some("PATCH"),
        path_contains: None,
        delay: Duration::from_secs(2),
        times: 1,
    });
    let err = api
        .patch(
            "slow",
            &apply_params("m"),
            &Patch::Apply(dr("slow", json!({"host": "slow"}))),
        )
        .await
        .expect_err("timed out");
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    assert!(
        fake.object("networking.istio.io", "destinationrules", NS, "slow")
            .is_some()
    );
    // Only one answer was delayed.
    api.get("slow").await.expect("get");
}

#[tokio::test]
async fn a_stopped_server_refuses_connections_and_restarts_with_its_state() {
    let fake = FakeKube::start().await;
    let client = fake.client().await;
    let api = dr_api(&client, NS);
    let created = api
        .patch(
            "kept",
            &apply_params("m"),
            &Patch::Apply(dr("kept", json!({"host": "kept"}))),
        )
        .await
        .expect("apply");
    let port = fake.port();

    fake.stop().await;
    assert!(!fake.is_running());
    let err = api.get("kept").await.expect_err("server is down");
    assert!(is_connection_refused(&err), "{err:?}");
    let err = std::net::TcpStream::connect(("127.0.0.1", port)).expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    fake.restart().await;
    assert!(fake.is_running());
    assert_eq!(fake.port(), port);
    let got = api
        .get("kept")
        .await
        .expect("works again with the same client");
    assert_eq!(got.resource_version(), created.resource_version());
    api.patch(
        "new",
        &apply_params("m"),
        &Patch::Apply(dr("new", json!({"host": "new"}))),
    )
    .await
    .expect("writes work again");
    assert_eq!(fake.objects().len(), 2);
}

#[tokio::test]
async fn requests_are_recorded_and_writes_counted() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    api.patch(
        "r",
        &apply_params("meshintent"),
        &Patch::Apply(dr("r", json!({"host": "r"}))),
    )
    .await
    .expect("apply");
    api.get("r").await.expect("get");
    api.list(&ListParams::default().labels("x=y"))
        .await
        .expect("list");
    let _ = api
        .patch(
            "r",
            &apply_params("meshintent"),
            &Patch::Apply(dr("r", json!({"host": "r"}))),
        )
        .await;
    api.delete("r", &DeleteParams::default())
        .await
        .expect("delete");
    let _ = api.get("r").await;

    assert_eq!(fake.write_count(), 3);
    let requests = fake.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["PATCH", "GET", "GET", "PATCH", "DELETE", "GET"]);
    let apply = &requests[0];
    assert_eq!(
        apply.path,
        "/apis/networking.istio.io/v1/namespaces/default/destinationrules/r"
    );
    assert_eq!(
        apply.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        apply.query_param("fieldManager").as_deref(),
        Some("meshintent")
    );
    assert_eq!(apply.body_json().expect("json body")["spec"]["host"], "r");
    assert_eq!(
        requests[2].query_param("labelSelector").as_deref(),
        Some("x=y")
    );
    assert_eq!(
        requests
            .iter()
            .map(|r| r.status.unwrap())
            .collect::<Vec<_>>(),
        [201, 200, 200, 200, 200, 404]
    );

    fake.clear_requests();
    assert!(fake.requests().is_empty());
    assert_eq!(fake.write_count(), 0);
}

#[tokio::test]
async fn other_writes_behave_like_the_api_server() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    let obj: DynamicObject = serde_json::from_value(dr("w", json!({"host": "w"}))).expect("object");

    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    assert_eq!(
        api_status(api.create(&PostParams::default(), &obj).await).reason,
        "AlreadyExists"
    );

    // Merge patch (another actor editing the object).
    let patched = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"exportTo": ["."]}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched.data["spec"],
        json!({"host": "w", "exportTo": ["."]})
    );
    assert_eq!(patched.metadata.generation, Some(2));

    // Update with a stale resourceVersion conflicts.
    let mut stale = created.clone();
    stale.data["spec"]["host"] = json!("x");
    let status = api_status(api.replace("w", &PostParams::default(), &stale).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    let mut fresh = patched.clone();
    fresh.data["spec"]["host"] = json!("x");
    let replaced = api
        .replace("w", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_eq!(replaced.data["spec"]["host"], "x");

    let status = api_status(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {}})),
        )
        .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
}

#[tokio::test]
async fn apply_bodies_are_checked_against_the_url() {
    let fake = FakeKube::start().await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/networking.istio.io/v1/namespaces/default/destinationrules/yaml?fieldManager=m",
        fake.base_url()
    );
    let send = |body: &'static str| {
        http.patch(&url)
            .bearer_auth(fake.token())
            .header("content-type", "application/apply-patch+yaml")
            .body(body)
            .send()
    };
    let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: yaml\nspec:\n  host: yaml.default.svc\n";
    let response = send(yaml).await.expect("send");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["spec"]["host"], "yaml.default.svc");
    assert_eq!(send(yaml).await.expect("send").status(), 200);

    for bad in [
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: other\n",
        "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata:\n  name: yaml\n",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: yaml\n",
        "spec: [unclosed\n",
    ] {
        let response = send(bad).await.expect("send");
        assert_eq!(response.status(), 400, "{bad}");
        let status: Value = response.json().await.expect("json");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "BadRequest");
    }

    let response = http
        .get(format!(
            "{}/apis/networking.istio.io/v1/namespaces/default/nothings",
            fake.base_url()
        ))
        .bearer_auth(fake.token())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn maps_are_not_atomic_and_dry_runs_store_nothing() {
    let fake = FakeKube::start().await;
    let client = fake.client().await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, NS, &authorization_policy());
    let policy = |spec: Value| {
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "p"},
            "spec": spec,
        })
    };
    let dry = api
        .patch(
            "p",
            &apply_params("a").dry_run(),
            &Patch::Apply(policy(json!({}))),
        )
        .await
        .expect("dry run");
    assert_eq!(dry.data["spec"], json!({}));
    assert!(fake.objects().is_empty(), "a dry run stores nothing");

    api.patch("p", &apply_params("a"), &Patch::Apply(policy(json!({}))))
        .await
        .expect("a applies an empty spec");
    let b = api
        .patch(
            "p",
            &apply_params("b"),
            &Patch::Apply(policy(json!({"action": "DENY"}))),
        )
        .await
        .expect("adding under a map another manager owns is no conflict");
    let again = api
        .patch("p", &apply_params("a"), &Patch::Apply(policy(json!({}))))
        .await
        .expect("a re-applies");
    assert_eq!(again.data["spec"], json!({"action": "DENY"}));
    assert_eq!(again.resource_version(), b.resource_version());
}

#[tokio::test]
async fn stopping_cuts_off_a_request_in_flight() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    fake.delay_next(DelayRule {
        method: Some("GET"),
        path_contains: Some("/slow"),
        delay: Duration::from_secs(30),
        times: 1,
    });
    let pending = tokio::spawn(async move { api.get("slow").await });
    while fake.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    fake.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let result = pending.await.expect("joined");
    assert!(
        !matches!(result, Ok(_) | Err(kube::Error::Api(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_dry_run_apply_validates_answers_as_stored_and_writes_nothing() {
    let fake = FakeKube::start().await;
    let api = dr_api(&fake.client().await, NS);
    let stored = api
        .patch(
            "a",
            &apply_params("m"),
            &Patch::Apply(dr("a", json!({"host": "a", "x": 1}))),
        )
        .await
        .expect("a real apply");
    let revision = fake.resource_version();
    fake.clear_requests();

    // A change, dry run: answered as it would be stored, with the same resourceVersion.
    let dry = api
        .patch(
            "a",
            &apply_params("m").force().dry_run(),
            &Patch::Apply(dr("a", json!({"host": "b", "weight": 10.0}))),
        )
        .await
        .expect("a dry run");
    assert_eq!(
        dry.data["spec"],
        json!({"host": "b", "weight": 10}),
        "numbers normalised"
    );
    assert_eq!(dry.resource_version(), stored.resource_version());
    assert_eq!(
        dry.metadata
            .managed_fields
            .as_ref()
            .map(|m| m[0].manager.clone()),
        Some(Some("m".to_owned()))
    );
    // A new object, dry run: created in the answer only.
    let created = api
        .patch(
            "new",
            &apply_params("m").dry_run(),
            &Patch::Apply(dr("new", json!({"host": "n"}))),
        )
        .await
        .expect("a dry-run create");
    assert_eq!(created.data["spec"]["host"], "n");
    // What validation refuses is refused in a dry run too, with the server's message.
    fake.reject_apply(
        "bad",
        "spec.trafficPolicy.tls.mode: Unsupported value: \"SUPER_MUTUAL\"",
    );
    let status = api_status(
        api.patch(
            "bad",
            &apply_params("m").dry_run(),
            &Patch::Apply(dr("bad", json!({}))),
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .contains("Unsupported value: \"SUPER_MUTUAL\""),
        "{}",
        status.message
    );

    assert_eq!(fake.resource_version(), revision, "nothing was stored");
    assert!(
        fake.object("networking.istio.io", "destinationrules", NS, "new")
            .is_none()
    );
    assert_eq!(
        fake.object("networking.istio.io", "destinationrules", NS, "a")
            .unwrap()["spec"],
        json!({"host": "a", "x": 1})
    );
    assert_eq!(fake.write_count(), 3, "the log has the three PATCHes");
    assert!(
        fake.writes().is_empty(),
        "none of them is a write: {:?}",
        fake.writes()
    );
}
