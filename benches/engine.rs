//! The project's benchmark: the workloads of ../shared/PEERS.md, run against
//! steadfast on one local file, each printing one JSON line per
//! configuration to stdout, with a raw redb durable commit measured in the
//! same run as the baseline.
//!
//! `cargo bench --bench engine` runs every workload; `cargo bench --bench
//! engine -- WORKLOAD...` runs the named ones (`floor`, `sequential`,
//! `fanout`, `timers`, `recovery`, `idle`, `replay`, `list`, `retention`,
//! `local`, `starts`, `signals`, `long_history`, `open`, `repair`, and on
//! PostgreSQL `pg_floor`, `pg_sequential`, `pg_fanout`, `pg_timers`,
//! `pg_fanout_two`, `pg_takeover`, `pg_takeover_stopped`: see
//! `engine/postgres.rs` for the server they use).
//! The machine's facts go to stderr. `STEADFAST_BENCH_LARGE=1` runs the
//! large forms of `recovery` (100,000 workflows), `idle` (1,000,000
//! workflows), `open` (1,000,000 closed runs) and `repair` (1,000,000
//! records).
//!
//! Files live in a temporary folder under the target directory, on the same
//! disk as the project (never /tmp, which may be a tmpfs). The `recovery` and
//! `idle` workloads re-run this binary as a child process (selected by the
//! `STEADFAST_BENCH_CHILD` variable), so a kill is real and the child's peak
//! memory is its own.

// The crate root is a file, so its modules are found by path.
#[path = "engine/common.rs"]
mod common;
#[path = "engine/fanout.rs"]
mod fanout;
#[path = "engine/floor.rs"]
mod floor;
#[path = "engine/idle.rs"]
mod idle;
#[path = "engine/list.rs"]
mod list;
#[path = "engine/local.rs"]
mod local;
#[path = "engine/long_history.rs"]
mod long_history;
#[path = "engine/open.rs"]
mod open;
#[path = "engine/postgres.rs"]
mod postgres;
#[path = "engine/recovery.rs"]
mod recovery;
#[path = "engine/repair.rs"]
mod repair;
#[path = "engine/replay.rs"]
mod replay;
#[path = "engine/retention.rs"]
mod retention;
#[path = "engine/sequential.rs"]
mod sequential;
#[path = "engine/signals.rs"]
mod signals;
#[path = "engine/starts.rs"]
mod starts;
#[path = "engine/timers.rs"]
mod timers;

use common::BenchResult;

/// A workload: runs each of its configurations and prints one line for each.
type Workload = fn() -> BenchResult;

/// Every workload, in the order `cargo bench --bench engine` runs them.
const WORKLOADS: &[(&str, Workload)] = &[
    ("floor", floor::run),
    ("sequential", sequential::run),
    ("fanout", fanout::run),
    ("timers", timers::run),
    ("recovery", recovery::run),
    ("idle", idle::run),
    ("replay", replay::run),
    ("list", list::run),
    ("retention", retention::run),
    ("local", local::run),
    ("starts", starts::run),
    ("signals", signals::run),
    ("long_history", long_history::run),
    ("open", open::run),
    ("repair", repair::run),
    ("pg_floor", postgres::floor),
    ("pg_sequential", postgres::sequential),
    ("pg_fanout", postgres::fanout),
    ("pg_timers", postgres::timers),
    ("pg_fanout_two", postgres::fanout_two),
    ("pg_takeover", postgres::takeover),
    ("pg_takeover_stopped", postgres::takeover_stopped),
];

fn main() {
    if let Some(result) = common::run_child() {
        exit_on_error(result);
        return;
    }
    // cargo passes `--bench`; everything else names a workload.
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for name in &names {
        if !WORKLOADS.iter().any(|(w, _)| w == name) {
            let known: Vec<&str> = WORKLOADS.iter().map(|(w, _)| *w).collect();
            eprintln!("unknown workload {name:?}; known: {}", known.join(", "));
            std::process::exit(2);
        }
    }
    common::print_machine_facts();
    for (name, workload) in WORKLOADS {
        if names.is_empty() || names.iter().any(|n| n == name) {
            eprintln!("# {name}");
            exit_on_error(workload());
        }
    }
}

fn exit_on_error(result: BenchResult) {
    if let Err(e) = result {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
