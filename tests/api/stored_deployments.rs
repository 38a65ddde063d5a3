//! Deployments stored by the release before the typed deployment model (spellings as plain
//! text, manifests as `{"<cluster>": [<object>, ...]}`) still show their status; a stored value
//! that does not parse is an internal error, never a default.

use serde_json::{Value, json};
use sqlx::types::Json;
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::{SET, TestApp};
use crate::on_db;

/// The statements of the release before, with its literal spellings.
const INSERT_DEPLOYMENT: &str = "INSERT INTO deployments (id, set_id, revision, action, state, manifests, message, created_at, started_at, finished_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)";
const INSERT_CLUSTER: &str = "INSERT INTO deployment_clusters (deployment_id, cluster, state, message, writes, updated_at) VALUES ($1, $2, $3, NULL, $4, $5)";
const INSERT_OBJECT: &str = "INSERT INTO deployment_objects (deployment_id, cluster, api_version, kind, namespace, name, operation, state, message, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)";

/// Writes revision `revision` of the set as the release before did, in `state`.
async fn write_old_deployment(app: &TestApp, revision: i64, state: &str, manifests: &Value) {
    let now = chrono::Utc::now();
    let id = Uuid::new_v4();
    let objects: Vec<(String, String, String, String, String)> = manifests
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(cluster, objects)| {
            objects.as_array().unwrap().iter().map(move |o| {
                (
                    cluster.clone(),
                    o["apiVersion"].as_str().unwrap().to_owned(),
                    o["kind"].as_str().unwrap().to_owned(),
                    o["metadata"]["namespace"].as_str().unwrap().to_owned(),
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    on_db!(app, |conn| {
        let set_id: Uuid = sqlx::query_scalar(
            "SELECT id FROM resources WHERE kind = 'traffic_intent_set' AND name = 'default'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        sqlx::query(INSERT_DEPLOYMENT)
            .bind(id)
            .bind(set_id)
            .bind(revision)
            .bind("deploy")
            .bind(state)
            .bind(Json(manifests))
            .bind("1 cluster up to date (3 writes)")
            .bind(now)
            .execute(&mut conn)
            .await
            .unwrap();
        for cluster in manifests.as_object().unwrap().keys() {
            sqlx::query(INSERT_CLUSTER)
                .bind(id)
                .bind(cluster)
                .bind(state)
                .bind(3_i64)
                .bind(now)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        for (cluster, api_version, kind, namespace, name) in &objects {
            sqlx::query(INSERT_OBJECT)
                .bind(id)
                .bind(cluster)
                .bind(api_version)
                .bind(kind)
                .bind(namespace)
                .bind(name)
                .bind("apply")
                .bind("applied")
                .bind(now)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
}

/// The set's rendered objects per cluster, as the release before stored them.
async fn old_manifests(app: &TestApp) -> Value {
    let rendered = app.get(&format!("{SET}/manifests")).await.expect(200).body;
    let mut out = serde_json::Map::new();
    for cluster in rendered["clusters"].as_array().unwrap() {
        out.insert(
            cluster["cluster"].as_str().unwrap().to_owned(),
            cluster["objects"].clone(),
        );
    }
    Value::Object(out)
}

both_backends!(
    a_deployment_stored_by_the_release_before_shows_its_status,
    |app| {
        app.seed_storefront().await;
        app.add_httpbin_with_sleep_client().await;
        let manifests = old_manifests(&app).await;
        assert!(!manifests.as_object().unwrap().is_empty(), "{manifests:#}");
        write_old_deployment(&app, 1, "Applied", &manifests).await;

        let status = app.get(&format!("{SET}/status")).await.expect(200).body;

        assert_eq!(status["revision"], 1);
        assert_eq!(status["action"], "deploy");
        assert_eq!(status["state"], "Applied");
        assert_eq!(status["writes"], 3 * manifests.as_object().unwrap().len());
        for cluster in status["clusters"].as_array().unwrap() {
            assert_eq!(cluster["state"], "Applied");
            let name = cluster["cluster"].as_str().unwrap();
            assert_eq!(
                cluster["objects"].as_array().unwrap().len(),
                manifests[name].as_array().unwrap().len()
            );
            for object in cluster["objects"].as_array().unwrap() {
                assert_eq!(object["operation"], "apply");
                assert_eq!(object["state"], "applied");
            }
        }
        let list = app
            .get(&format!("{SET}/deployments"))
            .await
            .expect(200)
            .body;
        assert_eq!(list["items"][0]["state"], "Applied");
        assert_eq!(list["items"][0]["action"], "deploy");
        // The next deploy follows the stored revision.
        let reply = app
            .request(reqwest::Method::POST, &format!("{SET}/deploy"), None, &[])
            .await
            .expect(202);
        assert_eq!(reply.body["revision"], 2);
        // What this release writes carries its format version beside the clusters' objects.
        on_db!(app, |conn| {
            let stored: Json<Value> =
                sqlx::query_scalar("SELECT manifests FROM deployments WHERE revision = 2")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            assert_eq!(stored.0["format"], 1, "{:#}", stored.0);
            let clusters: Vec<&String> = stored.0["clusters"].as_object().unwrap().keys().collect();
            let rendered: Vec<&String> = manifests.as_object().unwrap().keys().collect();
            assert_eq!(clusters, rendered);
        });
    }
);

both_backends!(
    a_stored_state_that_does_not_parse_is_an_error_not_a_default,
    |app| {
        app.seed_storefront().await;
        write_old_deployment(&app, 1, "Bogus", &json!({})).await;

        let reply = app.get(&format!("{SET}/status")).await;

        assert_eq!(reply.status.as_u16(), 500, "{:#}", reply.body);
    }
);

both_backends!(
    a_stored_object_name_that_does_not_parse_is_an_error_not_a_default,
    |app| {
        app.seed_storefront().await;
        app.add_httpbin_with_sleep_client().await;
        let manifests = old_manifests(&app).await;
        write_old_deployment(&app, 1, "Applied", &manifests).await;
        app.get(&format!("{SET}/status")).await.expect(200);
        on_db!(app, |conn| {
            // Object names are DNS-1123 subdomains: no capitals, no '_'.
            sqlx::query("UPDATE deployment_objects SET name = 'Not_' || name")
                .execute(&mut conn)
                .await
                .unwrap();
        });

        let reply = app.get(&format!("{SET}/status")).await;

        assert_eq!(reply.status.as_u16(), 500, "{:#}", reply.body);
    }
);
