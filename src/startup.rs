//! Builds the application from settings and binds its listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service as _};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, web};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::guard::{REQUEST_ID, RequestId};
use crate::api::{self, fallback};
use crate::auth::Authenticator;
use crate::configuration::Settings;
use crate::error::Error;
use crate::service::{Caller, Service};
use crate::ui;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] crate::store::StoreError),
    #[error("secret key: {0}")]
    SecretKey(#[from] crate::crypto::CryptoError),
    #[error("OIDC: {0}")]
    Oidc(#[from] crate::auth::oidc::OidcError),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// A bound, not yet running server, and its deploy worker.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own listener, with its port.
    metrics: Option<(Server, u16)>,
    service: Service,
    worker: Option<crate::worker::WorkerHandle>,
    /// The event retention (`Service::spawn_event_pruner`), ended with the server.
    pruner: tokio::task::JoinHandle<()>,
}

/// A running application (for tests: stop it, or kill it as a crash would).
pub struct RunningApplication {
    pub port: u16,
    /// The metrics listener's port, when it has one.
    pub metrics_port: Option<u16>,
    server: actix_web::dev::ServerHandle,
    metrics: Option<actix_web::dev::ServerHandle>,
    worker: Option<crate::worker::WorkerHandle>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApplication {
    /// Stops as on SIGTERM: the worker finishes and records the objects in flight and releases
    /// its deployment (another replica resumes it at once), then the server stops.
    pub async fn stop(self) {
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
        self.server.stop(true).await;
        if let Some(metrics) = &self.metrics {
            metrics.stop(true).await;
        }
        let _ = self.task.await;
    }

    /// Stops at once: the worker is aborted mid-deployment and the server drops connections.
    pub async fn kill(self) {
        if let Some(worker) = &self.worker {
            worker.kill();
        }
        self.server.stop(false).await;
        if let Some(metrics) = &self.metrics {
            metrics.stop(false).await;
        }
        let _ = self.task.await;
    }
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        crate::tls::install_crypto_provider();
        crate::telemetry::init_metrics();
        tracing::info!(database = %settings.database.describe(), "connecting");
        let store = settings.database.connect().await?;
        store.migrate().await?;
        let secrets = settings.secret_key.load()?;
        let service = Service::new(store, secrets)
            .with_push_settings(settings.push.clone())
            .with_event_settings(settings.events.clone());
        bootstrap(&service, settings).await?;
        // Collisions in stored data are warned about, never a reason not to start.
        if let Err(e) = service.derive_stored_claims().await {
            tracing::warn!(error = %e, "deriving the mesh-name claims of stored intents failed");
        }
        let authenticator = Authenticator::new(settings.auth.clone()).await?;
        if !settings.auth.enabled {
            tracing::warn!("authentication is OFF: every request is served as an admin");
        }
        let listen_error = |source| StartupError::Listen {
            address: settings.listen.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.listen).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let server =
            run(listener, service.clone(), authenticator, settings).map_err(listen_error)?;
        let metrics = match &settings.metrics_listen {
            Some(address) => {
                let error = |source| StartupError::Listen {
                    address: address.clone(),
                    source,
                };
                let listener = TcpListener::bind(address).map_err(error)?;
                let port = listener.local_addr().map_err(error)?.port();
                let service = web::Data::new(service.clone());
                let mut metrics = HttpServer::new(move || {
                    App::new()
                        .app_data(service.clone())
                        .wrap(from_fn(api::conformance::conform))
                        .route(
                            "/metrics",
                            web::get().to(|svc: web::Data<Service>| async move {
                                api::deploy::metrics_response(&svc).await
                            }),
                        )
                })
                .workers(1)
                .shutdown_timeout(settings.shutdown_timeout);
                if !settings.handle_signals {
                    metrics = metrics.disable_signals();
                }
                let server = metrics.listen(listener).map_err(error)?.run();
                tracing::info!(%address, port, "metrics listening");
                Some((server, port))
            }
            None => None,
        };
        tracing::info!(address = %settings.listen, port, "listening; API documentation at /swagger-ui/");
        let worker = settings
            .worker
            .clone()
            .map(|w| crate::worker::spawn(service.clone(), w));
        let pruner = service.spawn_event_pruner();
        Ok(Self {
            port,
            server,
            metrics,
            service,
            worker,
            pruner,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Serves until the server is stopped (SIGTERM/SIGINT when signals are handled), then stops
    /// the worker (the objects in flight finish and are recorded, and a deployment in progress
    /// is released, so another replica resumes it at once) and closes the database pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        self.pruner.abort();
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
        self.service.store().close().await;
        tracing::info!("stopped");
        result
    }

    /// Runs in the background (tests).
    pub fn spawn(self) -> RunningApplication {
        let handle = self.server.handle();
        let Application {
            port,
            server,
            metrics,
            service,
            worker,
            pruner,
        } = self;
        let metrics_port = metrics.as_ref().map(|(_, port)| *port);
        let metrics = metrics.map(|(server, _)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let task = tokio::spawn(async move {
            let result = server.await;
            pruner.abort();
            service.store().close().await;
            result
        });
        RunningApplication {
            port,
            metrics_port,
            server: handle,
            metrics,
            worker,
            task,
        }
    }
}

/// Creates the first admin token: the operator's `MESHINTENT_BOOTSTRAP_TOKEN`, once (revoking it
/// lasts; of replicas starting together one creates it); else, with the embedded default and no global token at all, a new one
/// written to `meshintent.admin-token` (mode 0600) beside the database. Only the file's path
/// is logged, never a token.
async fn bootstrap(service: &Service, settings: &Settings) -> Result<(), StartupError> {
    let caller = Caller::system("bootstrap");
    let failed = |e: Error| StartupError::Bootstrap(e.to_string());
    if let Some(secret) = settings
        .bootstrap_token
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        if !crate::auth::token::looks_like_token(secret) {
            return Err(StartupError::Bootstrap(
                "MESHINTENT_BOOTSTRAP_TOKEN must be mi_ followed by 43 base64url characters (256 random bits)".into(),
            ));
        }
        if service.token_exists(secret).await.map_err(failed)? {
            return Ok(());
        }
        if !service.claim_bootstrap(secret).await.map_err(failed)? {
            tracing::info!(
                "the MESHINTENT_BOOTSTRAP_TOKEN token was created before and has been revoked (or another replica is creating it); not creating it again"
            );
            return Ok(());
        }
        let name = format!("bootstrap-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        let name = name.parse().map_err(StartupError::Bootstrap)?;
        service
            .create_admin_token(name, &caller, Some(secret.to_owned()))
            .await
            .map_err(failed)?;
        tracing::info!("created the admin token given in MESHINTENT_BOOTSTRAP_TOKEN");
        return Ok(());
    }
    let Some(file) = settings.database.admin_token_file() else {
        return Ok(());
    };
    if service.has_global_tokens().await.map_err(failed)? {
        return Ok(());
    }
    // The file first (it must not exist yet), so that a token is never created that nobody
    // can read.
    let mut handle = crate::crypto::create_private(&file).map_err(|e| {
        StartupError::Bootstrap(format!(
            "cannot create {} for the first admin token: {e} (if it is stale, remove it)",
            file.display()
        ))
    })?;
    let name = "admin".parse().map_err(StartupError::Bootstrap)?;
    let secret = match service.create_admin_token(name, &caller, None).await {
        Ok(secret) => secret,
        Err(e) => {
            drop(handle);
            let _ = std::fs::remove_file(&file);
            return Err(failed(e));
        }
    };
    let written = {
        use std::io::Write;
        handle
            .write_all(secret.as_bytes())
            .and_then(|()| handle.write_all(b"\n"))
            .and_then(|()| handle.sync_all())
    };
    written.map_err(|e| {
        StartupError::Bootstrap(format!(
            "cannot write the admin token to {}: {e}; create one with `meshintent token create --admin`",
            file.display()
        ))
    })?;
    tracing::info!(file = %file.display(), "created the first admin token; send it as Authorization: Bearer <token>");
    Ok(())
}

/// What the console is told before sign-in: OIDC sign-in uses the API's audience as its client id,
/// because the ID token it receives is what the API then verifies (its `aud` is the client id).
fn console_config(settings: &Settings) -> ui::ConsoleConfig {
    ui::ConsoleConfig {
        version: env!("CARGO_PKG_VERSION"),
        oidc: settings.auth.oidc.as_ref().map(|oidc| ui::ConsoleOidc {
            issuer: oidc.issuer.clone(),
            client_id: oidc.audience.clone(),
            scopes: "openid profile email".into(),
        }),
    }
}

fn run(
    listener: TcpListener,
    service: Service,
    authenticator: Arc<Authenticator>,
    settings: &Settings,
) -> std::io::Result<Server> {
    let openapi = Arc::new(api::openapi());
    let operations = web::Data::new(api::policy::OperationTable::from_openapi(&openapi));
    let authenticator = web::Data::from(authenticator);
    let limits = web::Data::new(api::guard::Limits {
        max_body_bytes: settings.max_body_bytes,
        max_document_bytes: settings.max_document_bytes,
    });
    let max_body = settings.max_body_bytes;
    let console = console_config(settings);
    let metrics_elsewhere = settings.metrics_listen.is_some();
    let service = web::Data::new(service);
    let mut server = HttpServer::new(move || {
        let mut app = App::new();
        if metrics_elsewhere {
            app = app.app_data(web::Data::new(api::deploy::MetricsElsewhere));
        }
        let (app, _) = app
            .into_utoipa_app()
            .app_data(service.clone())
            .app_data(operations.clone())
            .app_data(authenticator.clone())
            .app_data(limits.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                Error::BadRequest {
                    detail: format!("bad query parameters: {err}"),
                    errors: Vec::new(),
                }
                .into()
            }))
            .configure(api::routes)
            .split_for_parts();
        app.service(
            SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", (*openapi).clone()),
        )
        .route(
            "/swagger-ui",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/swagger-ui/"))
                    .finish()
            }),
        )
        .configure(|cfg| ui::register(cfg, console.clone()))
        .default_service(web::to(fallback::not_routed))
        .wrap(ErrorHandlers::new().default_handler(fallback::to_problem))
        .wrap(from_fn(api::guard::guard))
        .wrap(from_fn(api::conformance::conform))
        .wrap_fn(|req, srv| {
            let started = Instant::now();
            let method = req.method().clone();
            // The path only: query strings are not logged (they are not meant for secrets,
            // but nothing guarantees callers know that).
            let path = req.path().to_owned();
            let request_id = RequestId::of(&req);
            req.extensions_mut().insert(request_id.clone());
            // Everything logged while the request is handled carries its id.
            let span = tracing::info_span!("request", request_id = %request_id.0);
            let fut = tracing::Instrument::instrument(srv.call(req), span);
            async move {
                let mut res = fut.await?;
                let status = res.status();
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let id = request_id.0;
                if let Ok(value) = HeaderValue::from_str(&id) {
                    res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), value);
                }
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(%method, %path, status = status.as_u16(), ms, request_id = %id, "request");
                } else {
                    tracing::info!(%method, %path, status = status.as_u16(), ms, request_id = %id, "request");
                }
                Ok(res)
            }
        })
    })
    .shutdown_timeout(settings.shutdown_timeout);
    if !settings.handle_signals {
        server = server.disable_signals();
    }
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}
