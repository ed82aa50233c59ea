//! The token-life simulation (issue #14): months of a fleet of connections, compressed.
//!
//! Lightbridge (its real service, store, keeper, health sweep and keep-alive) runs beside the
//! emulator; both clocks move together one step at a time (the health interval), with no real
//! waiting. Connections are made the way people make them — OAuth through Salesforce's sign-in
//! pages, JWT through the API — across apps with different refresh token policies, and a
//! schedule drawn from a fixed seed changes the world under them: rotations and idle weeks
//! (all the time), publishes, a user's sixth sign-in through the same app, users deactivated,
//! login IP ranges changed, sandboxes refreshed, My Domains renamed, and Salesforce outages of
//! minutes to hours. Every connection that ends up needing a person is compared with what the
//! schedule did to it: the report says which needed a human and why, which were lost to a
//! cause Lightbridge could have prevented, how many token requests each connection cost per
//! day, and how many calls went to connections already known dead.
//!
//! `cargo bench -p server --bench lifecycle` runs 1,000 connections for 90 days;
//! `server/tests/integration/lifecycle.rs` runs 20 for 14 days in CI and asserts the goals.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use domain::{ConnectionId, ConnectionStatus, StatusReason};
use emulator::{AppSeed, FaultAction, FaultRule, OrgChange, OrgSeed, RefreshTokenPolicy, UserChange, UserSeed};
use serde_json::json;
use store::{AuditQuery, AuditStore, ConnectionStore};

use crate::TestApp;

const STEADY: &str = "3MVG9SimSteady";
const ROTATING: &str = "3MVG9SimRotating";
const EXPIRING: &str = "3MVG9SimExpiring";
const JWT: &str = "3MVG9SimJwt";
const APP_SECRET: &str = "simulation-app-secret";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The simulation's size and cadence.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub connections: usize,
    pub days: u32,
    /// The schedule's seed: the same seed gives the same events.
    pub seed: u64,
    /// One step of both clocks, and the health check interval.
    pub step: Duration,
    /// The keep-alive period (`keep_alive_hours`).
    pub keep_alive: Duration,
    /// Each event type's minimum count (the schedule has at least this many of each).
    pub min_events: usize,
    /// Print one line per emulated day on stderr (the benchmark does; the test does not).
    pub progress: bool,
}

impl SimConfig {
    /// The CI version: 20 connections for 14 days.
    pub fn ci() -> Self {
        SimConfig {
            connections: 20,
            days: 14,
            seed: 14,
            step: Duration::from_secs(50 * 60),
            keep_alive: Duration::from_secs(24 * 3600),
            min_events: 1,
            progress: false,
        }
    }

    /// The full run: 1,000 connections for 90 days.
    pub fn full() -> Self {
        SimConfig { connections: 1_000, days: 90, min_events: 3, progress: true, ..SimConfig::ci() }
    }
}

/// Why a connection needs a person, as the schedule caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    UserDeactivated,
    IpRangesChanged,
    SandboxRefreshed,
    SixthApproval,
    PolicyExpired,
}

impl Cause {
    pub fn label(self) -> &'static str {
        match self {
            Cause::UserDeactivated => "user deactivated",
            Cause::IpRangesChanged => "login IP ranges changed",
            Cause::SandboxRefreshed => "sandbox refreshed",
            Cause::SixthApproval => "a sixth sign-in through the same app",
            Cause::PolicyExpired => "refresh token expired by the app's policy",
        }
    }

    /// What Lightbridge should say. A refreshed sandbox's OAuth grant reads as an invalid
    /// refresh token (Salesforce says no more); JWT signs in to the new copy and says so.
    fn expected(self, jwt: bool) -> StatusReason {
        match self {
            Cause::UserDeactivated => StatusReason::UserInactive,
            Cause::IpRangesChanged => StatusReason::IpRestricted,
            Cause::SandboxRefreshed if jwt => StatusReason::SandboxRefreshed,
            Cause::SandboxRefreshed => StatusReason::RefreshTokenInvalid,
            Cause::SixthApproval => StatusReason::ApprovalLimit,
            Cause::PolicyExpired => StatusReason::RefreshTokenInvalid,
        }
    }

    /// Whether Salesforce shows the cause at once (sessions end or are refused), or only at
    /// the next renewal of the refresh token (which the keep-alive makes at least daily).
    fn seen_at_renewal_only(self) -> bool {
        self == Cause::PolicyExpired
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Steady,
    Rotating,
    Expiring,
    Jwt,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Steady => STEADY,
            Kind::Rotating => ROTATING,
            Kind::Expiring => EXPIRING,
            Kind::Jwt => JWT,
        }
    }
}

#[derive(Debug, Clone)]
struct SimUser {
    username: String,
    org: usize,
}

#[derive(Debug)]
struct SimConnection {
    id: ConnectionId,
    user: usize,
    kind: Kind,
    /// Publishes now and then (the others sit idle for the whole run).
    active: bool,
    cause: Option<(Cause, i64)>,
    /// When Lightbridge first showed it Logged out, and why.
    dead: Option<(i64, Option<StatusReason>)>,
}

#[derive(Debug, Clone)]
enum Event {
    SixthApproval { user: usize },
    Deactivate { user: usize },
    IpRanges { org: usize },
    SandboxRefresh { org: usize },
    MyDomain { org: usize },
    Outage { minutes: u64, drop: bool },
}

impl Event {
    fn label(&self) -> &'static str {
        match self {
            Event::SixthApproval { .. } => "sixth approval",
            Event::Deactivate { .. } => "user deactivated",
            Event::IpRanges { .. } => "login IP ranges changed",
            Event::SandboxRefresh { .. } => "sandbox refreshed",
            Event::MyDomain { .. } => "My Domain renamed",
            Event::Outage { .. } => "Salesforce outage",
        }
    }
}

/// A small deterministic generator (SplitMix64): the schedule must not depend on a crate's
/// version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// What the run found.
#[derive(Debug, Default)]
pub struct SimReport {
    pub connections: usize,
    pub days: u32,
    pub step_minutes: u64,
    /// Event type → how many happened.
    pub events: BTreeMap<&'static str, usize>,
    /// Cause → (connections it hit, of which Lightbridge showed Logged out with the right
    /// reason, the slowest detection in minutes).
    pub by_cause: BTreeMap<Cause, (usize, usize, i64)>,
    /// Logged out with no cause in the schedule (or with the wrong reason): each with why.
    pub lost: Vec<String>,
    /// A cause the schedule applied that Lightbridge never showed, or showed too late.
    pub missed: Vec<String>,
    pub needed_human: usize,
    /// Not available at the end of the run (each outage should have healed).
    pub unavailable_at_end: usize,
    /// Times a connection went Not available (outages longer than the grace period).
    pub not_available_spells: usize,
    pub token_calls: BTreeMap<String, usize>,
    pub token_calls_refused: usize,
    pub rest_calls: usize,
    pub rotations: usize,
    pub instance_moves: usize,
    pub publishes: usize,
    pub publish_failures: usize,
    /// Requests of users all of whose connections were already shown Logged out.
    pub calls_on_dead: usize,
    /// Connections that sat at least a week without a publish.
    pub idle_for_a_week: usize,
    pub wall_seconds: f64,
}

impl SimReport {
    /// Token-endpoint requests (renewals; first sign-ins left out) per connection per day.
    pub fn token_calls_per_connection_day(&self) -> f64 {
        let renewals: usize =
            self.token_calls.iter().filter(|(grant, _)| grant.as_str() != "authorization_code").map(|(_, n)| n).sum();
        renewals as f64 / (self.connections.max(1) as f64 * f64::from(self.days.max(1)))
    }

    /// What falls short of the goals, in words (empty: every goal met).
    pub fn problems(&self, min_events: usize) -> Vec<String> {
        let mut out = Vec::new();
        for label in [
            "sixth approval",
            "user deactivated",
            "login IP ranges changed",
            "sandbox refreshed",
            "My Domain renamed",
            "Salesforce outage",
        ] {
            let n = self.events.get(label).copied().unwrap_or(0);
            if n < min_events {
                out.push(format!("{label}: {n} event(s), fewer than {min_events}"));
            }
        }
        let renames = self.events.get("My Domain renamed").copied().unwrap_or(0);
        if renames > 0 && self.instance_moves < renames {
            out.push(format!("{} connection move(s) for {renames} My Domain rename(s)", self.instance_moves));
        }
        if self.rotations == 0 {
            out.push("no refresh token was rotated".into());
        }
        if self.idle_for_a_week == 0 {
            out.push("no connection sat idle for a week".into());
        }
        out.extend(self.lost.iter().map(|l| format!("lost: {l}")));
        out.extend(self.missed.iter().map(|m| format!("missed: {m}")));
        if self.unavailable_at_end > 0 {
            out.push(format!("{} connection(s) still Not available at the end", self.unavailable_at_end));
        }
        let per_day = self.token_calls_per_connection_day();
        if per_day > 2.0 {
            out.push(format!("{per_day:.2} token requests per connection per day (goal ≤ 2)"));
        }
        if self.token_calls_refused > self.needed_human {
            out.push(format!(
                "{} refused token requests for {} dead connection(s): more than one each",
                self.token_calls_refused, self.needed_human
            ));
        }
        if self.calls_on_dead > 0 {
            out.push(format!("{} call(s) on connections already shown Logged out", self.calls_on_dead));
        }
        out
    }

    /// The report as Markdown (docs/benchmarks.md).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} connections, {} days, health interval and step {} min; {:.0} s of wall time.\n",
            self.connections, self.days, self.step_minutes, self.wall_seconds
        );
        let _ = writeln!(s, "| event | times |\n|---|---:|");
        for (label, n) in &self.events {
            let _ = writeln!(s, "| {label} | {n} |");
        }
        let _ = writeln!(s, "| publishes (failed) | {} ({}) |", self.publishes, self.publish_failures);
        let _ = writeln!(s, "| refresh tokens rotated | {} |", self.rotations);
        let _ = writeln!(s, "| connections idle for a week or more | {} |", self.idle_for_a_week);
        let _ = writeln!(s, "| connections moved to a renamed My Domain | {} |", self.instance_moves);
        let _ =
            writeln!(s, "| spells of Not available (outages past the grace period) | {} |", self.not_available_spells);
        let _ = writeln!(
            s,
            "\n| cause needing a person | connections | shown Logged out with the right reason | slowest, min |\n|---|---:|---:|---:|"
        );
        for (cause, (hit, right, slowest)) in &self.by_cause {
            let _ = writeln!(s, "| {} | {hit} | {right} | {slowest} |", cause.label());
        }
        let _ = writeln!(s, "\n| measure | value | goal |\n|---|---:|---:|");
        let _ = writeln!(s, "| connections that needed a human | {} | exactly those above |", self.needed_human);
        let _ = writeln!(s, "| lost to a cause Lightbridge could have prevented | {} | 0 |", self.lost.len());
        let _ = writeln!(s, "| causes missed or shown late | {} | 0 |", self.missed.len());
        let _ = writeln!(
            s,
            "| token requests per connection per day | {:.3} | ≤ 2 |",
            self.token_calls_per_connection_day()
        );
        let grants: Vec<String> = self.token_calls.iter().map(|(g, n)| format!("{g} {n}")).collect();
        let _ = writeln!(s, "| token requests by grant | {} | |", grants.join(", "));
        let _ = writeln!(
            s,
            "| token requests Salesforce refused | {} | one per dead connection at most |",
            self.token_calls_refused
        );
        let _ = writeln!(s, "| calls on connections already shown Logged out | {} | 0 |", self.calls_on_dead);
        let _ = writeln!(s, "| REST calls (health checks, publishes) | {} | |", self.rest_calls);
        let _ = writeln!(s, "| Not available at the end | {} | 0 |", self.unavailable_at_end);
        s
    }
}

struct Sim<'a> {
    app: &'a TestApp,
    cfg: SimConfig,
    rng: Rng,
    orgs: Vec<String>,
    sandbox: Vec<bool>,
    users: Vec<SimUser>,
    /// Emulator user id → the sim user.
    user_ids: HashMap<String, usize>,
    conns: Vec<SimConnection>,
    now: i64,
    report: SimReport,
    audit_seen: i64,
    /// The org living at `localhost` (there is one such host name).
    at_localhost: Option<usize>,
    outage_ends: Option<i64>,
    next_name: usize,
    started: std::time::Instant,
}

/// Runs the simulation on a fresh server beside a fresh emulator.
pub async fn simulate(cfg: SimConfig) -> SimReport {
    let started = std::time::Instant::now();
    let keep_alive = cfg.keep_alive;
    let app = crate::spawn_configured(None, |config| {
        let localhost = config.allowed_hosts[0].replace("127.0.0.1", "localhost");
        config.allowed_hosts.push(localhost);
        config.keep_alive = keep_alive;
    })
    .await;
    let mut sim = Sim {
        app: &app,
        rng: Rng(cfg.seed),
        orgs: Vec::new(),
        sandbox: Vec::new(),
        users: Vec::new(),
        user_ids: HashMap::new(),
        conns: Vec::new(),
        now: 0,
        report: SimReport {
            connections: cfg.connections,
            days: cfg.days,
            step_minutes: cfg.step.as_secs() / 60,
            ..SimReport::default()
        },
        audit_seen: 0,
        at_localhost: None,
        outage_ends: None,
        next_name: 0,
        started,
        cfg,
    };
    sim.build_world().await;
    let schedule = sim.schedule();
    sim.run(schedule).await;
    sim.judge().await;
    sim.report.wall_seconds = started.elapsed().as_secs_f64();
    sim.report
}

impl Sim<'_> {
    fn svc(&self) -> &service::Service {
        &self.app.state
    }

    fn account(&self) -> domain::AccountId {
        self.app.accounts["A"].clone()
    }

    /// Orgs (one in eight a sandbox; session timeouts of 2, 8 and 24 hours), two users each,
    /// the four apps, and the connections — five of them, for each sixth-approval event to
    /// come, held by one user through one app.
    async fn build_world(&mut self) {
        let em = &self.app.em;
        let base = &self.app.base;
        let n = self.cfg.connections;
        let heavy = self.cfg.min_events.max(1);
        let org_count = (n / 4).max(8);
        for i in 0..org_count {
            let mut org = OrgSeed::new(format!("Sim Org {i}"));
            org.sandbox = i % 8 == 7;
            org.session_timeout_secs = [7_200, 28_800, 86_400][i % 3];
            org.users = ["a", "b"].iter().map(|u| UserSeed::new(format!("{u}{i}@sim{i}.test"))).collect();
            let id = em.add_org(&org).expect("org");
            for u in ["a", "b"] {
                self.users.push(SimUser { username: format!("{u}{i}@sim{i}.test"), org: i });
            }
            self.orgs.push(id);
            self.sandbox.push(org.sandbox);
        }
        let all: Vec<String> = self.users.iter().map(|u| u.username.clone()).collect();
        let callback = vec![format!("{base}/oauth/callback")];
        let apps = [
            AppSeed { callback_urls: callback.clone(), ..AppSeed::new(STEADY, APP_SECRET) },
            AppSeed {
                callback_urls: callback.clone(),
                rotate_refresh_tokens: true,
                refresh_token_policy: RefreshTokenPolicy::ExpireIfUnused { seconds: 30 * 86_400 },
                ..AppSeed::new(ROTATING, APP_SECRET)
            },
            AppSeed {
                callback_urls: callback.clone(),
                refresh_token_policy: RefreshTokenPolicy::ExpireAfter {
                    seconds: u64::from(self.expiry_days()) * 86_400,
                },
                ..AppSeed::new(EXPIRING, APP_SECRET)
            },
            AppSeed { generate_certificate: true, pre_authorized: all, ..AppSeed::new(JWT, APP_SECRET) },
        ];
        for app in &apps {
            em.add_app(app).expect("app");
        }
        // Heavy users: users 0, 2, 4 … (user "a" of orgs 0, 1, 2 …, never a sandbox's).
        for h in 0..heavy {
            for _ in 0..5 {
                self.connect(h * 2, Kind::Rotating, true).await;
            }
        }
        let kinds = [
            Kind::Steady,
            Kind::Steady,
            Kind::Rotating,
            Kind::Steady,
            Kind::Rotating,
            Kind::Expiring,
            Kind::Rotating,
            Kind::Jwt,
            Kind::Steady,
            Kind::Rotating,
        ];
        let mut k = 0;
        while self.conns.len() < n {
            // Users after the heavy ones, round robin, so each holds a couple of connections.
            let user = heavy * 2 + k % (self.users.len() - heavy * 2);
            let active = k % 5 != 0;
            self.connect(user, kinds[k % kinds.len()], active).await;
            k += 1;
        }
    }

    /// Refresh tokens of the "expire after" app end two thirds into the run.
    fn expiry_days(&self) -> u32 {
        (self.cfg.days * 2 / 3).max(2)
    }

    async fn connect(&mut self, user: usize, kind: Kind, active: bool) -> usize {
        let app = self.app;
        let u = self.users[user].clone();
        let sandbox = self.sandbox[u.org];
        self.next_name += 1;
        let name = format!("Sim {:05}", self.next_name);
        let (org_type, login_host) = if sandbox { ("sandbox", "test") } else { ("production", "login") };
        let saved = if kind == Kind::Jwt {
            let key = app.em.private_key_pem(JWT).expect("JWT key");
            let body = json!({"name": name, "org_type": org_type, "login_host": login_host,
                              "auth": {"method": "jwt", "consumer_key": JWT, "username": u.username, "private_key": key}});
            let (status, saved) = app.call("admin_a", reqwest::Method::POST, "/connections", Some(body)).await;
            assert_eq!(status, 201, "{saved}");
            saved
        } else {
            let (cookie, csrf) = app.sign_in("admin_a").await;
            let body = json!({"name": name, "org_type": org_type, "login_host": login_host,
                              "consumer_key": kind.key(), "consumer_secret": APP_SECRET});
            let callback = app
                .oauth_through_salesforce(&cookie, &csrf, "/api/v1/connections/oauth/start", body, &u.username)
                .await;
            let (status, saved) = app.browser(&cookie, None, reqwest::Method::GET, &callback, None).await;
            assert_eq!(status, 201, "{saved}");
            saved
        };
        let id = ConnectionId::parse(saved["id"].as_str().expect("id")).expect("connection id");
        let stored = self.svc().store.get(&self.account(), &id).await.expect("stored");
        if let Some(org) = &stored.org {
            self.user_ids.insert(org.user_id.clone(), user);
        }
        self.conns.push(SimConnection { id, user, kind, active, cause: None, dead: None });
        self.conns.len() - 1
    }

    /// Each event on a day of its own (so one cause's detection is not delayed by another's
    /// outage), away from the day the "expire after" tokens end.
    fn schedule(&mut self) -> BTreeMap<i64, Vec<Event>> {
        let min = self.cfg.min_events.max(1);
        let heavy = min;
        let mut events = Vec::new();
        for h in 0..heavy {
            events.push(Event::SixthApproval { user: h * 2 });
        }
        let ordinary: Vec<usize> = (heavy * 2..self.users.len())
            .filter(|u| self.conns.iter().any(|c| c.user == *u))
            .filter(|u| !self.sandbox[self.users[*u].org])
            .collect();
        let mut taken_orgs = HashSet::new();
        for _ in 0..min {
            let user = ordinary[self.rng.below(ordinary.len())];
            taken_orgs.insert(self.users[user].org);
            events.push(Event::Deactivate { user });
        }
        let with_connections: HashSet<usize> = self.conns.iter().map(|c| self.users[c.user].org).collect();
        let free_org = |rng: &mut Rng, taken: &mut HashSet<usize>, sandbox: &[bool], want_sandbox: bool| {
            let pool: Vec<usize> = (heavy..sandbox.len())
                .filter(|o| sandbox[*o] == want_sandbox && !taken.contains(o) && with_connections.contains(o))
                .collect();
            assert!(!pool.is_empty(), "no org left for an event: simulate more connections");
            let org = pool[rng.below(pool.len())];
            taken.insert(org);
            org
        };
        for _ in 0..min {
            events.push(Event::IpRanges { org: free_org(&mut self.rng, &mut taken_orgs, &self.sandbox, false) });
        }
        for _ in 0..min {
            events.push(Event::SandboxRefresh { org: free_org(&mut self.rng, &mut taken_orgs, &self.sandbox, true) });
        }
        for _ in 0..min + 1 {
            events.push(Event::MyDomain { org: free_org(&mut self.rng, &mut taken_orgs, &self.sandbox, false) });
        }
        let outages = [(10, false), (150, false), (420, true), (45, true), (240, false)];
        for (minutes, drop) in outages.iter().take(min.max(2)) {
            events.push(Event::Outage { minutes: *minutes, drop: *drop });
        }
        let expiry = i64::from(self.expiry_days());
        let mut days: Vec<i64> =
            (1..i64::from(self.cfg.days) - 1).filter(|d| *d != expiry && *d != expiry + 1).collect();
        assert!(days.len() >= events.len(), "{} days for {} events: run longer", days.len(), events.len());
        let mut schedule: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
        for event in events {
            let day = days.remove(self.rng.below(days.len()));
            let at = day * DAY_MS + (self.rng.below(20) as i64 + 2) * 3_600_000;
            schedule.entry(at).or_default().push(event);
        }
        schedule
    }

    async fn run(&mut self, mut schedule: BTreeMap<i64, Vec<Event>>) {
        let step_ms = self.cfg.step.as_millis() as i64;
        let end = i64::from(self.cfg.days) * DAY_MS;
        let svc = self.svc().clone();
        let mut last_publish: Vec<i64> = vec![0; self.conns.len()];
        self.drain_requests();
        self.drain_audit().await;
        while self.now < end {
            let due: Vec<i64> = schedule.range(..=self.now).map(|(t, _)| *t).collect();
            for at in due {
                for event in schedule.remove(&at).unwrap_or_default() {
                    self.apply(event).await;
                    last_publish.resize(self.conns.len(), self.now);
                }
            }
            if self.outage_ends.is_some_and(|t| t <= self.now) {
                self.app.em.clear_faults();
                self.outage_ends = None;
            }
            // Publishes: an active connection publishes about once a week.
            let p = step_ms as f64 / (7.0 * DAY_MS as f64);
            let publishing: Vec<usize> =
                (0..self.conns.len()).filter(|i| self.conns[*i].active).filter(|_| self.rng.chance(p)).collect();
            for i in publishing {
                if self.now - last_publish[i] >= 7 * DAY_MS {
                    self.report.idle_for_a_week += 1;
                }
                last_publish[i] = self.now;
                self.publish(i).await;
            }
            svc.keeper.health_sweep(self.cfg.step, 100_000).await.expect("health sweep");
            svc.keeper.keep_alive(self.cfg.keep_alive, 100_000).await.expect("keep-alive");
            self.drain_requests();
            self.drain_audit().await;
            self.app.clock.advance(self.cfg.step);
            self.app.em.advance_clock(self.cfg.step);
            self.now += step_ms;
            if self.cfg.progress && self.now % DAY_MS < step_ms {
                eprintln!(
                    "day {}/{}: {} connections, {:.0} s",
                    self.now / DAY_MS,
                    self.cfg.days,
                    self.conns.len(),
                    self.started.elapsed().as_secs_f64()
                );
            }
        }
        self.app.em.clear_faults();
        self.report.idle_for_a_week += last_publish.iter().filter(|last| end - **last >= 7 * DAY_MS).count();
    }

    async fn publish(&mut self, i: usize) {
        let svc = self.svc().clone();
        let Ok(connection) = svc.store.get(&self.account(), &self.conns[i].id).await else { return };
        if connection.status == ConnectionStatus::LoggedOut {
            return;
        }
        let day = self.now / DAY_MS;
        let bundle = publish::Bundle::from_zip(
            &crate::bundle_zip(&[("player.js", format!("window.release = {day};").as_bytes())]),
            publish::Limits::default(),
        )
        .expect("bundle");
        let name = domain::ResourceName::parse("Sim_Player").expect("name");
        let label = format!("day_{day}");
        let result = svc
            .keeper
            .with_session(&connection, |session| {
                let (bundle, name, label, client) = (bundle.clone(), name.clone(), label.clone(), svc.client.clone());
                async move { publish::publish_to_org(&client, &session, &name, &bundle, &label, "Private").await }
            })
            .await;
        self.report.publishes += 1;
        self.report.publish_failures += usize::from(result.is_err());
    }

    async fn apply(&mut self, event: Event) {
        *self.report.events.entry(event.label()).or_default() += 1;
        let em = &self.app.em;
        match event {
            Event::SixthApproval { user } => {
                let victim = self.conns.iter().position(|c| c.user == user && c.kind == Kind::Rotating);
                self.connect(user, Kind::Rotating, true).await;
                if let Some(v) = victim {
                    self.cause(v, Cause::SixthApproval);
                }
            }
            Event::Deactivate { user } => {
                let change = UserChange { active: Some(false), ..UserChange::default() };
                em.set_user(&self.users[user].username, &change).expect("deactivate");
                for i in 0..self.conns.len() {
                    if self.conns[i].user == user {
                        self.cause(i, Cause::UserDeactivated);
                    }
                }
            }
            Event::IpRanges { org } => {
                let change = OrgChange { login_ip_ranges: Some(vec!["10.0.0.0/8".into()]) };
                em.set_org(&self.orgs[org], &change).expect("ip ranges");
                for i in 0..self.conns.len() {
                    if self.users[self.conns[i].user].org == org {
                        self.cause(i, Cause::IpRangesChanged);
                    }
                }
            }
            Event::SandboxRefresh { org } => {
                self.orgs[org] = em.refresh_sandbox(&self.orgs[org]).expect("refresh");
                for i in 0..self.conns.len() {
                    if self.users[self.conns[i].user].org == org {
                        self.cause(i, Cause::SandboxRefreshed);
                    }
                }
            }
            Event::MyDomain { org } => {
                if self.at_localhost == Some(org) {
                    em.change_my_domain(&self.orgs[org], "127.0.0.1", false).expect("rename back");
                    self.at_localhost = None;
                } else {
                    if let Some(holder) = self.at_localhost.take() {
                        em.change_my_domain(&self.orgs[holder], "127.0.0.1", false).expect("rename back");
                    }
                    em.change_my_domain(&self.orgs[org], "localhost", false).expect("rename");
                    self.at_localhost = Some(org);
                }
            }
            Event::Outage { minutes, drop } => {
                let action = if drop {
                    FaultAction::Drop
                } else {
                    FaultAction::Error { status: 503, error_code: "SERVER_UNAVAILABLE".into(), message: None }
                };
                em.add_fault(FaultRule {
                    method: None,
                    path_contains: None,
                    org_id: None,
                    times: None,
                    percent: None,
                    action,
                });
                self.outage_ends = Some(self.now + minutes as i64 * 60_000);
            }
        }
    }

    fn cause(&mut self, i: usize, cause: Cause) {
        let c = &mut self.conns[i];
        if c.cause.is_none() && c.dead.is_none() {
            c.cause = Some((cause, self.now));
        }
    }

    /// Tallies the emulator's request log since the last step, then empties it.
    fn drain_requests(&mut self) {
        let dead_users: HashSet<usize> = {
            let mut by_user: HashMap<usize, bool> = HashMap::new();
            for c in &self.conns {
                let all_dead = by_user.entry(c.user).or_insert(true);
                *all_dead &= c.dead.is_some();
            }
            by_user.into_iter().filter(|(_, dead)| *dead).map(|(u, _)| u).collect()
        };
        for r in self.app.em.requests() {
            match r.operation.as_deref().and_then(|op| op.strip_prefix("token:")) {
                Some(grant) => {
                    *self.report.token_calls.entry(grant.to_string()).or_default() += 1;
                    self.report.token_calls_refused += usize::from(r.status >= 400 && r.fault.is_none());
                    if grant == "refresh_token" && r.status == 200 && self.rotating_user(r.user_id.as_deref()) {
                        self.report.rotations += 1;
                    }
                }
                None => self.report.rest_calls += 1,
            }
            let user = r.user_id.as_deref().and_then(|u| self.user_ids.get(u));
            if user.is_some_and(|u| dead_users.contains(u)) {
                self.report.calls_on_dead += 1;
            }
        }
        self.app.em.clear_requests();
    }

    fn rotating_user(&self, user_id: Option<&str>) -> bool {
        user_id
            .and_then(|u| self.user_ids.get(u))
            .is_some_and(|u| self.conns.iter().any(|c| c.user == *u && c.kind == Kind::Rotating))
    }

    /// Reads the status changes since the last step from the audit log.
    async fn drain_audit(&mut self) {
        let account = self.account();
        let svc = self.svc().clone();
        let mut changed = Vec::new();
        let mut before = None;
        'pages: loop {
            let query = AuditQuery { action: None, target_id: None, before, limit: 500 };
            let page = svc.store.audit(&account, &query).await.expect("audit");
            let Some((last, _)) = page.last() else { break };
            let last = *last;
            for (seq, entry) in &page {
                if *seq <= self.audit_seen {
                    break 'pages;
                }
                match entry.action.as_str() {
                    "connection.status_changed" => changed.push((entry.target_id.clone(), entry.detail.clone())),
                    "connection.instance_moved" => self.report.instance_moves += 1,
                    _ => {}
                }
            }
            if page.len() < 500 {
                break;
            }
            before = Some(last);
        }
        if let Some(newest) =
            svc.store.audit(&account, &AuditQuery { limit: 1, ..AuditQuery::default() }).await.expect("audit").first()
        {
            self.audit_seen = newest.0;
        }
        for (target, detail) in changed {
            if detail.as_deref().is_some_and(|d| d.contains("→ Not available")) {
                self.report.not_available_spells += 1;
            }
            let Some(i) = target.and_then(|t| self.conns.iter().position(|c| c.id.as_str() == t)) else { continue };
            let stored = svc.store.get(&account, &self.conns[i].id).await.expect("connection");
            if stored.status == ConnectionStatus::LoggedOut && self.conns[i].dead.is_none() {
                self.conns[i].dead = Some((self.now, stored.status_reason));
            }
        }
    }

    /// Compares what Lightbridge showed with what the schedule did.
    async fn judge(&mut self) {
        let account = self.account();
        let step_min = self.cfg.step.as_secs() as i64 / 60;
        let keep_alive_min = self.cfg.keep_alive.as_secs() as i64 / 60;
        let expiry_at = i64::from(self.expiry_days()) * DAY_MS;
        for c in &mut self.conns {
            if c.kind == Kind::Expiring && c.cause.is_none() && c.dead.is_none_or(|(t, _)| t >= expiry_at) {
                c.cause = Some((Cause::PolicyExpired, expiry_at));
            }
        }
        for c in &self.conns {
            let stored = self.svc().store.get(&account, &c.id).await.expect("connection");
            if stored.status == ConnectionStatus::NotAvailable {
                self.report.unavailable_at_end += 1;
            }
            let name = match &stored.kind {
                domain::ConnectionKind::New { name } => name.as_str().to_string(),
                domain::ConnectionKind::Legacy { .. } => stored.id.as_str().to_string(),
            };
            match (c.cause, c.dead) {
                (None, None) => {}
                (None, Some((at, reason))) => self.report.lost.push(format!(
                    "{name} ({:?}) Logged out on day {} as {} with no cause that needs a person",
                    c.kind,
                    at / DAY_MS,
                    reason.map_or("no reason", StatusReason::as_str)
                )),
                (Some((cause, at)), dead) => {
                    let entry = self.report.by_cause.entry(cause).or_insert((0, 0, 0));
                    entry.0 += 1;
                    let allowed = if cause.seen_at_renewal_only() { keep_alive_min + step_min } else { step_min };
                    match dead {
                        Some((seen, reason)) => {
                            let minutes = (seen - at) / 60_000;
                            entry.2 = entry.2.max(minutes);
                            let expected = cause.expected(c.kind == Kind::Jwt);
                            if reason == Some(expected) && minutes <= allowed {
                                entry.1 += 1;
                            } else if reason != Some(expected) {
                                self.report.lost.push(format!(
                                    "{name}: {} shown as {} instead of {}",
                                    cause.label(),
                                    reason.map_or("no reason", StatusReason::as_str),
                                    expected.as_str()
                                ));
                            } else {
                                self.report.missed.push(format!(
                                    "{name}: {} shown after {minutes} min (allowed {allowed})",
                                    cause.label()
                                ));
                            }
                        }
                        None => self.report.missed.push(format!("{name}: {} never shown", cause.label())),
                    }
                }
            }
            if c.dead.is_some() {
                self.report.needed_human += 1;
            } else if self.report.events.contains_key("My Domain renamed") {
                // A live connection follows its org's My Domain: the one renamed last lives at
                // `localhost`, every other at the emulator's own host.
                let at_localhost = self.at_localhost == Some(self.users[c.user].org);
                let instance = stored.org.as_ref().map(|o| o.instance_url.clone()).unwrap_or_default();
                if instance.contains("localhost") != at_localhost {
                    self.report.missed.push(format!("{name}: still at {instance} after its org's My Domain changed"));
                }
            }
        }
    }
}
