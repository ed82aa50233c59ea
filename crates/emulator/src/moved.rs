//! My Domain changes (issue #14): a request to an org's previous My Domain host is redirected
//! to the same path on the current one until the org's next change — 301 for GET and HEAD,
//! 307 (method and body kept) for the rest. Salesforce documents "redirect code 301 or
//! redirect code 307" without saying which for which; this is the reading that keeps a POST a
//! POST.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::server::Listener;

pub(crate) async fn redirect_previous(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let Some(host) = host_of(&request) else {
        return next.run(request).await;
    };
    let moved_to = shared.world().moved_from(&host).and_then(|org| org.my_domain.clone());
    let (Some(to), Some(listener)) = (moved_to, request.extensions().get::<Listener>()) else {
        return next.run(request).await;
    };
    let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!("{}{path}", listener.base.replacen("127.0.0.1", &to, 1));
    let status = if matches!(*request.method(), Method::GET | Method::HEAD) {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The host a request was addressed to, lower-cased, without its port.
fn host_of(request: &Request) -> Option<String> {
    let authority =
        request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| request.uri().host())?;
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}
