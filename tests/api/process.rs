//! The real binary: starts with no setup, never logs secrets, stops gracefully on SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::read;
use crate::secrets::{TOKEN, kubeconfig};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(base: &str) {
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready");
}

#[tokio::test]
async fn binary_starts_with_no_setup_hides_secrets_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("meshintent-bin-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshintent"))
        .arg("serve")
        .current_dir(&dir)
        .env("MESHINTENT_LISTEN", format!("127.0.0.1:{port}"))
        .env("MESHINTENT_LOG", "trace")
        .env_remove("DATABASE_URL")
        .env_remove("MESHINTENT_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the logs as they come: a full pipe would block the server mid-request.
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        stderr.read_to_string(&mut logs).unwrap();
        logs
    });
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    // The first start of an empty database wrote an admin token, readable by its owner only.
    let token_file = dir.join("meshintent.admin-token");
    let admin = std::fs::read_to_string(&token_file)
        .expect("the admin token file exists")
        .trim()
        .to_owned();
    assert!(admin.starts_with("mi_") && admin.len() == 46, "{admin}");
    let client = reqwest::Client::new();
    let anonymous = read(
        client
            .get(format!("{base}/v2/clusters"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some(r#"Bearer realm="meshintent""#)
    );
    let reply = read(
        client
            .post(format!("{base}/v2/clusters"))
            .bearer_auth(&admin)
            .json(
                &json!({"metadata": {"name": "c1"}, "spec": {"identity": "c1.example.com",
                "kubeconfig": kubeconfig("https://10.0.0.1:6443")}}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(201);
    assert!(!reply.body.to_string().contains(TOKEN));
    // A bad kubeconfig's error path must not log it either.
    let _ = client
        .post(format!("{base}/v2/clusters"))
        .bearer_auth(&admin)
        .json(&json!({"metadata": {"name": "c2"}, "spec": {"identity": "c2.example.com", "kubeconfig": format!("{TOKEN}: [")}}))
        .send()
        .await
        .unwrap();

    // A token's secret travels in the one response that creates it, and nowhere in the logs;
    // nor does a wrong credential someone sends.
    let created = read(
        client
            .post(format!("{base}/v2/tokens"))
            .bearer_auth(&admin)
            .json(&json!({"metadata": {"name": "ci"}, "spec": {"roles": ["reader"]}}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(201);
    let ci = created.body["status"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    read(
        client
            .get(format!("{base}/v2/clusters"))
            .bearer_auth(&ci)
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200);
    let wrong = format!("mi_{}", "W".repeat(43));
    read(
        client
            .get(format!("{base}/v2/clusters"))
            .bearer_auth(&wrong)
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(401);

    // The embedded default: database and a private key file in the working directory.
    assert!(dir.join("meshintent.db").exists());
    let key = dir.join("meshintent.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for private in [&key, &token_file] {
            assert_eq!(
                std::fs::metadata(private).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                private.display()
            );
        }
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let exit = child.wait().unwrap();
        (exit, logs.join().unwrap())
    });
    let (exit, logs) = tokio::time::timeout(Duration::from_secs(20), exit)
        .await
        .expect("stops within 20s")
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}; logs:\n{logs}");
    assert!(logs.contains("stopped"), "logs:\n{logs}");
    assert!(
        logs.contains("/v2/clusters"),
        "requests are logged:\n{logs}"
    );
    assert!(!logs.contains(TOKEN), "a secret reached the logs:\n{logs}");
    for secret in [&admin, &ci, &wrong] {
        assert!(
            !logs.contains(secret.as_str()),
            "a credential reached the logs"
        );
    }
    assert!(
        logs.contains("meshintent.admin-token"),
        "the token file's path is logged:\n{logs}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn postgres_without_secret_key_refuses_to_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_meshintent"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env_remove("MESHINTENT_SECRET_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MESHINTENT_SECRET_KEY is required"),
        "{stderr}"
    );
}
