//! A token's life after day one (issue #14), as `docs/salesforce-behaviour.md` records it:
//! refresh-token policies, rotation and its replay rule, IP restrictions.

use std::net::IpAddr;

use crate::seed::{IpRelaxation, RefreshTokenPolicy};
use crate::state::{App, RefreshGrant};

/// An IP range as Setup takes it: one address, `start-end`, or CIDR (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    start: IpAddr,
    end: IpAddr,
}

impl IpRange {
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let bad = || format!("{text:?} is not an IP address, a range start-end, or CIDR");
        if let Some((start, end)) = text.split_once('-') {
            let (start, end): (IpAddr, IpAddr) =
                (start.trim().parse().map_err(|_| bad())?, end.trim().parse().map_err(|_| bad())?);
            if start.is_ipv4() != end.is_ipv4() || start > end {
                return Err(bad());
            }
            return Ok(IpRange { start, end });
        }
        if let Some((net, bits)) = text.split_once('/') {
            let net: IpAddr = net.parse().map_err(|_| bad())?;
            let bits: u32 = bits.parse().map_err(|_| bad())?;
            return match net {
                IpAddr::V4(v4) if bits <= 32 => {
                    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                    let base = u32::from(v4) & mask;
                    Ok(IpRange { start: IpAddr::V4(base.into()), end: IpAddr::V4((base | !mask).into()) })
                }
                IpAddr::V6(v6) if bits <= 128 => {
                    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                    let base = u128::from(v6) & mask;
                    Ok(IpRange { start: IpAddr::V6(base.into()), end: IpAddr::V6((base | !mask).into()) })
                }
                _ => Err(bad()),
            };
        }
        let one: IpAddr = text.parse().map_err(|_| bad())?;
        let one = canonical(one);
        Ok(IpRange { start: one, end: one })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.start.is_ipv4() && self.start <= ip && ip <= self.end
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub fn parse_ranges(texts: &[String]) -> Result<Vec<IpRange>, String> {
    texts.iter().map(|t| IpRange::parse(t)).collect()
}

/// Whether `ip` is inside `ranges` (no ranges: every address is).
pub fn allowed(ranges: &[IpRange], ip: IpAddr) -> bool {
    ranges.is_empty() || ranges.iter().any(|r| r.contains(ip))
}

/// What a token request is, for the IP rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRequest {
    /// A sign-in (authorization code, JWT bearer, client credentials).
    SignIn,
    /// A refresh-token grant.
    Refresh,
}

/// Whether the org's login IP ranges refuse this token request from `ip`, as the app's IP
/// Relaxation applies them. JWT bearer always enforces them (Salesforce: "the JWT bearer flow
/// enforces the user's profile IP restrictions"); the caller passes `Enforce` for it.
pub fn login_ranges_refuse(relaxation: IpRelaxation, request: TokenRequest, ranges: &[IpRange], ip: IpAddr) -> bool {
    let enforced = match relaxation {
        IpRelaxation::Enforce => true,
        IpRelaxation::EnforceRelaxRefresh => request == TokenRequest::SignIn,
        IpRelaxation::Relax => false,
    };
    enforced && !allowed(ranges, ip)
}

/// Whether the app's refresh token policy has ended this grant at `now`.
pub fn refresh_expired(app: &App, grant: &RefreshGrant, now: i64) -> bool {
    match app.refresh_policy {
        RefreshTokenPolicy::ValidUntilRevoked => false,
        RefreshTokenPolicy::ImmediatelyExpire => true,
        RefreshTokenPolicy::ExpireAfter { seconds } => now - grant.issued_ms >= seconds as i64 * 1000,
        RefreshTokenPolicy::ExpireIfUnused { seconds } => now - grant.last_used_ms >= seconds as i64 * 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_setup_takes_them() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let cidr = IpRange::parse("10.0.0.0/8").expect("cidr");
        assert!(cidr.contains(ip("10.255.1.2")) && !cidr.contains(ip("11.0.0.1")));
        let span = IpRange::parse("192.0.2.1-192.0.2.9").expect("range");
        assert!(span.contains(ip("192.0.2.9")) && !span.contains(ip("192.0.2.10")));
        assert!(IpRange::parse("127.0.0.1").expect("one").contains(ip("::ffff:127.0.0.1")));
        assert!(IpRange::parse("::1").expect("v6").contains(ip("::1")));
        assert!(IpRange::parse("::ffff:127.0.0.1").expect("mapped").contains(ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "192.0.2.9-192.0.2.1", "localhost", "10.0.0.1-::1"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        assert!(allowed(&[], ip("203.0.113.5")), "no ranges: anywhere");
    }

    #[test]
    fn relaxation_decides_which_token_requests_the_ranges_refuse() {
        let ranges = vec![IpRange::parse("10.0.0.0/8").expect("cidr")];
        let outside: IpAddr = "127.0.0.1".parse().expect("ip");
        use IpRelaxation::*;
        use TokenRequest::*;
        assert!(login_ranges_refuse(Enforce, Refresh, &ranges, outside));
        assert!(login_ranges_refuse(EnforceRelaxRefresh, SignIn, &ranges, outside));
        assert!(!login_ranges_refuse(EnforceRelaxRefresh, Refresh, &ranges, outside));
        assert!(!login_ranges_refuse(Relax, SignIn, &ranges, outside));
        assert!(!login_ranges_refuse(Enforce, Refresh, &ranges, "10.1.2.3".parse().expect("ip")));
    }
}
