//! Kubeconfigs are write-only: accepted, stored encrypted, never returned.

use serde_json::{Value, json};
use sqlx::Connection;

use crate::both_backends;
use crate::helpers::{DatabaseLocation, TestApp};

pub const TOKEN: &str = "very-secret-bearer-token-42";

pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: u\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: ctx\n  context: {{cluster: c, user: u}}\ncurrent-context: ctx\n"
    )
}

fn cluster(kubeconfig: Option<String>) -> Value {
    let mut spec = json!({"identity": "cluster01.mesh.example.com"});
    if let Some(k) = kubeconfig {
        spec["kubeconfig"] = json!(k);
    }
    json!({"metadata": {"name": "cluster01"}, "spec": spec})
}

/// Every byte the database holds for credentials and specs, as text.
async fn stored_text(app: &TestApp) -> String {
    match &app.database {
        DatabaseLocation::Sqlite(path) => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            let specs: Vec<String> = sqlx::query_scalar("SELECT spec FROM resources")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let blobs: Vec<Vec<u8>> =
                sqlx::query_scalar("SELECT ciphertext FROM cluster_credentials")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            assert_eq!(blobs.len(), 1, "one credential stored");
            format!(
                "{}{}",
                specs.join(""),
                String::from_utf8_lossy(&blobs.concat())
            )
        }
        DatabaseLocation::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let specs: Vec<String> = sqlx::query_scalar("SELECT spec::text FROM resources")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let blobs: Vec<Vec<u8>> =
                sqlx::query_scalar("SELECT ciphertext FROM cluster_credentials")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            assert_eq!(blobs.len(), 1, "one credential stored");
            format!(
                "{}{}",
                specs.join(""),
                String::from_utf8_lossy(&blobs.concat())
            )
        }
    }
}

both_backends!(kubeconfig_is_stored_encrypted_and_never_returned, |app| {
    let created = app
        .post(
            "/v2/clusters",
            cluster(Some(kubeconfig("https://10.0.0.1:6443"))),
        )
        .await
        .expect(201);
    assert_eq!(created.body["status"]["kubeconfigStored"], true);
    assert!(created.body["spec"].get("kubeconfig").is_none());
    for reply in [
        app.get("/v2/clusters/cluster01").await,
        app.get("/v2/clusters").await,
    ] {
        let text = reply.expect(200).body.to_string();
        assert!(
            !text.contains(TOKEN) && !text.contains("kubeconfig\""),
            "{text}"
        );
    }
    let stored = stored_text(&app).await;
    assert!(!stored.contains(TOKEN), "the token is stored in plain text");
    assert!(
        !stored.contains("current-context"),
        "the kubeconfig is stored in plain text"
    );

    // PUT without a kubeconfig keeps it; an empty string removes it.
    let kept = app
        .put("/v2/clusters/cluster01", cluster(None))
        .await
        .expect(200);
    assert_eq!(kept.body["status"]["kubeconfigStored"], true);
    let removed = app
        .put("/v2/clusters/cluster01", cluster(Some(String::new())))
        .await
        .expect(200);
    assert_eq!(removed.body["status"]["kubeconfigStored"], false);
    assert_eq!(removed.body["metadata"]["revision"], 2);
});

both_backends!(invalid_kubeconfig_is_422_without_echo, |app| {
    let reply = app
        .post(
            "/v2/clusters",
            cluster(Some(format!("token: {TOKEN}\n  - : [unclosed"))),
        )
        .await
        .expect_problem(422, "/spec/kubeconfig");
    assert!(!reply.body.to_string().contains(TOKEN));
    let both = json!({"metadata": {"name": "c"}, "spec": {"identity": "c.example", "inCluster": true,
        "kubeconfig": kubeconfig("https://10.0.0.1:6443")}});
    app.post("/v2/clusters", both)
        .await
        .expect_problem(422, "/spec/kubeconfig");
    assert_eq!(app.get("/v2/clusters").await.body["items"], json!([]));
});
