//! Promise: opening a file never panics or silently misreads it. A file
//! written by a newer steadfast is refused with `OpenError::NewerFormat`; a
//! file that is not a steadfast database is refused with
//! `OpenError::Unreadable` and left as it was; a file another engine has
//! open (in this process or another) is refused with
//! `OpenError::AlreadyInUse`; and after `shutdown` the file opens again, as
//! it does once an engine is dropped without one and its runtime is gone.

mod support;

use std::time::Duration;

use steadfast::{
    Engine, OpenError, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};

/// The meta table as `src/store/redb/tables.rs` lays it out: `&str -> &[u8]`,
/// with the store format as a little-endian `u32` under `format_version`.
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("steadfast_meta");
const FORMAT_KEY: &str = "format_version";

const ECHO: WorkflowDef<String, String> = WorkflowDef::new("Echo");

async fn echo(_ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
    Ok(input)
}

async fn open(path: &std::path::Path) -> Result<Engine, OpenError> {
    Engine::builder().workflow(ECHO, echo).open(path).await
}

/// Sets the stored format version with redb directly, as a newer steadfast
/// would have written it.
fn write_format_version(path: &std::path::Path, version: u32) {
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(META).unwrap();
        meta.insert(FORMAT_KEY, version.to_le_bytes().as_slice())
            .unwrap();
    }
    txn.commit().unwrap();
}

fn read_format_version(path: &std::path::Path) -> Option<u32> {
    use redb::ReadableDatabase;
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).ok()?;
    let value = meta.get(FORMAT_KEY).unwrap()?;
    Some(u32::from_le_bytes(value.value().try_into().unwrap()))
}

#[tokio::test]
async fn a_new_file_records_its_format_version() {
    let db = support::temp_db();
    let engine = open(&db.path).await.unwrap();
    engine.shutdown().await.unwrap();
    let version = read_format_version(&db.path).expect("a format version is stored");
    assert!(version >= 1, "format version {version}");
}

#[tokio::test]
async fn a_file_from_a_newer_format_is_refused() {
    let db = support::temp_db();
    write_format_version(&db.path, 999);

    let err = open(&db.path)
        .await
        .expect_err("a newer format must not open");
    match &err {
        OpenError::NewerFormat { found, supported } => {
            assert_eq!(*found, 999);
            assert!(*supported < 999);
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("999"), "{message}");
    assert!(message.contains("upgrade"), "it says what to do: {message}");

    // The refusal changed nothing and let go of the file.
    assert_eq!(read_format_version(&db.path), Some(999));
    assert!(matches!(
        open(&db.path).await,
        Err(OpenError::NewerFormat { found: 999, .. })
    ));
}

#[tokio::test]
async fn a_steadfast_file_bumped_to_a_newer_format_is_refused() {
    let db = support::temp_db();
    let engine = open(&db.path).await.unwrap();
    engine
        .start_workflow(ECHO, "echo", "hi".to_string(), WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    let current = read_format_version(&db.path).unwrap();

    write_format_version(&db.path, current + 1);
    match open(&db.path).await {
        Err(OpenError::NewerFormat { found, supported }) => {
            assert_eq!(found, current + 1);
            assert_eq!(supported, current);
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }

    // Back at the supported version, the data is all there.
    write_format_version(&db.path, current);
    let engine = open(&db.path).await.unwrap();
    let description = engine.describe("echo").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_text_file_is_unreadable_and_left_alone() {
    let db = support::temp_db();
    let text = "This is not a database.\nIt is a note somebody kept here.\n".repeat(50);
    std::fs::write(&db.path, &text).unwrap();

    match open(&db.path).await {
        Err(OpenError::Unreadable { path, message }) => {
            assert!(!message.is_empty());
            assert_eq!(path, db.path, "the error names the file");
        }
        other => panic!("expected Unreadable, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&db.path).unwrap(),
        text,
        "the file is not overwritten"
    );
}

#[tokio::test]
async fn random_bytes_are_unreadable() {
    let db = support::temp_db();
    // A fixed pseudo-random pattern (xorshift), large enough to look like
    // a few pages.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&db.path, &bytes).unwrap();

    match open(&db.path).await {
        Err(OpenError::Unreadable { path, .. }) => assert_eq!(path, db.path),
        other => panic!("expected Unreadable, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&db.path).unwrap(),
        bytes,
        "the file is untouched"
    );
}

/// A redb database of another program, without steadfast's tables, is
/// refused and left as it was, never taken over.
#[tokio::test]
async fn a_redb_file_with_only_other_tables_is_refused_and_left_alone() {
    let db = support::temp_db();
    let other: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("their_data");
    {
        let database = redb::Database::create(&db.path).unwrap();
        let txn = database.begin_write().unwrap();
        txn.open_table(other).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    match open(&db.path).await {
        Err(OpenError::Unreadable { message, .. }) => {
            assert!(message.contains("their_data"), "{message}")
        }
        other => panic!("expected Unreadable, got {other:?}"),
    }
    let database = redb::Database::open(&db.path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&database).unwrap();
    let names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_string())
        .collect();
    assert_eq!(names, ["their_data"], "nothing of steadfast's was added");
}

/// Format numbers start at 1: a 0 is damage, refused, never taken for the
/// current format.
#[tokio::test]
async fn a_format_number_no_build_writes_is_refused() {
    let db = support::temp_db();
    open(&db.path).await.unwrap().shutdown().await.unwrap();
    write_format_version(&db.path, 0);
    match open(&db.path).await {
        Err(OpenError::Unreadable { message, .. }) => {
            assert!(message.contains("store format 0"), "{message}")
        }
        other => panic!("expected Unreadable, got {other:?}"),
    }
    assert_eq!(read_format_version(&db.path), Some(0), "left as it was");
}

#[tokio::test]
async fn a_redb_file_of_another_program_is_not_misread() {
    // A valid redb database whose meta table has another layout.
    let db = support::temp_db();
    {
        let other: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("steadfast_meta");
        let database = redb::Database::create(&db.path).unwrap();
        let txn = database.begin_write().unwrap();
        txn.open_table(other).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    match open(&db.path).await {
        Err(OpenError::Unreadable { .. }) => {}
        other => panic!("expected Unreadable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_open_in_this_process_is_already_in_use() {
    let db = support::temp_db();
    let first = open(&db.path).await.unwrap();

    let err = open(&db.path).await.expect_err("a second open must fail");
    match &err {
        OpenError::AlreadyInUse { path } => assert_eq!(path, &db.path),
        other => panic!("expected AlreadyInUse, got {other:?}"),
    }
    assert!(err.to_string().contains("already in use"), "{err}");

    // The refused open did not disturb the engine that has the file.
    let result = first
        .start_workflow(
            ECHO,
            "still-works",
            "yes".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(result, "yes");
    first.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_shutdown_the_file_opens_again() {
    let db = support::temp_db();
    for round in 0..3 {
        let engine = open(&db.path).await.unwrap_or_else(|e| {
            panic!("open #{round} after a shutdown failed: {e}");
        });
        let id = format!("round-{round}");
        let result = engine
            .start_workflow(ECHO, id.clone(), id.clone(), WorkflowOptions::new())
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
        assert_eq!(result, id);
        engine.shutdown().await.unwrap();
    }
    // Everything written in earlier rounds is still there.
    let engine = open(&db.path).await.unwrap();
    for round in 0..3 {
        let description = engine.describe(&format!("round-{round}")).await.unwrap();
        assert_eq!(description.status, WorkflowStatus::Completed);
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_file_in_use_opens_once_the_other_engine_shuts_down() {
    let db = support::temp_db();
    let first = open(&db.path).await.unwrap();
    assert!(matches!(
        open(&db.path).await,
        Err(OpenError::AlreadyInUse { .. })
    ));
    first.shutdown().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), open(&db.path))
        .await
        .expect("open does not hang")
        .expect("the file is free after shutdown");
    second.shutdown().await.unwrap();
}

/// An application that drops its engine without `shutdown` and then its
/// runtime (a `#[tokio::main]` returning early) can open the file again at
/// once: nothing of the engine outlives the runtime.
#[test]
fn after_the_engine_and_its_runtime_are_dropped_the_file_opens_again() {
    let db = support::temp_db();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    };
    let mut refused = 0;
    for _ in 0..100 {
        let rt = runtime();
        let engine = rt.block_on(open(&db.path)).expect("open");
        drop(engine);
        drop(rt);
        let rt = runtime();
        match rt.block_on(open(&db.path)) {
            Ok(engine) => rt.block_on(engine.shutdown()).expect("shutdown"),
            Err(OpenError::AlreadyInUse { .. }) => refused += 1,
            Err(other) => panic!("reopen failed: {other}"),
        }
    }
    assert_eq!(
        refused, 0,
        "the file was still in use after the runtime was dropped"
    );
}
