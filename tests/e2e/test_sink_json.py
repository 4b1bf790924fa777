"""JSON records into Iceberg tables, read back by PyIceberg, on the SQL (SQLite, PostgreSQL) and REST
catalogs."""

import base64
import datetime
import decimal
import json
from pathlib import Path

import pytest

from harness import (
    columns, committed_offsets, connector_config, create_topic, delete_topics, postgres_catalog_config, produce,
    pyiceberg_catalog, read_rows, rest_catalog_config, snapshots, sqlite_catalog_config, unique, wait_for,
)

CATALOGS = ["sqlite", "postgres", "rest"]


def catalog_config(kind, tmp_path):
    if kind == "postgres":
        return postgres_catalog_config(tmp_path)
    return sqlite_catalog_config(tmp_path) if kind == "sqlite" else rest_catalog_config()


@pytest.mark.parametrize("kind", CATALOGS)
def test_schemaless_json_rows_equal_produced(worker, tmp_path, kind):
    topic, name, table = unique("json"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=3)
    catalog_cfg = catalog_config(kind, tmp_path)
    try:
        records = [{"id": i, "name": f"n{i}", "price": i + 0.5, "ok": i % 2 == 0, "tags": [f"t{i}"],
                    "nested": {"a": i}} for i in range(60)]
        produce(topic, records, keys=[str(i) for i in range(60)])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg))
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 60 and r, 60, "60 rows")
        assert sorted(rows, key=lambda r: r["id"]) == [
            {"id": i, "name": f"n{i}", "price": i + 0.5, "ok": i % 2 == 0, "tags": [f"t{i}"], "nested": {"a": i}}
            for i in range(60)
        ]
        t = catalog.load_table(table)
        assert columns(catalog, table) == [
            ("id", "long", False), ("name", "string", False), ("price", "double", False),
            ("ok", "boolean", False), ("tags", "list<optional string>", False),
            ("nested", "struct<a: optional long>", False),
        ]
        summary = t.current_snapshot().summary
        assert summary["kafka.connect.task-id"] == f"{name}-0"
        assert len(summary["kafka.connect.commit-id"]) == 36
        assert summary["kafka.connect.valid-through-ts"].endswith("Z")
        assert summary.operation.value == "append"
        wait_for(lambda: sum(committed_offsets(f"connect-{name}", topic, 3).values()) == 60, 30, "source offsets committed")
        assert worker.delete(f"/connectors/{name}").status_code == 204
    finally:
        delete_topics(topic)


@pytest.mark.parametrize("kind", CATALOGS)
def test_json_with_schemas_gives_typed_columns(tmp_path, kind):
    from harness import Worker

    worker = Worker(tmp_path, {"value.converter.schemas.enable": "true"}).start()
    topic, name, table = unique("typed"), unique("sink"), f"db_{unique('ns')}.typed"
    create_topic(topic)
    catalog_cfg = catalog_config(kind, tmp_path)
    schema = {"type": "struct", "name": "orders", "optional": False, "fields": [
        {"field": "id", "type": "int64", "optional": False},
        {"field": "qty", "type": "int32", "optional": True},
        {"field": "amount", "type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal",
         "version": 1, "parameters": {"scale": "2"}},
        {"field": "ts", "type": "int64", "optional": True, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1},
        {"field": "day", "type": "int32", "optional": True, "name": "org.apache.kafka.connect.data.Date", "version": 1},
        {"field": "note", "type": "string", "optional": True},
    ]}

    def amount(cents):
        return base64.b64encode(cents.to_bytes(4, "big", signed=True)).decode()

    try:
        values = [{"schema": schema, "payload": {"id": i, "qty": i * 10, "amount": amount(i * 111),
                                                  "ts": 1_700_000_000_000 + i, "day": 19_000 + i,
                                                  "note": None if i % 2 else f"n{i}"}} for i in range(5)]
        produce(topic, [json.dumps(v) for v in values])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg))
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 5 and r, 60, "5 typed rows")
        assert columns(catalog, table) == [
            ("id", "long", True), ("qty", "int", False), ("amount", "decimal(38, 2)", False),
            ("ts", "timestamptz", False), ("day", "date", False), ("note", "string", False),
        ]
        utc = datetime.timezone.utc
        assert sorted(rows, key=lambda r: r["id"]) == [
            {"id": i, "qty": i * 10, "amount": decimal.Decimal(i * 111) / 100,
             "ts": datetime.datetime.fromtimestamp((1_700_000_000_000 + i) / 1000, tz=utc),
             "day": datetime.date(1970, 1, 1) + datetime.timedelta(days=19_000 + i),
             "note": None if i % 2 else f"n{i}"}
            for i in range(5)
        ]
        assert len(snapshots(catalog, table)) >= 1
    finally:
        worker.stop()
        delete_topics(topic)


@pytest.mark.parametrize("kind", ["sqlite", "rest"])
def test_commits_go_to_the_configured_branch(worker, tmp_path, kind):
    """iceberg.tables.default-commit-branch: snapshots land on the branch, main stays untouched,
    and the branch's own snapshot summaries carry the control-topic offsets."""
    topic, name, table = unique("branch"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = catalog_config(kind, tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"iceberg.tables.default-commit-branch": "staging"})

    def branch_rows():
        t = catalog.load_table(table)
        head = t.snapshot_by_name("staging")
        return t.scan(snapshot_id=head.snapshot_id).to_arrow().to_pylist() if head else []

    try:
        produce(topic, [{"id": i} for i in range(20)])
        worker.create_connector(name, config)
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(branch_rows()) == 20, 60, "20 rows on branch staging")
        first = catalog.load_table(table).snapshot_by_name("staging")
        produce(topic, [{"id": i} for i in range(20, 30)])
        rows = wait_for(lambda: (r := branch_rows()) and len(r) == 30 and r, 60, "30 rows on branch staging")
        assert sorted(r["id"] for r in rows) == list(range(30))
        t = catalog.load_table(table)
        assert t.current_snapshot() is None, "main moved"
        head = t.snapshot_by_name("staging")
        chain, s = [], head
        while s is not None:
            chain.append(s.snapshot_id)
            s = t.snapshot_by_id(s.parent_snapshot_id) if s.parent_snapshot_id is not None else None
        assert first.snapshot_id in chain and head.snapshot_id != first.snapshot_id
        assert sorted(chain) == sorted(x.snapshot_id for x in t.snapshots()), "a snapshot off the branch"
        summary = head.summary
        assert summary["total-records"] == "30"
        assert f"kafka.connect.offsets.control-iceberg.connect-{name}" in summary.additional_properties
    finally:
        delete_topics(topic)


def test_schemaless_json_read_straight_into_columns_equals_the_general_conversion(worker, tmp_path):
    """Schemaless JSON is read straight into the columns where it can be; values that need
    converting (a string for a long, a number for a string), null payloads and JSON nulls, absent,
    null and unknown fields give the same rows as Java's conversion would."""
    topic, name, table = unique("fast"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        produce(topic, [{"id": 0, "name": "first", "price": 1.5, "ok": True}])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg))
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 1, 60, "the first row (the table is created)")
        produce(topic, [
            json.dumps({"id": 1, "name": 'tab\tquote" é ☃', "price": 2, "ok": False}),
            '{"ok": true, "id": 2}',
            '{"id": 3, "name": null, "price": -0.25, "ok": null, "extra": {"deep": [1, 2]}}',
            '{"id": "4", "name": 44, "price": "4.5", "ok": "true"}',
            None,
            "null",
            '{"id": 7, "name": "seven", "price": 7.5, "ok": true}',
        ])
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 6 and r, 60, "6 rows")
        assert sorted(rows, key=lambda r: r["id"]) == [
            {"id": 0, "name": "first", "price": 1.5, "ok": True},
            {"id": 1, "name": 'tab\tquote" é ☃', "price": 2.0, "ok": False},
            {"id": 2, "name": None, "price": None, "ok": True},
            {"id": 3, "name": None, "price": -0.25, "ok": None},
            {"id": 4, "name": "44", "price": 4.5, "ok": True},
            {"id": 7, "name": "seven", "price": 7.5, "ok": True},
        ]
        assert columns(catalog, table) == [
            ("id", "long", False), ("name", "string", False), ("price", "double", False), ("ok", "boolean", False),
        ]
        wait_for(lambda: committed_offsets(f"connect-{name}", topic) == {0: 8}, 30, "every offset committed")
    finally:
        delete_topics(topic)


def thread_names(pid: int) -> list[str]:
    names = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        try:
            names.append((thread / "comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return names


def test_clients_sizes_the_sql_catalogs_pool(worker, tmp_path):
    """`iceberg.catalog.clients` (Java's catalog pool size) is the SQL catalog's connections: with
    1, three tasks and their coordinator go through one SQLite connection (one sqlx worker thread);
    a value that is not a count is a validation error."""
    topic, name, table = unique("clients"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=3)
    catalog_cfg = {**sqlite_catalog_config(tmp_path), "iceberg.catalog.clients": "1"}
    try:
        bad = connector_config(topic, table, {**catalog_cfg, "iceberg.catalog.clients": "0"}, name=name)
        body = worker.put("/connector-plugins/IcebergSinkConnector/config/validate", bad).json()
        errors = [e for c in body["configs"] for e in c["value"]["errors"]]
        assert body["error_count"] == 1, errors
        assert errors == ["Invalid value 0 for configuration iceberg.catalog.clients: the SQL catalog's "
                          "connections, a whole number from 1 to 64"], errors

        produce(topic, [{"id": i} for i in range(60)], keys=[str(i) for i in range(60)])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{"tasks.max": "3"}))
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 60, 60, "60 rows")
        assert sorted(r["id"] for r in read_rows(catalog, table)) == list(range(60))
        names = thread_names(worker.proc.pid)
        assert len([n for n in names if n.startswith("sqlx-sqlite")]) == 1, names
    finally:
        delete_topics(topic)


def test_table_write_properties_readers_depend_on(worker, tmp_path):
    """Java's write properties as a table created by the sink carries them: the object-storage
    layout (hash directories before the partition path), a column whose metrics mode is `none`
    (no counts or bounds in the manifests), `truncate(4)` string bounds, a bloom filter on `id`
    with Parquet page and dictionary sizes. PyIceberg and DuckDB read every row."""
    import re

    import duckdb

    from test_upserts import duckdb_rows

    topic, name, table = unique("props"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    p = "iceberg.tables.auto-create-props."
    worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
        "iceberg.tables.default-partition-by": "bucket(id, 2)",
        p + "write.object-storage.enabled": "true",
        p + "write.metadata.metrics.column.secret": "none",
        p + "write.metadata.metrics.column.name": "truncate(4)",
        p + "write.parquet.bloom-filter-enabled.column.id": "true",
        p + "write.parquet.page-size-bytes": "8192",
        p + "write.parquet.dict-size-bytes": "16384",
    }))
    produce(topic, [{"id": i, "name": f"name-number-{i:04d}", "secret": f"ssn-{i:09d}"} for i in range(200)])
    catalog = pyiceberg_catalog(catalog_cfg)
    wait_for(lambda: len(read_rows(catalog, table)) == 200, 90, "200 rows")
    tbl = catalog.load_table(table)
    ids = {f.name: f.field_id for f in tbl.schema().fields}
    files = [t.file for t in tbl.scan().plan_files()]
    assert files
    data_root = tbl.metadata.location.rstrip("/") + "/data/"
    for f in files:
        rest = f.file_path.removeprefix("file://").removeprefix(data_root.removeprefix("file://"))
        assert re.match(r"^[01]{4}/[01]{4}/[01]{4}/[01]{8}/id_bucket=[01]/", rest), f.file_path
        assert ids["secret"] not in (f.lower_bounds or {}) and ids["secret"] not in (f.value_counts or {}), f
        assert len(f.lower_bounds[ids["name"]]) == 4 and f.lower_bounds[ids["name"]] == b"name", f.lower_bounds
        assert f.upper_bounds[ids["name"]] == b"namf", f.upper_bounds
        meta = duckdb.sql(f"SELECT path_in_schema, bloom_filter_offset FROM parquet_metadata('{f.file_path.removeprefix('file://')}')").fetchall()
        bloom = {path: offset for path, offset in meta}
        assert bloom["id"] is not None and bloom["name"] is None, meta
    want = list(range(200))
    assert sorted(r["id"] for r in read_rows(catalog, table)) == want
    assert sorted(r["id"] for r in duckdb_rows(catalog, table)) == want


def test_postgres_tls_settings_floe_cannot_honour_are_refused(worker, tmp_path):
    """Java passes `jdbc.*` catalog properties to the PostgreSQL driver; Floe's SQL catalog
    speaks no TLS to PostgreSQL, so a setting that asks for it is a validation error naming the
    key, never a connection in plain text. `sslmode=prefer` promises no TLS and is accepted."""
    base = connector_config("t", f"db_{unique('ns')}.t", postgres_catalog_config(tmp_path), name=unique("tls"))

    def errors(extra):
        body = worker.put("/connector-plugins/IcebergSinkConnector/config/validate", {**base, **extra}).json()
        return {c["value"]["name"]: c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]}

    refused = errors({"iceberg.catalog.jdbc.sslmode": "verify-full", "iceberg.catalog.jdbc.sslrootcert": "/ca.pem"})
    assert set(refused) >= {"iceberg.catalog.jdbc.sslmode", "iceberg.catalog.jdbc.sslrootcert"}, refused
    assert "without TLS" in refused["iceberg.catalog.jdbc.sslmode"][0]
    assert errors({"iceberg.catalog.jdbc.sslmode": "prefer"}) == {}
    r = worker.post("/connectors", {"name": base["name"], "config": {**base, "iceberg.catalog.jdbc.ssl": "true"}})
    assert r.status_code == 400 and "iceberg.catalog.jdbc.ssl" in r.text, r.text
