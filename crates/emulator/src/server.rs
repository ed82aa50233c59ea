//! Listeners: plain HTTP and HTTPS on 127.0.0.1, one router, and the one thing a router cannot
//! do by itself: drop a connection in the middle of a request when a fault asks for it.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Layer, ServiceExt};
use tower_http::normalize_path::NormalizePathLayer;

use crate::observe::DropConnection;
use crate::tls::TlsMaterial;
use crate::{HostKind, Shared, StartError};

/// The scheme, host and port a request arrived on: `http://127.0.0.1:1234`.
#[derive(Debug, Clone)]
pub struct Listener {
    pub base: Arc<str>,
}

/// The address a request came from: what IP restrictions are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);

#[derive(Debug)]
pub struct Running {
    pub http_port: u16,
    pub https_port: Option<u16>,
    stop: watch::Sender<bool>,
}

impl Running {
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Request bodies up to 64 MiB: Salesforce takes 50 MB of JSON text, and a 5 MB resource is
/// about 7 MB as base64.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn router(shared: Shared) -> Router {
    let salesforce = Router::new()
        .nest("/hosts/login", crate::oauth::routes(HostKind::Login))
        .nest("/hosts/test", crate::oauth::routes(HostKind::Test))
        .merge(crate::oauth::routes(HostKind::Instance))
        .merge(crate::rest::routes(shared.clone()))
        .route("/secur/frontdoor.jsp", axum::routing::get(crate::lightning::frontdoor))
        .route("/lightning/page/home", axum::routing::get(crate::lightning::home))
        .route("/lightning/app/{app}", axum::routing::get(crate::lightning::app))
        .route("/lightning/aura/{bundle}/controller.js", axum::routing::get(crate::lightning::controller))
        .route("/lightning/shim.js", axum::routing::get(crate::lightning::shim))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), crate::moved::redirect_previous))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), crate::observe::middleware));
    Router::new()
        .merge(salesforce)
        .nest("/__emulator", crate::admin::routes())
        .fallback(crate::rest::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

pub async fn start(
    shared: Shared,
    http_port: u16,
    https_port: Option<u16>,
    tls: TlsMaterial,
) -> Result<Running, StartError> {
    let app = router(shared);
    let (stop, stopped) = watch::channel(false);
    let http = bind(http_port).await?;
    let http_port = http.local_addr().map_err(|source| StartError::Bind { port: http_port, source })?.port();
    tokio::spawn(serve(http, None, format!("http://127.0.0.1:{http_port}"), app.clone(), stopped.clone()));
    let https_port = match https_port {
        Some(port) => {
            let listener = bind(port).await?;
            let port = listener.local_addr().map_err(|source| StartError::Bind { port, source })?.port();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
            tokio::spawn(serve(listener, Some(acceptor), format!("https://127.0.0.1:{port}"), app, stopped));
            Some(port)
        }
        None => None,
    };
    Ok(Running { http_port, https_port, stop })
}

async fn bind(port: u16) -> Result<TcpListener, StartError> {
    TcpListener::bind(("127.0.0.1", port)).await.map_err(|source| StartError::Bind { port, source })
}

async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    base: String,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let base: Arc<str> = base.into();
    let app = NormalizePathLayer::trim_trailing_slash().layer(app);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "emulator accept failed");
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let base = base.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Listener { base: base.clone() });
                req.extensions_mut().insert(Peer(peer.ip()));
                let app = app.clone();
                async move {
                    let response = match app.oneshot(req.map(axum::body::Body::new)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    if response.extensions().get::<DropConnection>().is_some() {
                        // An error from the service makes hyper close the connection without
                        // answering: the client sees the connection drop mid-request.
                        return Err(DroppedOnPurpose);
                    }
                    Ok::<_, DroppedOnPurpose>(response)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => builder.serve_connection(TokioIo::new(tls_stream), service).await,
                    Err(_) => return,
                },
                None => builder.serve_connection(TokioIo::new(stream), service).await,
            };
            drop(result);
        });
    }
}

#[derive(Debug)]
struct DroppedOnPurpose;

impl std::fmt::Display for DroppedOnPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an emulator fault")
    }
}

impl std::error::Error for DroppedOnPurpose {}
