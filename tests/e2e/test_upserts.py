"""Upserts and CDC (docs/upserts.md): the table ends as the last change of every key, deleted
keys absent, as read by three independent readers — Iceberg's own generic reader (the oracle,
which applies every kind of delete), PyIceberg and DuckDB — and carries position deletes only
(no equality delete for readers to join)."""

import json
import random
import signal
import time

import pytest

from harness import (
    Worker, connector_config, create_topic, delete_topics, java_rows, produce, pyiceberg_catalog, read_rows,
    sqlite_catalog_config, unique, wait_for,
)
from test_exactly_once import FAST_FAILOVER
from test_transforms import ICEBERG, JSON, chain, debezium_events, envelope_schema


def snapshots_of(catalog, table):
    return catalog.load_table(table).metadata.snapshots


def duckdb_rows(catalog, table):
    """The rows of `table` as DuckDB's iceberg extension reads them."""
    import glob
    import os

    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    con = duckdb.connect()
    for ext in (duckdb_extension_avro, duckdb_extension_iceberg):
        path, = glob.glob(os.path.join(os.path.dirname(ext.__file__), "extensions", "*", "*.duckdb_extension"))
        con.execute(f"LOAD '{path}'")
    location = catalog.load_table(table).metadata_location.removeprefix("file://")
    cur = con.execute(f"SELECT * FROM iceberg_scan('{location}')")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def state_of(rows, columns):
    return sorted(tuple(str(r[c]) for c in columns) for r in rows)


def assert_every_reader(catalog_cfg, table, expected, columns):
    """PyIceberg, DuckDB and the Java generic reader all read `expected` (id → row)."""
    catalog = pyiceberg_catalog(catalog_cfg)
    want = state_of(expected.values(), columns)
    got = {
        "pyiceberg": state_of(read_rows(catalog, table), columns),
        "duckdb": state_of(duckdb_rows(catalog, table), columns),
        "iceberg-generics": state_of(java_rows(catalog_cfg, table), columns),
    }
    for reader, rows in got.items():
        ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids)), f"{reader}: a key twice"
        assert rows == want, f"{reader}: {len(rows)} rows, {len(want)} expected; first differences: " \
            f"{sorted(set(rows) ^ set(want))[:6]}"
    summaries = [s.summary for s in snapshots_of(catalog, table)]
    last = summaries[-1]
    assert int(last.get("total-equality-deletes") or "0") == 0
    return summaries


class Changes:
    """Produces keyed changes ({"id", "payload", "region", "op"}) and keeps the expected table."""

    def __init__(self, topic):
        self.topic, self.expected, self.count = topic, {}, 0

    def send(self, changes):
        values, keys = [], []
        for op, i, payload, region in changes:
            values.append({"id": i, "payload": payload, "region": region, "op": op})
            keys.append(str(i))
            if op == "D":
                self.expected.pop(i, None)
            else:
                self.expected[i] = {"id": i, "payload": payload, "region": region, "op": op}
        produce(self.topic, values, keys=keys)
        self.count += len(values)


def wait_committed(catalog_cfg, table, changes, timeout=90):
    """Waits until the table holds the expected rows (as PyIceberg reads them)."""
    want = state_of(changes.expected.values(), ("id", "payload"))

    def settled():
        try:
            return state_of(read_rows(pyiceberg_catalog(catalog_cfg), table), ("id", "payload")) == want
        except Exception:  # noqa: BLE001 - the table may not exist yet
            return False
    wait_for(settled, timeout, f"{table} to hold the {len(want)} expected rows")


@pytest.mark.parametrize("partitioned", [False, True], ids=["unpartitioned", "partitioned"])
def test_upserts_updates_and_deletes_end_as_the_last_change_per_key(tmp_path, partitioned):
    topic, name, table = unique("upsert"), unique("sink"), f"db_{unique('ns')}.items"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    extra = {
        "tasks.max": "2",
        "iceberg.tables.upsert-mode-enabled": "true",
        "iceberg.tables.cdc-field": "op",
        "iceberg.tables.default-id-columns": "id",
        "iceberg.control.commit.interval-ms": "1000",
    }
    if partitioned:
        # Partitioned by a column that is not the key: an update may move a row to another
        # partition, and its old row must still go.
        extra["iceberg.tables.default-partition-by"] = "region"
    worker = Worker(tmp_path).start()
    changes = Changes(topic)
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **extra))
        # 1. Inserts.
        changes.send([("I", i, f"v0-{i}", "eu" if i % 2 else "us") for i in range(1000)])
        wait_committed(catalog_cfg, table, changes)
        # 2. Updates (moving regions), deletes, and several changes of one key in one batch.
        batch = [("U", i, f"v1-{i}", "us" if i % 2 else "eu") for i in range(300)]
        batch += [("D", i, "", "eu") for i in range(300, 400)]
        batch += [("U", 500, "v1-500", "eu"), ("U", 500, "v2-500", "us"), ("D", 600, "", "us"), ("I", 600, "v2-600", "eu")]
        changes.send(batch)
        wait_committed(catalog_cfg, table, changes)
        # 3. Deleted keys come back; updated keys change again; a key inserted and deleted in
        # one cycle never shows.
        batch = [("I", i, f"v3-{i}", "eu") for i in range(300, 350)]
        batch += [("U", i, f"v3-{i}", "us") for i in range(0, 100)]
        batch += [("I", 5000, "v3-5000", "eu"), ("D", 5000, "", "eu")]
        changes.send(batch)
        wait_committed(catalog_cfg, table, changes)
        summaries = assert_every_reader(catalog_cfg, table, changes.expected, ("id", "payload", "region"))
        deletes = sum(int(s.get("added-position-deletes") or "0") for s in summaries)
        print(f"upserts ({'partitioned' if partitioned else 'unpartitioned'}): changes {changes.count}, "
              f"rows {len(changes.expected)}, position deletes committed {deletes}, snapshots {len(summaries)}")
        # Every replaced or deleted row was deleted once: 300 + 100 + 1 (key 500) + 1 (key 600)
        # in step 2, 100 in step 3.
        assert deletes == 502, deletes
        assert {s.operation.value for s in summaries} >= {"overwrite"}
    finally:
        worker.stop()
        delete_topics(topic)


def test_debezium_changes_through_the_iceberg_debezium_transform(tmp_path):
    """Debezium envelopes (creates, snapshot reads, updates, deletes and their tombstones) through
    the Iceberg DebeziumTransform: `_cdc.op` drives the changes."""
    topic, name, table = unique("dbz"), unique("sink"), f"db_{unique('ns')}.customers"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path).start()
    try:
        config = connector_config(topic, table, catalog_cfg, **{
            "key.converter": JSON, "key.converter.schemas.enable": "true",
            "value.converter": JSON, "value.converter.schemas.enable": "true",
            "iceberg.tables.cdc-field": "_cdc.op",
            "iceberg.tables.default-id-columns": "id",
            **chain(("dropTomb", "org.apache.kafka.connect.transforms.Filter", {"predicate": "isTomb"}),
                    ("cdc", ICEBERG + "DebeziumTransform", {}),
                    predicates=(("isTomb", "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone", {}),)),
        })
        worker.create_connector(name, config)
        events = debezium_events(envelope_schema("dbserver1.inventory.customers"))
        produce(topic, [v for _, v in events], keys=[k for k, _ in events])
        # Expected: ids 0..29, the even ones at version 1, every fifth deleted.
        expected = {}
        for i in range(30):
            if i % 5 == 0:
                continue
            expected[i] = {"id": i, "first_name": f"name-{i}-v{1 if i % 2 == 0 else 0}"}
        catalog = pyiceberg_catalog(catalog_cfg)

        def settled():
            try:
                return state_of(read_rows(catalog, table), ("id", "first_name")) == state_of(expected.values(), ("id", "first_name"))
            except Exception:  # noqa: BLE001 - not created yet
                return False
        wait_for(settled, 90, f"{table} to hold {len(expected)} rows")
        assert_every_reader(catalog_cfg, table, expected, ("id", "first_name"))
    finally:
        worker.stop()
        delete_topics(topic)


def test_sigkill_chaos_in_upsert_mode(tmp_path):
    """The worker is killed with SIGKILL at random moments while keyed changes stream in: the
    table ends as the last change of every key, no key twice, no stale value."""
    topic, name, table = unique("uchaos"), unique("sink"), f"db_{unique('ns')}.items"
    keys, total, kills = 5_000, 20_000, 4
    create_topic(topic, partitions=4)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "2",
        "iceberg.tables.upsert-mode-enabled": "true",
        "iceberg.tables.cdc-field": "op",
        "iceberg.tables.default-id-columns": "id",
        "iceberg.control.commit.interval-ms": "1000",
        "iceberg.control.commit.timeout-ms": "5000",
    })
    cfile = tmp_path / f"{name}.json"
    cfile.write_text(json.dumps({"name": name, "config": config}))
    worker = Worker(tmp_path, FAST_FAILOVER)
    changes = Changes(topic)
    rng = random.Random(11)
    try:
        worker.start(cfile)
        sent = 0
        batch_size = total // 40
        killed = 0
        while sent < total:
            batch = []
            for _ in range(batch_size):
                i = rng.randrange(keys)
                op = "D" if rng.random() < 0.1 else ("U" if i in changes.expected else "I")
                batch.append((op, i, f"v{sent}-{i}", "eu"))
                sent += 1
            changes.send(batch)
            time.sleep(0.2)
            if killed < kills and rng.random() < 0.15:
                time.sleep(rng.uniform(0.0, 1.5))
                worker.stop(signal.SIGKILL)
                killed += 1
                worker.start(cfile)
        while killed < kills:
            worker.stop(signal.SIGKILL)
            killed += 1
            worker.start(cfile)
        wait_committed(catalog_cfg, table, changes, timeout=180)
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = read_rows(catalog, table)
        oracle = java_rows(catalog_cfg, table)
        for reader, got in (("pyiceberg", rows), ("iceberg-generics", oracle)):
            ids = [r["id"] for r in got]
            dup = len(ids) - len(set(ids))
            wrong = sum(1 for r in got if changes.expected.get(r["id"], {}).get("payload") != r["payload"])
            missing = len(set(changes.expected) - set(ids))
            print(f"upsert chaos ({reader}): keys {keys}, changes {changes.count}, kills {killed}, rows found {len(got)}, "
                  f"expected {len(changes.expected)}, keys duplicated {dup}, keys wrong {wrong}, missing {missing}")
            assert dup == 0 and wrong == 0 and missing == 0
    finally:
        worker.stop()
        delete_topics(topic)
