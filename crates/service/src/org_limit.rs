//! How many targets publish into one org at once, adapted to how the org answers (#17):
//! Salesforce's `REQUEST_LIMIT_EXCEEDED`, `UNABLE_TO_LOCK_ROW` and 503s halve it (down to one),
//! and a run of quiet successes raises it again by one (up to the configured `per_org`) —
//! additive increase, multiplicative decrease, per org.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One org's gate.
#[derive(Debug)]
pub struct OrgLimit {
    most: usize,
    state: Mutex<State>,
    freed: Notify,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// Successes since the limit last moved.
    quiet: usize,
}

/// A place in the org's gate; given back when dropped.
#[derive(Debug)]
pub struct OrgPermit(Arc<OrgLimit>);

impl Drop for OrgPermit {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.in_flight = s.in_flight.saturating_sub(1);
        drop(s);
        self.0.freed.notify_waiters();
    }
}

/// How an attempt on the org went, for its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It worked (or failed for a reason of its own): quiet.
    Quiet,
    /// The org pushed back: a limit or lock error, or 503.
    Pressure,
}

impl OrgLimit {
    pub fn new(most: usize) -> Arc<OrgLimit> {
        let most = most.max(1);
        Arc::new(OrgLimit {
            most,
            state: Mutex::new(State { limit: most, in_flight: 0, quiet: 0 }),
            freed: Notify::new(),
        })
    }

    /// Waits for a place under the org's current limit.
    pub async fn acquire(self: &Arc<Self>) -> OrgPermit {
        loop {
            let freed = self.freed.notified();
            {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return OrgPermit(self.clone());
                }
            }
            freed.await;
        }
    }

    /// Adapts the limit to an answer: halved on pressure, one more after `2 × most` quiet ones.
    pub fn answered(&self, answer: Answer) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match answer {
            Answer::Pressure => {
                s.limit = (s.limit / 2).max(1);
                s.quiet = 0;
            }
            Answer::Quiet => {
                s.quiet += 1;
                if s.limit < self.most && s.quiet >= 2 * self.most {
                    s.limit += 1;
                    s.quiet = 0;
                    drop(s);
                    self.freed.notify_waiters();
                }
            }
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).limit
    }
}

/// Whether Salesforce's answer tells the org is under pressure.
pub fn is_pressure(e: &salesforce::SalesforceError) -> bool {
    match e {
        salesforce::SalesforceError::Api { status, code, .. } => {
            *status == 503 || matches!(code.as_str(), "REQUEST_LIMIT_EXCEEDED" | "UNABLE_TO_LOCK_ROW")
        }
        salesforce::SalesforceError::Unexpected { status, .. } => *status == 503,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_halves_and_quiet_raises_one_at_a_time() {
        let gate = OrgLimit::new(4);
        assert_eq!(gate.limit(), 4);
        gate.answered(Answer::Pressure);
        assert_eq!(gate.limit(), 2);
        gate.answered(Answer::Pressure);
        gate.answered(Answer::Pressure);
        assert_eq!(gate.limit(), 1, "never below one");
        for _ in 0..7 {
            gate.answered(Answer::Quiet);
        }
        assert_eq!(gate.limit(), 1, "not yet: eight quiet answers raise it");
        gate.answered(Answer::Quiet);
        assert_eq!(gate.limit(), 2);
        for _ in 0..100 {
            gate.answered(Answer::Quiet);
        }
        assert_eq!(gate.limit(), 4, "never above the configured most");
    }

    #[tokio::test]
    async fn no_more_than_the_limit_at_once() {
        let gate = OrgLimit::new(2);
        gate.answered(Answer::Pressure);
        let first = gate.acquire().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), gate.acquire()).await;
        assert!(waiting.is_err(), "a second waits while the limit is one");
        drop(first);
        let second = tokio::time::timeout(std::time::Duration::from_millis(50), gate.acquire()).await;
        assert!(second.is_ok(), "and goes once the first is done");
    }
}
