//! The control-topic protocol, byte-compatible with the Java sink. See `docs/control-topic.md`
//! for the exchange and the exactly-once argument as numbered invariants (I1…I7), each named by
//! the test that checks it.
//!
//! ```text
//!            control topic (events: floe-events)
//!   task 0 ─ coordinator ── StartCommit ──────────────► every task (WorkerChannel)
//!                       ◄── DataWritten…, DataComplete ─ (+ source offsets, one transaction)
//!                       ── CommitToTable, CommitComplete (+ -coord offsets, one transaction)
//! ```

pub mod commit_state;
pub mod coordinator;
mod feed;
pub mod kafka;
mod maintainer;
pub mod producers;
mod shared;
pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};

/// Control-topic records that could not be decoded and were skipped, in this process.
static UNDECODABLE: AtomicU64 = AtomicU64::new(0);

/// Control-topic records skipped because they could not be decoded.
pub fn undecodable_records() -> u64 {
    UNDECODABLE.load(Ordering::Relaxed)
}

/// A control-topic record nobody can decode (written by something else, or corrupt) is logged
/// with its coordinates, counted and skipped: one bad record must not stop every task and the
/// coordinator of every connector sharing the topic.
pub(crate) fn skip_undecodable(
    topic: &str,
    partition: i32,
    offset: i64,
    error: &dyn std::fmt::Display,
) {
    let count = UNDECODABLE.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        topic,
        partition,
        offset,
        error = %error,
        skipped_so_far = count,
        "undecodable control-topic record skipped"
    );
}

/// A fault for recovery tests: `FLOE_TEST_FAULT=<name>@<n>` makes the `n`-th pass through the
/// point called `name` report a fault (once). Unset in production, where this is one cheap
/// environment lookup per pass.
pub(crate) fn fault_injected(name: &str) -> bool {
    static PASSES: AtomicU64 = AtomicU64::new(0);
    let Ok(spec) = std::env::var("FLOE_TEST_FAULT") else {
        return false;
    };
    let Some((point, nth)) = spec.split_once('@') else {
        return false;
    };
    if point != name {
        return false;
    }
    let pass = PASSES.fetch_add(1, Ordering::Relaxed) + 1;
    nth.parse::<u64>().is_ok_and(|n| n == pass)
}
