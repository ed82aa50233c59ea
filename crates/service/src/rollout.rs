//! Rollouts in waves (B2+, #17): a deployment's targets split into waves — a canary first, then
//! the rest — each wave started when the one before it finished with few enough failures (by
//! itself, after a person's approval, or at a time), halted when a wave fails more than the
//! rollout allows, and paused, resumed or aborted by a person at any moment. The state lives in
//! the store (the deployment's status and wave, each target's wave), so a restarted server —
//! even after `kill -9` — carries on where it was; the keeper here decides the next step.

use std::time::Duration;

use domain::{ActorKind, AuditEntry, ConnectionId, Deployment, DeploymentId, DeploymentStatus, Gate, Rollout};
use store::{DeploymentStore, TargetCounts};

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

/// At most this many waves.
pub const MOST_WAVES: usize = 20;

/// Which wave each target belongs to (`targets[i]` → `waves[i]`), and the rollout as it will
/// run: waves that would hold no target are left out. Every fault at once.
pub fn plan(rollout: &Rollout, targets: &[ConnectionId]) -> Result<(Rollout, Vec<u32>), ServiceError> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let field = |i: usize, what: &str| format!("rollout.waves[{i}].{what}");
    if rollout.waves.is_empty() || rollout.waves.len() > MOST_WAVES {
        errors.push(("rollout.waves".into(), format!("a rollout has 1 to {MOST_WAVES} waves")));
    }
    if !(0.0..=1.0).contains(&rollout.max_failure_rate) {
        errors.push(("rollout.max_failure_rate".into(), "a share from 0 to 1 (0.1 halts above 10 % failed)".into()));
    }
    let mut explicit: Vec<&ConnectionId> = Vec::new();
    for (i, wave) in rollout.waves.iter().enumerate() {
        let sizes = [wave.count.is_some(), wave.percent.is_some(), wave.connections.is_some()];
        if sizes.iter().filter(|s| **s).count() > 1 {
            errors.push((format!("rollout.waves[{i}]"), "give one of count, percent or connections".into()));
        }
        if wave.count == Some(0) {
            errors.push((field(i, "count"), "at least 1".into()));
        }
        if let Some(p) = wave.percent
            && !(1..=100).contains(&p)
        {
            errors.push((field(i, "percent"), "from 1 to 100".into()));
        }
        if let Some(chosen) = &wave.connections {
            if chosen.is_empty() {
                errors.push((field(i, "connections"), "name at least one connection".into()));
            }
            for c in chosen {
                if !targets.contains(c) {
                    errors.push((
                        field(i, "connections"),
                        format!("{c} does not publish for this system and environment"),
                    ));
                } else if explicit.contains(&c) {
                    errors.push((field(i, "connections"), format!("{c} is in two waves")));
                }
                explicit.push(c);
            }
        }
        if i == 0 && wave.gate != Gate::Auto {
            errors.push((field(0, "gate"), "the first wave starts at once (its gate is auto)".into()));
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    // Chosen connections first; then each sized wave takes from the rest, in the targets' order;
    // whatever is left goes with the last wave.
    let total = targets.len();
    let mut wave_of: Vec<Option<usize>> = vec![None; total];
    for (w, wave) in rollout.waves.iter().enumerate() {
        for c in wave.connections.iter().flatten() {
            if let Some(i) = targets.iter().position(|t| t == c) {
                wave_of[i] = Some(w);
            }
        }
    }
    let last = rollout.waves.len() - 1;
    for (w, wave) in rollout.waves.iter().enumerate() {
        if wave.connections.is_some() {
            continue;
        }
        let left = wave_of.iter().filter(|w| w.is_none()).count();
        let take = match (wave.count, wave.percent) {
            (Some(n), _) => n as usize,
            (_, Some(p)) => (total * p as usize).div_ceil(100).max(1),
            (None, None) => left,
        };
        let take = if w == last { left } else { take.min(left) };
        for slot in wave_of.iter_mut().filter(|w| w.is_none()).take(take) {
            *slot = Some(w);
        }
    }
    let assigned: Vec<usize> = wave_of.iter().map(|w| w.unwrap_or(last)).collect();
    // Waves left empty are dropped; the others are numbered from 0 again. A dropped wave's
    // gate still holds: the next wave that has targets takes the stricter of the two.
    let used: Vec<usize> = (0..rollout.waves.len()).filter(|w| assigned.contains(w)).collect();
    let mut waves = Vec::with_capacity(used.len());
    let mut carried = Gate::Auto;
    for (w, wave) in rollout.waves.iter().enumerate() {
        carried = stricter(carried, wave.gate);
        if used.contains(&w) {
            waves.push(domain::Wave { gate: carried, ..wave.clone() });
            carried = Gate::Auto;
        }
    }
    let mut effective = Rollout { waves, ..rollout.clone() };
    if let Some(first) = effective.waves.first_mut() {
        first.gate = Gate::Auto;
    }
    let numbers = assigned.iter().map(|w| used.iter().position(|u| u == w).unwrap_or(0) as u32).collect();
    Ok((effective, numbers))
}

/// The stricter of two gates: an approval over a time, a later time over an earlier one.
fn stricter(a: Gate, b: Gate) -> Gate {
    match (a, b) {
        (Gate::Approval, _) | (_, Gate::Approval) => Gate::Approval,
        (Gate::At(x), Gate::At(y)) => Gate::At(x.max(y)),
        (Gate::At(x), Gate::Auto) | (Gate::Auto, Gate::At(x)) => Gate::At(x),
        (Gate::Auto, Gate::Auto) => Gate::Auto,
    }
}

/// The failed share of a wave's targets that ran to an end.
fn failure_rate(wave: &TargetCounts) -> f64 {
    let finished = wave.finished();
    if finished == 0 { 0.0 } else { f64::from(wave.failed) / f64::from(finished) }
}

/// "wave 2 of 3" (people count from one).
fn wave_name(wave: u32, rollout: &Rollout) -> String {
    format!("wave {} of {}", wave + 1, rollout.waves.len())
}

fn when(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// What Lightbridge itself did to a rollout, for the audit log.
fn by_lightbridge(d: &Deployment, now: i64, action: &str, detail: String) -> AuditEntry {
    AuditEntry {
        account_id: Some(d.account_id.clone()),
        at: now,
        actor: "lightbridge".into(),
        actor_kind: ActorKind::System,
        action: action.into(),
        target_kind: "deployment".into(),
        target_id: Some(d.id.to_string()),
        target_label: Some(d.resource_name.as_str().to_string()),
        detail: Some(detail),
        remote_addr: None,
    }
}

/// Where a rollout goes once wave `next`'s turn has come: started (its gate is open), or
/// waiting for its approval or its time.
fn through_gate(rollout: &Rollout, wave: u32, next: u32, now: i64) -> ((DeploymentStatus, u32), Option<String>) {
    match rollout.waves.get(next as usize).map(|w| w.gate).unwrap_or_default() {
        Gate::Auto => ((DeploymentStatus::Running, next), None),
        Gate::At(at) if at <= now => ((DeploymentStatus::Running, next), None),
        Gate::At(at) => {
            ((DeploymentStatus::Waiting, wave), Some(format!("{} starts at {}", wave_name(next, rollout), when(at))))
        }
        Gate::Approval => {
            ((DeploymentStatus::Waiting, wave), Some(format!("{} waits for approval", wave_name(next, rollout))))
        }
    }
}

/// One look at every rollout with something to decide: a started wave that ended (halt if it
/// failed too much, else the next wave through its gate), a scheduled wave whose time came.
/// Returns how many rollouts moved.
pub async fn advance(svc: &Service) -> Result<usize, ServiceError> {
    let mut moved = 0;
    for (d, counts) in svc.store.rollouts_to_advance().await? {
        let Some(rollout) = &d.rollout else { continue };
        let now = svc.now_ms();
        let next = d.wave + 1;
        if next as usize >= rollout.waves.len() {
            continue; // the last wave: its last target ends the deployment
        }
        let (to, note, audit) = match d.status {
            DeploymentStatus::Running => {
                let wave = counts.get(d.wave as usize).copied().unwrap_or_default();
                let rate = failure_rate(&wave);
                if rate > rollout.max_failure_rate {
                    let note = format!(
                        "Halted: {} ended with {} of {} orgs failed ({:.0} %), more than the {:.0} % allowed; later waves have not started. Resume to go on anyway, or abort.",
                        wave_name(d.wave, rollout),
                        wave.failed,
                        wave.finished(),
                        rate * 100.0,
                        rollout.max_failure_rate * 100.0
                    );
                    ((DeploymentStatus::Halted, d.wave), Some(note.clone()), Some(("deployment.halted", note)))
                } else {
                    let (to, note) = through_gate(rollout, d.wave, next, now);
                    let detail = match to.0 {
                        DeploymentStatus::Running => format!("{} started", wave_name(next, rollout)),
                        _ => note.clone().unwrap_or_default(),
                    };
                    (to, note, Some(("deployment.wave", detail)))
                }
            }
            DeploymentStatus::Waiting => match rollout.waves[next as usize].gate {
                Gate::At(at) if at <= now => (
                    (DeploymentStatus::Running, next),
                    None,
                    Some(("deployment.wave", format!("{} started at its time", wave_name(next, rollout)))),
                ),
                _ => continue,
            },
            _ => continue,
        };
        if svc.store.move_rollout(&d.id, (d.status, d.wave), to, note.as_deref(), now).await? {
            moved += 1;
            if let Some((action, detail)) = audit {
                record(svc, by_lightbridge(&d, now, action, detail)).await;
            }
            if to.0 == DeploymentStatus::Running {
                svc.publish_wake.notify_one();
            }
        }
    }
    Ok(moved)
}

/// Runs [`advance`] every `every` until the process ends.
pub fn spawn_keeper(svc: &Service, every: Duration) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = advance(&svc).await {
                tracing::error!(error = %e, "could not advance the rollouts");
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// A person's move on a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Targets publishing now finish; no other starts.
    Pause,
    /// A paused rollout goes on; a halted one goes on to its next wave anyway.
    Resume,
    /// The next wave starts now (it waited for approval, or for its time).
    Approve,
    /// Targets that had not started never will.
    Abort,
}

impl Control {
    pub fn parse(text: &str) -> Option<Control> {
        Some(match text {
            "pause" => Control::Pause,
            "resume" => Control::Resume,
            "approve" => Control::Approve,
            "abort" => Control::Abort,
            _ => return None,
        })
    }
    fn verb(self) -> &'static str {
        match self {
            Control::Pause => "paused",
            Control::Resume => "resumed",
            Control::Approve => "approved",
            Control::Abort => "aborted",
        }
    }
}

/// Pauses, resumes, approves or aborts a deployment (publishers). A move its state does not
/// allow is a conflict that says why; a deployment without waves can be paused, resumed and
/// aborted too.
pub async fn control(svc: &Service, actor: &Actor, id: &str, control: Control) -> Result<Deployment, ServiceError> {
    let account = actor.require_publisher()?.clone();
    let id = DeploymentId::parse(id).map_err(|_| ServiceError::NotFound)?;
    // Two people (or the keeper) may move it at once: read, decide, and move only from what
    // was read; on a lost race, read again.
    for _ in 0..5 {
        let (d, _) = svc.store.deployment(&account, &id).await?;
        let now = svc.now_ms();
        let by = &actor.user.email;
        let waves = d.rollout.as_ref().map_or(1, |r| r.waves.len()) as u32;
        let has_next = d.wave + 1 < waves;
        let refuse = |why: String| Err(ServiceError::Conflict { field: None, message: why });
        let (to, note) = match (control, d.status) {
            (_, s) if s.is_final() => return refuse(format!("the deployment has ended ({})", s.as_str())),
            (Control::Abort, _) => ((DeploymentStatus::Aborted, d.wave), Some(format!("Aborted by {by}"))),
            (Control::Pause, DeploymentStatus::Running | DeploymentStatus::Waiting) => {
                ((DeploymentStatus::Paused, d.wave), Some(format!("Paused by {by}")))
            }
            (Control::Pause, s) => {
                return refuse(format!("only a running or waiting deployment can be paused (it is {})", s.as_str()));
            }
            (Control::Resume, DeploymentStatus::Paused) => ((DeploymentStatus::Running, d.wave), None),
            // Going on anyway past the failures; the next wave's own gate still holds.
            (Control::Resume, DeploymentStatus::Halted) if has_next => match &d.rollout {
                Some(r) => through_gate(r, d.wave, d.wave + 1, now),
                None => ((DeploymentStatus::Running, d.wave + 1), None),
            },
            (Control::Resume, s) => {
                return refuse(format!("only a paused or halted deployment can be resumed (it is {})", s.as_str()));
            }
            (Control::Approve, DeploymentStatus::Waiting) if has_next => {
                ((DeploymentStatus::Running, d.wave + 1), None)
            }
            (Control::Approve, _) => return refuse("no wave waits for approval".into()),
        };
        if svc.store.move_rollout(&d.id, (d.status, d.wave), to, note.as_deref(), now).await? {
            let detail = match (&d.rollout, control) {
                (Some(r), Control::Approve | Control::Resume) if to.1 > d.wave => {
                    format!("{}: {} started", control.verb(), wave_name(to.1, r))
                }
                _ => control.verb().to_string(),
            };
            let action = format!("deployment.{}", control.verb());
            record(
                svc,
                actor.audit(
                    now,
                    &action,
                    "deployment",
                    Some(d.id.as_str()),
                    Some(d.resource_name.as_str()),
                    Some(detail),
                ),
            )
            .await;
            if to.0 == DeploymentStatus::Running {
                svc.publish_wake.notify_one();
            }
            return Ok(svc.store.deployment(&account, &id).await?.0);
        }
    }
    Err(ServiceError::Conflict { field: None, message: "the deployment is changing right now: try again".into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Wave;

    fn ids(n: usize) -> Vec<ConnectionId> {
        (0..n).map(|_| ConnectionId::generate()).collect()
    }

    fn wave(count: Option<u32>, percent: Option<u32>, gate: Gate) -> Wave {
        Wave { count, percent, connections: None, gate }
    }

    #[test]
    fn a_canary_then_percentages_then_the_rest() {
        let targets = ids(10);
        let rollout = Rollout {
            waves: vec![
                wave(Some(1), None, Gate::Auto),
                wave(None, Some(30), Gate::Approval),
                wave(None, None, Gate::Auto),
            ],
            max_failure_rate: 0.1,
        };
        let (effective, waves) = plan(&rollout, &targets).expect("plan");
        assert_eq!(waves, [0, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!(effective.waves.len(), 3);
    }

    #[test]
    fn chosen_connections_form_the_canary_and_empty_waves_are_dropped() {
        let targets = ids(2);
        let rollout = Rollout {
            waves: vec![
                Wave { count: None, percent: None, connections: Some(vec![targets[1].clone()]), gate: Gate::Auto },
                wave(None, Some(50), Gate::Approval),
                wave(Some(5), None, Gate::Auto),
            ],
            max_failure_rate: 0.0,
        };
        let (effective, waves) = plan(&rollout, &targets).expect("plan");
        assert_eq!(waves, [1, 0], "the chosen one first, the other in the next wave");
        assert_eq!(effective.waves.len(), 2, "the third wave had nothing left");
        assert_eq!(effective.waves[1].gate, Gate::Approval);
    }

    #[test]
    fn a_dropped_wave_s_gate_still_holds() {
        let targets = ids(2);
        let rollout = Rollout {
            waves: vec![
                wave(Some(1), None, Gate::Auto),
                Wave { count: None, percent: None, connections: Some(vec![targets[0].clone()]), gate: Gate::Auto },
                wave(Some(1), None, Gate::Approval),
                wave(None, None, Gate::At(5)),
            ],
            max_failure_rate: 0.0,
        };
        // The chosen connection takes the second wave; the first takes the other; the third
        // and fourth have nothing left: dropped, and nothing follows them.
        let (effective, waves) = plan(&rollout, &targets).expect("plan");
        assert_eq!(waves, [1, 0]);
        assert_eq!(effective.waves.len(), 2);
        let rollout = Rollout {
            waves: vec![
                wave(Some(1), None, Gate::Auto),
                wave(Some(1), None, Gate::Approval),
                Wave { count: None, percent: None, connections: Some(vec![targets[0].clone()]), gate: Gate::At(7) },
            ],
            max_failure_rate: 0.0,
        };
        // Targets [X, Y]: X is chosen for the third wave, Y goes first; the second is empty —
        // its approval moves on to the third wave.
        let (effective, waves) = plan(&rollout, &targets).expect("plan");
        assert_eq!(waves, [1, 0]);
        assert_eq!(effective.waves[1].gate, Gate::Approval, "the approval is not lost with its wave");
        assert_eq!(stricter(Gate::At(3), Gate::At(9)), Gate::At(9));
    }

    #[test]
    fn every_fault_is_named() {
        let targets = ids(3);
        let stranger = ConnectionId::generate();
        let rollout = Rollout {
            waves: vec![Wave {
                count: Some(0),
                percent: Some(120),
                connections: Some(vec![stranger]),
                gate: Gate::Approval,
            }],
            max_failure_rate: 1.5,
        };
        let Err(ServiceError::Invalid(errors)) = plan(&rollout, &targets) else { panic!("refused") };
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        for expected in [
            "rollout.max_failure_rate",
            "rollout.waves[0]",
            "rollout.waves[0].count",
            "rollout.waves[0].percent",
            "rollout.waves[0].connections",
            "rollout.waves[0].gate",
        ] {
            assert!(fields.contains(&expected), "{expected}: {errors:?}");
        }
    }
}
