//! Who may call: the API version, the session, *API Enabled* and the daily allowance (in
//! Salesforce's order), and what a caller can learn about the API itself (version root, limits).

use super::*;

/// Version check, then the session, *API Enabled* and the daily allowance, in Salesforce's
/// order; adds `Sforce-Limit-Info` to every answer.
pub(super) async fn authenticate(State(shared): State<Shared>, mut request: Request, next: Next) -> Response {
    let segment = request.uri().path().split('/').nth(3).unwrap_or_default().to_string();
    let version = if segment == "latest" {
        format!("{LATEST_API_VERSION}.0")
    } else {
        match segment.strip_prefix('v').and_then(|v| v.parse::<f64>().ok()) {
            Some(v) if v.fract() == 0.0 && (OLDEST_API_VERSION..=LATEST_API_VERSION).contains(&(v as u32)) => {
                format!("{}.0", v as u32)
            }
            Some(v) if v > 0.0 && (v as u32) < OLDEST_API_VERSION => {
                return error(
                    StatusCode::GONE,
                    "GONE",
                    "The requested version has been retired and is no longer available.",
                );
            }
            _ => return not_found_body(),
        }
    };
    let peer = request
        .extensions()
        .get::<crate::server::Peer>()
        .map(|p| p.0)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
        .map(|t| t.trim().to_string());
    let now = shared.clock.now_ms();
    let (ctx, used, max) = {
        let mut world = shared.world();
        let Some(session) = token.and_then(|t| world.touch_session(&t, now)) else {
            let mut r = error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
            return r;
        };
        let actor = Actor { org_id: session.org_id.clone(), user_id: Some(session.user_id.clone()) };
        // An app whose IP Relaxation enforces the profile's login IP ranges: a session used
        // from outside them is not valid there.
        let refused_here = world.apps.get(&session.consumer_key).is_some_and(|app| {
            app.ip_relaxation != crate::seed::IpRelaxation::Relax
                && world
                    .orgs
                    .get(&session.org_id)
                    .is_some_and(|org| !crate::policy::allowed(&org.login_ip_ranges, peer))
        });
        if refused_here {
            let mut r = error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
            r.extensions_mut().insert(actor);
            return r;
        }
        if !session.scopes.iter().any(|s| s == "api" || s == "full") {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "This session is not valid for use with the REST API",
            );
            r.extensions_mut().insert(actor);
            return r;
        }
        if !world.users.get(&session.user_id).is_some_and(|u| u.api_enabled) {
            let mut r = error(StatusCode::FORBIDDEN, "API_CURRENTLY_DISABLED", "API is disabled for this User");
            r.extensions_mut().insert(actor);
            return r;
        }
        let Some(org) = world.orgs.get_mut(&session.org_id) else {
            return not_found_body();
        };
        if org.api_used >= org.daily_api_limit {
            let mut r = error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
            r.extensions_mut().insert(actor);
            return r;
        }
        org.api_used += 1;
        let ctx = Ctx { org_id: session.org_id, user_id: session.user_id, version, login_base: session.login_base };
        (ctx, org.api_used, org.daily_api_limit)
    };
    let actor = Actor { org_id: ctx.org_id.clone(), user_id: Some(ctx.user_id.clone()) };
    request.extensions_mut().insert(ctx);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response.extensions_mut().insert(actor);
    response
}

pub(super) async fn version_root(Extension(ctx): Extension<Ctx>, Extension(listener): Extension<Listener>) -> Response {
    let v = format!("/services/data/v{}", ctx.version);
    let mut map = Map::new();
    for name in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "prechatForms",
        "contact-tracing",
        "jsonxform",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "commerce",
        "wave",
        "iot",
        "analytics",
        "search",
        "smartdatadiscovery",
        "composite",
        "parameterizedSearch",
        "fingerprint",
        "theme",
        "nouns",
        "recent",
        "licensing",
        "limits",
        "process",
        "async-queries",
        "query",
        "match",
        "emailConnect",
        "compactLayouts",
        "knowledgeManagement",
        "sobjects",
        "actions",
        "support",
        "scheduling",
    ] {
        map.insert(name.to_string(), json!(format!("{v}/{name}")));
    }
    map.insert("identity".into(), json!(format!("{}/id/{}/{}", ctx.login_base, ctx.org_id, ctx.user_id)));
    let _ = listener;
    op(axum::Json(Value::Object(map)).into_response(), "version_root".into())
}

pub(super) async fn limits(State(shared): State<Shared>, Extension(ctx): Extension<Ctx>) -> Response {
    let world = shared.world();
    // "available … for API users with the View Setup and Configuration permission"; the
    // refusal's wording is not documented.
    if !world.users.get(&ctx.user_id).is_some_and(|u| u.view_setup) {
        return error(
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_ACCESS",
            "The Limits resource requires the View Setup and Configuration permission",
        );
    }
    let org = &world.orgs[&ctx.org_id];
    let used_storage = world.org_resource_bytes(&ctx.org_id) / (1024 * 1024);
    let dev = org.edition.contains("Developer");
    let pair = |max: u64, remaining: u64| json!({"Max": max, "Remaining": remaining});
    let fixed = |max: u64| pair(max, max);
    let body = json!({
        "ConcurrentAsyncGetReportInstances": fixed(200),
        "ConcurrentSyncReportRuns": fixed(20),
        "DailyApiRequests": pair(org.daily_api_limit, org.daily_api_limit.saturating_sub(org.api_used)),
        "DailyAsyncApexExecutions": fixed(250_000),
        "DailyBulkApiRequests": fixed(if dev { 5_000 } else { 15_000 }),
        "DailyDurableGenericStreamingApiEvents": fixed(10_000),
        "DailyDurableStreamingApiEvents": fixed(10_000),
        "DailyGenericStreamingApiEvents": fixed(10_000),
        "DailyStreamingApiEvents": fixed(10_000),
        "DailyWorkflowEmails": fixed(390),
        "DataStorageMB": fixed(if dev { 5 } else { 1024 }),
        "DurableStreamingApiConcurrentClients": fixed(20),
        "FileStorageMB": pair(if dev { 20 } else { 10_240 }, (if dev { 20u64 } else { 10_240 }).saturating_sub(used_storage as u64)),
        "HourlyAsyncReportRuns": fixed(1200),
        "HourlyDashboardRefreshes": fixed(200),
        "HourlyDashboardResults": fixed(5000),
        "HourlyDashboardStatuses": fixed(999_999_999),
        "HourlyODataCallout": fixed(10_000),
        "HourlySyncReportRuns": fixed(500),
        "HourlyTimeBasedWorkflow": fixed(50),
        "MassEmail": fixed(10),
        "SingleEmail": fixed(15),
        "StreamingApiConcurrentClients": fixed(20),
    });
    op(axum::Json(body).into_response(), "limits".into())
}
