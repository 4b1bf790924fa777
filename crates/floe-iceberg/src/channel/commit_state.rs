//! The coordinator's bookkeeping for one commit cycle, free of I/O so every rule can be tested
//! on its own. The invariants are numbered in `docs/control-topic.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::events::{TableReference, TopicPartitionOffset, WireDataFile};
use floe_data::TopicPartition;
use uuid::Uuid;

/// A `DataWritten` read from the control topic, with where it was read.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub partition: i32,
    pub offset: i64,
    pub table: TableReference,
    pub data_files: Vec<WireDataFile>,
    pub delete_files: Vec<WireDataFile>,
}

#[derive(Debug)]
struct Cycle {
    id: Uuid,
    started: Instant,
    /// Every source partition of the connector when the cycle started.
    expected: BTreeSet<TopicPartition>,
    /// Partitions that answered this cycle, with the Kafka timestamp (µs) of their last record.
    answered: BTreeMap<TopicPartition, Option<i64>>,
    /// Next source offset per partition that had records since the last answer.
    next_offsets: BTreeMap<TopicPartition, i64>,
}

/// What the coordinator knows between commits.
#[derive(Debug, Default)]
pub struct CommitState {
    /// Next control-topic offset per partition, merged by max (never moves backwards, I3).
    consumed: BTreeMap<i32, i64>,
    /// `DataWritten` events not yet known to be committed, whatever their commit id (I4).
    buffer: Vec<Envelope>,
    cycle: Option<Cycle>,
    /// Per source partition, the next offset after the last record a completed cycle
    /// committed.
    committed_next: BTreeMap<TopicPartition, i64>,
    /// The last cycle completed with every partition answering, no record since the cycle
    /// before and no file to commit.
    quiet: bool,
}

impl CommitState {
    /// Records that the control-topic record at `offset` was read.
    pub fn consumed(&mut self, partition: i32, offset: i64) {
        let next = offset + 1;
        let entry = self.consumed.entry(partition).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// Control-topic offsets read so far.
    pub fn consumed_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.consumed
    }

    /// Buffers a `DataWritten`.
    pub fn data_written(&mut self, envelope: Envelope) {
        self.buffer.push(envelope);
    }

    /// Records a `DataComplete`; only answers to the current cycle count towards readiness (I5).
    pub fn data_complete(&mut self, commit_id: Uuid, assignments: &[TopicPartitionOffset]) {
        let Some(cycle) = self.cycle.as_mut().filter(|c| c.id == commit_id) else {
            return;
        };
        for a in assignments {
            let tp = TopicPartition::new(&a.topic, a.partition);
            if let Some(next) = a.offset {
                let e = cycle.next_offsets.entry(tp.clone()).or_insert(next);
                *e = (*e).max(next);
            }
            cycle.answered.insert(tp, a.timestamp_micros);
        }
    }

    /// Starts a cycle that waits for `expected` partitions.
    pub fn start(&mut self, id: Uuid, expected: BTreeSet<TopicPartition>, now: Instant) {
        self.cycle = Some(Cycle {
            id,
            started: now,
            expected,
            answered: BTreeMap::new(),
            next_offsets: BTreeMap::new(),
        });
    }

    /// The current cycle's commit id.
    pub fn current(&self) -> Option<Uuid> {
        self.cycle.as_ref().map(|c| c.id)
    }

    /// True when every expected partition answered the current cycle: checked per partition,
    /// never by counting (I5).
    pub fn is_complete(&self) -> bool {
        self.cycle
            .as_ref()
            .is_some_and(|c| c.expected.iter().all(|tp| c.answered.contains_key(tp)))
    }

    /// True when the current cycle waited longer than `timeout`.
    pub fn timed_out(&self, now: Instant, timeout: Duration) -> bool {
        self.cycle
            .as_ref()
            .is_some_and(|c| now.duration_since(c.started) > timeout)
    }

    /// Valid-through timestamp of a full commit: the smallest last-record timestamp over the
    /// expected partitions; None if any partition had no record this cycle.
    pub fn valid_through(&self) -> Option<i64> {
        let cycle = self.cycle.as_ref()?;
        let mut min: Option<i64> = None;
        for tp in &cycle.expected {
            let ts = (*cycle.answered.get(tp)?)?;
            min = Some(min.map_or(ts, |m: i64| m.min(ts)));
        }
        min
    }

    /// Buffered envelopes grouped by table (catalog, namespace and name), in the order they
    /// were read. The table's UUID is not part of the key: a Java task's `DataWritten` may carry
    /// none where a Floe task's carries one, and two groups of one table in one cycle would
    /// lose the second (committing the first stores every consumed offset, which then filters
    /// the second out as already committed). Each envelope's UUID is checked against the
    /// table's when it is committed.
    pub fn by_table(&self) -> BTreeMap<TableKey, Vec<&Envelope>> {
        let mut out: BTreeMap<TableKey, Vec<&Envelope>> = BTreeMap::new();
        for e in &self.buffer {
            out.entry(TableKey::of(&e.table)).or_default().push(e);
        }
        out
    }

    /// Ends the cycle; on success every buffered envelope is committed (or filtered as already
    /// committed) and is dropped. On failure the buffer is kept for the next cycle (I4).
    pub fn end(&mut self, all_tables_committed: bool) {
        let complete = self.is_complete();
        let nothing_written = self
            .buffer
            .iter()
            .all(|e| e.data_files.is_empty() && e.delete_files.is_empty());
        let cycle = self.cycle.take();
        self.quiet = false;
        if all_tables_committed {
            self.buffer.clear();
            if let Some(cycle) = cycle {
                self.quiet = complete && nothing_written && cycle.next_offsets.is_empty();
                for (tp, next) in cycle.next_offsets {
                    let e = self.committed_next.entry(tp).or_insert(next);
                    *e = (*e).max(next);
                }
            }
        }
    }

    /// Whether the last cycle was quiet (the first condition of `idle`, known without asking
    /// the broker).
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Whether a new cycle would find nothing to commit: the last one was quiet, and every
    /// partition in `latest` (each source partition's latest offset, from the broker) ends
    /// where the committed records end, or holds no record at all. Tasks only answer with the
    /// records they read since their last answer, so this is how a coordinator knows, without
    /// asking every task, that none of them holds or can read anything new.
    pub fn idle(&self, latest: &BTreeMap<TopicPartition, i64>) -> bool {
        self.quiet
            && !latest.is_empty()
            && latest
                .iter()
                .all(|(tp, end)| *end == 0 || self.committed_next.get(tp) == Some(end))
    }
}

/// A table as a map key: catalog, namespace and name (a table reference without its UUID).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableKey {
    pub catalog: String,
    pub namespace: Vec<String>,
    pub name: String,
}

impl TableKey {
    fn of(t: &TableReference) -> TableKey {
        TableKey {
            catalog: t.catalog.clone(),
            namespace: t.namespace.clone(),
            name: t.name.clone(),
        }
    }

    /// `ns.table`.
    pub fn display_name(&self) -> String {
        let mut parts = self.namespace.clone();
        parts.push(self.name.clone());
        parts.join(".")
    }
}

/// The files of `envelopes` that the table has not committed yet: envelopes read at or after
/// the table's committed control-topic offset (I2), files with rows, each path once.
pub fn files_to_commit(
    envelopes: &[&Envelope],
    committed: &BTreeMap<i32, i64>,
) -> (Vec<WireDataFile>, Vec<WireDataFile>) {
    let mut data = Vec::new();
    let mut deletes = Vec::new();
    for (d, x) in files_by_envelope(envelopes, committed) {
        data.extend(d);
        deletes.extend(x);
    }
    (data, deletes)
}

/// The envelopes of `envelopes` written for the table whose UUID is `table_uuid`: those that
/// name no UUID (Java tasks before 1.11) and those that name this one. The others were
/// written for a table since dropped and recreated under the same name.
pub fn for_table_uuid<'a>(envelopes: &[&'a Envelope], table_uuid: Uuid) -> Vec<&'a Envelope> {
    envelopes
        .iter()
        .copied()
        .filter(|e| e.table.table_uuid.is_none_or(|u| u == table_uuid))
        .collect()
}

/// [`files_to_commit`], kept per envelope in the order they were read: a task's later cycle
/// comes after its earlier one, which upserts need (a cycle's deleted keys apply to the rows
/// of the cycles before it, docs/upserts.md).
pub fn files_by_envelope(
    envelopes: &[&Envelope],
    committed: &BTreeMap<i32, i64>,
) -> Vec<(Vec<WireDataFile>, Vec<WireDataFile>)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for e in envelopes {
        if committed.get(&e.partition).is_some_and(|c| e.offset < *c) {
            continue;
        }
        let mut data = Vec::new();
        let mut deletes = Vec::new();
        for f in &e.data_files {
            if f.record_count > 0 && seen.insert(f.file_path.clone()) {
                data.push(f.clone());
            }
        }
        for f in &e.delete_files {
            if f.record_count > 0 && seen.insert(f.file_path.clone()) {
                deletes.push(f.clone());
            }
        }
        if !data.is_empty() || !deletes.is_empty() {
            out.push((data, deletes));
        }
    }
    out
}

/// Per-partition max of two offset maps (I3).
pub fn merge_offsets(a: &BTreeMap<i32, i64>, b: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    let mut out = a.clone();
    for (p, o) in b {
        let e = out.entry(*p).or_insert(*o);
        *e = (*e).max(*o);
    }
    out
}

/// The snapshot-summary JSON of control-topic offsets: `{"0":1234,"1":99}`.
pub fn offsets_json(offsets: &BTreeMap<i32, i64>) -> String {
    let inner: Vec<String> = offsets
        .iter()
        .map(|(p, o)| format!("\"{p}\":{o}"))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Parses the snapshot-summary JSON of control-topic offsets.
pub fn parse_offsets_json(text: &str) -> Option<BTreeMap<i32, i64>> {
    let map: BTreeMap<String, i64> = serde_json::from_str(text).ok()?;
    map.into_iter()
        .map(|(k, v)| k.parse::<i32>().ok().map(|p| (p, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpo(topic: &str, partition: i32, ts: Option<i64>) -> TopicPartitionOffset {
        TopicPartitionOffset {
            topic: topic.into(),
            partition,
            offset: ts.map(|_| 10),
            timestamp_micros: ts,
        }
    }

    fn expected(parts: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
        parts
            .iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect()
    }

    fn latest(parts: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        parts
            .iter()
            .map(|(t, p, o)| (TopicPartition::new(*t, *p), *o))
            .collect()
    }

    fn envelope(offset: i64, table_uuid: Option<Uuid>) -> Envelope {
        Envelope {
            partition: 0,
            offset,
            table: TableReference {
                catalog: "iceberg".into(),
                namespace: vec!["db".into()],
                name: "events".into(),
                table_uuid,
            },
            data_files: Vec::new(),
            delete_files: Vec::new(),
        }
    }

    #[test]
    fn one_table_is_one_group_whatever_uuid_its_announcements_name() {
        // A Java task's DataWritten (no UUID) and a Floe task's (with one) in one cycle.
        let uuid = Uuid::new_v4();
        let mut s = CommitState::default();
        s.data_written(envelope(3, None));
        s.data_written(envelope(4, Some(uuid)));
        s.data_written(envelope(5, None));
        let groups = s.by_table();
        assert_eq!(groups.len(), 1);
        let offsets: Vec<i64> = groups
            .values()
            .next()
            .unwrap()
            .iter()
            .map(|e| e.offset)
            .collect();
        assert_eq!(offsets, vec![3, 4, 5]);
        // Announcements for a table since replaced under the same name are left out.
        let all: Vec<&Envelope> = groups.values().next().unwrap().clone();
        let current: Vec<i64> = for_table_uuid(&all, uuid)
            .iter()
            .map(|e| e.offset)
            .collect();
        assert_eq!(current, vec![3, 4, 5]);
        let replaced: Vec<i64> = for_table_uuid(&all, Uuid::new_v4())
            .iter()
            .map(|e| e.offset)
            .collect();
        assert_eq!(replaced, vec![3, 5]);
    }

    fn answer(s: &mut CommitState, parts: &[(&str, i32)], next: Option<i64>) {
        let id = Uuid::new_v4();
        s.start(id, expected(parts), Instant::now());
        let answers: Vec<TopicPartitionOffset> = parts
            .iter()
            .map(|(t, p)| TopicPartitionOffset {
                topic: t.to_string(),
                partition: *p,
                offset: next,
                timestamp_micros: next,
            })
            .collect();
        s.data_complete(id, &answers);
    }

    #[test]
    fn idle_only_after_a_quiet_cycle_and_while_nothing_new_is_in_the_topics() {
        let parts = [("a", 0), ("a", 1)];
        let mut s = CommitState::default();
        // A cycle that committed records up to offset 10 is not quiet.
        answer(&mut s, &parts, Some(10));
        s.end(true);
        assert!(!s.idle(&latest(&[("a", 0, 10), ("a", 1, 10)])));
        // The next, with nothing new, is.
        answer(&mut s, &parts, None);
        s.end(true);
        assert!(s.idle(&latest(&[("a", 0, 10), ("a", 1, 10)])));
        // A record past the committed ones, a partition never answered with records, or no
        // offsets at all: not idle.
        assert!(!s.idle(&latest(&[("a", 0, 11), ("a", 1, 10)])));
        assert!(!s.idle(&latest(&[("a", 0, 10), ("a", 1, 10), ("a", 2, 3)])));
        assert!(!s.idle(&BTreeMap::new()));
        // An empty partition is idle.
        assert!(s.idle(&latest(&[("a", 0, 10), ("a", 1, 10), ("a", 2, 0)])));
        // A failed or partial cycle, or one with files to commit, ends quiet.
        answer(&mut s, &parts, None);
        s.end(false);
        assert!(!s.idle(&latest(&[("a", 0, 10), ("a", 1, 10)])));
        let id = Uuid::new_v4();
        s.start(id, expected(&parts), Instant::now());
        s.data_complete(id, &[tpo("a", 0, None)]);
        s.end(true);
        assert!(!s.idle(&latest(&[("a", 0, 10), ("a", 1, 10)])));
    }

    #[test]
    fn readiness_is_checked_per_partition_not_counted() {
        let mut s = CommitState::default();
        let id = Uuid::new_v4();
        s.start(id, expected(&[("a", 0), ("a", 1)]), Instant::now());
        // The same partition answering twice (a replay or overlapping assignment) must not count
        // as two partitions.
        s.data_complete(id, &[tpo("a", 0, Some(5))]);
        s.data_complete(id, &[tpo("a", 0, Some(6))]);
        assert!(!s.is_complete());
        // Answers to another cycle do not count.
        s.data_complete(Uuid::new_v4(), &[tpo("a", 1, Some(7))]);
        assert!(!s.is_complete());
        s.data_complete(id, &[tpo("a", 1, Some(7))]);
        assert!(s.is_complete());
        assert_eq!(s.valid_through(), Some(6));
    }

    #[test]
    fn valid_through_is_none_when_a_partition_was_idle() {
        let mut s = CommitState::default();
        let id = Uuid::new_v4();
        s.start(id, expected(&[("a", 0), ("a", 1)]), Instant::now());
        s.data_complete(id, &[tpo("a", 0, Some(5)), tpo("a", 1, None)]);
        assert!(s.is_complete());
        assert_eq!(s.valid_through(), None);
    }

    #[test]
    fn consumed_offsets_never_move_backwards() {
        let mut s = CommitState::default();
        s.consumed(0, 10);
        s.consumed(0, 3);
        assert_eq!(s.consumed_offsets()[&0], 11);
        let merged = merge_offsets(
            &BTreeMap::from([(0, 20), (1, 1)]),
            &BTreeMap::from([(0, 11), (2, 5)]),
        );
        assert_eq!(merged, BTreeMap::from([(0, 20), (1, 1), (2, 5)]));
    }

    #[test]
    fn offsets_json_matches_java() {
        let m = BTreeMap::from([(0, 1234), (1, 99)]);
        assert_eq!(offsets_json(&m), r#"{"0":1234,"1":99}"#);
        assert_eq!(parse_offsets_json(r#"{"0":1234,"1":99}"#), Some(m));
        assert_eq!(parse_offsets_json("nope"), None);
    }

    #[test]
    fn timeout_is_measured_from_the_start() {
        let mut s = CommitState::default();
        let t0 = Instant::now();
        s.start(Uuid::new_v4(), expected(&[("a", 0)]), t0);
        assert!(!s.timed_out(t0 + Duration::from_millis(10), Duration::from_millis(20)));
        assert!(s.timed_out(t0 + Duration::from_millis(30), Duration::from_millis(20)));
        s.end(false);
        assert!(!s.timed_out(t0 + Duration::from_secs(9), Duration::from_millis(20)));
    }
}
