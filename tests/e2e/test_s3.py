"""Tables on object storage: S3 warehouses (the stack's SeaweedFS gateway) under the SQL catalog
(SQLite, PostgreSQL) and the REST catalog (its warehouse on S3, behind OAuth2 client
credentials whose tokens expire every 20 s). Connectors use the Java sink's keys unchanged
(`iceberg.catalog.io-impl=org.apache.iceberg.aws.s3.S3FileIO`, `s3.*`, `client.region`); rows are
read back from S3 by PyIceberg and DuckDB, not by Floe."""

import random
import signal
import time

import pytest
import requests

from harness import (
    REST_S3_CATALOG_URI, S3_ENDPOINT, Worker, connector_config, create_topic,
    delete_topics, duckdb_rows, produce, pyiceberg_s3_catalog, read_rows, s3_catalog_config, unique, wait_for,
)
from registry import REGISTRY_URL, avro_frame, register
from test_exactly_once import FAST_FAILOVER, KeyedProducer, assert_exactly, connector_file

EVENT = {
    "type": "record", "name": "Event", "namespace": "s3", "fields": [
        {"name": "id", "type": "long"},
        {"name": "kind", "type": "string"},
        {"name": "amount", "type": "double"},
    ],
}


def token_stats() -> dict:
    return requests.get(f"{REST_S3_CATALOG_URI}/floe/tokens", timeout=10).json()


def rows_of(catalog, table, n, timeout=120):
    return wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= n and r, timeout, f"{n} rows in {table}")


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "rest"])
def test_json_and_avro_connectors_write_to_s3(tmp_path, kind):
    """A partitioned, evolving JSON table and an Avro table per catalog, every file on S3."""
    json_topic, avro_topic = unique("s3json"), unique("s3avro")
    create_topic(json_topic, partitions=2)
    create_topic(avro_topic)
    ns = f"db_{unique('ns')}"
    json_table, avro_table = f"{ns}.events", f"{ns}.avro_events"
    catalog_cfg = s3_catalog_config(kind, tmp_path)
    tokens_before = token_stats() if kind == "rest" else None
    worker = Worker(tmp_path)
    try:
        worker.start()
        worker.create_connector(unique("json"), connector_config(json_topic, json_table, catalog_cfg, **{
            "tasks.max": "2", "iceberg.tables.default-partition-by": "kind",
            "iceberg.tables.evolve-schema-enabled": "true",
        }))
        schema_id = register(f"{avro_topic}-value", EVENT)
        worker.create_connector(unique("avro"), connector_config(avro_topic, avro_table, catalog_cfg, **{
            "value.converter": "io.confluent.connect.avro.AvroConverter",
            "value.converter.schema.registry.url": REGISTRY_URL,
        }))
        first = [{"id": i, "kind": "ab"[i % 2], "amount": i * 1.5} for i in range(200)]
        produce(json_topic, first, keys=[str(i) for i in range(200)])
        produce(avro_topic, [avro_frame(schema_id, EVENT, {"id": i, "kind": "x", "amount": i / 4}) for i in range(100)])
        catalog = pyiceberg_s3_catalog(catalog_cfg)
        rows_of(catalog, json_table, 200)
        # A new field: the table evolves, on S3 like everything else.
        second = [{"id": i, "kind": "ab"[i % 2], "amount": i * 1.5, "note": f"n{i}"} for i in range(200, 300)]
        produce(json_topic, second, keys=[str(i) for i in range(200, 300)])
        rows = rows_of(catalog, json_table, 300)
        assert_exactly(rows, 300)
        assert {r["note"] for r in rows if r["id"] >= 200} == {f"n{i}" for i in range(200, 300)}
        t = catalog.load_table(json_table)
        assert t.location().startswith("s3://"), t.location()
        assert [f.name for f in t.spec().fields] == ["kind"]
        duck = duckdb_rows(t.metadata_location)
        assert sorted(r["id"] for r in duck) == list(range(300))
        avro_rows = rows_of(catalog, avro_table, 100)
        assert sorted((r["id"], r["amount"]) for r in avro_rows) == [(i, i / 4) for i in range(100)]
        assert sorted(r["id"] for r in duckdb_rows(catalog.load_table(avro_table).metadata_location)) == list(range(100))
        if kind == "rest":
            # Tokens expire every 20 s: the worker obtained new ones and nothing was refused
            # for long enough to fail a task.
            time.sleep(25)
            produce(json_topic, [{"id": 300 + i, "kind": "a", "amount": 0.0} for i in range(10)])
            rows_of(catalog, json_table, 310)
            after = token_stats()
            assert after["issued"] - tokens_before["issued"] >= 3, (tokens_before, after)
        for name in worker.get("/connectors").json():
            assert all(s == "RUNNING" for s in worker.task_states(name)), name
    finally:
        worker.stop()
        delete_topics(json_topic, avro_topic)


def test_s3a_warehouse_with_hadoop_s3a_keys(tmp_path):
    """A connector written for Java's HadoopFileIO on s3a:// (iceberg.hadoop.fs.s3a.*)."""
    topic, table = unique("s3a"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = {
        "iceberg.catalog.type": "jdbc", "iceberg.catalog.uri": f"jdbc:sqlite:{tmp_path / 'catalog.db'}",
        "iceberg.catalog.warehouse": f"s3a://floe/{unique('wh')}",
        "iceberg.catalog.io-impl": "org.apache.iceberg.hadoop.HadoopFileIO",
        "iceberg.hadoop.fs.s3a.endpoint": S3_ENDPOINT, "iceberg.hadoop.fs.s3a.path.style.access": "true",
        "iceberg.hadoop.fs.s3a.access.key": "floe", "iceberg.hadoop.fs.s3a.secret.key": "floe-s3-secret",
        "iceberg.hadoop.fs.s3a.endpoint.region": "us-east-1",
    }
    worker = Worker(tmp_path)
    try:
        worker.start()
        worker.create_connector(unique("s3a"), connector_config(topic, table, catalog_cfg))
        produce(topic, [{"id": i} for i in range(50)])
        reader_cfg = {**s3_catalog_config("sqlite", tmp_path), "iceberg.catalog.warehouse": catalog_cfg["iceberg.catalog.warehouse"]}
        catalog = pyiceberg_s3_catalog(reader_cfg)
        assert_exactly(rows_of(catalog, table, 50), 50)
        assert catalog.load_table(table).location().startswith("s3a://")
    finally:
        worker.stop()
        delete_topics(topic)


def test_unknown_io_impl_and_hadoop_keys_are_refused(tmp_path):
    worker = Worker(tmp_path)
    try:
        worker.start()
        config = connector_config("t", "db.t", {
            **s3_catalog_config("sqlite", tmp_path),
            "iceberg.catalog.io-impl": "com.example.MyFileIO",
            "iceberg.hadoop.fs.defaultFS": "hdfs://nn:8020",
        })
        r = worker.post("/connectors", {"name": unique("bad"), "config": config})
        assert r.status_code == 400, r.text
        msg = r.json()["message"]
        assert "Unsupported io-impl com.example.MyFileIO" in msg and "iceberg.hadoop.fs.defaultFS" in msg, msg
    finally:
        worker.stop()


def test_chaos_sigkill_on_s3(tmp_path):
    """The SIGKILL chaos test with the warehouse on S3: every record once."""
    topic, name, table = unique("s3chaos"), unique("sink"), f"db_{unique('ns')}.events"
    total, kills = 10_000, 6
    create_topic(topic, partitions=4)
    catalog_cfg = s3_catalog_config("sqlite", tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "2", "iceberg.control.commit.interval-ms": "1000", "iceberg.control.commit.timeout-ms": "5000",
    })
    cfile = connector_file(tmp_path, name, config)
    worker = Worker(tmp_path, FAST_FAILOVER)
    producer = KeyedProducer(topic, total, batch=100, pause=0.05)
    rng = random.Random(13)
    try:
        worker.start(cfile)
        producer.start()
        for _ in range(kills):
            time.sleep(rng.uniform(1.5, 4.0))
            worker.stop(signal.SIGKILL)
            worker.start(cfile)
        producer.join(300)
        assert producer.error is None and not producer.is_alive()
        catalog = pyiceberg_s3_catalog(catalog_cfg)
        rows_of(catalog, table, total, timeout=180)
        time.sleep(3)
        rows = read_rows(catalog, table)
        assert_exactly(rows, total)
        assert sorted(r["id"] for r in duckdb_rows(catalog.load_table(table).metadata_location)) == list(range(total))
        print(f"s3 chaos: N={total}, kills={kills}, rows={len(rows)}")
    finally:
        producer.stopped.set()
        worker.stop()
        delete_topics(topic)
