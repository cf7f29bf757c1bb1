//! Visibility: the indexes that answer `list` and `delete` without reading
//! every run, and their upkeep by the writer.
//!
//! All indexes live in one table, `visibility: &[u8] -> ()` (one table, so
//! the writer opens one more table per batch, not five). Every key ends with
//! the run's *order suffix*, 25 bytes:
//!
//! ```text
//! group u8 (0 open, 1 closed) | !time_ns u64 BE | !run_id u128 BE
//! ```
//!
//! where time is the start time of an open run and the close time of a
//! closed one. Ascending keys are Temporal's default order: open runs first,
//! newest start first; then closed runs, newest close first; ties broken by
//! the (time-ordered) run ID, newest first. A page token is the suffix of
//! the last run listed, so paging is by key, not offset.
//!
//! Keys, by their first byte:
//! - `1` ORDER: `1 | suffix`, every run.
//! - `2` STATUS: `2 | status code | suffix`, closed runs only (an open run
//!   is `Running`, which is the ORDER index's group 0).
//! - `3` TYPE: `3 | escaped workflow type | suffix`.
//! - `4` WORKFLOW: `4 | escaped workflow ID | suffix`, for ID prefix filters
//!   and for `delete` (every run of an ID).
//! - `5` ATTRIBUTE: `5 | escaped name | value key | suffix`, one per search
//!   attribute, one per element of a keyword list.
//!
//! Strings are escaped so that keys keep their order and a string's key is
//! never a prefix of a longer string's: each `0x00` byte becomes `00 FF`,
//! and the string ends with `00 01`. Value keys start with a kind tag, then
//! an order-preserving encoding: keyword escaped; int with its sign bit
//! flipped, big-endian; double as its IEEE bits made totally ordered (sign
//! flipped, or all bits for negatives); bool one byte; datetime as
//! nanoseconds since the epoch, big-endian. So an attribute equality filter
//! is a prefix scan in list order, and an Int, Double or Datetime range is
//! one contiguous scan (whose suffixes are then sorted).
//!
//! A query picks one index by its filter (a search attribute equality, then
//! an ID prefix, then an attribute range, then the type, then the status,
//! else ORDER), scans it from the page token, and checks the other
//! predicates on each candidate's record. Time ranges bound the scan: the
//! open group by start time and the closed group by close time.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::SystemTime;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::redo::{Log, Logged, Tag};
use super::tables::{RUNS, VISIBILITY};
use super::writer::{self, Tables};
use super::{open_read, redb_err};
use crate::codec;
use crate::history::{RunId, SearchAttributeValue, WorkflowStatus};
use crate::store::query::{CLOSED, OPEN, SUFFIX_LEN, Suffix, nanos, suffix};
use crate::store::{Query, QueryPage, RunRecord, StoreError, WriteOutcome};

// Key tags and codes below are the file format (FORMAT.md): never change
// one; a new index takes a new tag, with a store format bump.
const ORDER: u8 = 1;
const STATUS: u8 = 2;
const TYPE: u8 = 3;
const WORKFLOW: u8 = 4;
const ATTRIBUTE: u8 = 5;

const KEYWORD: u8 = 1;
const INT: u8 = 2;
const DOUBLE: u8 = 3;
const BOOL: u8 = 4;
const DATETIME: u8 = 5;

/// The order suffix that ends an index key; `None` for a key too short to
/// have one (only damage makes one).
fn suffix_of(key: &[u8]) -> Option<&[u8]> {
    key.len()
        .checked_sub(SUFFIX_LEN)
        .filter(|&start| start > 0)
        .map(|start| &key[start..])
}

/// The run an order suffix names.
fn run_of(suffix: &[u8]) -> RunId {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&suffix[suffix.len() - 16..]);
    RunId::from_u128(!u128::from_be_bytes(bytes))
}

pub(super) fn status_code(status: WorkflowStatus) -> u8 {
    match status {
        WorkflowStatus::Running => 0,
        WorkflowStatus::Completed => 1,
        WorkflowStatus::Failed => 2,
        WorkflowStatus::Cancelled => 3,
        WorkflowStatus::Terminated => 4,
        WorkflowStatus::TimedOut => 5,
        WorkflowStatus::ContinuedAsNew => 6,
    }
}

/// Escapes a string without its terminator (for prefixes).
fn push_escaped_prefix(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    push_escaped_prefix(out, s);
    out.extend_from_slice(&[0x00, 0x01]);
}

/// The order-preserving key of one value; `None` for a keyword list (its
/// elements are keyed as keywords, see [`value_keys`]).
fn value_key(value: &SearchAttributeValue) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(17);
    match value {
        SearchAttributeValue::Keyword(k) => {
            out.push(KEYWORD);
            push_escaped(&mut out, k);
        }
        SearchAttributeValue::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        SearchAttributeValue::Double(d) => {
            let bits = d.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.push(DOUBLE);
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        SearchAttributeValue::Bool(b) => {
            out.push(BOOL);
            out.push(u8::from(*b));
        }
        SearchAttributeValue::Datetime(t) => {
            out.push(DATETIME);
            out.extend_from_slice(&nanos(*t).to_be_bytes());
        }
        SearchAttributeValue::KeywordList(_) => return None,
    }
    Some(out)
}

/// The keys a value is found under: one, or one per keyword of a list.
fn value_keys(value: &SearchAttributeValue) -> Vec<Vec<u8>> {
    match value {
        SearchAttributeValue::KeywordList(list) => list
            .iter()
            .filter_map(|k| value_key(&SearchAttributeValue::Keyword(k.clone())))
            .collect(),
        other => value_key(other).into_iter().collect(),
    }
}

fn attribute_prefix(name: &str, value_key: &[u8]) -> Vec<u8> {
    let mut key = vec![ATTRIBUTE];
    push_escaped(&mut key, name);
    key.extend_from_slice(value_key);
    key
}

/// Every index key of a run, sorted, without duplicates.
fn entries(run_id: RunId, record: &RunRecord) -> BTreeSet<Vec<u8>> {
    let suffix = suffix(run_id, record);
    let with_suffix = |mut key: Vec<u8>| {
        key.extend_from_slice(&suffix);
        key
    };
    let mut keys = BTreeSet::new();
    keys.insert(with_suffix(vec![ORDER]));
    if record.status.is_closed() {
        keys.insert(with_suffix(vec![STATUS, status_code(record.status)]));
    }
    let mut key = vec![TYPE];
    push_escaped(&mut key, &record.workflow_type);
    keys.insert(with_suffix(key));
    let mut key = vec![WORKFLOW];
    push_escaped(&mut key, &record.workflow_id);
    keys.insert(with_suffix(key));
    for (name, value) in record.search_attributes.iter() {
        for value_key in value_keys(value) {
            keys.insert(with_suffix(attribute_prefix(name, &value_key)));
        }
    }
    keys
}

type Index<'txn> = Logged<'txn, &'static [u8], ()>;

/// Adds a new run's entries, and the run to the counts.
pub(super) fn insert(
    t: &mut Tables<'_>,
    run_id: RunId,
    record: &RunRecord,
) -> Result<(), StoreError> {
    insert_entries(&mut t.visibility, run_id, record)?;
    t.counts.add(record.status, 1);
    Ok(())
}

fn insert_entries(
    index: &mut Index<'_>,
    run_id: RunId,
    record: &RunRecord,
) -> Result<(), StoreError> {
    for key in entries(run_id, record) {
        index.insert(key.as_slice(), ()).map_err(redb_err)?;
    }
    Ok(())
}

/// Moves a run's entries (and its count) from its old record to its new
/// one; entries that both have are left alone.
pub(super) fn update(
    t: &mut Tables<'_>,
    run_id: RunId,
    old: &RunRecord,
    new: &RunRecord,
) -> Result<(), StoreError> {
    let old_keys = entries(run_id, old);
    let new_keys = entries(run_id, new);
    for key in old_keys.difference(&new_keys) {
        t.visibility.remove(key.as_slice()).map_err(redb_err)?;
    }
    for key in new_keys.difference(&old_keys) {
        t.visibility.insert(key.as_slice(), ()).map_err(redb_err)?;
    }
    if old.status != new.status {
        t.counts.add(old.status, -1);
        t.counts.add(new.status, 1);
    }
    Ok(())
}

/// Removes a run's entries (those its record names), and the run from the
/// counts.
pub(super) fn remove(
    t: &mut Tables<'_>,
    run_id: RunId,
    record: &RunRecord,
) -> Result<(), StoreError> {
    for key in entries(run_id, record) {
        t.visibility.remove(key.as_slice()).map_err(redb_err)?;
    }
    t.counts.add(record.status, -1);
    Ok(())
}

/// The number of runs of `status` in the indexes: the open group of the
/// ORDER index for `Running`, the STATUS index for a closed status. One
/// pass over those keys (a migration's, once).
pub(super) fn count_status<T: ReadableTable<&'static [u8], ()>>(
    index: &T,
    status: WorkflowStatus,
) -> Result<u64, StoreError> {
    let prefix = match status {
        WorkflowStatus::Running => vec![ORDER, OPEN],
        closed => vec![STATUS, status_code(closed)],
    };
    let mut count = 0;
    for entry in prefix_range(index, &prefix)? {
        entry.map_err(redb_err)?;
        count += 1;
    }
    Ok(count)
}

/// Up to `limit` runs of the ORDER index's closed group whose close time
/// is at or before `cutoff`, oldest close first (the group read
/// backwards), each with its suffix. Entries are not checked against the
/// records.
pub(super) fn closed_by<T: ReadableTable<&'static [u8], ()>>(
    index: &T,
    cutoff: SystemTime,
    limit: usize,
) -> Result<Vec<(RunId, Suffix)>, StoreError> {
    let key = |time: u64, run: u8| {
        let mut key = vec![ORDER, CLOSED];
        key.extend_from_slice(&time.to_be_bytes());
        key.extend_from_slice(&[run; 16]);
        key
    };
    // Reversed times: every close at or before the cutoff is at or after it.
    let low = key(!nanos(cutoff), 0);
    let high = key(u64::MAX, 0xFF);
    let mut out = Vec::new();
    for entry in index
        .range::<&[u8]>(low.as_slice()..=high.as_slice())
        .map_err(redb_err)?
        .rev()
        .take(limit)
    {
        let (key, _) = entry.map_err(redb_err)?;
        if let Some(found) = suffix_of(key.value())
            && found.len() == SUFFIX_LEN
        {
            let mut at = [0u8; SUFFIX_LEN];
            at.copy_from_slice(found);
            out.push((run_of(found), at));
        }
    }
    Ok(out)
}

/// Removes one ORDER entry, by its suffix: an entry whose run is gone or
/// elsewhere in the order (only damage leaves one).
pub(super) fn remove_order(index: &mut Index<'_>, at: &Suffix) -> Result<(), StoreError> {
    let mut key = vec![ORDER];
    key.extend_from_slice(at);
    index.remove(key.as_slice()).map_err(redb_err)?;
    Ok(())
}

/// Builds the entries of every run: the migration of a format-1 file, run
/// inside the write transaction that also sets the new format version, so
/// a crash leaves the old file or the migrated one. A record that does not
/// decode gets only the entries its workflow ID row can tell, none: `list`
/// skips it as it did before, and `describe` reports it.
pub(super) fn build_all(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let runs = txn.open_table(RUNS).map_err(redb_err)?;
    // A migration's, made in a durable commit of its own: not journaled.
    let mut index = Logged::open(txn, VISIBILITY, Tag::Visibility, &Log::default())?;
    let mut built = 0u64;
    for entry in runs.iter().map_err(redb_err)? {
        let (key, value) = entry.map_err(redb_err)?;
        let run_id = RunId::from_u128(key.value());
        match codec::decode::<RunRecord>(value.value()) {
            Ok(record) => {
                insert_entries(&mut index, run_id, &record)?;
                built += 1;
            }
            Err(e) => {
                tracing::warn!(%run_id, error = %e, "a run record does not decode; it is not listed")
            }
        }
    }
    Ok(built)
}

/// Removes every run of a closed workflow ID: records, histories, index
/// entries and the ID itself. Refuses a running one.
pub(super) fn delete_workflow(
    t: &mut Tables<'_>,
    workflow_id: &str,
) -> Result<WriteOutcome, StoreError> {
    let current = t.workflows.get(workflow_id).map_err(redb_err)?;
    let Some(current) = current.map(|v| RunId::from_u128(v.value())) else {
        return Ok(WriteOutcome::NotFound);
    };
    let current_record = match t.runs.get(current.as_u128()).map_err(redb_err)? {
        Some(bytes) => codec::decode::<RunRecord>(bytes.value())
            .map_err(|e| StoreError::corrupt(workflow_id, e))?,
        None => return Err(StoreError::missing_run(workflow_id, current)),
    };
    if !current_record.status.is_closed() {
        return Ok(WriteOutcome::StillRunning(current));
    }
    let mut prefix = vec![WORKFLOW];
    push_escaped(&mut prefix, workflow_id);
    let mut runs: Vec<RunId> = Vec::new();
    for entry in prefix_range(&*t.visibility, &prefix)? {
        let (key, _) = entry.map_err(redb_err)?;
        runs.extend(suffix_of(key.value()).map(run_of));
    }
    if !runs.contains(&current) {
        runs.push(current);
    }
    for &run_id in &runs {
        let key = run_id.as_u128();
        let record = t
            .runs
            .remove(key)
            .map_err(redb_err)?
            .map(|bytes| codec::decode::<RunRecord>(bytes.value()));
        // A record that does not decode cannot tell its other entries:
        // they point at no record now, and a query skips such entries.
        if let Some(Ok(record)) = record {
            remove(t, run_id, &record)?;
        }
        writer::remove_history_and_wake(t, key)?;
    }
    // Entries of runs whose records did not decode.
    let mut stale = Vec::new();
    for entry in prefix_range(&*t.visibility, &prefix)? {
        let (key, _) = entry.map_err(redb_err)?;
        stale.push(key.value().to_vec());
    }
    for key in stale {
        if let Some(suffix) = suffix_of(&key) {
            let mut order = vec![ORDER];
            order.extend_from_slice(suffix);
            t.visibility.remove(order.as_slice()).map_err(redb_err)?;
        }
        t.visibility.remove(key.as_slice()).map_err(redb_err)?;
    }
    t.workflows.remove(workflow_id).map_err(redb_err)?;
    Ok(WriteOutcome::Deleted(runs))
}

/// The keys that start with `prefix`.
fn prefix_range<'a, T: ReadableTable<&'static [u8], ()>>(
    table: &'a T,
    prefix: &[u8],
) -> Result<redb::Range<'a, &'static [u8], ()>, StoreError> {
    let start: &[u8] = prefix;
    match prefix_end(prefix) {
        Some(end) => table
            .range::<&[u8]>((Bound::Included(start), Bound::Excluded(end.as_slice())))
            .map_err(redb_err),
        None => table.range::<&[u8]>(start..).map_err(redb_err),
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The part of list order a query may find runs in: a group, and bounds on
/// its reversed time (inclusive).
#[derive(Clone, Copy, Debug)]
struct Segment {
    group: u8,
    low: u64,
    high: u64,
}

impl Segment {
    fn holds(&self, suffix: &[u8]) -> bool {
        let mut time = [0u8; 8];
        time.copy_from_slice(&suffix[1..9]);
        let time = u64::from_be_bytes(time);
        suffix[0] == self.group && (self.low..=self.high).contains(&time)
    }
}

/// `[after, before)` as bounds on reversed nanoseconds, a superset of the
/// exact range (the record check is exact).
fn segment(group: u8, (after, before): (Option<SystemTime>, Option<SystemTime>)) -> Segment {
    Segment {
        group,
        low: before.map_or(0, |t| !nanos(t)),
        high: after.map_or(u64::MAX, |t| !nanos(t)),
    }
}

impl Query {
    fn segments(&self) -> Vec<Segment> {
        let closed_status = self.status.is_some_and(|s| s.is_closed());
        let closed_range = self.closed.0.is_some() || self.closed.1.is_some();
        let mut segments = Vec::new();
        if !closed_status && !closed_range {
            segments.push(segment(OPEN, self.started));
        }
        if self.status != Some(WorkflowStatus::Running) {
            segments.push(segment(CLOSED, self.closed));
        }
        segments
    }

    /// The exact check of every predicate on a candidate's record.
    fn matches(&self, record: &RunRecord) -> bool {
        let in_range =
            |t: SystemTime, (after, before): (Option<SystemTime>, Option<SystemTime>)| {
                after.is_none_or(|a| t >= a) && before.is_none_or(|b| t < b)
            };
        let closed_range = self.closed.0.is_some() || self.closed.1.is_some();
        self.status.is_none_or(|s| s == record.status)
            && self
                .workflow_type
                .as_ref()
                .is_none_or(|t| *t == record.workflow_type)
            && in_range(record.start_time, self.started)
            && (!closed_range
                || (record.status.is_closed()
                    && record.close_time.is_some_and(|t| in_range(t, self.closed))))
            && self
                .id_prefix
                .as_ref()
                .is_none_or(|p| record.workflow_id.starts_with(p.as_str()))
            && self.attributes.iter().all(|(name, wanted)| {
                record
                    .search_attributes
                    .get(name)
                    .is_some_and(|v| v.matches(wanted))
            })
            && self.ranges.iter().all(|(name, from, to)| {
                let (Some(from), Some(to)) = (value_key(from), value_key(to)) else {
                    return false;
                };
                record
                    .search_attributes
                    .get(name)
                    .and_then(value_key)
                    .is_some_and(|v| v[0] == from[0] && v >= from && v < to)
            })
    }
}

/// How a query finds its candidates.
enum Plan {
    /// A scan of keys `prefix | suffix`, already in list order.
    Ordered(Vec<u8>),
    /// A scan of keys `[start, end)` whose suffixes are then sorted.
    Collect(Vec<u8>, Option<Vec<u8>>),
}

fn plan(q: &Query) -> Plan {
    if let Some((name, value)) = q.attributes.first()
        && let Some(key) = value_key(value)
    {
        return Plan::Ordered(attribute_prefix(name, &key));
    }
    if let Some(prefix) = &q.id_prefix {
        let mut key = vec![WORKFLOW];
        push_escaped_prefix(&mut key, prefix);
        let end = prefix_end(&key);
        return Plan::Collect(key, end);
    }
    if let Some((name, from, to)) = q.ranges.first()
        && let (Some(from), Some(to)) = (value_key(from), value_key(to))
    {
        return Plan::Collect(
            attribute_prefix(name, &from),
            Some(attribute_prefix(name, &to)),
        );
    }
    if let Some(workflow_type) = &q.workflow_type {
        let mut key = vec![TYPE];
        push_escaped(&mut key, workflow_type);
        return Plan::Ordered(key);
    }
    match q.status {
        Some(status) if status.is_closed() => Plan::Ordered(vec![STATUS, status_code(status)]),
        _ => Plan::Ordered(vec![ORDER]),
    }
}

/// Answers a query in one read transaction.
pub(super) fn query(txn: &ReadTransaction, q: &Query) -> Result<QueryPage, StoreError> {
    let empty = QueryPage {
        runs: Vec::new(),
        next: None,
    };
    let (Some(index), Some(runs)) = (open_read(txn, VISIBILITY)?, open_read(txn, RUNS)?) else {
        return Ok(empty);
    };
    let page_size = q.page_size.max(1);
    let mut found: Vec<(RunId, RunRecord, Suffix)> = Vec::new();
    // Takes a candidate; true once one more than a page is found.
    let mut take = |suffix: &[u8]| -> Result<bool, StoreError> {
        let run_id = run_of(suffix);
        let Some(bytes) = runs.get(run_id.as_u128()).map_err(redb_err)? else {
            return Ok(false);
        };
        // A record that does not decode is skipped: `describe` reports it.
        let Ok(record) = codec::decode::<RunRecord>(bytes.value()) else {
            return Ok(false);
        };
        let mut at = [0u8; SUFFIX_LEN];
        at.copy_from_slice(suffix);
        if q.matches(&record) && self::suffix(run_id, &record) == at {
            found.push((run_id, record, at));
        }
        Ok(found.len() > page_size)
    };
    let segments = q.segments();
    match plan(q) {
        Plan::Ordered(prefix) => {
            'segments: for seg in &segments {
                let key = |time: u64, run: u8| {
                    let mut key = prefix.clone();
                    key.push(seg.group);
                    key.extend_from_slice(&time.to_be_bytes());
                    key.extend_from_slice(&[run; 16]);
                    key
                };
                let low = key(seg.low, 0);
                let high = key(seg.high, 0xFF);
                let mut start = Bound::Included(low.clone());
                if let Some(after) = &q.after {
                    let mut from = prefix.clone();
                    from.extend_from_slice(after);
                    if from > high {
                        continue;
                    }
                    if from >= low {
                        start = Bound::Excluded(from);
                    }
                }
                let start = match &start {
                    Bound::Included(k) => Bound::Included(k.as_slice()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                };
                for entry in index
                    .range::<&[u8]>((start, Bound::Included(high.as_slice())))
                    .map_err(redb_err)?
                {
                    let (key, _) = entry.map_err(redb_err)?;
                    if let Some(suffix) = suffix_of(key.value())
                        && take(suffix)?
                    {
                        break 'segments;
                    }
                }
            }
        }
        Plan::Collect(start, end) => {
            let range = match &end {
                Some(end) => index.range::<&[u8]>((
                    Bound::Included(start.as_slice()),
                    Bound::Excluded(end.as_slice()),
                )),
                None => index.range::<&[u8]>(start.as_slice()..),
            }
            .map_err(redb_err)?;
            let mut candidates = Vec::new();
            for entry in range {
                let (key, _) = entry.map_err(redb_err)?;
                let Some(suffix) = suffix_of(key.value()) else {
                    continue;
                };
                let after = q.after.as_ref().is_none_or(|a| suffix > a.as_slice());
                if after && segments.iter().any(|s| s.holds(suffix)) {
                    let mut at = [0u8; SUFFIX_LEN];
                    at.copy_from_slice(suffix);
                    candidates.push(at);
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
            for at in candidates {
                if take(&at)? {
                    break;
                }
            }
        }
    }
    let more = found.len() > page_size;
    found.truncate(page_size);
    let next = if more {
        found.last().map(|(_, _, at)| *at)
    } else {
        None
    };
    Ok(QueryPage {
        runs: found.into_iter().map(|(id, r, _)| (id, r)).collect(),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_keys_keep_the_values_order() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let keys: Vec<_> = ints
            .iter()
            .map(|i| value_key(&SearchAttributeValue::Int(*i)).unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let doubles = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-9, 3.0, f64::INFINITY];
        let keys: Vec<_> = doubles
            .iter()
            .map(|d| value_key(&SearchAttributeValue::Double(*d)).unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn an_escaped_string_is_never_a_prefix_of_another() {
        let strings = ["", "a", "a\0", "a\0b", "ab", "b"];
        let keys: Vec<Vec<u8>> = strings
            .iter()
            .map(|s| {
                let mut k = Vec::new();
                push_escaped(&mut k, s);
                k
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert!(
                    i == j || !b.starts_with(a),
                    "{:?} {:?}",
                    strings[i],
                    strings[j]
                );
            }
        }
    }
}
