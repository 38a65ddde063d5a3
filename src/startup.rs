//! Builds the application from settings and binds its listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service as _};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlers;
use actix_web::{App, HttpResponse, HttpServer, web};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::{self, fallback};
use crate::configuration::Settings;
use crate::error::Error;
use crate::service::Service;

/// Largest request body accepted (kubeconfigs can be tens of kilobytes).
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] crate::store::StoreError),
    #[error("secret key: {0}")]
    SecretKey(#[from] crate::crypto::CryptoError),
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
    service: Service,
    worker: Option<crate::worker::WorkerHandle>,
}

/// A running application (for tests: stop it, or kill it as a crash would).
pub struct RunningApplication {
    pub port: u16,
    server: actix_web::dev::ServerHandle,
    worker: Option<crate::worker::WorkerHandle>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApplication {
    /// Stops at once: the worker is aborted mid-deployment and the server drops connections.
    pub async fn kill(self) {
        if let Some(worker) = &self.worker {
            worker.kill();
        }
        self.server.stop(false).await;
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
        let service = Service::new(store, secrets).with_push_settings(settings.push.clone());
        let listen_error = |source| StartupError::Listen {
            address: settings.listen.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.listen).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let server = run(listener, service.clone(), settings).map_err(listen_error)?;
        tracing::info!(address = %settings.listen, port, "listening; API documentation at /swagger-ui/");
        let worker = settings
            .worker
            .clone()
            .map(|w| crate::worker::spawn(service.clone(), w));
        Ok(Self {
            port,
            server,
            service,
            worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Serves until the server is stopped (SIGTERM/SIGINT when signals are handled), then stops
    /// the worker (a deployment in progress is resumed by another worker, or at the next start,
    /// once its lease runs out) and closes the database pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
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
            service,
            worker,
        } = self;
        let task = tokio::spawn(async move {
            let result = server.await;
            service.store().close().await;
            result
        });
        RunningApplication {
            port,
            server: handle,
            worker,
            task,
        }
    }
}

fn run(listener: TcpListener, service: Service, settings: &Settings) -> std::io::Result<Server> {
    let openapi = Arc::new(api::openapi());
    let routes = web::Data::new(fallback::RouteTable::from_openapi(&openapi));
    let service = web::Data::new(service);
    let mut server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .app_data(service.clone())
            .app_data(routes.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
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
        .default_service(web::to(fallback::not_routed))
        .wrap(ErrorHandlers::new().default_handler(fallback::to_problem))
        .wrap_fn(|req, srv| {
            let started = Instant::now();
            let method = req.method().clone();
            let path = req.path().to_owned();
            let fut = srv.call(req);
            async move {
                let res = fut.await?;
                let status = res.status();
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(%method, %path, status = status.as_u16(), ms, "request");
                } else {
                    tracing::info!(%method, %path, status = status.as_u16(), ms, "request");
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
