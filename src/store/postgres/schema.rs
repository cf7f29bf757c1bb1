//! The tables steadfast keeps in its PostgreSQL schema, created and
//! versioned by steadfast itself (no migration tool): the layout is
//! [`SCHEMA_VERSION`], and the records and events in it are of the store
//! format the redb file uses (`STORE_FORMAT_VERSION`, the same codec). A
//! schema written by a newer build, in either number, is refused with
//! [`OpenError::NewerSchema`]; an older store format is raised on open (the
//! tables do not change with it, only what events may hold).
//!
//! Layout 1 (`FORMAT.md`, "PostgreSQL"):
//! - `meta(key, value)`: `schema_version`, `format_version`, `shard_count`.
//! - `workflows(workflow_id PK, shard, latest_run)`: the latest run of an ID.
//! - `runs(run_id PK, workflow_id, shard, workflow_type, status, start_ns,
//!   close_ns, list_order, wake, last_event, record)`: one row per run; the
//!   `codec` `RunRecord` in `record`, and beside it the fields the indexes
//!   and conditional writes need. `last_event` is the history's last event
//!   ID (checked by every append); `wake` the wake hint of an open run
//!   (NULL for `WAKE_NEVER` and once closed); `list_order` the run's order
//!   suffix (`store::query`), which is also its page token.
//! - `history(run_id, event_id, event)`: append-only, a `codec` `Event` per row.
//! - `schedules(schedule_id PK, record)`: a codec `ScheduleRecord` each.
//! - `status_counts(status PK, runs)`: the number of runs of each status,
//!   kept by a trigger on `runs` in the same transaction as every change
//!   of a run's status, so `counts` reads seven rows whatever the number
//!   of runs.
//!
//! `shard` is `hash(workflow_id) % shard_count`, kept from the first layout
//! so that ownership by shard (`shared/SCALE-OUT.md`) needs no rewrite of
//! the rows.
//!
//! The two writes on the hot path are functions of the schema
//! (`start_run`, `append_events`), so that each is one statement that
//! decides its own outcome: a batch of them is pipelined in one
//! transaction, and a refused one answers a code instead of aborting it.

use tokio_postgres::Client;

use super::db_err;
use crate::error::OpenError;
use crate::store::StoreError;

/// The layout of the tables and functions below.
pub(crate) const SCHEMA_VERSION: u32 = 1;
/// Shards of a new schema (fixed at creation, as Temporal's history shards).
pub(crate) const SHARD_COUNT: u32 = 64;

const CREATE: &str = r#"
CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE workflows (
    workflow_id text PRIMARY KEY,
    shard integer NOT NULL,
    latest_run uuid NOT NULL
);
CREATE TABLE runs (
    run_id uuid PRIMARY KEY,
    workflow_id text NOT NULL,
    shard integer NOT NULL,
    workflow_type text NOT NULL,
    status smallint NOT NULL,
    start_ns bigint NOT NULL,
    close_ns bigint,
    list_order bytea NOT NULL,
    wake bigint,
    last_event bigint NOT NULL,
    record bytea NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX runs_wake ON runs (wake, run_id) WHERE status = 0 AND wake IS NOT NULL;
CREATE INDEX runs_open ON runs (shard) WHERE status = 0;
CREATE INDEX runs_list_order ON runs (list_order);
CREATE INDEX runs_workflow_id ON runs (workflow_id);
CREATE INDEX runs_closed ON runs (close_ns) WHERE status <> 0;
CREATE TABLE history (
    run_id uuid NOT NULL,
    event_id bigint NOT NULL,
    event bytea NOT NULL,
    PRIMARY KEY (run_id, event_id)
);

CREATE TABLE schedules (
    schedule_id text PRIMARY KEY,
    record bytea NOT NULL
);
CREATE TABLE status_counts (
    status smallint PRIMARY KEY,
    runs bigint NOT NULL
);
INSERT INTO status_counts (status, runs) SELECT s, 0 FROM generate_series(0, 6) AS s;
CREATE FUNCTION count_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE status_counts SET runs = runs - 1 WHERE status = OLD.status;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        UPDATE status_counts SET runs = runs + 1 WHERE status = NEW.status;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER runs_insert_delete_count AFTER INSERT OR DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION count_statuses();
CREATE TRIGGER runs_status_count AFTER UPDATE OF status ON runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION count_statuses();

-- Outcomes: 0 started, 1 already running (o_run), 2 reuse rejected
-- (o_status), 3 the run ID is stored already, 4 the latest run has no row.
CREATE FUNCTION start_run(
    p_run uuid, p_workflow text, p_shard integer, p_type text, p_status smallint,
    p_start bigint, p_close bigint, p_order bytea, p_record bytea,
    p_events bytea[], p_reuse smallint, p_wake bigint,
    OUT o_outcome smallint, OUT o_run uuid, OUT o_status smallint)
LANGUAGE plpgsql AS $$
DECLARE
    v_prev uuid;
BEGIN
    SELECT latest_run INTO v_prev FROM workflows WHERE workflow_id = p_workflow FOR UPDATE;
    IF FOUND THEN
        o_run := v_prev;
        SELECT status INTO o_status FROM runs WHERE run_id = v_prev;
        IF NOT FOUND THEN
            o_outcome := 4;
            RETURN;
        END IF;
        IF o_status = 0 THEN
            o_outcome := 1;
            RETURN;
        END IF;
        -- Reuse rules: 0 allow, 1 allow if the last did not complete, 2 reject.
        IF p_reuse = 2 OR (p_reuse = 1 AND o_status = 1) THEN
            o_outcome := 2;
            RETURN;
        END IF;
    END IF;
    PERFORM 1 FROM runs WHERE run_id = p_run;
    IF FOUND THEN
        o_outcome := 3;
        RETURN;
    END IF;
    INSERT INTO workflows (workflow_id, shard, latest_run) VALUES (p_workflow, p_shard, p_run)
        ON CONFLICT (workflow_id) DO UPDATE SET latest_run = EXCLUDED.latest_run;
    INSERT INTO runs (run_id, workflow_id, shard, workflow_type, status, start_ns, close_ns,
                      list_order, wake, last_event, record)
        VALUES (p_run, p_workflow, p_shard, p_type, p_status, p_start, p_close, p_order,
                CASE WHEN p_status = 0 THEN p_wake END, cardinality(p_events), p_record);
    INSERT INTO history (run_id, event_id, event)
        SELECT p_run, e.n, e.event FROM unnest(p_events) WITH ORDINALITY AS e(event, n);
    o_outcome := 0;
END $$;

-- Outcomes: 0 appended, 1 the run is closed or unknown, 2 the history does
-- not end just before p_expect (o_last: where it ends). A new record
-- (p_record) comes with its status, close time and list order.
CREATE FUNCTION append_events(
    p_run uuid, p_expect bigint, p_events bytea[], p_wake bigint,
    p_record bytea, p_status smallint, p_close bigint, p_order bytea,
    OUT o_outcome smallint, OUT o_last bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_status smallint;
BEGIN
    SELECT status, last_event INTO v_status, o_last FROM runs WHERE run_id = p_run FOR UPDATE;
    IF NOT FOUND OR v_status <> 0 THEN
        o_outcome := 1;
        RETURN;
    END IF;
    IF o_last + 1 <> p_expect THEN
        o_outcome := 2;
        RETURN;
    END IF;
    INSERT INTO history (run_id, event_id, event)
        SELECT p_run, p_expect + e.n - 1, e.event
        FROM unnest(p_events) WITH ORDINALITY AS e(event, n);
    IF p_record IS NULL THEN
        UPDATE runs SET last_event = p_expect + cardinality(p_events) - 1, wake = p_wake
            WHERE run_id = p_run;
    ELSE
        UPDATE runs SET last_event = p_expect + cardinality(p_events) - 1,
                        record = p_record, status = p_status, close_ns = p_close,
                        list_order = p_order,
                        wake = CASE WHEN p_status = 0 THEN p_wake END
            WHERE run_id = p_run;
    END IF;
    o_outcome := 0;
END $$;
"#;

/// Whether `name` may name steadfast's schema: a plain lower-case SQL
/// identifier, so that it is never quoted nor mistaken.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// Creates the schema on first use, or checks (and raises) the versions
/// of an existing one. Serialised between processes by an advisory lock
/// held for the transaction, so two first opens do not both create it.
pub(crate) async fn prepare(
    client: &mut Client,
    schema: &str,
    format: u32,
) -> Result<Result<(), OpenError>, StoreError> {
    let txn = client.transaction().await.map_err(db_err)?;
    txn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('steadfast-schema:' || $1))",
        &[&schema],
    )
    .await
    .map_err(db_err)?;
    txn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await
        .map_err(db_err)?;
    let exists = txn
        .query_opt(
            "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'meta'",
            &[&schema],
        )
        .await
        .map_err(db_err)?
        .is_some();
    if !exists {
        txn.batch_execute(CREATE).await.map_err(db_err)?;
        for (key, value) in [
            ("schema_version", SCHEMA_VERSION),
            ("format_version", format),
            ("shard_count", SHARD_COUNT),
        ] {
            txn.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)",
                &[&key, &value.to_string()],
            )
            .await
            .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        return Ok(Ok(()));
    }
    let version = |key: &'static str| {
        let txn = &txn;
        async move {
            let row = txn
                .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                .await
                .map_err(db_err)?;
            Ok::<_, StoreError>(row.and_then(|r| r.get::<_, String>(0).parse::<u32>().ok()))
        }
    };
    let (Some(layout), Some(found)) = (
        version("schema_version").await?,
        version("format_version").await?,
    ) else {
        return Ok(Err(OpenError::Database {
            message: format!(
                "the schema {schema} has a meta table without steadfast's versions; \
                 it is not a steadfast schema (name another one)"
            ),
        }));
    };
    if layout > SCHEMA_VERSION || found > format {
        return Ok(Err(OpenError::NewerSchema {
            schema: schema.to_string(),
            found: (layout, found),
            supported: (SCHEMA_VERSION, format),
        }));
    }
    if found < format {
        txn.execute(
            "UPDATE meta SET value = $1 WHERE key = 'format_version'",
            &[&format.to_string()],
        )
        .await
        .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(Ok(()))
}
