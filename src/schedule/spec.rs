//! When a schedule acts: cron expressions and intervals with an offset, in
//! a time zone, between optional bounds, with jitter (Temporal's
//! `ScheduleSpec`). Pure: the next nominal time after a given one.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};

use super::ScheduleError;

/// An interval every `every`, counted from the Unix epoch and shifted by
/// `offset` (Temporal's `IntervalSpec` with its phase): `every` 1 hour with
/// `offset` 15 minutes acts at 00:15, 01:15, ….
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleIntervalSpec {
    /// The period; at least one second.
    pub every: Duration,
    /// Shifts the times from multiples of `every`; below `every`.
    pub offset: Duration,
}

impl ScheduleIntervalSpec {
    /// Every `every`, from the epoch, with no offset.
    pub fn new(every: Duration) -> Self {
        ScheduleIntervalSpec {
            every,
            offset: Duration::ZERO,
        }
    }

    /// The same interval shifted by `offset`.
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset = offset;
        self
    }
}

/// When a schedule acts: the union of its cron expressions and intervals,
/// between `start_at` and `end_at`, each action delayed by a random part of
/// `jitter`.
///
/// Cron expressions have five fields (`min hour dom month dow`) or six with
/// seconds first, parsed by the `croner` crate; as in Temporal, a day of the
/// month and a day of the week must **both** match (not the classic "either"
/// rule). They are read in `time_zone` (an IANA name, default UTC); on a day
/// without the wall-clock time (a spring-forward gap) the action comes at
/// the first valid time after it, and a repeated hour acts once (croner's
/// Vixie-cron rules; Temporal matches wall-clock times literally instead).
///
/// ```
/// use std::time::Duration;
/// use steadfast::{ScheduleIntervalSpec, ScheduleSpec};
/// let nightly = ScheduleSpec::cron("30 2 * * *").time_zone("Europe/Paris");
/// let every_second = ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(1)));
/// # let _ = (nightly, every_second);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScheduleSpec {
    /// Cron expressions (see above).
    pub cron_expressions: Vec<String>,
    /// Intervals from the epoch.
    pub intervals: Vec<ScheduleIntervalSpec>,
    /// The IANA time zone cron expressions are read in; `None` is UTC.
    pub time_zone: Option<String>,
    /// Each action waits a random time in `[0, jitter]` after its nominal
    /// time, and never past the next nominal time; zero by default.
    pub jitter: Duration,
    /// No action before this time.
    pub start_at: Option<SystemTime>,
    /// No action after this time.
    pub end_at: Option<SystemTime>,
}

impl ScheduleSpec {
    /// A spec of one cron expression.
    pub fn cron(expression: impl Into<String>) -> Self {
        ScheduleSpec {
            cron_expressions: vec![expression.into()],
            ..ScheduleSpec::default()
        }
    }

    /// A spec of one interval.
    pub fn interval(interval: ScheduleIntervalSpec) -> Self {
        ScheduleSpec {
            intervals: vec![interval],
            ..ScheduleSpec::default()
        }
    }

    /// Adds a cron expression.
    pub fn with_cron(mut self, expression: impl Into<String>) -> Self {
        self.cron_expressions.push(expression.into());
        self
    }

    /// Adds an interval.
    pub fn with_interval(mut self, interval: ScheduleIntervalSpec) -> Self {
        self.intervals.push(interval);
        self
    }

    /// Reads cron expressions in this IANA time zone (for example
    /// `"America/New_York"`).
    pub fn time_zone(mut self, name: impl Into<String>) -> Self {
        self.time_zone = Some(name.into());
        self
    }

    /// Delays each action by a random time up to `jitter`.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// No action before `at`.
    pub fn start_at(mut self, at: SystemTime) -> Self {
        self.start_at = Some(at);
        self
    }

    /// No action after `at`.
    pub fn end_at(mut self, at: SystemTime) -> Self {
        self.end_at = Some(at);
        self
    }

    /// Parses the spec into what computes its times.
    ///
    /// # Errors
    /// [`ScheduleError::InvalidSpec`] for an expression croner refuses (with
    /// its message), an unknown time zone, an interval under one second or
    /// an offset not below its interval, no expression and no interval, or
    /// `end_at` before `start_at`.
    pub(crate) fn compile(&self) -> Result<CompiledSpec, ScheduleError> {
        let invalid = |spec: &str, message: String| ScheduleError::InvalidSpec {
            spec: spec.to_string(),
            message,
        };
        if self.cron_expressions.is_empty() && self.intervals.is_empty() {
            return Err(invalid(
                "",
                "the spec has no cron expression and no interval; give at least one".into(),
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .dom_and_dow(true)
            .build();
        let mut crons = Vec::with_capacity(self.cron_expressions.len());
        for expression in &self.cron_expressions {
            let cron = parser
                .parse(expression.trim())
                .map_err(|e| invalid(expression, e.to_string()))?;
            crons.push(cron);
        }
        for interval in &self.intervals {
            let text = format!("every {:?} offset {:?}", interval.every, interval.offset);
            if interval.every < Duration::from_secs(1) {
                return Err(invalid(
                    &text,
                    "an interval must be at least one second".into(),
                ));
            }
            if interval.offset >= interval.every {
                return Err(invalid(
                    &text,
                    "an interval's offset must be below the interval".into(),
                ));
            }
        }
        let zone = match &self.time_zone {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
                invalid(
                    name,
                    format!("unknown time zone ({e}); give an IANA name such as \"Europe/Paris\""),
                )
            })?,
        };
        if let (Some(start), Some(end)) = (self.start_at, self.end_at)
            && end < start
        {
            return Err(invalid(
                "end_at",
                "end_at is before start_at; give an end after the start".into(),
            ));
        }
        Ok(CompiledSpec {
            crons,
            intervals: self.intervals.clone(),
            zone,
            jitter: self.jitter,
            start_at: self.start_at,
            end_at: self.end_at,
        })
    }
}

/// A parsed [`ScheduleSpec`].
#[derive(Debug)]
pub(crate) struct CompiledSpec {
    crons: Vec<Cron>,
    intervals: Vec<ScheduleIntervalSpec>,
    zone: jiff::tz::TimeZone,
    jitter: Duration,
    start_at: Option<SystemTime>,
    end_at: Option<SystemTime>,
}

impl CompiledSpec {
    /// The first nominal time strictly after `after`, within the bounds;
    /// `None` when there is none.
    pub(crate) fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        // Times before `start_at` do not count: look from just before it.
        let after = match self.start_at {
            Some(start) if start > after => start.checked_sub(Duration::from_nanos(1))?,
            _ => after,
        };
        let mut best: Option<SystemTime> = None;
        for cron in &self.crons {
            if let Some(t) = self.cron_next(cron, after) {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        for interval in &self.intervals {
            if let Some(t) = interval_next(interval, after) {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        best.filter(|t| self.end_at.is_none_or(|end| *t <= end))
    }

    fn cron_next(&self, cron: &Cron, after: SystemTime) -> Option<SystemTime> {
        let ts = jiff::Timestamp::try_from(after).ok()?;
        let zoned = ts.to_zoned(self.zone.clone());
        let next = cron.find_next_occurrence(&zoned, false).ok()?;
        Some(SystemTime::from(next.timestamp()))
    }

    /// When the action of `nominal` is due: `nominal` plus its jitter, a
    /// fraction of `jitter` (bounded by the time to the next nominal time)
    /// fixed by `seed` and `nominal`, so it is the same after a restart.
    pub(crate) fn due(&self, seed: &str, nominal: SystemTime) -> SystemTime {
        if self.jitter.is_zero() {
            return nominal;
        }
        let mut bound = self.jitter;
        if let Some(next) = self.next_after(nominal)
            && let Ok(gap) = next.duration_since(nominal)
        {
            bound = bound.min(gap.saturating_sub(Duration::from_millis(1)));
        }
        let nanos = nominal
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let hash = fnv1a(seed.as_bytes(), nanos);
        let bound_nanos = bound.as_nanos().max(1);
        let part = (hash as u128) % (bound_nanos + 1);
        nominal + Duration::from_nanos(part.min(u64::MAX as u128) as u64)
    }
}

/// The next multiple of `every` plus `offset` after `after` (times before
/// the epoch have none).
fn interval_next(interval: &ScheduleIntervalSpec, after: SystemTime) -> Option<SystemTime> {
    let since = after
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let every = interval.every.as_nanos();
    let offset = interval.offset.as_nanos();
    // The smallest k with k * every + offset > since.
    let k = if since < offset {
        0
    } else {
        (since - offset) / every + 1
    };
    let at = k.checked_mul(every)?.checked_add(offset)?;
    let secs = u64::try_from(at / 1_000_000_000).ok()?;
    let nanos = (at % 1_000_000_000) as u32;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// FNV-1a over `bytes` and `n`: a hash stable across builds and platforms
/// (std's hasher promises neither), for jitter that survives a restart.
fn fnv1a(bytes: &[u8], n: u128) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes.iter().chain(n.to_le_bytes().iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl FromStr for ScheduleSpec {
    type Err = ScheduleError;

    /// One cron expression, checked.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = ScheduleSpec::cron(s);
        spec.compile()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn intervals_count_from_the_epoch_with_their_offset() {
        let spec = ScheduleSpec::interval(
            ScheduleIntervalSpec::new(Duration::from_secs(60)).with_offset(Duration::from_secs(5)),
        )
        .compile()
        .unwrap();
        assert_eq!(spec.next_after(at(0)), Some(at(5)));
        assert_eq!(spec.next_after(at(5)), Some(at(65)));
        assert_eq!(spec.next_after(at(64)), Some(at(65)));
    }

    #[test]
    fn cron_expressions_read_in_their_zone_and_need_both_days() {
        // 2026-12-02T00:00:00Z is a Wednesday.
        let wednesday = at(1_796_169_600);
        let spec = ScheduleSpec::cron("0 9 * * *")
            .time_zone("America/New_York")
            .compile()
            .unwrap();
        // 09:00 in New York is 14:00 UTC in December.
        assert_eq!(
            spec.next_after(wednesday),
            Some(wednesday + Duration::from_secs(14 * 3600))
        );
        // The 1st of a month that is also a Monday (both must match).
        let spec = ScheduleSpec::cron("0 0 1 * MON").compile().unwrap();
        let next = spec.next_after(wednesday).unwrap();
        let zoned = jiff::Timestamp::try_from(next)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!(zoned.day(), 1);
        assert_eq!(zoned.weekday(), jiff::civil::Weekday::Monday);
    }

    #[test]
    fn bad_specs_are_refused_with_the_parsers_message() {
        let err = ScheduleSpec::cron("61 * * * *").compile().unwrap_err();
        assert!(matches!(err, ScheduleError::InvalidSpec { ref spec, .. } if spec == "61 * * * *"));
        assert!(
            ScheduleSpec::cron("* * * * *")
                .time_zone("Mars/Olympus")
                .compile()
                .is_err()
        );
        assert!(ScheduleSpec::default().compile().is_err());
    }

    #[test]
    fn bounds_and_jitter_stay_within_their_limits() {
        let spec = ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(10)))
            .start_at(at(95))
            .end_at(at(120))
            .jitter(Duration::from_secs(60))
            .compile()
            .unwrap();
        assert_eq!(spec.next_after(at(0)), Some(at(100)));
        assert_eq!(spec.next_after(at(120)), None);
        let due = spec.due("s", at(100));
        assert!(due >= at(100) && due < at(110));
        assert_eq!(due, spec.due("s", at(100)));
    }
}
