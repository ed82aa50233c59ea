//! Failure classes (issue #14): every failed renewal or call is one of three kinds, each with a
//! stable reason.
//!
//! - **Transient** (network, 5xx, rate limits): retried; the connection stays as it is until it
//!   has been failing past the grace period, then it is Not available — and Logged in again by
//!   itself at the next success.
//! - **Refused** (Salesforce answers, but not with what we asked: the API is off for the user):
//!   Not available now; calls go on, so it recovers when fixed in the org.
//! - **Dead** (the credentials: `invalid_grant` for a revoked, expired or rotated-away token,
//!   an inactive or frozen user, a blocked or uninstalled app, IP restrictions, an inactive org):
//!   Logged out at once, and no further token calls until someone reconnects it.
//!
//! The texts matched are Salesforce's `error` / `error_description` as
//! `docs/salesforce-behaviour.md` records them (with sources).

use domain::StatusReason;
use salesforce::SalesforceError;

/// What kind of failure an error is, and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Transient(StatusReason),
    Refused(StatusReason),
    Dead(StatusReason),
}

impl Failure {
    pub fn reason(self) -> StatusReason {
        match self {
            Failure::Transient(r) | Failure::Refused(r) | Failure::Dead(r) => r,
        }
    }
}

/// Classifies a Salesforce failure.
pub fn classify(e: &SalesforceError) -> Failure {
    let too_many = matches!(e, SalesforceError::OAuth { status: 429, .. } | SalesforceError::Api { status: 429, .. });
    if e.is_transient() || too_many {
        return Failure::Transient(StatusReason::SalesforceUnreachable);
    }
    match e {
        SalesforceError::OAuth { error, description, .. } => oauth(error, &description.to_ascii_lowercase()),
        SalesforceError::Api { code, .. } => match code.as_str() {
            "API_DISABLED_FOR_ORG" | "API_CURRENTLY_DISABLED" | "FUNCTIONALITY_NOT_ENABLED" => {
                Failure::Refused(StatusReason::ApiDisabled)
            }
            // A session refused although a renewal just issued it: locked to another address,
            // IP restrictions the refresh was relaxed from, or API access control.
            "INVALID_SESSION_ID" => Failure::Refused(StatusReason::SessionRefused),
            _ => Failure::Refused(StatusReason::SalesforceError),
        },
        SalesforceError::SessionExpired => Failure::Refused(StatusReason::SessionRefused),
        // Redirected although a renewal just named the instance, or the login host itself
        // redirected: a My Domain change a person has to follow (redirects are never followed
        // with credentials).
        SalesforceError::Moved { .. } => Failure::Dead(StatusReason::MyDomainChanged),
        SalesforceError::InstanceNotAllowed(_) => Failure::Dead(StatusReason::InstanceNotAllowed),
        SalesforceError::HostNotAllowed(_) | SalesforceError::Config(_) => {
            Failure::Refused(StatusReason::SalesforceError)
        }
        SalesforceError::Unreachable { .. } | SalesforceError::Unexpected { .. } => {
            Failure::Transient(StatusReason::SalesforceUnreachable)
        }
    }
}

/// The token endpoint's refusals, by `error` and then by what its description says.
fn oauth(error: &str, description: &str) -> Failure {
    let has = |text: &str| description.contains(text);
    match error {
        "inactive_user" => Failure::Dead(StatusReason::UserInactive),
        "inactive_org" => Failure::Dead(StatusReason::OrgInactive),
        "invalid_client_id" => Failure::Dead(StatusReason::ClientRejected),
        "invalid_app_access" => Failure::Dead(StatusReason::UserNotApproved),
        _ if has("frozen") => Failure::Dead(StatusReason::UserFrozen),
        _ if has("inactive user") || has("user is inactive") => Failure::Dead(StatusReason::UserInactive),
        "app_not_found" => Failure::Dead(StatusReason::AppNotInstalled),
        _ if has("must be installed") || has("not installed") => Failure::Dead(StatusReason::AppNotInstalled),
        _ if has("blocked") => Failure::Dead(StatusReason::AppBlocked),
        _ if has("ip restricted") || has("ip address") => Failure::Dead(StatusReason::IpRestricted),
        _ if has("hasn't approved") || has("not admin approved") || has("not approved") => {
            Failure::Dead(StatusReason::UserNotApproved)
        }
        "invalid_client" | "invalid_client_credentials" => Failure::Dead(StatusReason::ClientRejected),
        "invalid_grant" if has("invalid assertion") || has("signature") => {
            Failure::Dead(StatusReason::CertificateRejected)
        }
        "invalid_grant" if has("expired access/refresh token") || has("expired") || has("revoked") => {
            Failure::Dead(StatusReason::RefreshTokenInvalid)
        }
        // Whatever else an `invalid_grant` says (`authentication failure` for a frozen user,
        // by one report a deactivated one), the grant is what Salesforce refuses.
        "invalid_grant" => Failure::Dead(StatusReason::RefreshTokenInvalid),
        // An error we have no name for is not proof the credentials are dead: keep calling.
        _ => Failure::Refused(StatusReason::SalesforceError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(error: &str, description: &str) -> Failure {
        classify(&SalesforceError::OAuth { status: 400, error: error.into(), description: description.into() })
    }

    #[test]
    fn the_token_endpoints_refusals_have_their_reasons() {
        use StatusReason::*;
        let cases = [
            ("invalid_grant", "expired access/refresh token", RefreshTokenInvalid),
            ("invalid_grant", "inactive user", UserInactive),
            ("inactive_user", "user is inactive", UserInactive),
            ("invalid_grant", "user is frozen", UserFrozen),
            ("invalid_grant", "ip restricted", IpRestricted),
            ("invalid_client", "app must be installed into org", AppNotInstalled),
            ("invalid_grant", "user hasn't approved this consumer", UserNotApproved),
            ("invalid_app_access", "user is not admin approved to access this app", UserNotApproved),
            ("invalid_grant", "invalid assertion", CertificateRejected),
            ("invalid_client_id", "client identifier invalid", ClientRejected),
            ("invalid_client", "invalid client credentials", ClientRejected),
            ("inactive_org", "organization is inactive", OrgInactive),
            ("app_not_found", "External client app is not installed in this org", AppNotInstalled),
            ("invalid_client", "OAUTH_APP_BLOCKED", AppBlocked),
            ("invalid_grant", "authentication failure", RefreshTokenInvalid),
        ];
        for (error, description, reason) in cases {
            assert_eq!(refused(error, description), Failure::Dead(reason), "{error} / {description}");
        }
    }

    #[test]
    fn outages_and_limits_are_transient_and_api_refusals_are_not_logouts() {
        let down = SalesforceError::Unreachable { host: "x".into(), reason: "connect".into() };
        assert_eq!(classify(&down), Failure::Transient(StatusReason::SalesforceUnreachable));
        assert_eq!(refused("rate_limit_exceeded", "too many"), Failure::Transient(StatusReason::SalesforceUnreachable));
        let limit = SalesforceError::Api { status: 403, code: "REQUEST_LIMIT_EXCEEDED".into(), message: "x".into() };
        assert_eq!(classify(&limit), Failure::Transient(StatusReason::SalesforceUnreachable));
        let api = SalesforceError::Api { status: 403, code: "API_DISABLED_FOR_ORG".into(), message: "x".into() };
        assert_eq!(classify(&api), Failure::Refused(StatusReason::ApiDisabled));
        let five = SalesforceError::OAuth { status: 503, error: "unknown".into(), description: "down".into() };
        assert_eq!(classify(&five), Failure::Transient(StatusReason::SalesforceUnreachable));
        let slow_down = SalesforceError::OAuth { status: 429, error: "too_many".into(), description: "x".into() };
        assert_eq!(classify(&slow_down), Failure::Transient(StatusReason::SalesforceUnreachable));
        // An error with no name here is no proof the credentials are dead.
        assert_eq!(refused("invalid_request", "something new"), Failure::Refused(StatusReason::SalesforceError));
        // A session refused right after a renewal is not the refresh token's fault.
        assert_eq!(classify(&SalesforceError::SessionExpired), Failure::Refused(StatusReason::SessionRefused));
        // Redirected, or sent elsewhere by a renewal: a My Domain change a person follows.
        let moved = SalesforceError::Moved { to: "https://new.my.salesforce.com".into() };
        assert_eq!(classify(&moved), Failure::Dead(StatusReason::MyDomainChanged));
        let elsewhere = SalesforceError::InstanceNotAllowed("https://evil.example".into());
        assert_eq!(classify(&elsewhere), Failure::Dead(StatusReason::InstanceNotAllowed));
    }
}
