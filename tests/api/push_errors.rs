//! How meshintent's cluster clients fail and identify themselves, against real endpoints: a TLS
//! server with certificates from test CAs, a closed port, and the fake API server.

mod tls_server;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use meshintent::push::cause::{describe, is_connection_failure, is_transient, reached_server};
use meshintent::push::connect::{self, ClusterAccess, USER_AGENT};
use meshintent::push::retry::with_retries;
use meshintent::push::{Gate, PushError, RetryPolicy};

use crate::both_backends;
use crate::fake_kube::{FailRule, FakeKube};
use crate::helpers::{SET, TestApp};
use tls_server::{Answer, Authority, TlsServer};

const TOKEN: &str = "tls-test-token-not-to-be-quoted";

async fn client_for(kubeconfig: String) -> kube::Client {
    connect::client(
        &ClusterAccess::Kubeconfig(kubeconfig),
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .await
    .expect("the client builds")
}

/// Four quick attempts: enough to see whether a failure is retried.
fn four_attempts() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    }
}

/// One request that is expected to fail, and the connections the server saw for it.
async fn failed_request(server: &TlsServer, client: &kube::Client) -> (kube::Error, usize) {
    let before = server.connections();
    let error = client
        .apiserver_version()
        .await
        .expect_err("the request fails");
    (error, server.connections() - before)
}

/// The attempts `with_retries` makes for a request, counted as the connections the server saw
/// (the answer closes each one). Its own count is of requests that reached the server.
async fn attempts_with_retries(server: &TlsServer, client: &kube::Client) -> usize {
    let before = server.connections();
    let gate = Gate::unhalted();
    let (result, _) = with_retries(&four_attempts(), &gate, || client.apiserver_version()).await;
    assert!(result.is_err());
    server.connections() - before
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_named_and_tried_once() {
    let cluster_ca = Authority::new("cluster CA");
    let other_ca = Authority::new("some other CA");
    let server = TlsServer::start(
        cluster_ca.server_certificate("127.0.0.1", false),
        Answer::status(500, "InternalError", "must not be reached"),
    )
    .await;
    let client = client_for(server.kubeconfig(&other_ca, TOKEN)).await;

    let (error, connections) = failed_request(&server, &client).await;
    assert_eq!(connections, 1);
    let text = describe(&error);
    assert_eq!(
        text,
        "TLS handshake failed: invalid peer certificate: UnknownIssuer (is the cluster's CA certificate in the kubeconfig right?)"
    );
    assert!(!is_transient(&error));
    assert!(is_connection_failure(&error));
    assert!(!reached_server(&error));
    let pushed = PushError::from_kube(error).to_string();
    assert_eq!(pushed, text);
    assert!(!pushed.contains("client error (Connect)"), "{pushed}");
    assert!(!pushed.contains(TOKEN));

    assert_eq!(attempts_with_retries(&server, &client).await, 1);
}

#[tokio::test]
async fn an_expired_certificate_is_named_and_tried_once() {
    let ca = Authority::new("cluster CA");
    let server = TlsServer::start(
        ca.server_certificate("127.0.0.1", true),
        Answer::status(500, "InternalError", "must not be reached"),
    )
    .await;
    let client = client_for(server.kubeconfig(&ca, TOKEN)).await;

    let (error, _) = failed_request(&server, &client).await;
    let text = describe(&error);
    assert!(
        text.starts_with("TLS handshake failed: invalid peer certificate: certificate expired")
            && text.ends_with(
                "(the API server's certificate is outside its validity period: renew it, or check this machine's clock)"
            ),
        "{text}"
    );
    assert!(!is_transient(&error) && is_connection_failure(&error));
    assert_eq!(attempts_with_retries(&server, &client).await, 1);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_named() {
    let ca = Authority::new("cluster CA");
    let server = TlsServer::start(
        ca.server_certificate("kubernetes.example.com", false),
        Answer::status(500, "InternalError", "must not be reached"),
    )
    .await;
    let client = client_for(server.kubeconfig(&ca, TOKEN)).await;

    let (error, _) = failed_request(&server, &client).await;
    let text = describe(&error);
    assert!(
        text.contains("certificate not valid for name \"127.0.0.1\"")
            && text.contains("check server or tls-server-name"),
        "{text}"
    );
    assert!(!is_transient(&error));
}

#[tokio::test]
async fn refused_credentials_are_said_so_and_not_retried() {
    let ca = Authority::new("cluster CA");
    let server = TlsServer::start(
        ca.server_certificate("127.0.0.1", false),
        Answer::status(401, "Unauthorized", "Unauthorized"),
    )
    .await;
    let client = client_for(server.kubeconfig(&ca, TOKEN)).await;

    let (error, _) = failed_request(&server, &client).await;
    let text = describe(&error);
    assert_eq!(
        text,
        "401 Unauthorized: the API server refused the credentials (are the kubeconfig's token or client certificate valid?)"
    );
    assert!(!is_transient(&error));
    assert!(reached_server(&error) && !is_connection_failure(&error));
    assert_eq!(attempts_with_retries(&server, &client).await, 1);
}

#[tokio::test]
async fn a_refusal_keeps_the_servers_verb_and_resource() {
    let ca = Authority::new("cluster CA");
    let message = "destinationrules.networking.istio.io is forbidden: User \"system:serviceaccount:mesh:meshintent\" cannot list resource \"destinationrules\" in API group \"networking.istio.io\" at the cluster scope";
    let server = TlsServer::start(
        ca.server_certificate("127.0.0.1", false),
        Answer::status(403, "Forbidden", message),
    )
    .await;
    let client = client_for(server.kubeconfig(&ca, TOKEN)).await;

    let (error, _) = failed_request(&server, &client).await;
    assert_eq!(describe(&error), format!("403 Forbidden: {message}"));
    assert!(!is_transient(&error) && reached_server(&error));
    assert_eq!(attempts_with_retries(&server, &client).await, 1);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fake = FakeKube::start().await;
    let kubeconfig = fake
        .kubeconfig()
        .replace(&fake.base_url(), &format!("http://127.0.0.1:{port}"));
    let client = client_for(kubeconfig).await;

    let error = client.apiserver_version().await.expect_err("refused");
    assert_eq!(
        describe(&error),
        "cannot reach the API server: connection refused"
    );
    assert!(is_transient(&error) && is_connection_failure(&error));
    assert!(!reached_server(&error));
}

#[tokio::test]
async fn busy_and_failing_servers_are_transient_and_were_reached() {
    let fake = FakeKube::start().await;
    let client = client_for(fake.kubeconfig()).await;
    for code in [429, 503] {
        fake.fail_next(FailRule {
            method: Some("GET"),
            path_contains: Some("/apis/networking.istio.io/v1"),
            status: code,
            times: 1,
        });
        let error = client
            .list_api_group_resources("networking.istio.io/v1")
            .await
            .expect_err("the injected failure");
        assert!(is_transient(&error), "{code}");
        assert!(
            reached_server(&error) && !is_connection_failure(&error),
            "{code}"
        );
        assert!(describe(&error).starts_with(&format!("{code} ")), "{code}");
    }
}

#[tokio::test]
async fn connect_client_sends_meshintent_s_user_agent() {
    assert_eq!(
        USER_AGENT,
        format!("meshintent/{}", env!("CARGO_PKG_VERSION"))
    );
    let fake = FakeKube::start().await;
    let client = client_for(fake.kubeconfig()).await;
    client.apiserver_version().await.unwrap();
    client
        .list_api_group_resources("networking.istio.io/v1")
        .await
        .unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(
            request.header("user-agent"),
            Some(USER_AGENT),
            "{} {}",
            request.method,
            request.path
        );
    }
}

/// Deploys the set `default` and waits for the deployment to end.
async fn deploy_and_wait(app: &TestApp) -> Value {
    let reply = app
        .request(Method::POST, &format!("{SET}/deploy"), None, &[])
        .await
        .expect(202);
    let url = format!(
        "{SET}/deployments/{}",
        reply.body["revision"].as_i64().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.get(&url).await.expect(200).body;
        if !matches!(
            status["state"].as_str().unwrap(),
            "Pending" | "Applying" | "Terminating"
        ) {
            return status;
        }
        assert!(Instant::now() < deadline, "{status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cluster<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status:#}"))
}

both_backends!(every_request_of_a_deploy_carries_the_user_agent, |app| {
    let a = FakeKube::start().await;
    let b = FakeKube::start().await;
    app.seed_storefront_with(&[a.kubeconfig(), b.kubeconfig()])
        .await;
    app.add_httpbin_with_sleep_client().await;
    let status = deploy_and_wait(&app).await;
    assert_eq!(status["state"], "Applied", "{status:#}");
    let requests: Vec<_> = a.requests().into_iter().chain(b.requests()).collect();
    assert!(requests.iter().any(|r| r.is_write()));
    for request in &requests {
        assert_eq!(
            request.header("user-agent"),
            Some(USER_AGENT),
            "{} {}",
            request.method,
            request.path
        );
    }
});

both_backends!(
    a_cluster_with_the_wrong_ca_fails_once_with_the_cause,
    |app| {
        let cluster_ca = Authority::new("cluster CA");
        let other_ca = Authority::new("some other CA");
        let server = TlsServer::start(
            cluster_ca.server_certificate("127.0.0.1", false),
            Answer::status(500, "InternalError", "must not be reached"),
        )
        .await;
        let b = FakeKube::start().await;
        app.seed_storefront_with(&[server.kubeconfig(&other_ca, TOKEN), b.kubeconfig()])
            .await;
        app.add_httpbin_with_sleep_client().await;
        let before = server.connections();

        let status = deploy_and_wait(&app).await;
        assert_eq!(status["state"], "Degraded", "{status:#}");
        let failed = cluster(&status, "cluster01");
        assert_eq!(failed["state"], "Failed", "{status:#}");
        assert_eq!(
            failed["message"],
            "cannot discover networking.istio.io/v1: TLS handshake failed: invalid peer certificate: UnknownIssuer (is the cluster's CA certificate in the kubeconfig right?)"
        );
        // Not retried: the push settings of the tests allow 3 attempts.
        assert_eq!(server.connections() - before, 1);
        assert_eq!(cluster(&status, "cluster02")["state"], "Applied");
    }
);
