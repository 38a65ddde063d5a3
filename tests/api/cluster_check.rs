//! `POST /v2/clusters/{cluster}/check` and the check after a cluster write with a kubeconfig,
//! against fake API servers (which answer SelfSubjectAccessReviews from per-token rules).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::fake_kube::{FakeKube, Permission};
use crate::helpers::TestApp;

fn istiod(fake: &FakeKube) {
    fake.insert_builtin(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod"}},
        "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                 "template": {"metadata": {"labels": {"app": "istiod"}},
                              "spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.24.2"}]}}}}));
}

async fn create(app: &TestApp, kubeconfig: &str) -> Value {
    app.post(
        "/v2/clusters",
        json!({"metadata": {"name": "c1"},
               "spec": {"identity": "c1.mesh.example.com", "kubeconfig": kubeconfig}}),
    )
    .await
    .expect(201)
    .body
}

async fn check(app: &TestApp) -> Value {
    app.request(Method::POST, "/v2/clusters/c1/check", None, &[])
        .await
        .expect(200)
        .body
}

fn condition<'a>(cluster: &'a Value, kind: &str) -> &'a Value {
    cluster["status"]["conditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no conditions: {cluster:#}"))
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {cluster:#}"))
}

both_backends!(
    a_cluster_with_everything_in_place_is_all_true_with_versions,
    |app| {
        let fake = FakeKube::start().await;
        istiod(&fake);
        create(&app, &fake.kubeconfig()).await;
        let cluster = check(&app).await;
        for kind in ["Reachable", "IstioServed", "Permitted"] {
            let c = condition(&cluster, kind);
            assert_eq!(c["status"], "True", "{c:#}");
            assert!(c["reason"].as_str().is_some_and(|r| !r.is_empty()));
            assert!(c["lastTransitionTime"].is_string());
        }
        assert_eq!(cluster["status"]["kubernetesVersion"], "v1.36.0-fake");
        assert_eq!(cluster["status"]["istioVersion"], "1.24.2");
        assert!(cluster["status"]["lastCheckedAt"].is_string());
        // One review per verb and kind; none of them counts as a write.
        let reviews = fake
            .requests()
            .iter()
            .filter(|r| r.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
            .count();
        assert_eq!(reviews, 2 * 6 * 5, "two checks of 6 kinds x 5 verbs");
        assert_eq!(fake.write_count(), 0);
        // GET returns the stored conditions; the check is audited.
        let got = app.get("/v2/clusters/c1").await.expect(200).body;
        assert_eq!(got["status"]["conditions"], cluster["status"]["conditions"]);
        let events = app
            .get("/v2/audit-events?limit=1000")
            .await
            .expect(200)
            .body;
        assert!(
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "cluster.check" && e["resource"] == "/v2/clusters/c1"),
            "{events:#}"
        );
    }
);

both_backends!(
    credentials_without_patch_are_not_permitted_and_the_message_says_so,
    |app| {
        let fake = FakeKube::start().await;
        let token = fake.add_user(
            "deployer",
            vec![Permission::cluster_wide(
                &["get", "list", "create", "delete", "watch"],
                "*",
                &["*"],
            )],
        );
        let created = create(&app, &fake.kubeconfig_with_token(&token)).await;
        let permitted = condition(&created, "Permitted");
        assert_eq!(permitted["status"], "False", "{permitted:#}");
        assert_eq!(permitted["reason"], "VerbsDenied");
        let message = permitted["message"].as_str().unwrap();
        assert!(
            message.contains("patch destinationrules.networking.istio.io"),
            "{message}"
        );
        assert!(
            message.contains("patch authorizationpolicies.security.istio.io"),
            "{message}"
        );
        assert!(!message.contains("get "), "{message}");
        assert_eq!(condition(&created, "Reachable")["status"], "True");
        assert_eq!(condition(&created, "IstioServed")["status"], "True");
    }
);

both_backends!(an_unreachable_api_server_is_not_reachable, |app| {
    let fake = FakeKube::start().await;
    let kubeconfig = fake.kubeconfig();
    fake.stop().await;
    let created = create(&app, &kubeconfig).await;
    let reachable = condition(&created, "Reachable");
    assert_eq!(reachable["status"], "False", "{reachable:#}");
    assert!(
        reachable["message"].as_str().unwrap().contains("refused"),
        "{reachable:#}"
    );
    assert_eq!(condition(&created, "IstioServed")["status"], "Unknown");
    assert_eq!(condition(&created, "Permitted")["status"], "Unknown");
    assert!(created["status"].get("kubernetesVersion").is_none());
});

both_backends!(transition_times_stay_while_the_status_stays, |app| {
    let fake = FakeKube::start().await;
    create(&app, &fake.kubeconfig()).await;
    let first = check(&app).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = check(&app).await;
    for kind in ["Reachable", "IstioServed", "Permitted"] {
        assert_eq!(
            condition(&first, kind)["lastTransitionTime"],
            condition(&second, kind)["lastTransitionTime"],
            "{kind}"
        );
    }
    assert_ne!(
        first["status"]["lastCheckedAt"],
        second["status"]["lastCheckedAt"]
    );
    fake.stop().await;
    let third = check(&app).await;
    assert_eq!(condition(&third, "Reachable")["status"], "False");
    assert_ne!(
        condition(&third, "Reachable")["lastTransitionTime"],
        condition(&second, "Reachable")["lastTransitionTime"]
    );
});

both_backends!(
    a_create_with_a_kubeconfig_is_checked_and_a_failing_check_keeps_the_write,
    |app| {
        let fake = FakeKube::start().await;
        let created = create(&app, &fake.kubeconfig()).await;
        assert_eq!(condition(&created, "Reachable")["status"], "True");
        assert_eq!(created["status"]["kubeconfigStored"], true);
        // A replace with a kubeconfig for a server that is down is stored, and checked.
        fake.stop().await;
        let replaced = app
            .put(
                "/v2/clusters/c1",
                json!({"metadata": {"name": "c1"},
                   "spec": {"identity": "c1.mesh.example.com", "labels": {"env": "test"},
                            "kubeconfig": fake.kubeconfig()}}),
            )
            .await
            .expect(200)
            .body;
        assert_eq!(condition(&replaced, "Reachable")["status"], "False");
        // A cluster without a kubeconfig is not checked on write.
        let plain = app
            .post(
                "/v2/clusters",
                json!({"metadata": {"name": "c2"}, "spec": {"identity": "c2.mesh.example.com"}}),
            )
            .await
            .expect(201)
            .body;
        assert!(plain["status"].get("conditions").is_none(), "{plain:#}");
        // An unknown cluster is a 404.
        app.request(Method::POST, "/v2/clusters/nope/check", None, &[])
            .await
            .expect(404);
    }
);
