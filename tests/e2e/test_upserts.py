"""Upserts and CDC (docs/upserts.md): the table ends as the last change of every key, deleted
keys absent, as read by three independent readers — Iceberg's own generic reader (the oracle,
which applies every kind of delete), PyIceberg and DuckDB — and carries position deletes only
(no equality delete for readers to join)."""

import json
import os
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


def live_vectors_per_data_file(catalog, table):
    """How many live deletion vectors each data file has, from the delete manifests' entries
    (`referenced_data_file`, which PyIceberg's DataFile does not expose)."""
    import collections

    import fastavro

    tbl = catalog.load_table(table)
    count = collections.Counter()
    for manifest in tbl.current_snapshot().manifests(tbl.io):
        if manifest.content.value != 1:
            continue
        with tbl.io.new_input(manifest.manifest_path).open() as f:
            for entry in fastavro.reader(f):
                if entry["status"] != 2 and entry["data_file"]["file_format"].upper() == "PUFFIN":
                    count[entry["data_file"]["referenced_data_file"]] += 1
    return count


def state_of(rows, columns):
    return sorted(tuple(str(r.get(c)) for c in columns) for r in rows)


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


@pytest.mark.parametrize("version", [2, 3], ids=["v2", "v3"])
@pytest.mark.parametrize("partitioned", [False, True], ids=["unpartitioned", "partitioned"])
def test_upserts_updates_and_deletes_end_as_the_last_change_per_key(tmp_path, partitioned, version):
    """Format v2 tables get position delete files; v3 tables deletion vectors, one live vector
    per data file (a data file's later deletes replace its vector with a merged one)."""
    topic, name, table = unique("upsert"), unique("sink"), f"db_{unique('ns')}.items"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    extra = {
        "tasks.max": "2",
        "iceberg.tables.upsert-mode-enabled": "true",
        "iceberg.tables.cdc-field": "op",
        "iceberg.tables.default-id-columns": "id",
        "iceberg.control.commit.interval-ms": "1000",
        "iceberg.tables.auto-create-props.format-version": str(version),
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
        # 4. More rows of the first data files go: on v3 their vectors are replaced by merged ones.
        changes.send([("U", i, f"v4-{i}", "eu") for i in range(700, 750)])
        wait_committed(catalog_cfg, table, changes)
        summaries = assert_every_reader(catalog_cfg, table, changes.expected, ("id", "payload", "region"))
        current = pyiceberg_catalog(catalog_cfg).load_table(table).current_snapshot().summary
        deletes = int(current.get("total-position-deletes") or "0")
        tasks = list(pyiceberg_catalog(catalog_cfg).load_table(table).scan().plan_files())
        formats = sorted({d.file_format.value for t in tasks for d in t.delete_files})
        print(f"upserts (v{version}, {'partitioned' if partitioned else 'unpartitioned'}): "
              f"changes {changes.count}, rows {len(changes.expected)}, live deleted positions {deletes}, "
              f"delete formats {formats}, snapshots {len(summaries)}")
        # Every replaced or deleted row was deleted once: 300 + 100 + 1 (key 500) + 1 (key 600)
        # in step 2, 100 in step 3, 50 in step 4.
        assert deletes == 552, deletes
        assert {s.operation.value for s in summaries} >= {"overwrite"}
        if version == 3:
            assert formats == ["PUFFIN"], formats
            vectors = live_vectors_per_data_file(pyiceberg_catalog(catalog_cfg), table)
            assert vectors and max(vectors.values()) == 1, f"a data file with two live vectors: {vectors}"
            assert sum(int(s.get("added-dvs") or "0") for s in summaries) > 0
            assert sum(int(s.get("removed-dvs") or "0") for s in summaries) > 0
            assert all(s.get("added-position-delete-files") is None for s in summaries)
        else:
            assert formats == ["PARQUET"], formats
    finally:
        worker.stop()
        delete_topics(topic)


def test_a_table_upgraded_to_v3_keeps_its_v2_deletes(tmp_path):
    """Upserts into a format v2 table (position delete files), an upgrade to v3 by Java's
    Iceberg, more upserts (deletion vectors): a vector written for a data file that has
    position deletes holds them too, since v3 readers (Java's among them) may skip a data
    file's position delete files once it has a vector."""
    topic, name, table = unique("uupgrade"), unique("sink"), f"db_{unique('ns')}.items"
    create_topic(topic, partitions=1)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path).start()
    changes = Changes(topic)
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.upsert-mode-enabled": "true",
            "iceberg.tables.default-id-columns": "id",
            "iceberg.control.commit.interval-ms": "1000",
        }))
        changes.send([("I", i, f"v0-{i}", "eu") for i in range(1000)])
        wait_committed(catalog_cfg, table, changes)
        changes.send([("U", i, f"v1-{i}", "eu") for i in range(0, 1000, 3)])
        wait_committed(catalog_cfg, table, changes)
        r = worker.delete(f"/connectors/{name}")
        assert r.status_code == 204, r.text
        # Java upgrades the table (and reads it: the v2 deletes apply).
        assert state_of(java_rows(catalog_cfg, table, upgrade_to=3), ("id", "payload")) == \
            state_of(changes.expected.values(), ("id", "payload"))
        assert pyiceberg_catalog(catalog_cfg).load_table(table).metadata.format_version == 3
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.upsert-mode-enabled": "true",
            "iceberg.tables.default-id-columns": "id",
            "iceberg.control.commit.interval-ms": "1000",
        }))
        # Rows of the first data file, which has position deletes, go again.
        changes.send([("U", i, f"v2-{i}", "eu") for i in range(1, 1000, 3)])
        wait_committed(catalog_cfg, table, changes)
        assert_every_reader(catalog_cfg, table, changes.expected, ("id", "payload"))
        catalog = pyiceberg_catalog(catalog_cfg)
        vectors = live_vectors_per_data_file(catalog, table)
        current = catalog.load_table(table).current_snapshot().summary
        print(f"upgraded to v3: vectors {dict(vectors)}, summary {dict(current.additional_properties)}")
        assert vectors and max(vectors.values()) == 1
        # The v2 file of the first data file's deletes is taken over by its vector (334 old
        # positions, 333 new), as Java's writer does.
        assert current.get("removed-position-delete-files") == "1", current
        assert current.get("total-position-deletes") == "667", current
    finally:
        worker.stop()
        delete_topics(topic)


def test_schema_evolution_while_upserting(tmp_path):
    """A new field arrives in the middle of the stream, on updates of existing keys and on new
    keys alike: the column is added, rows written before it read as null there, the replaced
    rows of the old schema are deleted all the same."""
    topic, name, table = unique("uevolve"), unique("sink"), f"db_{unique('ns')}.items"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path).start()
    expected, count = {}, 0

    def send(rows):
        nonlocal count
        for r in rows:
            if r["op"] == "D":
                expected.pop(r["id"], None)
            else:
                expected[r["id"]] = r
        produce(topic, rows, keys=[str(r["id"]) for r in rows])
        count += len(rows)

    def settled():
        try:
            rows = read_rows(pyiceberg_catalog(catalog_cfg), table)
            return state_of(rows, ("id", "payload", "score")) == state_of(expected.values(), ("id", "payload", "score"))
        except Exception:  # noqa: BLE001 - not created or not evolved yet
            return False
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "tasks.max": "2",
            "iceberg.tables.upsert-mode-enabled": "true",
            "iceberg.tables.cdc-field": "op",
            "iceberg.tables.default-id-columns": "id",
            "iceberg.tables.evolve-schema-enabled": "true",
            "iceberg.control.commit.interval-ms": "1000",
        }))
        send([{"id": i, "payload": f"v0-{i}", "op": "I"} for i in range(500)])
        wait_for(settled, 90, f"{table} to hold the first 500 rows")
        # The new field, on updates of old keys and on new keys, with deletes of old keys and
        # old-schema updates in the same cycle.
        batch = [{"id": i, "payload": f"v1-{i}", "score": i * 10, "op": "U"} for i in range(200)]
        batch += [{"id": i, "payload": "", "op": "D"} for i in range(200, 250)]
        batch += [{"id": i, "payload": f"v1-{i}", "op": "U"} for i in range(250, 300)]
        batch += [{"id": i, "payload": f"v1-{i}", "score": -i, "op": "I"} for i in range(1000, 1100)]
        send(batch)
        wait_for(settled, 90, f"{table} to evolve and hold {len(expected)} rows")
        # A key updated again, now without the field: its score reads null.
        send([{"id": i, "payload": f"v2-{i}", "op": "U"} for i in range(0, 20)])
        wait_for(settled, 90, f"{table} to hold the last updates")
        summaries = assert_every_reader(catalog_cfg, table, expected, ("id", "payload", "score"))
        current = pyiceberg_catalog(catalog_cfg).load_table(table)
        print(f"upserts with schema evolution: changes {count}, rows {len(expected)}, "
              f"columns {[f.name for f in current.schema().fields]}, schemas {len(current.metadata.schemas)}, "
              f"snapshots {len(summaries)}")
        assert [f.name for f in current.schema().fields][-1] == "score"
        # 200 + 50 + 50 rows of step 1, then 20 of step 2.
        assert int(current.current_snapshot().summary.get("total-position-deletes")) == 320
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


@pytest.mark.parametrize("version", [2, 3], ids=["v2", "v3"])
def test_sigkill_chaos_in_upsert_mode(tmp_path, version):
    """The worker is killed with SIGKILL at random moments while keyed changes stream in: the
    table ends as the last change of every key, no key twice, no stale value. The size is
    `FLOE_UPSERT_CHAOS=keys,changes,kills`, by default 100,000 keys, 300,000 changes, 10 kills."""
    topic, name, table = unique("uchaos"), unique("sink"), f"db_{unique('ns')}.items"
    keys, total, kills = (int(x) for x in os.environ.get("FLOE_UPSERT_CHAOS", "100000,300000,10").split(","))
    create_topic(topic, partitions=4)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "2",
        "iceberg.tables.upsert-mode-enabled": "true",
        "iceberg.tables.cdc-field": "op",
        "iceberg.tables.default-id-columns": "id",
        "iceberg.control.commit.interval-ms": "1000",
        "iceberg.control.commit.timeout-ms": "5000",
        "iceberg.tables.auto-create-props.format-version": str(version),
        # Compaction (format version 2 tables) between the commits the kills interrupt.
        "floe.maintenance.interval-ms": "3000",
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
        wait_committed(catalog_cfg, table, changes, timeout=max(180, total // 1000))
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = read_rows(catalog, table)
        oracle = java_rows(catalog_cfg, table)
        for reader, got in (("pyiceberg", rows), ("iceberg-generics", oracle)):
            ids = [r["id"] for r in got]
            dup = len(ids) - len(set(ids))
            wrong = sum(1 for r in got if changes.expected.get(r["id"], {}).get("payload") != r["payload"])
            missing = len(set(changes.expected) - set(ids))
            print(f"upsert chaos (v{version}, {reader}): keys {keys}, changes {changes.count}, kills {killed}, rows found {len(got)}, "
                  f"expected {len(changes.expected)}, keys duplicated {dup}, keys wrong {wrong}, missing {missing}")
            assert dup == 0 and wrong == 0 and missing == 0
    finally:
        worker.stop()
        delete_topics(topic)
