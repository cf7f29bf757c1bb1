//! What a schedule does with an action while its previous one still runs
//! (Temporal's `ScheduleOverlapPolicy`), and the pure rule that decides,
//! from the buffered actions and whether one runs, which start now.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Most actions a schedule buffers (Temporal's `MaxBufferSize`); later ones
/// are dropped and counted in [`ScheduleInfo::buffer_dropped`](super::ScheduleInfo::buffer_dropped).
pub const MAX_BUFFERED_ACTIONS: usize = 1000;

/// What happens to an action that comes while the schedule's previous
/// workflow still runs.
// Stored by position in schedule records (FORMAT.md): never reorder; a
// new policy goes at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleOverlapPolicy {
    /// The action is skipped (counted in `overlap_skipped`). The default.
    #[default]
    Skip,
    /// One action waits for the running workflow to close; further ones are
    /// skipped.
    BufferOne,
    /// Every action waits, in order, each for the one before it to close
    /// (at most [`MAX_BUFFERED_ACTIONS`]).
    BufferAll,
    /// The running workflow is asked to cancel; the action starts once it
    /// has closed.
    CancelOther,
    /// The running workflow is terminated, and the action starts at once.
    TerminateOther,
    /// The action starts at once, beside the running workflows.
    AllowAll,
}

impl ScheduleOverlapPolicy {
    /// The name Temporal's CLI and API use, in lower case with dashes
    /// (`skip`, `buffer-one`, `buffer-all`, `cancel-other`,
    /// `terminate-other`, `allow-all`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleOverlapPolicy::Skip => "skip",
            ScheduleOverlapPolicy::BufferOne => "buffer-one",
            ScheduleOverlapPolicy::BufferAll => "buffer-all",
            ScheduleOverlapPolicy::CancelOther => "cancel-other",
            ScheduleOverlapPolicy::TerminateOther => "terminate-other",
            ScheduleOverlapPolicy::AllowAll => "allow-all",
        }
    }
}

impl std::str::FromStr for ScheduleOverlapPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            ScheduleOverlapPolicy::Skip,
            ScheduleOverlapPolicy::BufferOne,
            ScheduleOverlapPolicy::BufferAll,
            ScheduleOverlapPolicy::CancelOther,
            ScheduleOverlapPolicy::TerminateOther,
            ScheduleOverlapPolicy::AllowAll,
        ];
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        all.into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown overlap policy {s:?}; use one of skip, buffer-one, buffer-all, \
                     cancel-other, terminate-other, allow-all"
                )
            })
    }
}

impl std::fmt::Display for ScheduleOverlapPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action waiting to start: due from the spec, triggered or backfilled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BufferedAction {
    /// The time the action is for: its workflow ID's suffix.
    pub(crate) nominal: SystemTime,
    /// The policy it is started under (a backfill or trigger may override
    /// the schedule's).
    pub(crate) overlap: ScheduleOverlapPolicy,
    /// Triggered or backfilled: not counted against remaining actions.
    pub(crate) manual: bool,
}

/// What to do with the buffer now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Start these, in order.
    pub(crate) start: Vec<BufferedAction>,
    /// Keep these buffered, in order.
    pub(crate) keep: Vec<BufferedAction>,
    /// Actions dropped because one was running.
    pub(crate) skipped: u64,
    /// Actions dropped because the buffer was full.
    pub(crate) dropped: u64,
    /// Ask the running workflows to cancel.
    pub(crate) cancel_running: bool,
    /// Terminate the running workflows (then plan again: the kept action
    /// starts once they are closed).
    pub(crate) terminate_running: bool,
}

/// Decides, in order, what becomes of each buffered action, given whether
/// a workflow of the schedule runs (Temporal's `ProcessBuffer`): without
/// one running, the first action starts and counts as running for the
/// rest; `AllowAll` starts regardless.
pub(crate) fn plan(buffer: Vec<BufferedAction>, mut running: bool) -> Plan {
    let mut plan = Plan::default();
    for action in buffer {
        if action.overlap == ScheduleOverlapPolicy::AllowAll {
            plan.start.push(action);
            running = true;
            continue;
        }
        if !running && plan.keep.is_empty() {
            plan.start.push(action);
            running = true;
            continue;
        }
        match action.overlap {
            ScheduleOverlapPolicy::Skip => plan.skipped += 1,
            ScheduleOverlapPolicy::BufferOne => {
                if plan.keep.is_empty() {
                    plan.keep.push(action);
                } else {
                    plan.skipped += 1;
                }
            }
            ScheduleOverlapPolicy::BufferAll => {
                if plan.keep.len() < MAX_BUFFERED_ACTIONS {
                    plan.keep.push(action);
                } else {
                    plan.dropped += 1;
                }
            }
            ScheduleOverlapPolicy::CancelOther | ScheduleOverlapPolicy::TerminateOther => {
                // Only the newest waits: those before it would be cut off
                // by it in turn.
                plan.skipped += plan.keep.len() as u64;
                plan.keep.clear();
                if action.overlap == ScheduleOverlapPolicy::CancelOther {
                    plan.cancel_running = true;
                } else {
                    plan.terminate_running = true;
                }
                plan.keep.push(action);
            }
            // Started before the match.
            ScheduleOverlapPolicy::AllowAll => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn action(secs: u64, overlap: ScheduleOverlapPolicy) -> BufferedAction {
        BufferedAction {
            nominal: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            overlap,
            manual: false,
        }
    }

    #[test]
    fn each_policy_decides_as_temporal_does() {
        use ScheduleOverlapPolicy::*;
        let p = plan(vec![action(1, Skip), action(2, Skip)], false);
        assert_eq!((p.start.len(), p.skipped), (1, 1));
        let p = plan(vec![action(1, Skip)], true);
        assert_eq!((p.start.len(), p.skipped), (0, 1));
        let p = plan(vec![action(1, BufferOne), action(2, BufferOne)], true);
        assert_eq!((p.keep.len(), p.skipped), (1, 1));
        assert_eq!(p.keep[0].nominal, action(1, Skip).nominal);
        let p = plan(vec![action(1, BufferAll), action(2, BufferAll)], true);
        assert_eq!(p.keep.len(), 2);
        let p = plan(vec![action(1, BufferAll), action(2, BufferAll)], false);
        assert_eq!((p.start.len(), p.keep.len()), (1, 1));
        let p = plan(vec![action(1, CancelOther), action(2, CancelOther)], true);
        assert!(p.cancel_running && !p.terminate_running);
        assert_eq!((p.keep.len(), p.skipped), (1, 1));
        assert_eq!(p.keep[0].nominal, action(2, Skip).nominal);
        let p = plan(vec![action(1, TerminateOther)], true);
        assert!(p.terminate_running);
        let p = plan(vec![action(1, AllowAll), action(2, AllowAll)], true);
        assert_eq!(p.start.len(), 2);
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        let buffer = (0..MAX_BUFFERED_ACTIONS as u64 + 3)
            .map(|s| action(s, ScheduleOverlapPolicy::BufferAll))
            .collect();
        let p = plan(buffer, true);
        assert_eq!((p.keep.len(), p.dropped), (MAX_BUFFERED_ACTIONS, 3));
    }

    #[test]
    fn names_parse_both_ways() {
        for name in [
            "skip",
            "buffer-one",
            "BUFFER_ALL",
            "cancel-other",
            "terminate-other",
            "allow-all",
        ] {
            let policy: ScheduleOverlapPolicy = name.parse().unwrap();
            assert_eq!(policy.as_str(), name.to_ascii_lowercase().replace('_', "-"));
        }
        assert!("sometimes".parse::<ScheduleOverlapPolicy>().is_err());
    }
}
