//! Reads, each one statement (one snapshot) on the readers' session.

use std::time::SystemTime;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::{db_err, nanos_column, run_id_of, status_code};
use crate::codec;
use crate::history::{Event, EventId, RunId, SearchAttributeValue, WorkflowStatus};
use crate::store::query::{SUFFIX_LEN, Suffix};
use crate::store::{Query, QueryPage, RunRecord, StoreError};

/// The readers' session, with the reads every step of a run makes
/// prepared once on it (a read by text is parsed and planned each time,
/// in a round trip of its own before the read's).
#[derive(Debug)]
pub(super) struct Reader {
    client: Client,
    current_run: Statement,
    run: Statement,
    history: Statement,
    last_event: Statement,
}

impl std::ops::Deref for Reader {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Reader {
    /// A new readers' session, its statements prepared.
    pub(super) async fn connect(target: &super::Target) -> Result<Reader, StoreError> {
        let client = target.connect().await?;
        let current_run = client.prepare(CURRENT_RUN).await.map_err(db_err)?;
        let run = client.prepare(RUN).await.map_err(db_err)?;
        let history = client.prepare(HISTORY).await.map_err(db_err)?;
        let last_event = client.prepare(LAST_EVENT).await.map_err(db_err)?;
        Ok(Reader {
            client,
            current_run,
            run,
            history,
            last_event,
        })
    }
}

const CURRENT_RUN: &str = "SELECT w.latest_run, r.record FROM workflows w \
     LEFT JOIN runs r ON r.run_id = w.latest_run WHERE w.workflow_id = $1";
const RUN: &str = "SELECT record FROM runs WHERE run_id = $1";
const LAST_EVENT: &str =
    "SELECT event FROM history WHERE run_id = $1 ORDER BY event_id DESC LIMIT 1";
const HISTORY: &str = "SELECT event_id, event FROM history WHERE run_id = $1 AND event_id >= $2 \
     ORDER BY event_id LIMIT $3";

fn decode_record(workflow_id: &str, bytes: &[u8]) -> Result<RunRecord, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::corrupt(workflow_id, e))
}

pub(super) async fn current_run(
    c: &Reader,
    workflow_id: &str,
) -> Result<Option<(RunId, RunRecord)>, StoreError> {
    let row = c
        .client
        .query_opt(&c.current_run, &[&workflow_id])
        .await
        .map_err(db_err)?;
    let Some(row) = row else { return Ok(None) };
    let run_id = run_id_of(row.get(0));
    let bytes: Option<&[u8]> = row.get(1);
    let bytes = bytes.ok_or_else(|| StoreError::missing_run(workflow_id, run_id))?;
    Ok(Some((run_id, decode_record(workflow_id, bytes)?)))
}

pub(super) async fn run(
    c: &Reader,
    run_id: RunId,
    workflow_id: &str,
) -> Result<Option<RunRecord>, StoreError> {
    let row = c
        .client
        .query_opt(&c.run, &[&run_id.as_uuid()])
        .await
        .map_err(db_err)?;
    row.map(|row| decode_record(workflow_id, row.get(0)))
        .transpose()
}

pub(super) async fn history_len(c: &Client, run_id: RunId) -> Result<u64, StoreError> {
    let row = c
        .query_opt(
            "SELECT max(event_id) FROM history WHERE run_id = $1",
            &[&run_id.as_uuid()],
        )
        .await
        .map_err(db_err)?;
    Ok(row
        .and_then(|r| r.get::<_, Option<i64>>(0))
        .map_or(0, |n| n.max(0) as u64))
}

pub(super) async fn last_event(
    c: &Reader,
    run_id: RunId,
    workflow_id: &str,
) -> Result<Option<Event>, StoreError> {
    let row = c
        .client
        .query_opt(&c.last_event, &[&run_id.as_uuid()])
        .await
        .map_err(db_err)?;
    row.map(|row| {
        codec::decode::<Event>(row.get::<_, &[u8]>(0))
            .map_err(|e| StoreError::corrupt(workflow_id, e))
    })
    .transpose()
}

/// Up to `limit` events from `from` on, checked as the redb store checks
/// them: each stored under its own ID, numbered without gaps.
pub(super) async fn history(
    c: &Reader,
    run_id: RunId,
    workflow_id: &str,
    from: EventId,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let from = from.max(1);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .client
        .query(
            &c.history,
            &[
                &run_id.as_uuid(),
                &i64::try_from(from).unwrap_or(i64::MAX),
                &limit,
            ],
        )
        .await
        .map_err(db_err)?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let key = row.get::<_, i64>(0) as u64;
        let event: Event = codec::decode(row.get::<_, &[u8]>(1))
            .map_err(|e| StoreError::corrupt(workflow_id, e))?;
        if event.event_id != key {
            return Err(StoreError::Corrupt {
                workflow_id: workflow_id.to_string(),
                message: format!("event stored under id {key} claims id {}", event.event_id),
            });
        }
        let expected = from + events.len() as u64;
        if event.event_id != expected {
            return Err(StoreError::Corrupt {
                workflow_id: workflow_id.to_string(),
                message: format!(
                    "event {} follows event {} in the history",
                    event.event_id,
                    expected - 1
                ),
            });
        }
        events.push(event);
    }
    Ok(events)
}

/// The wake-ups of the shards this process owns: in `[from, to)` for
/// `owned`, and every one before `to` for `fresh` (shards just acquired,
/// whose overdue wake-ups are the runs their last owner left), and for
/// `owned` also every one before `overdue_before` (the backstop sweep:
/// `i64::MIN` for none), in time order.
pub(super) async fn wakeups(
    c: &Client,
    (from, to): (u64, u64),
    owned: &[i32],
    fresh: &[i32],
    overdue_before: i64,
) -> Result<Vec<(u64, RunId)>, StoreError> {
    if (from >= to || owned.is_empty()) && fresh.is_empty() && overdue_before == i64::MIN {
        return Ok(Vec::new());
    }
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    // A bound past what a bigint holds bounds nothing.
    let (to, unbounded) = match i64::try_from(to) {
        Ok(to) => (to, false),
        Err(_) => (i64::MAX, true),
    };
    let rows = c
        .query(
            "SELECT wake, run_id FROM runs WHERE status = 0 AND wake IS NOT NULL \
             AND (wake < $2 OR $3) \
             AND ((shard = ANY($4) AND (wake >= $1 OR wake < $6)) OR shard = ANY($5)) \
             ORDER BY wake, run_id",
            &[&from, &to, &unbounded, &owned, &fresh, &overdue_before],
        )
        .await
        .map_err(db_err)?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u64, run_id_of(r.get(1))))
        .collect())
}

pub(super) async fn any_closed_by(c: &Client, cutoff: SystemTime) -> Result<bool, StoreError> {
    let row = c
        .query_opt(
            "SELECT 1 FROM runs WHERE status <> 0 AND close_ns <= $1 LIMIT 1",
            &[&nanos_column(cutoff)],
        )
        .await
        .map_err(db_err)?;
    Ok(row.is_some())
}

/// The number of runs of each status, from the counts the schema keeps
/// (folded, and changed since).
pub(super) async fn counts(c: &Client) -> Result<Vec<(WorkflowStatus, u64)>, StoreError> {
    let rows = c.query(super::schema::COUNTS, &[]).await.map_err(db_err)?;
    let mut counts: Vec<(WorkflowStatus, u64)> = (0..=6)
        .filter_map(super::status_of)
        .map(|s| (s, 0))
        .collect();
    for row in rows {
        if let Some(status) = super::status_of(row.get(0))
            && let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status)
        {
            slot.1 = row.get::<_, i64>(1).max(0) as u64;
        }
    }
    Ok(counts)
}

/// Rows a `list` reads per round while search attributes filter them.
const LIST_CHUNK: usize = 256;

/// One page of a query: the columns filter in SQL, in list order from the
/// page token; search attributes are checked on each decoded record.
pub(super) async fn list(c: &Client, q: &Query) -> Result<QueryPage, StoreError> {
    let page_size = q.page_size.max(1);
    let mut sql = String::from(
        "SELECT run_id, record, list_order, last_event FROM runs WHERE list_order > $1",
    );
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut after: Vec<u8> = q.after.map_or_else(Vec::new, |a| a.to_vec());
    params.push(Box::new(Vec::<u8>::new()));
    let mut bind = |sql: &mut String, clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    if let Some(status) = q.status {
        bind(&mut sql, " AND status = ?", Box::new(status_code(status)));
    }
    if let Some(workflow_type) = &q.workflow_type {
        bind(
            &mut sql,
            " AND workflow_type = ?",
            Box::new(workflow_type.clone()),
        );
    }
    if let Some(prefix) = &q.id_prefix {
        bind(
            &mut sql,
            " AND starts_with(workflow_id, ?)",
            Box::new(prefix.clone()),
        );
    }
    if let Some(t) = q.started.0 {
        bind(&mut sql, " AND start_ns >= ?", Box::new(nanos_column(t)));
    }
    if let Some(t) = q.started.1 {
        bind(&mut sql, " AND start_ns < ?", Box::new(nanos_column(t)));
    }
    if q.closed.0.is_some() || q.closed.1.is_some() {
        sql.push_str(" AND status <> 0");
    }
    if let Some(t) = q.closed.0 {
        bind(&mut sql, " AND close_ns >= ?", Box::new(nanos_column(t)));
    }
    if let Some(t) = q.closed.1 {
        bind(&mut sql, " AND close_ns < ?", Box::new(nanos_column(t)));
    }
    let filtered = !q.attributes.is_empty() || !q.ranges.is_empty();
    let chunk = if filtered {
        LIST_CHUNK.max(page_size + 1)
    } else {
        page_size + 1
    };
    sql.push_str(&format!(" ORDER BY list_order LIMIT {chunk}"));
    let statement = c.prepare(&sql).await.map_err(db_err)?;
    let mut found: Vec<(RunId, RunRecord, Suffix)> = Vec::new();
    loop {
        params[0] = Box::new(after.clone());
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = c.query(&statement, &refs).await.map_err(db_err)?;
        let exhausted = rows.len() < chunk;
        for row in &rows {
            let run_id = run_id_of(row.get(0));
            let order: Vec<u8> = row.get(2);
            after.clone_from(&order);
            // A record that does not decode is skipped: `describe` reports it.
            let Ok(mut record) = codec::decode::<RunRecord>(row.get::<_, &[u8]>(1)) else {
                continue;
            };
            if !attributes_match(q, &record) {
                continue;
            }
            if !record.status.is_closed() {
                record.history_len = row.get::<_, i64>(3).max(0) as u64;
            }
            let Ok(at) = <Suffix>::try_from(order.as_slice()) else {
                continue;
            };
            found.push((run_id, record, at));
            if found.len() > page_size {
                break;
            }
        }
        if found.len() > page_size || exhausted {
            break;
        }
    }
    let more = found.len() > page_size;
    found.truncate(page_size);
    let next = if more {
        found.last().map(|(_, _, at)| *at)
    } else {
        None
    };
    debug_assert!(next.is_none_or(|n| n.len() == SUFFIX_LEN));
    Ok(QueryPage {
        runs: found.into_iter().map(|(id, r, _)| (id, r)).collect(),
        next,
    })
}

/// The search-attribute predicates of a query on one record: each
/// equality holds (a keyword list holds the keyword), and each range's
/// attribute is of the bounds' kind and in `[from, to)`.
fn attributes_match(q: &Query, record: &RunRecord) -> bool {
    q.attributes.iter().all(|(name, wanted)| {
        record
            .search_attributes
            .get(name)
            .is_some_and(|v| v.matches(wanted))
    }) && q.ranges.iter().all(|(name, from, to)| {
        record
            .search_attributes
            .get(name)
            .is_some_and(|v| in_range(v, from, to))
    })
}

fn in_range(
    v: &SearchAttributeValue,
    from: &SearchAttributeValue,
    to: &SearchAttributeValue,
) -> bool {
    use SearchAttributeValue as V;
    use std::cmp::Ordering;
    let within = |low: Ordering, high: Ordering| low != Ordering::Less && high == Ordering::Less;
    match (v, from, to) {
        (V::Int(v), V::Int(a), V::Int(b)) => within(v.cmp(a), v.cmp(b)),
        (V::Double(v), V::Double(a), V::Double(b)) => within(v.total_cmp(a), v.total_cmp(b)),
        (V::Datetime(v), V::Datetime(a), V::Datetime(b)) => within(v.cmp(a), v.cmp(b)),
        (V::Keyword(v), V::Keyword(a), V::Keyword(b)) => within(v.cmp(a), v.cmp(b)),
        (V::Bool(v), V::Bool(a), V::Bool(b)) => within(v.cmp(a), v.cmp(b)),
        _ => false,
    }
}
