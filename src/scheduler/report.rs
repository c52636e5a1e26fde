//! What the scheduler logs about targets: one line per state change (failing, failing for a
//! new reason, recovered, with what from and for how long), every probe at debug, and one
//! summary of each round of first probes ("first round: 9,990 healthy, 10 failing") instead of
//! a line per healthy target. Failing targets always get their own line.
//!
//! The shape of a line (keys, timestamps, quoting) is `logfmt`'s; when probes run is the
//! parent module's.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::standing::Before;
use crate::config::Target;
use crate::logfmt::words;
use crate::probe::outcome::AddressOutcome;
use crate::state::Change;
use crate::verdict::FailureReason;

/// Logs what one probe of `target` changed; `before` is the target's standing before it.
pub(crate) fn probe(target: &Target, outcomes: &[AddressOutcome], change: Change, before: &Before) {
    let name = target.name.as_str();
    let Some(note) = note(outcomes, change, before) else {
        return;
    };
    match note {
        Note::Quiet(a) => {
            let failure = a.outcome.failure.as_ref();
            tracing::debug!(
                target = name,
                ip = a.ip.map(tracing::field::display),
                success = failure.is_none(),
                reason = failure.map(|f| f.reason.as_label()),
                detail = failure.map(|f| f.detail.as_str()),
                "probe finished"
            );
        }
        Note::Failing { address, was } => {
            let failure = address.outcome.failure.as_ref();
            tracing::warn!(
                target = name,
                ip = address.ip.map(tracing::field::display),
                reason = failure.map(|f| f.reason.as_label()),
                was,
                detail = failure.map(|f| f.detail.as_str()),
                "target is failing"
            );
        }
        Note::Recovered { from, since, after } => {
            tracing::info!(
                target = name,
                was = from.as_label(),
                failing_since = words::rfc3339(since),
                "{}",
                recovered(from, after)
            );
        }
    }
}

/// The line a probe calls for.
#[derive(Debug)]
enum Note<'a> {
    /// Nothing changed: debug only.
    Quiet(&'a AddressOutcome),
    /// The target started failing (`was`: `ok`, or the previous reason; absent for a first
    /// probe) or fails for a new reason; the address speaks for the target.
    Failing {
        address: &'a AddressOutcome,
        was: Option<&'static str>,
    },
    /// A failing target is healthy again.
    Recovered {
        from: FailureReason,
        since: SystemTime,
        after: Duration,
    },
}

/// The line a probe calls for; `None` for a probe without outcomes (`probe::run` always has
/// one).
fn note<'a>(outcomes: &'a [AddressOutcome], change: Change, before: &Before) -> Option<Note<'a>> {
    let failing = outcomes.iter().find(|a| !a.outcome.success());
    let shown = failing.or(outcomes.first())?;
    Some(match (failing, before.failing) {
        (Some(address), None) => Note::Failing {
            address,
            was: before.probed.then_some("ok"),
        },
        (Some(address), Some(spell)) if change != Change::Same => Note::Failing {
            address,
            was: Some(spell.reason.as_label()),
        },
        (None, Some(spell)) => Note::Recovered {
            from: spell.reason,
            since: spell.since,
            after: shown
                .outcome
                .finished_at
                .duration_since(spell.since)
                .unwrap_or_default(),
        },
        (Some(_), Some(_)) | (None, None) => Note::Quiet(shown),
    })
}

/// "target recovered from expired after failing for 2h 5m".
fn recovered(from: FailureReason, after: Duration) -> String {
    format!(
        "target recovered from {} after failing for {}",
        from.as_label(),
        words::duration(after)
    )
}

/// The first probes of the targets one config application added, summed up in one line once
/// all have finished (or at a time limit, counting those still waiting).
pub(crate) struct Round {
    after_reload: bool,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    pending: usize,
    healthy: usize,
    failing: usize,
    done: bool,
}

/// A new target's place in its round; a loop that ends before its first probe gives it back.
pub(crate) struct Ticket(Option<Arc<Round>>);

impl Round {
    /// A round of `targets` first probes, summed up at the latest after `limit` (or never, if
    /// `stop` is cancelled first).
    pub(crate) fn start(
        targets: usize,
        after_reload: bool,
        limit: Duration,
        stop: &CancellationToken,
    ) -> Arc<Round> {
        let round = Arc::new(Round {
            after_reload,
            counts: Mutex::new(Counts {
                pending: targets,
                ..Counts::default()
            }),
        });
        let weak: Weak<Round> = Arc::downgrade(&round);
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(limit) => {
                    if let Some(round) = weak.upgrade() {
                        round.settle(|c| c.done = true);
                    }
                }
                _ = stop.cancelled() => {}
            }
        });
        round
    }

    /// A ticket for one target of the round.
    pub(crate) fn ticket(self: &Arc<Round>) -> Ticket {
        Ticket(Some(self.clone()))
    }

    /// Applies `update`, then logs the summary if the round just ended.
    fn settle(&self, update: impl FnOnce(&mut Counts)) {
        let line = {
            let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            if c.done {
                return;
            }
            update(&mut c);
            if !c.done && c.pending > 0 {
                return;
            }
            c.done = true;
            (c.healthy, c.failing, c.pending)
        };
        let (healthy, failing, pending) = line;
        let text = summary(self.after_reload, healthy, failing, pending);
        if pending == 0 {
            tracing::info!(healthy, failing, "{text}");
        } else {
            tracing::info!(healthy, failing, not_probed = pending, "{text}");
        }
    }
}

impl Ticket {
    /// No round: a target whose loop restarted.
    pub(crate) fn none() -> Ticket {
        Ticket(None)
    }

    /// Counts the target's first probe (later calls do nothing).
    pub(crate) fn report(&mut self, healthy: bool) {
        if let Some(round) = self.0.take() {
            round.settle(|c| {
                c.pending = c.pending.saturating_sub(1);
                if healthy {
                    c.healthy += 1;
                } else {
                    c.failing += 1;
                }
            });
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(round) = self.0.take() {
            round.settle(|c| c.pending = c.pending.saturating_sub(1));
        }
    }
}

/// "first round: 9,990 healthy, 10 failing", with ", 3 not probed yet" at the time limit.
fn summary(after_reload: bool, healthy: usize, failing: usize, pending: usize) -> String {
    let mut text = format!(
        "first round{}: {} healthy, {} failing",
        if after_reload { " after reload" } else { "" },
        words::count(healthy),
        words::count(failing)
    );
    if pending > 0 {
        text.push_str(&format!(", {} not probed yet", words::count(pending)));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::probe::outcome::{Phases, ProbeOutcome};
    use crate::scheduler::standing::Failing;
    use crate::verdict::Failure;

    fn outcome(failure: Option<FailureReason>, at: u64) -> AddressOutcome {
        let mut o = ProbeOutcome::new(Phases::default(), Duration::from_millis(20));
        o.failure = failure.map(|r| Failure::new(r, "why"));
        o.finished_at = UNIX_EPOCH + Duration::from_secs(at);
        AddressOutcome {
            ip: None,
            outcome: Arc::new(o),
        }
    }

    fn failing_since(reason: FailureReason, since: u64) -> Before {
        Before {
            probed: true,
            backing_off: false,
            failing: Some(Failing {
                since: UNIX_EPOCH + Duration::from_secs(since),
                reason,
            }),
        }
    }

    #[test]
    fn recovery_says_from_what_and_for_how_long() {
        let now = [outcome(None, 10_000 + 2 * 3600 + 5 * 60)];
        let before = failing_since(FailureReason::Expired, 10_000);
        let Note::Recovered { from, since, after } =
            note(&now, Change::Changed { was: None }, &before).expect("a note")
        else {
            panic!("not a recovery");
        };
        assert_eq!(
            recovered(from, after),
            "target recovered from expired after failing for 2h 5m"
        );
        assert_eq!(words::rfc3339(since), "1970-01-01T02:46:40Z");
    }

    #[test]
    fn a_first_probe_that_fails_has_its_own_line_without_was() {
        let now = [outcome(Some(FailureReason::ConnectionRefused), 1)];
        let note = note(&now, Change::First, &Before::default()).expect("a note");
        assert!(matches!(note, Note::Failing { was: None, .. }), "{note:?}");
    }

    #[test]
    fn a_healthy_target_that_starts_failing_was_ok() {
        let now = [outcome(Some(FailureReason::HandshakeTimeout), 2)];
        let before = Before {
            probed: true,
            ..Before::default()
        };
        let note = note(&now, Change::Changed { was: None }, &before).expect("a note");
        assert!(
            matches!(
                note,
                Note::Failing {
                    was: Some("ok"),
                    ..
                }
            ),
            "{note:?}"
        );
    }

    #[test]
    fn a_new_reason_is_logged_with_the_old_one_and_the_same_reason_is_quiet() {
        let before = failing_since(FailureReason::Expired, 1);
        let now = [outcome(Some(FailureReason::UnknownIssuer), 2)];
        let changed = Change::Changed {
            was: Some(FailureReason::Expired),
        };
        let n = note(&now, changed, &before).expect("a note");
        assert!(
            matches!(
                n,
                Note::Failing {
                    was: Some("expired"),
                    ..
                }
            ),
            "{n:?}"
        );
        let same = [outcome(Some(FailureReason::Expired), 2)];
        let n = note(&same, Change::Same, &before).expect("a note");
        assert!(matches!(n, Note::Quiet(_)), "{n:?}");
    }

    #[test]
    fn healthy_probes_of_healthy_targets_are_quiet() {
        let now = [outcome(None, 2)];
        let before = Before {
            probed: true,
            ..Before::default()
        };
        assert!(matches!(
            note(&now, Change::Same, &before),
            Some(Note::Quiet(_))
        ));
        // A first healthy probe is counted in its round, not logged.
        assert!(matches!(
            note(&now, Change::First, &Before::default()),
            Some(Note::Quiet(_))
        ));
    }

    #[test]
    fn summaries_count_with_separators_and_name_the_unprobed() {
        assert_eq!(
            summary(false, 9_990, 10, 0),
            "first round: 9,990 healthy, 10 failing"
        );
        assert_eq!(
            summary(true, 2, 1, 3),
            "first round after reload: 2 healthy, 1 failing, 3 not probed yet"
        );
    }

    #[tokio::test]
    async fn a_round_ends_when_every_ticket_is_in_or_given_back() {
        let stop = CancellationToken::new();
        let round = Round::start(3, false, Duration::from_secs(600), &stop);
        let (mut a, mut b, c) = (round.ticket(), round.ticket(), round.ticket());
        a.report(true);
        b.report(false);
        assert!(!round.counts.lock().expect("lock").done);
        drop(c);
        let counts = round.counts.lock().expect("lock");
        assert!(counts.done);
        assert_eq!((counts.healthy, counts.failing, counts.pending), (1, 1, 0));
        stop.cancel();
    }
}
