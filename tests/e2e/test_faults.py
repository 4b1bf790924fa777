"""Riding out faults without losing or duplicating a row (docs/faults.md): the catalog down for a
minute, the object store down and then flaky, a control-topic transaction whose outcome the task
never learns, a poison pill on the control topic, and a task that failed at start coming back
with a REST restart. A fault proxy stands between Floe and the real service; readers go to the
service directly."""

import json
import threading
import time

from confluent_kafka import Producer

from harness import (
    BOOTSTRAP, REST_CATALOG_URI, S3_ENDPOINT, FaultProxy, Worker, connector_config, create_topic, delete_topics,
    pyiceberg_catalog, pyiceberg_s3_catalog, read_rows, rest_catalog_config, s3_catalog_config, snapshots,
    sqlite_catalog_config, unique, wait_for,
)
from test_exactly_once import FAST_FAILOVER, KeyedProducer, assert_exactly

REST_PORT = int(REST_CATALOG_URI.rsplit(":", 1)[1])


class StateWatch(threading.Thread):
    """Polls the connector's task states, remembering every state seen."""

    def __init__(self, worker, name):
        super().__init__(daemon=True)
        self.worker, self.name, self.seen, self.stopped = worker, name, set(), threading.Event()

    def run(self):
        while not self.stopped.wait(0.5):
            try:
                self.seen.update(self.worker.task_states(self.name))
            except Exception:  # noqa: BLE001 - a slow answer is not a state
                pass


def stream(worker, name, topic, catalog_reader, table, total, outage, tasks=2):
    """Streams `total` records while `outage()` runs (after a first commit); asserts every record
    lands exactly once and no task ever failed. Returns (rows, seconds the outage took)."""
    producer = KeyedProducer(topic, total, batch=100, pause=0.1)
    watch = StateWatch(worker, name)
    try:
        producer.start()
        watch.start()
        wait_for(lambda: len(read_rows(catalog_reader(), table)) > 0, 90, "a first commit")
        began = time.monotonic()
        outage()
        lasted = time.monotonic() - began
        producer.join(300)
        assert producer.error is None and not producer.is_alive()
        catalog = catalog_reader()
        wait_for(lambda: len(read_rows(catalog, table)) >= total, 180, f"{total} rows after the outage")
        time.sleep(3)  # one more cycle: nothing may arrive twice
        rows = read_rows(catalog, table)
        assert_exactly(rows, total)
        watch.stopped.set()
        assert "FAILED" not in watch.seen and worker.task_states(name) == ["RUNNING"] * tasks, watch.seen
        return rows, lasted
    finally:
        producer.stopped.set()
        watch.stopped.set()


def test_catalog_down_for_a_minute(tmp_path):
    """The REST catalog unreachable for 60 s mid-stream: tasks keep writing to the tables they
    know, the coordinator retries every cycle, nothing fails, nothing is lost or doubled."""
    topic, name, table = unique("catdown"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=4)
    proxy = FaultProxy(REST_PORT)
    config = connector_config(topic, table, {**rest_catalog_config(), "iceberg.catalog.uri": proxy.url},
                              **{"tasks.max": "2"}, **FAST_FAILOVER)
    worker = Worker(tmp_path)
    total = 12_000

    def outage():
        proxy.down()
        time.sleep(60)
        proxy.up()

    try:
        worker.start()
        worker.create_connector(name, config)
        reader = pyiceberg_catalog(rest_catalog_config())
        rows, lasted = stream(worker, name, topic, lambda: reader, table, total, outage)
        log = worker.log()
        assert "catalog or storage unreachable" in log or "catalog unavailable" in log, "the outage went unnoticed"
        print(f"catalog outage: {lasted:.0f} s, produced {total}, found {len(rows)}, duplicated 0, "
              f"connections refused {proxy.refused}, snapshots {len(snapshots(reader, table))}")
    finally:
        worker.stop()
        proxy.close()
        delete_topics(topic)


def test_object_store_down_then_flaky(tmp_path):
    """S3 unreachable for 30 s, then every third connection answered 503 for 20 s: writes and
    commits retry (tasks drop what they had not announced and read it again), nothing lost."""
    topic, name, table = unique("s3down"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=4)
    proxy = FaultProxy(int(S3_ENDPOINT.rsplit(":", 1)[1]))
    catalog_cfg = s3_catalog_config("sqlite", tmp_path, endpoint=proxy.url)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": "2"}, **FAST_FAILOVER)
    worker = Worker(tmp_path)
    total = 10_000

    def outage():
        proxy.down()
        time.sleep(30)
        proxy.flaky(every=3)
        time.sleep(20)
        proxy.up()

    try:
        worker.start()
        worker.create_connector(name, config)
        reader = pyiceberg_s3_catalog({**catalog_cfg, "iceberg.catalog.s3.endpoint": S3_ENDPOINT})
        rows, lasted = stream(worker, name, topic, lambda: reader, table, total, outage)
        print(f"object store outage: {lasted:.0f} s (30 s down, 20 s flaky), produced {total}, found {len(rows)}, "
              f"duplicated 0, connections refused or answered 503: {proxy.refused}")
    finally:
        worker.stop()
        proxy.close()
        delete_topics(topic)


def test_a_transaction_whose_outcome_is_unknown_leaves_its_files(tmp_path):
    """The broker commits a task's transaction but the task is told it failed: the task must not
    delete the files the committed DataWritten references; it rewinds, and the table ends with
    every record once, every file of it readable."""
    topic, name, table = unique("unknown"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path, env={"FLOE_TEST_FAULT": "worker-commit-outcome-unknown@3"})
    total = 3000
    try:
        worker.start()
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{"tasks.max": "1"}))
        catalog = pyiceberg_catalog(catalog_cfg)
        producer = KeyedProducer(topic, total, batch=100, pause=0.1)
        producer.start()
        producer.join(120)
        wait_for(lambda: len(read_rows(catalog, table)) >= total, 120, f"{total} rows")
        time.sleep(3)
        rows = read_rows(catalog, table)  # reads every data file the table references
        assert_exactly(rows, total)
        log = worker.log()
        assert "test fault: reporting a committed transaction as failed" in log, "the fault did not fire"
        assert "leaving this cycle's files and rewinding" in log
        print(f"unknown outcome: produced {total}, found {len(rows)}, duplicated 0")
    finally:
        worker.stop()
        delete_topics(topic)


def avro_long(n: int) -> bytes:
    """An Avro long: zig-zag, then base-128 varint."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def crafted_events() -> list[bytes]:
    """Control-topic records made to exhaust a decoder: a writer schema whose first field is an
    array of nulls with a block count of 2^40 (170 bytes; it once made a worker abort allocating
    2 GiB), and a schema whose named types double at each of 30 levels."""
    def frame(schema: dict, datum: bytes) -> bytes:
        text = json.dumps(schema, separators=(",", ":")).encode()
        return b"\xc2\x01" + len(text).to_bytes(2, "big") + text + datum

    nulls = frame({"type": "record", "name": "Event", "fields": [
        {"name": "a", "type": {"type": "array", "items": "null"}}]}, avro_long(2 ** 40))
    level = {"type": "record", "name": "L0", "fields": [{"name": "x", "type": "long"}]}
    for i in range(1, 31):
        level = {"type": "record", "name": f"L{i}", "fields": [
            {"name": "a", "type": level}, {"name": "b", "type": f"L{i - 1}"}]}
    return [nulls, frame(level, b"\x00" * 8)]


def test_a_poison_pill_on_the_control_topic_is_skipped(tmp_path):
    """Bytes no one can decode on the control topic, and records crafted to exhaust a decoder's
    time or memory: logged with their offset and skipped by the tasks and the coordinator,
    which go on committing."""
    topic, name, table = unique("pill"), unique("sink"), f"db_{unique('ns')}.events"
    control = unique("control")
    create_topic(topic, partitions=2)
    create_topic(control)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path)
    total = 4000
    try:
        worker.start()
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "tasks.max": "2", "iceberg.control.topic": control}))
        catalog = pyiceberg_catalog(catalog_cfg)

        def outage():
            p = Producer({"bootstrap.servers": BOOTSTRAP})
            for _ in range(3):
                p.produce(control, value=b"\x00\x01poison\xff\xfe", key=b"garbage")
            for crafted in crafted_events():
                p.produce(control, value=crafted, key=b"crafted")
            assert p.flush(30) == 0

        rows, _ = stream(worker, name, topic, lambda: catalog, table, total, outage)
        log = worker.log()
        assert log.count("undecodable control-topic record skipped") >= 5, "the pills were not seen"
        assert worker.proc.poll() is None, "the worker exited"
        print(f"poison pill: 3 undecodable and 2 crafted records, produced {total}, found {len(rows)}, duplicated 0")
    finally:
        worker.stop()
        delete_topics(topic, control)


def test_a_task_failed_at_start_comes_back_with_a_restart(tmp_path):
    """The catalog unreachable when the task starts: the task fails, naming the catalog. Once
    the catalog is back, `POST /connectors/{name}/restart?includeTasks=true&onlyFailed=true`
    brings it back and every record arrives."""
    topic, name, table = unique("restartme"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    proxy = FaultProxy(REST_PORT)
    proxy.down()
    config = connector_config(topic, table, {**rest_catalog_config(), "iceberg.catalog.uri": proxy.url})
    worker = Worker(tmp_path)
    try:
        worker.start()
        worker.create_connector(name, config)
        trace = worker.failed_task_trace(name)
        assert "cannot load REST catalog" in trace, trace
        proxy.up()
        r = worker.post(f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")
        assert r.status_code == 202, r.text
        worker.wait_running(name)
        produce_ids = KeyedProducer(topic, 500, batch=100, pause=0)
        produce_ids.run()
        reader = pyiceberg_catalog(rest_catalog_config())
        wait_for(lambda: len(read_rows(reader, table)) >= 500, 90, "500 rows after the restart")
        assert_exactly(read_rows(reader, table), 500)
    finally:
        worker.stop()
        proxy.close()
        delete_topics(topic)


def test_a_catalog_answering_server_errors_for_good_fails_the_connector_and_loses_nothing(tmp_path):
    """The REST catalog answers every request with 503 for longer than
    `floe.control.commit.server-error-timeout-ms` (5 s here): the failed commits then count
    toward `iceberg.control.commit.max-consecutive-failures` (2) and the connector's task fails
    saying why, instead of buffering files forever. Once the catalog answers again, a task
    restart commits every record exactly once."""
    import requests

    topic, name, table = unique("srverr"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    proxy = FaultProxy(REST_PORT)
    config = connector_config(topic, table, {**rest_catalog_config(), "iceberg.catalog.uri": proxy.url}, **{
        "floe.control.commit.server-error-timeout-ms": "5000",
        "iceberg.control.commit.max-consecutive-failures": "2",
    })
    worker = Worker(tmp_path)
    reader = pyiceberg_catalog(rest_catalog_config())
    producer = Producer({"bootstrap.servers": BOOTSTRAP})

    def send(ids):
        for i in ids:
            producer.produce(topic, value=json.dumps({"id": i}).encode(), key=str(i).encode())
        assert producer.flush(30) == 0

    try:
        worker.start()
        worker.create_connector(name, config)
        send(range(100))
        wait_for(lambda: len(read_rows(reader, table)) == 100, 90, "the first 100 rows")
        proxy.flaky(1)
        send(range(100, 200))
        trace = worker.failed_task_trace(name, timeout=120)
        assert "consecutive commits failed" in trace, trace
        assert "longer than floe.control.commit.server-error-timeout-ms" in worker.log()
        proxy.up()
        requests.post(f"{worker.url}/connectors/{name}/tasks/0/restart", timeout=30)
        wait_for(lambda: len(read_rows(reader, table)) >= 200, 120, "every row")
        time.sleep(3)  # one more cycle: nothing may arrive twice
        assert sorted(r["id"] for r in read_rows(reader, table)) == list(range(200))
    finally:
        worker.stop()
        proxy.close()
        delete_topics(topic)
