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
pub mod kafka;
pub mod worker;
