//! `meshintent apply -f FILE --server URL --deploy --wait`, the real binary against a server.

use std::process::Command;

use serde_json::json;

use crate::both_backends;
use crate::fake_kube::FakeKube;
use crate::helpers::TestApp;

fn document(a: &FakeKube, b: &FakeKube) -> String {
    json!({
        "clusters": [
            {"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com", "kubeconfig": a.kubeconfig(),
                "istio": {"ingressGateway": {"address": "198.51.100.10"}}}},
            {"metadata": {"name": "cluster02"}, "spec": {"identity": "cluster02.mesh.example.com", "kubeconfig": b.kubeconfig(),
                "istio": {"ingressGateway": {"address": "198.51.100.20"}}}}
        ],
        "projects": [{"metadata": {"name": "shop"}, "spec": {"namespaces": ["default"]}, "compositeApps": [{
            "metadata": {"name": "storefront"}, "spec": {"version": "v1"},
            "apps": [
                {"metadata": {"name": "httpbin"}, "spec": {"namespace": "default", "placement": {"clusters": ["cluster01"]}}},
                {"metadata": {"name": "sleep"}, "spec": {"namespace": "default", "placement": {"clusters": ["cluster02"]}}}
            ],
            "trafficIntentSets": [{"metadata": {"name": "default"}, "inboundIntents": [{
                "metadata": {"name": "httpbin"},
                "spec": {"app": "httpbin", "serviceName": "httpbin", "port": 8000, "protocol": "HTTP"},
                "clients": [{"metadata": {"name": "sleep"}, "spec": {"app": "sleep"},
                    "securityIntents": [{"metadata": {"name": "status"}, "spec": {"rules": [{"methods": ["GET"], "paths": ["/status"]}]}}]}]
            }]}]
        }]}]
    })
    .to_string()
}

async fn apply_cli(app: &TestApp, file: &std::path::Path) -> (bool, String) {
    let (file, server, token) = (file.to_owned(), app.address.clone(), app.token.clone());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_meshintent"))
            .env("MESHINTENT_TOKEN", token)
            .args(["apply", "-f"])
            .arg(&file)
            .args(["--server", &server, "--deploy", "--wait"])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

both_backends!(
    apply_deploy_wait_converges_and_is_idempotent,
    configure = |settings: &mut meshintent::configuration::Settings, _: &std::path::Path| {
        settings.push.outage.give_up_after = std::time::Duration::from_secs(1);
    },
    |app| {
        let a = FakeKube::start().await;
        let b = FakeKube::start().await;
        let file =
            std::env::temp_dir().join(format!("meshintent-apply-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&file, document(&a, &b)).unwrap();

        let (ok, out) = apply_cli(&app, &file).await;
        assert!(ok, "{out}");
        assert!(out.contains("created /v2/clusters/cluster01"), "{out}");
        assert!(out.contains("created /v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents/httpbin/clients/sleep/security-intents/status"), "{out}");
        assert!(
        out.contains(
            "revision 1 Applied: cluster01 Applied (4/4 objects), cluster02 Applied (2/2 objects)"
        ),
        "{out}"
    );
        assert_eq!(a.objects().len(), 4);
        // --wait follows the set's event stream: a line per cluster as its objects finish
        // (not a terminal here, so plain lines), ending with each cluster's state.
        let deployment = "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default/deployments/1";
        assert!(
            out.contains(&format!("{deployment}: cluster01: 4/4 objects, Applied")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{deployment}: cluster02: 2/2 objects, Applied")),
            "{out}"
        );
        // (A "0/4 objects" line is printed only when the stream starts before the worker's first
        // apply, which a loaded machine does not promise.)

        // Running it again changes nothing: no resource, and no object on any cluster.
        a.clear_requests();
        b.clear_requests();
        let (ok, out) = apply_cli(&app, &file).await;
        assert!(ok, "{out}");
        assert!(
            !out.contains("created ") && !out.contains("replaced "),
            "{out}"
        );
        assert!(
            out.contains("unchanged /v2/clusters/cluster01"),
            "the kubeconfig is not counted as a change: {out}"
        );
        assert_eq!((a.write_count(), b.write_count()), (0, 0));

        // A cluster that is down: once the deploy gives up waiting for it, it ends Degraded and
        // apply exits non-zero, saying why.
        b.stop().await;
        let (ok, out) = apply_cli(&app, &file).await;
        assert!(!ok, "{out}");
        assert!(out.contains("Degraded"), "{out}");
        assert!(out.contains("cluster02: gave up after 1s"), "{out}");
        std::fs::remove_file(file).unwrap();
    }
);

#[test]
fn apply_reports_document_errors_with_pointers_before_writing() {
    let file = std::env::temp_dir().join(format!("meshintent-bad-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&file, "projects:\n  - metadata: {name: Shop}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meshintent"))
        .args(["apply", "-f"])
        .arg(&file)
        .args(["--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/projects/0/metadata/name"), "{stderr}");
    std::fs::remove_file(file).unwrap();
}

#[test]
fn render_refuses_a_document_over_the_node_limit_and_the_limit_can_be_raised() {
    let file = std::env::temp_dir().join(format!("meshintent-big-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        "clusters:\n  - metadata: {name: cluster01}\n    spec: {identity: cluster01.mesh.example.com}\n",
    )
    .unwrap();
    let render = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_meshintent"));
        command.args(["render", "-f"]).arg(&file).args(args);
        command.env_remove("MESHINTENT_MAX_DOCUMENT_NODES");
        if let Some(limit) = env {
            command.env("MESHINTENT_MAX_DOCUMENT_NODES", limit);
        }
        command.output().unwrap()
    };
    // The document has 12 nodes: 5 mappings and sequences, 5 keys and 2 values.
    for out in [
        render(&["--max-document-nodes", "10"], None),
        render(&[], Some("10")),
    ] {
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the document has more than 10 YAML nodes")
                && stderr.contains(
                    "raise the limit with --max-document-nodes or MESHINTENT_MAX_DOCUMENT_NODES (now 10)"
                ),
            "{stderr}"
        );
    }
    for out in [
        render(&["--max-document-nodes", "12"], None),
        render(&[], None),
    ] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_file(file).unwrap();
}

/// An intent document whose YAML (about 500 KiB) is far larger than a pipe's buffer (64 KiB),
/// so `render` is still writing when its reader goes away.
fn document_of_many_intents() -> String {
    let mut text = String::from(
        "clusters:
  - metadata: {name: cluster01}
    spec: {identity: cluster01.mesh.example.com}
projects:
  - metadata: {name: shop}
    spec: {namespaces: [default]}
    compositeApps:
      - metadata: {name: storefront}
        spec: {version: v1}
        apps:
          - metadata: {name: httpbin}
            spec: {namespace: default, placement: {clusters: [cluster01]}}
          - metadata: {name: sleep}
            spec: {namespace: default, placement: {clusters: [cluster01]}}
        trafficIntentSets:
          - metadata: {name: default}
            inboundIntents:
",
    );
    for i in 0..300 {
        text.push_str(&format!(
            "              - metadata: {{name: svc{i}}}
                spec: {{app: httpbin, serviceName: svc{i}, port: 8000, protocol: HTTP}}
                clients:
                  - metadata: {{name: sleep}}
                    spec: {{app: sleep}}
"
        ));
    }
    text
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    use std::io::BufRead;
    let file = std::env::temp_dir().join(format!("meshintent-many-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&file, document_of_many_intents()).unwrap();
    let path = file.to_str().unwrap();
    // `meshintent ... | head -1`: read one line, then close the pipe.
    for args in [
        vec!["render", "-f", path],
        vec!["render", "-f", path, "-o", "json"],
        vec!["openapi"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshintent"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{args:?}");
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    std::fs::remove_file(file).unwrap();
}
