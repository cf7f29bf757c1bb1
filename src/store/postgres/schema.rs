//! The tables steadfast keeps in its PostgreSQL schema, created and
//! versioned by steadfast itself (no migration tool): the layout is
//! [`SCHEMA_VERSION`], and the records and events in it are of the store
//! format the redb file uses (`STORE_FORMAT_VERSION`, the same codec). A
//! schema written by a newer build, in either number, is refused with
//! [`OpenError::NewerSchema`]; an older store format is raised on open (the
//! tables do not change with it, only what events may hold).
//!
//! Layout 1 (`FORMAT.md`, "PostgreSQL"), kept by layouts 2 and 3:
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
//!   of runs (layout 4: plus the changes not folded yet).
//!
//! `shard` is `hash(workflow_id) % shard_count`, kept from the first layout
//! so that ownership by shard needs no rewrite of the rows.
//!
//! Layout 2 adds what several processes sharing the schema need
//! ([`super::shards`], [`super::inbox`]): `shards(shard_id, owner, epoch,
//! lease_until)`, `members(member_id, host, pid, started_at,
//! heartbeat_at)`, `inbox(request, shard, workflow_id, run_id, sender,
//! kind, body, created_at)` and `inbox_replies(request, body)`; the
//! fencing check `fenced` and the hint `hint_owner`; and fencing arguments
//! to the two hot-path functions. A layout-1 schema is migrated on open
//! (see [`prepare`]).
//!
//! Layout 3 adds the unique index `runs_one_open` (`runs(workflow_id)` of
//! open runs): at most one open run per workflow ID, whatever writes the
//! rows; and `inbox.deliveries`, how many times a row was taken. A layout-2 schema is migrated on open, unless it holds such
//! duplicates: then [`OpenError::DuplicateOpenRuns`] names them.
//! Layout 4 keeps the counts as changes ([`LAYOUT_4`]):
//! `status_changes(from_status, to_status)`, one row inserted by the
//! trigger for each run inserted (`from_status` NULL), deleted
//! (`to_status` NULL) or changing status, folded into `status_counts` by
//! `fold_status_changes()`; the counts are both summed. A layout-3 schema
//! is migrated on open by adding them.
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
pub(crate) const SCHEMA_VERSION: u32 = 4;
/// Shards of a new schema (fixed at creation, as Temporal's history shards).
pub(crate) const SHARD_COUNT: u32 = 64;
/// Most shards a schema may have.
pub(crate) const MAX_SHARDS: u32 = 4096;

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

"#;

/// The tables layout 2 adds: shard leases, members, the inbox and its
/// replies; and the fencing check every owner's write makes.
const LAYOUT_2: &str = r#"
CREATE TABLE shards (
    shard_id integer PRIMARY KEY,
    owner uuid,
    epoch bigint NOT NULL DEFAULT 0,
    lease_until timestamptz
);
CREATE TABLE members (
    member_id uuid PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
-- kind: 0 wake (be in memory), 1 a request (body: a codec RemoteRequest,
-- answered in inbox_replies when sender is set), 2 an event written into
-- the run's history by another run's commit (body: a codec Event),
-- 3 reload (the run was closed by another run's commit).
CREATE TABLE inbox (
    request uuid PRIMARY KEY,
    shard integer NOT NULL,
    workflow_id text NOT NULL,
    run_id uuid NOT NULL,
    sender uuid,
    kind smallint NOT NULL,
    body bytea,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX inbox_shard ON inbox (shard, created_at);
CREATE TABLE inbox_replies (
    request uuid PRIMARY KEY,
    body bytea NOT NULL
);
CREATE INDEX runs_shard_wake ON runs (shard, wake) WHERE status = 0 AND wake IS NOT NULL;
"#;

/// What layout 3 adds: at most one open run per workflow ID, kept by the
/// database itself (every write that opens a run already checks the ID's
/// latest run under its row lock; the index makes a bug or a hand-made row
/// that breaks the rule fail its transaction instead of forking the ID);
/// and how many times an inbox row was taken, so that a request taken
/// again after its taker died unanswered is known as such.
const LAYOUT_3: &str = "
CREATE UNIQUE INDEX runs_one_open ON runs (workflow_id) WHERE status = 0;
ALTER TABLE inbox ADD COLUMN deliveries integer NOT NULL DEFAULT 0;
";

/// Most workflow IDs a refused migration to layout 3 names.
const DUPLICATES_NAMED: i64 = 20;

/// What layout 4 adds: the counts' changes as rows of their own, each
/// inserted by the transaction that makes it and folded into
/// `status_counts` about once a second by one process at a time
/// ([`FOLD`]); the counts are `status_counts` plus the changes not folded
/// yet. Writers then share no row: before, every start and close updated
/// `status_counts`' rows, which serialised the writers of every process on
/// the schema (each waited for the other's commit) and could deadlock two
/// of them.
const LAYOUT_4: &str = r#"
CREATE TABLE IF NOT EXISTS status_changes (
    from_status smallint,
    to_status smallint
);
CREATE OR REPLACE FUNCTION count_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_changes (from_status, to_status) VALUES (NULL, NEW.status);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO status_changes (from_status, to_status) VALUES (OLD.status, NULL);
    ELSE
        INSERT INTO status_changes (from_status, to_status) VALUES (OLD.status, NEW.status);
    END IF;
    RETURN NULL;
END $$;
-- Moves every committed change into status_counts, in one process at a
-- time (another one folding meanwhile: nothing to do now). A change
-- committed during the fold is not in its snapshot and stays for the next.
CREATE OR REPLACE FUNCTION fold_status_changes() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('steadfast-fold:' || current_schema())) THEN
        RETURN;
    END IF;
    WITH gone AS (DELETE FROM status_changes RETURNING from_status, to_status),
    moved AS (
        SELECT status, sum(n) AS n FROM (
            SELECT to_status AS status, 1 AS n FROM gone WHERE to_status IS NOT NULL
            UNION ALL
            SELECT from_status, -1 FROM gone WHERE from_status IS NOT NULL
        ) AS m GROUP BY status
    )
    UPDATE status_counts c SET runs = c.runs + moved.n FROM moved WHERE c.status = moved.status;
END $$;
"#;

/// Folds the counts' changes into `status_counts` (layout 4).
pub(super) const FOLD: &str = "SELECT fold_status_changes()";

/// The number of runs of each status (layout 4): the folded counts plus
/// the changes since, in one snapshot.
pub(super) const COUNTS: &str = "SELECT status, sum(runs)::bigint FROM (\
    SELECT status, runs FROM status_counts \
    UNION ALL SELECT to_status, 1 FROM status_changes WHERE to_status IS NOT NULL \
    UNION ALL SELECT from_status, -1 FROM status_changes WHERE from_status IS NOT NULL\
    ) AS c GROUP BY status ORDER BY status";

/// The layout-1 functions a migration to layout 2 replaces.
const DROP_LAYOUT_1_FUNCTIONS: &str = "
DROP FUNCTION start_run(uuid, text, integer, text, smallint, bigint, bigint, bytea, bytea, \
    bytea[], smallint, bigint);
DROP FUNCTION append_events(uuid, bigint, bytea[], bigint, bytea, smallint, bigint, bytea);
";

/// The revision of [`FUNCTIONS`], kept in `meta` as `functions_revision`
/// (absent: 0). The functions keep their signatures within a layout, so an
/// open that finds an older revision replaces them (`CREATE OR REPLACE`)
/// and every process on the schema, of any build of the layout, calls the
/// newer ones; one that finds a newer revision leaves them. 1: `start_run`
/// decides again when another starter committed the same new workflow ID
/// meanwhile (before, both started a run).
/// 2: `fenced` locks the shard's row `FOR KEY SHARE` (not `FOR SHARE`),
/// so a lease renewal never waits for a writer nor deadlocks with one (an
/// acquisition locks `FOR UPDATE SKIP LOCKED`), and compares the lease
/// with the statement's clock (not the transaction's start). 3:
/// `hint_owner` locks the shard's row the same way when this process owns
/// it, so a start committed just as another process acquires the shard is
/// read by the acquirer's first scan (before, it could be loaded by
/// neither). 4: `start_run` answers `o_status` 0 with outcome 0 when it
/// hinted the start to another owner (`hinted_owner`), so that a process
/// whose lease ran out unnoticed (paused past it) does not run the start
/// itself (before, it did, while its writes were refused). 5:
/// `hinted_owner` does not notify a start's hint (kind 0): its starter
/// notifies after the commit, outside the transaction, coalesced (a
/// transaction that notifies holds a database-wide lock through its
/// commit, so every starting batch of every process waited for the
/// others' `fsync`); a start made by a process of an earlier build on a
/// schema of this revision reaches its owner by the owner's backstop read
/// of its inbox (a second at most).
pub(crate) const FUNCTIONS_REVISION: u32 = 5;

/// The functions (layout 2: fenced, hinting other owners, the hot path),
/// of [`FUNCTIONS_REVISION`].
const FUNCTIONS: &str = r#"
-- True when p_me owns p_shard under the epoch it believes it holds
-- (p_epochs[shard + 1]) and its lease has not run out by the database's
-- clock at this statement; the shard's row is then locked (FOR KEY SHARE)
-- until the end of the transaction, so that no takeover commits in between:
-- an acquisition locks the row FOR UPDATE, which waits for (or skips) it,
-- while a renewal's UPDATE does not, so renewing never waits for a writer.
CREATE OR REPLACE FUNCTION fenced(p_shard integer, p_me uuid, p_epochs bigint[])
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM shards WHERE shard_id = p_shard AND owner = p_me
        AND epoch = p_epochs[p_shard + 1] AND lease_until > clock_timestamp() FOR KEY SHARE;
    RETURN FOUND;
END $$;

-- Tells a run's owner, when that is not p_me, of a change it did not
-- make: an inbox row of p_kind (0 wake, 2 event, 3 reload) and a hint
-- (for a wake, the start's, sent by the starter after its commit).
-- When p_me owns the shard, its row is locked (FOR KEY SHARE) to the end
-- of the transaction, so that no acquisition, and no acquirer's first read
-- of the shard's wake-ups, comes between this check and the commit (the
-- run would be loaded by neither process).
-- hinted_owner answers true when it hinted another owner (p_me does not
-- own the shard by the database: another member does, or p_me's lease ran
-- out); hint_owner is the same without the answer.
CREATE OR REPLACE FUNCTION hinted_owner(p_shard integer, p_workflow text, p_run uuid, p_me uuid,
                           p_kind smallint, p_body bytea)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM shards WHERE shard_id = p_shard AND owner = p_me
        AND lease_until > clock_timestamp() FOR KEY SHARE;
    IF FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO inbox (request, shard, workflow_id, run_id, kind, body)
        VALUES (gen_random_uuid(), p_shard, p_workflow, p_run, p_kind, p_body);
    -- A start's wake is notified by its starter after the commit.
    IF p_kind <> 0 THEN
        PERFORM pg_notify(current_schema(), p_shard::text);
    END IF;
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION hint_owner(p_shard integer, p_workflow text, p_run uuid, p_me uuid,
                           p_kind smallint, p_body bytea)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hinted_owner(p_shard, p_workflow, p_run, p_me, p_kind, p_body);
END $$;

-- Outcomes: 0 started, 1 already running (o_run), 2 reuse rejected
-- (o_status), 3 the run ID is stored already, 4 the latest run has no row.
-- Any process may start a run; one started in a shard p_me does not own
-- (by the database: its lease may have run out unnoticed) is hinted to its
-- owner, and then answers o_status 0 with outcome 0 (NULL when p_me owns
-- it), so that p_me does not run it. Two starters of a new ID both find no row: the
-- second's insert waits for the first's commit and inserts nothing, and
-- the second then checks again against the row the first committed.
CREATE OR REPLACE FUNCTION start_run(
    p_run uuid, p_workflow text, p_shard integer, p_type text, p_status smallint,
    p_start bigint, p_close bigint, p_order bytea, p_record bytea,
    p_events bytea[], p_reuse smallint, p_wake bigint, p_me uuid,
    OUT o_outcome smallint, OUT o_run uuid, OUT o_status smallint)
LANGUAGE plpgsql AS $$
DECLARE
    v_prev uuid;
BEGIN
    LOOP
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
        IF v_prev IS NOT NULL THEN
            UPDATE workflows SET latest_run = p_run WHERE workflow_id = p_workflow;
            EXIT;
        END IF;
        INSERT INTO workflows (workflow_id, shard, latest_run)
            VALUES (p_workflow, p_shard, p_run) ON CONFLICT (workflow_id) DO NOTHING;
        EXIT WHEN FOUND;
        -- Another starter committed the ID meanwhile: decide against its run.
    END LOOP;
    INSERT INTO runs (run_id, workflow_id, shard, workflow_type, status, start_ns, close_ns,
                      list_order, wake, last_event, record)
        VALUES (p_run, p_workflow, p_shard, p_type, p_status, p_start, p_close, p_order,
                CASE WHEN p_status = 0 THEN p_wake END, cardinality(p_events), p_record);
    INSERT INTO history (run_id, event_id, event)
        SELECT p_run, e.n, e.event FROM unnest(p_events) WITH ORDINALITY AS e(event, n);
    o_status := NULL;
    IF p_status = 0 AND hinted_owner(p_shard, p_workflow, p_run, p_me, 0::smallint, NULL) THEN
        o_status := 0;
    END IF;
    o_outcome := 0;
END $$;

-- Outcomes: 0 appended, 1 the run is closed or unknown, 2 the history does
-- not end just before p_expect (o_last: where it ends), 3 p_me does not
-- own the run's shard under the epoch it holds (o_last: the shard). A new
-- record (p_record) comes with its status, close time and list order.
-- p_deliver: an event another run's commit writes into this run (a
-- signal, a cancellation request): not fenced, and hinted to the run's
-- owner when that is another process.
CREATE OR REPLACE FUNCTION append_events(
    p_run uuid, p_expect bigint, p_events bytea[], p_wake bigint,
    p_record bytea, p_status smallint, p_close bigint, p_order bytea,
    p_me uuid, p_epochs bigint[], p_deliver boolean,
    OUT o_outcome smallint, OUT o_last bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_status smallint;
    v_shard integer;
    v_workflow text;
    v_found boolean;
BEGIN
    SELECT status, last_event, shard, workflow_id INTO v_status, o_last, v_shard, v_workflow
        FROM runs WHERE run_id = p_run FOR UPDATE;
    v_found := FOUND;
    IF v_found AND NOT p_deliver AND NOT fenced(v_shard, p_me, p_epochs) THEN
        o_outcome := 3;
        o_last := v_shard;
        RETURN;
    END IF;
    IF NOT v_found OR v_status <> 0 THEN
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
    IF p_deliver THEN
        PERFORM hint_owner(v_shard, v_workflow, p_run, p_me, 2::smallint, e.event)
            FROM unnest(p_events) AS e(event);
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
/// of an existing one, migrating a layout-1 schema to layout 2 (unless a
/// layout-1 engine still writes it: then [`OpenError::DatabaseInUse`]).
/// Serialised between processes by an advisory lock held for the
/// transaction, so two first opens do not both create it. Answers the
/// schema's shard count.
pub(crate) async fn prepare(
    client: &mut Client,
    schema: &str,
    format: u32,
) -> Result<Result<u32, OpenError>, StoreError> {
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
        txn.batch_execute(LAYOUT_2).await.map_err(db_err)?;
        txn.batch_execute(LAYOUT_3).await.map_err(db_err)?;
        txn.batch_execute(LAYOUT_4).await.map_err(db_err)?;
        txn.batch_execute(FUNCTIONS).await.map_err(db_err)?;
        add_shards(&txn, SHARD_COUNT).await?;
        for (key, value) in [
            ("schema_version", SCHEMA_VERSION),
            ("format_version", format),
            ("shard_count", SHARD_COUNT),
            ("functions_revision", FUNCTIONS_REVISION),
        ] {
            txn.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)",
                &[&key, &value.to_string()],
            )
            .await
            .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        return Ok(Ok(SHARD_COUNT));
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
    let (Some(layout), Some(found), Some(shards)) = (
        version("schema_version").await?,
        version("format_version").await?,
        version("shard_count").await?,
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
    if !(1..=MAX_SHARDS).contains(&shards) {
        return Ok(Err(OpenError::Database {
            message: format!(
                "the schema {schema} names {shards} shards, not between 1 and {MAX_SHARDS}; \
                 it is damaged (restore it, or name another schema)"
            ),
        }));
    }
    if layout < 2 {
        // A layout-1 engine holds this lock while it writes: it would call
        // the functions replaced here.
        let free = txn
            .query_one(
                "SELECT pg_try_advisory_xact_lock(hashtext('steadfast-writer:' || $1))",
                &[&schema],
            )
            .await
            .map_err(db_err)?
            .get::<_, bool>(0);
        if !free {
            return Ok(Err(OpenError::DatabaseInUse {
                schema: schema.to_string(),
            }));
        }
        txn.batch_execute(DROP_LAYOUT_1_FUNCTIONS)
            .await
            .map_err(db_err)?;
        txn.batch_execute(LAYOUT_2).await.map_err(db_err)?;
        add_shards(&txn, shards).await?;
    }
    if layout < 3 {
        // Runs of an earlier build's race (two open runs of one ID) would
        // make the index fail: named, for the operator to close, instead.
        let rows = txn
            .query(
                "SELECT workflow_id, count(*) OVER () FROM runs WHERE status = 0 \
                 GROUP BY workflow_id HAVING count(*) > 1 ORDER BY workflow_id LIMIT $1",
                &[&DUPLICATES_NAMED],
            )
            .await
            .map_err(db_err)?;
        if let Some(first) = rows.first() {
            return Ok(Err(OpenError::DuplicateOpenRuns {
                schema: schema.to_string(),
                workflow_ids: rows.iter().map(|r| r.get::<_, String>(0)).collect(),
                count: u64::try_from(first.get::<_, i64>(1)).unwrap_or(0),
            }));
        }
        txn.batch_execute(LAYOUT_3).await.map_err(db_err)?;
    }
    if layout < 4 {
        // Processes of layouts 2 and 3 still running keep working on it (the
        // trigger is the schema's); only their counts miss the changes not
        // folded yet, until they are restarted with this build.
        txn.batch_execute(LAYOUT_4).await.map_err(db_err)?;
    }
    if layout < SCHEMA_VERSION {
        txn.execute(
            "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
            &[&SCHEMA_VERSION.to_string()],
        )
        .await
        .map_err(db_err)?;
    }
    let revision = version("functions_revision").await?.unwrap_or(0);
    if revision < FUNCTIONS_REVISION {
        if revision < 2 {
            // Processes of a build before revision 2 acquire shards with a
            // plain UPDATE, which would not wait for revision 2's fencing
            // lock: none may be running when it is installed.
            let live = txn
                .query_one(
                    "SELECT count(*) FROM members WHERE heartbeat_at > now() - interval '1 minute'",
                    &[],
                )
                .await
                .map_err(db_err)?
                .get::<_, i64>(0);
            if live > 0 {
                return Ok(Err(OpenError::Database {
                    message: format!(
                        "the PostgreSQL schema {schema} is in use by {live} process(es) of an \
                         earlier steadfast, whose shard takeovers would not wait for this \
                         build's fencing; stop them (or wait a minute after they stopped), \
                         then open the schema with this build"
                    ),
                }));
            }
        }
        txn.batch_execute(FUNCTIONS).await.map_err(db_err)?;
        txn.execute(
            "INSERT INTO meta (key, value) VALUES ('functions_revision', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&FUNCTIONS_REVISION.to_string()],
        )
        .await
        .map_err(db_err)?;
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
    Ok(Ok(shards))
}

/// The lease rows of `count` shards, none owned.
async fn add_shards(txn: &tokio_postgres::Transaction<'_>, count: u32) -> Result<(), StoreError> {
    let last = i32::try_from(count).unwrap_or(i32::MAX) - 1;
    txn.execute(
        "INSERT INTO shards (shard_id) SELECT s FROM generate_series(0, $1::integer) AS s",
        &[&last],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}
