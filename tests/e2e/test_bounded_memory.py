"""Bounded memory: 1,000 partitions of incompressible ~1 KB records into a table fanned out over
256 partition values, with a commit interval longer than the whole stream takes. The task's
buffer limit (floe.commit.max-buffered-bytes) pauses its partitions and forces a commit whenever
it is reached, so the worker's peak RSS stays under the budget, and every record still lands
exactly once. (Without the limit the same run peaks near 375 MB and grows with the data;
docs/performance.md.) The budget leaves room over the measured 225-246 MB of a debug build."""

import os
import time

from harness import (
    Worker, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog, snapshots,
    sqlite_catalog_config, unique, wait_for,
)

PARTITIONS = 1000
RECORDS = 150_000
BUDGET_MB = 280


def peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_rss_stays_under_the_budget_with_1000_partitions(tmp_path):
    topic, name, table = unique("wide"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=PARTITIONS)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    # Everything in the topic before the connector starts: the task could read it all at once.
    for start in range(0, RECORDS, 5000):
        ids = range(start, min(start + 5000, RECORDS))
        produce(topic, [{"id": i, "payload": os.urandom(450).hex()} for i in ids], keys=[str(i) for i in ids])
    worker = Worker(tmp_path, {
        "consumer.queued.max.messages.kbytes": "8192",
        "consumer.fetch.max.bytes": "8388608",
    }).start()
    try:
        config = connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.default-partition-by": "bucket(id, 256)",
            "iceberg.control.commit.interval-ms": "20000",
            "floe.commit.max-buffered-bytes": str(16 * 1024 * 1024),
        })
        worker.create_connector(name, config)
        catalog = pyiceberg_catalog(catalog_cfg)

        def total():
            try:
                snap = catalog.load_table(table).current_snapshot()
                return int(snap.summary["total-records"]) if snap else 0
            except Exception:  # noqa: BLE001 - the table appears with the first commit
                return 0
        wait_for(lambda: total() >= RECORDS, 300, f"{RECORDS} rows (log {worker.log_path})", interval=1)
        peak = peak_rss_mb(worker.proc.pid)
        time.sleep(2)
        ids = catalog.load_table(table).scan(selected_fields=("id",)).to_arrow()["id"].to_pylist()
        assert len(ids) == RECORDS and len(set(ids)) == RECORDS, f"{len(ids)} rows, {len(set(ids))} distinct"
        commits = len(snapshots(catalog, table))
        assert commits >= 3, f"the buffer limit forced only {commits} commits"
        spec = catalog.load_table(table).spec()
        assert [f.transform.__class__.__name__ for f in spec.fields] == ["BucketTransform"]
        assert peak < BUDGET_MB, f"peak RSS {peak:.0f} MB over the {BUDGET_MB} MB budget"
        print(f"peak RSS {peak:.0f} MB, {commits} commits")
    finally:
        worker.delete(f"/connectors/{name}")
        worker.stop()
        delete_topics(topic)
