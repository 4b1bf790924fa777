"""Exactly-once through the control topic, on a real broker (invariants in docs/control-topic.md)."""

import json
import random
import re
import signal
import threading
import time

from harness import (
    Worker, committed_offsets, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog,
    read_rows, snapshots, sqlite_catalog_config, unique, wait_for,
)

# Short session and transaction timeouts so a killed worker's group membership and open
# transaction are resolved in seconds, not minutes.
FAST_FAILOVER = {
    "consumer.session.timeout.ms": "6000",
    "consumer.heartbeat.interval.ms": "1000",
}


def connector_file(tmp_path, name, config):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "config": config}))
    return path


class KeyedProducer(threading.Thread):
    """Produces ids 0..total-1 (key = id) in small batches until done or stopped."""

    def __init__(self, topic, total, batch=50, pause=0.02):
        super().__init__(daemon=True)
        self.topic, self.total, self.batch, self.pause = topic, total, batch, pause
        self.stopped = threading.Event()
        self.error = None

    def run(self):
        try:
            for start in range(0, self.total, self.batch):
                ids = range(start, min(start + self.batch, self.total))
                produce(self.topic, [{"id": i, "payload": f"value-{i}"} for i in ids], keys=[str(i) for i in ids])
                if self.stopped.wait(self.pause):
                    return
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def assert_exactly(rows, total):
    ids = [r["id"] for r in rows]
    duplicates = len(ids) - len(set(ids))
    missing = sorted(set(range(total)) - set(ids))
    assert duplicates == 0 and not missing, f"{len(ids)} rows, {duplicates} duplicates, missing {missing[:20]}"


def test_chaos_sigkill(tmp_path):
    """I1, I2, I4: the worker is killed with SIGKILL at random moments while records stream in."""
    topic, name, table = unique("chaos"), unique("sink"), f"db_{unique('ns')}.events"
    total, kills = 20_000, 10
    create_topic(topic, partitions=4)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "2", "iceberg.control.commit.interval-ms": "1000", "iceberg.control.commit.timeout-ms": "5000",
    })
    cfile = connector_file(tmp_path, name, config)
    worker = Worker(tmp_path, FAST_FAILOVER)
    producer = KeyedProducer(topic, total, batch=100, pause=0.05)
    rng = random.Random(7)
    try:
        worker.start(cfile)
        producer.start()
        for _ in range(kills):
            time.sleep(rng.uniform(1.5, 4.0))
            worker.stop(signal.SIGKILL)
            worker.start(cfile)
        producer.join(300)
        assert producer.error is None, producer.error
        assert not producer.is_alive()
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= total and r, 180,
                        f"{total} rows after {kills} kills")
        time.sleep(3)  # one more cycle: nothing may arrive twice
        rows = read_rows(catalog, table)
        assert_exactly(rows, total)
        print(f"chaos: N={total}, kills={kills}, rows={len(rows)}, duplicates={len(rows) - len({r['id'] for r in rows})}, "
              f"snapshots={len(snapshots(catalog, table))}")
        wait_for(lambda: sum(committed_offsets(f"connect-{name}", topic, 4).values()) == total, 60,
                 "source offsets at the end of the topic")
    finally:
        producer.stopped.set()
        worker.stop()
        delete_topics(topic)


def test_two_coordinators(tmp_path):
    """I6: two workers run the same connector (two coordinators at once); only one commits and
    the table holds every record exactly once."""
    topic, name, table = unique("fence"), unique("sink"), f"db_{unique('ns')}.events"
    total = 4_000
    create_topic(topic, partitions=4)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"iceberg.control.commit.timeout-ms": "5000"})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Worker(tmp_path / "a", FAST_FAILOVER)
    b = Worker(tmp_path / "b", FAST_FAILOVER)
    producer = KeyedProducer(topic, total)
    try:
        a.start(connector_file(tmp_path, name, config))
        b.start(connector_file(tmp_path, name, config))
        producer.start()
        producer.join(120)
        assert producer.error is None, producer.error
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) >= total, 120, f"{total} rows")
        time.sleep(3)
        assert_exactly(read_rows(catalog, table), total)
        states = a.task_states(name) + b.task_states(name)
        # The fenced coordinator's task stops; its partitions move to the other task.
        assert states.count("RUNNING") >= 1, states
        fenced = [w for w in (a, b) if "fenced" in json.dumps(w.get(f"/connectors/{name}/status").json())]
        assert len(fenced) <= 1
    finally:
        producer.stopped.set()
        a.stop()
        b.stop()
        delete_topics(topic)


def test_idle_partitions_do_not_stall(tmp_path):
    """I8: with records in one partition of three, idle tasks answer and commits are full."""
    topic, name, table = unique("idle"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=3)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "3", "iceberg.control.commit.timeout-ms": "120000",
    })
    worker = Worker(tmp_path)
    try:
        worker.start(connector_file(tmp_path, name, config))
        worker.wait_running(name, tasks=3)
        started = time.monotonic()
        produce(topic, [{"id": i} for i in range(10)], partition=0)
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 10, 60, "10 rows")
        assert time.monotonic() - started < 30, "a commit waited for the timeout"
        summary = catalog.load_table(table).current_snapshot().summary
        assert "kafka.connect.valid-through-ts" not in summary.additional_properties  # idle partitions

        # Nothing new arrives: the coordinator skips its cycles (docs/control-topic.md, "Idle
        # connectors") and counts them...
        def skipped() -> float:
            m = re.search(rf'^floe_sink_commit_cycles_skipped_total\{{connector="{name}"\}} (\S+)$',
                          worker.get("/metrics").text, re.M)
            return float(m.group(1)) if m else 0.0
        wait_for(lambda: skipped() >= 2, 30, "two idle cycles skipped")
        # ...and a record that arrives meanwhile, on a partition that never had one, is committed
        # at the next check.
        produce(topic, [{"id": 10}], partition=2)
        wait_for(lambda: len(read_rows(catalog, table)) == 11, 30, "the 11th row")
        assert sorted(r["id"] for r in read_rows(catalog, table)) == list(range(11))
    finally:
        worker.stop()
        delete_topics(topic)


def test_two_connectors_share_one_control_topic(tmp_path):
    """Events are filtered by connect group: two connectors on one control topic stay apart."""
    catalog_cfg = sqlite_catalog_config(tmp_path)
    control = unique("control")
    create_topic(control)
    worker = Worker(tmp_path)
    topics = [unique("shared"), unique("shared")]
    tables = [f"db_{unique('ns')}.a", f"db_{unique('ns')}.b"]
    try:
        worker.start()
        for i, (topic, table) in enumerate(zip(topics, tables)):
            create_topic(topic)
            produce(topic, [{"id": i * 1000 + n} for n in range(50)])
            worker.create_connector(unique(f"c{i}"), connector_config(topic, table, catalog_cfg, **{"iceberg.control.topic": control}))
        catalog = pyiceberg_catalog(catalog_cfg)
        for i, table in enumerate(tables):
            rows = wait_for(lambda t=table: (r := read_rows(catalog, t)) and len(r) >= 50 and r, 60, f"rows of {table}")
            assert sorted(r["id"] for r in rows) == [i * 1000 + n for n in range(50)]
    finally:
        worker.stop()
        delete_topics(control, *topics)


def test_broker_restart_mid_stream(tmp_path):
    """(c) The broker goes down and comes back while records stream in: every record lands once."""
    import subprocess

    from confluent_kafka import Producer

    from harness import BOOTSTRAP, ROOT

    topic, name, table = unique("brokerrestart"), unique("sink"), f"db_{unique('ns')}.events"
    total = 3_000
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"iceberg.control.commit.timeout-ms": "5000"})
    worker = Worker(tmp_path, FAST_FAILOVER)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "message.timeout.ms": 300000})
    try:
        worker.start(connector_file(tmp_path, name, config))
        for i in range(total // 2):
            producer.produce(topic, key=str(i), value=json.dumps({"id": i}))
        assert producer.flush(60) == 0
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) > 0, 60, "a first commit")
        subprocess.run([str(ROOT / "stack" / "down"), "kafka"], check=True, timeout=120)
        for i in range(total // 2, total):
            producer.produce(topic, key=str(i), value=json.dumps({"id": i}))
        subprocess.run([str(ROOT / "stack" / "up"), "kafka"], check=True, timeout=300)
        assert producer.flush(240) == 0
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= total and r, 240, f"{total} rows")
        time.sleep(3)
        assert_exactly(read_rows(catalog, table), total)
        assert worker.task_states(name) == ["RUNNING"]
    finally:
        worker.stop()
        delete_topics(topic)


def test_coordinator_killed_between_table_commit_and_commit_complete(tmp_path):
    """(b) The process dies right after a table commit, before CommitComplete and the -coord
    offsets: the next coordinator replays the control topic and the table's stored offsets keep
    it from committing those files again (I2)."""
    topic, name, table = unique("crashpoint"), unique("sink"), f"db_{unique('ns')}.events"
    total = 500
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    cfile = connector_file(tmp_path, name, connector_config(topic, table, catalog_cfg))
    produce(topic, [{"id": i} for i in range(total)], keys=[str(i) for i in range(total)])
    crashing = Worker(tmp_path, FAST_FAILOVER, env={"FLOE_CRASH_AT": "coordinator-after-table-commit"})
    crashing.start(cfile)
    try:
        wait_for(lambda: crashing.proc.poll() is not None, 60, "the worker to abort after its first table commit")
        assert "FLOE_CRASH_AT reached" in crashing.log()
        catalog = pyiceberg_catalog(catalog_cfg)
        before = len(read_rows(catalog, table))
        assert before > 0
    finally:
        crashing.stop()
    worker = Worker(tmp_path, FAST_FAILOVER)
    try:
        worker.start(cfile)
        produce(topic, [{"id": i} for i in range(total, 2 * total)], keys=[str(i) for i in range(total, 2 * total)])
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 2 * total and r, 120, f"{2 * total} rows")
        time.sleep(3)
        assert_exactly(read_rows(catalog, table), 2 * total)
    finally:
        worker.stop()
        delete_topics(topic)


def test_buffer_limit_triggers_an_early_commit(tmp_path):
    """Floe extension: with a one-hour interval, a task holding more than
    floe.commit.max-buffered-records asks for a commit and the coordinator starts it."""
    topic, name, table = unique("early"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "iceberg.control.commit.interval-ms": "3600000",
        "floe.commit.max-buffered-records": "100",
    })
    worker = Worker(tmp_path)
    try:
        worker.start(connector_file(tmp_path, name, config))
        worker.wait_running(name)
        produce(topic, [{"id": i} for i in range(300)])
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 300 and r, 60, "300 rows long before the interval")
        assert_exactly(rows, 300)
        assert "commit requested by a task whose buffer is full" in worker.log()
    finally:
        worker.stop()
        delete_topics(topic)


def test_cooperative_rebalances_lose_and_duplicate_nothing(tmp_path):
    """Item 7: three tasks over six partitions with cooperative-sticky assignment; tasks are
    restarted one at a time while records stream in, so partitions move between live tasks."""
    topic, name, table = unique("coop"), unique("sink"), f"db_{unique('ns')}.events"
    total = 6_000
    create_topic(topic, partitions=6)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "3",
        "iceberg.control.commit.timeout-ms": "5000",
        "consumer.override.partition.assignment.strategy": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    })
    worker = Worker(tmp_path, FAST_FAILOVER)
    producer = KeyedProducer(topic, total, batch=100, pause=0.05)
    try:
        worker.start(connector_file(tmp_path, name, config))
        worker.wait_running(name, tasks=3)
        producer.start()
        for task in (1, 2, 0, 1):
            time.sleep(2.5)
            assert worker.post(f"/connectors/{name}/tasks/{task}/restart").status_code == 204
        producer.join(300)
        assert producer.error is None, producer.error
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) >= total, 180, f"{total} rows")
        time.sleep(3)
        assert_exactly(read_rows(catalog, table), total)
        assert 'protocol="Cooperative"' in worker.log()
        worker.wait_running(name, tasks=3)
    finally:
        producer.stopped.set()
        worker.stop()
        delete_topics(topic)
