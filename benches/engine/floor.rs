//! `floor`: the disk's durable-commit rate through redb itself, the baseline
//! every other workload is compared with. One thread commits one ~200-byte
//! record per transaction with immediate durability (redb's default), on a
//! file beside the engine's files.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};
use serde_json::json;

use crate::common::{self, BenchResult};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");

/// How long the floor is measured.
const MEASURE_FOR: Duration = Duration::from_secs(2);

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let commits_per_s = measure(dir.path())?;
    common::emit(&[
        ("workload", json!("floor")),
        ("commits_per_s", json!(commits_per_s.round() as u64)),
    ]);
    Ok(())
}

/// Durable commits per second of one ~200-byte record each, in `dir`.
pub fn measure(dir: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    Ok(measure_with_p99(dir)?.0)
}

/// [`measure`], and the p99 of one commit's latency in ms (this disk's
/// commits vary: a latency percentile compares with the floor's own).
pub fn measure_with_p99(dir: &Path) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let path = dir.join("floor.redb");
    let db = Database::create(&path)?;
    let record = [0x5au8; 200];
    let commit = |key: u64| -> Result<(), redb::Error> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.open_table(RECORDS)?.insert(key, record.as_slice())?;
        txn.commit()?;
        Ok(())
    };
    // The first commits create the table and grow the file.
    for key in 0..10 {
        commit(key)?;
    }
    let start = Instant::now();
    let mut latencies_ms = Vec::new();
    while start.elapsed() < MEASURE_FOR {
        let one = Instant::now();
        commit(10 + latencies_ms.len() as u64)?;
        latencies_ms.push(one.elapsed().as_secs_f64() * 1000.0);
    }
    let rate = latencies_ms.len() as f64 / start.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    eprintln!(
        "# floor: {} commits, latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies_ms.len(),
        common::percentile(&latencies_ms, 50.0),
        common::percentile(&latencies_ms, 99.0),
        latencies_ms.last().copied().unwrap_or(f64::NAN)
    );
    drop(db);
    std::fs::remove_file(&path)?;
    Ok((rate, common::percentile(&latencies_ms, 99.0)))
}
