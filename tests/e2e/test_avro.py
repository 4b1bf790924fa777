"""Confluent-framed Avro with schemas from the real registry (Apicurio) into Iceberg."""

import datetime
import decimal

from harness import (
    Worker, columns, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog, read_rows,
    sqlite_catalog_config, unique, wait_for,
)
from registry import REGISTRY_URL, avro_frame, register

ORDER = {
    "type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "id", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
    ],
}


def test_avro_records_become_typed_rows(tmp_path):
    topic, name, table = unique("avro"), unique("sink"), f"db_{unique('ns')}.orders"
    create_topic(topic)
    schema_id = register(f"{topic}-value", ORDER)
    utc = datetime.timezone.utc
    records = [{"id": i, "note": None if i % 2 else f"n{i}", "amount": decimal.Decimal(i * 111) / 100,
                "ts": datetime.datetime.fromtimestamp(1_700_000_000 + i, tz=utc), "day": datetime.date(2024, 1, 1 + i),
                "tags": [f"t{i}"], "kind": "AB"[i % 2]} for i in range(6)]
    produce(topic, [avro_frame(schema_id, ORDER, r) for r in records])
    worker = Worker(tmp_path, {
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": REGISTRY_URL,
    }).start()
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg))
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 6 and r, 60, "6 rows")
        assert columns(catalog, table) == [
            ("id", "long", True), ("note", "string", False), ("amount", "decimal(38, 2)", True),
            ("ts", "timestamptz", True), ("day", "date", True), ("tags", "list<required string>", True),
            ("kind", "string", True),
        ]
        assert sorted(rows, key=lambda r: r["id"]) == [{**r, "amount": r["amount"]} for r in records]
    finally:
        worker.stop()
        delete_topics(topic)


def test_unknown_schema_id_fails_the_task_naming_the_record(worker, tmp_path):
    topic, name, table = unique("avro"), unique("sink"), f"db_{unique('ns')}.orders"
    create_topic(topic)
    try:
        produce(topic, [b"\x00\x7f\xff\xff\x00\x02"])
        config = connector_config(topic, table, sqlite_catalog_config(tmp_path), **{
            "value.converter": "io.confluent.connect.avro.AvroConverter",
            "value.converter.schema.registry.url": REGISTRY_URL,
        })
        worker.create_connector(name, config)
        trace = worker.failed_task_trace(name)
        assert f"topic {topic}, partition 0, offset 0" in trace
        assert "Error retrieving Avro schema for id 2147483392" in trace
    finally:
        delete_topics(topic)


def test_json_schema_records_become_typed_rows(tmp_path):
    from registry import json_frame

    topic, name, table = unique("jsonschema"), unique("sink"), f"db_{unique('ns')}.orders"
    create_topic(topic)
    schema = {"type": "object", "title": "shop.Order", "properties": {
        "id": {"type": "integer"},
        "qty": {"type": "integer", "connect.type": "int32"},
        "note": {"oneOf": [{"type": "null"}, {"type": "string"}]},
        "tags": {"type": "array", "items": {"type": "string"}},
    }, "required": ["id", "qty", "tags"]}
    schema_id = register(f"{topic}-value", schema, schema_type="JSON")
    records = [{"id": i, "qty": i * 2, "note": None if i % 2 else f"n{i}", "tags": [f"t{i}"]} for i in range(4)]
    produce(topic, [json_frame(schema_id, r) for r in records])
    worker = Worker(tmp_path, {
        "value.converter": "io.confluent.connect.json.JsonSchemaConverter",
        "value.converter.schema.registry.url": REGISTRY_URL,
    }).start()
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg))
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 4 and r, 60, "4 rows")
        assert columns(catalog, table) == [
            ("id", "long", True), ("qty", "int", True), ("note", "string", False), ("tags", "list<required string>", True),
        ]
        assert sorted(rows, key=lambda r: r["id"]) == records
    finally:
        worker.stop()
        delete_topics(topic)


def test_registry_unreachable_fails_the_task_naming_the_record(tmp_path):
    from harness import free_port

    topic, name, table = unique("avro"), unique("sink"), f"db_{unique('ns')}.orders"
    create_topic(topic)
    dead_registry = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    worker = Worker(tmp_path).start()
    try:
        produce(topic, [b"\x00\x00\x00\x00\x01\x02"])
        config = connector_config(topic, table, sqlite_catalog_config(tmp_path), **{
            "value.converter": "io.confluent.connect.avro.AvroConverter",
            "value.converter.schema.registry.url": dead_registry,
        })
        worker.create_connector(name, config)
        trace = worker.failed_task_trace(name)
        assert f"topic {topic}, partition 0, offset 0" in trace
        assert f"Error retrieving Avro schema for id 1: registry at {dead_registry} unreachable" in trace
    finally:
        worker.stop()
        delete_topics(topic)


def flat(*fields):
    return {"type": "record", "name": "Reading", "namespace": "iot", "fields": list(fields)}


# Records of primitive fields, which the sink reads straight into its columns (docs/performance.md,
# "Avro straight into Arrow"); each version also takes the general path once: v2 adds a column,
# v3 widens an int and makes a required column optional.
AT = {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
DAY = {"name": "day", "type": {"type": "int", "logicalType": "date"}}
FLAT_V1 = flat({"name": "id", "type": "long"}, {"name": "name", "type": "string"}, {"name": "qty", "type": "int"},
               {"name": "ok", "type": "boolean"}, {"name": "ratio", "type": "float"}, AT, DAY)
FLAT_V2 = flat(*FLAT_V1["fields"], {"name": "score", "type": ["null", "double"], "default": None})
FLAT_V3 = flat({"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"], "default": None},
               {"name": "qty", "type": "long"}, {"name": "ok", "type": "boolean"}, {"name": "ratio", "type": "float"},
               AT, DAY, {"name": "score", "type": ["null", "double"], "default": None})


def test_flat_avro_versions_interleaved_with_a_bad_record(tmp_path):
    """Flat Avro records of three schema versions, interleaved, with evolution on: every row
    arrives exactly once with its values; a truncated record goes to the dead-letter queue
    naming its offset, as the converter names it, and the task keeps running."""
    from test_bad_input import dlq_messages

    topic, name, table, dlq = unique("flat"), unique("sink"), f"db_{unique('ns')}.readings", unique("dlq")
    create_topic(topic)
    subject = f"{topic}-value"
    schemas = {"v1": FLAT_V1, "v2": FLAT_V2, "v3": FLAT_V3}
    ids = {v: register(subject, s) for v, s in schemas.items()}

    def record(version, i):
        r = {"id": i, "name": f"n{i}", "qty": i * 10, "ok": i % 2 == 0, "ratio": i / 4,
             "at": datetime.datetime.fromtimestamp(1_700_000_000 + i, tz=datetime.timezone.utc),
             "day": datetime.date(2024, 1, 1) + datetime.timedelta(days=i)}
        if version in ("v2", "v3"):
            r["score"] = None if i % 3 == 0 else i * 1.5
        if version == "v3":
            r["qty"] = 10_000_000_000 + i
            r["name"] = None if i % 2 else r["name"]
        return r

    plan = ["v1"] * 40 + ["v2"] * 30 + ["v1"] * 10 + ["v3"] * 30 + ["v2", "v1", "v3", "v1"] * 5
    frames = [avro_frame(ids[v], schemas[v], record(v, i)) for i, v in enumerate(plan)]
    bad_at = 55
    frames.insert(bad_at, frames[bad_at][:-3])  # a v2 record cut short
    worker = Worker(tmp_path, {
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": REGISTRY_URL,
    }).start()
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        config = connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.evolve-schema-enabled": "true",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true",
        })
        worker.create_connector(name, config)
        # The first records arrive before the table exists, the rest while it is written.
        produce(topic, frames[:20])
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 20, 60, "20 rows")
        produce(topic, frames[20:])
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == len(plan) and r, 60,
                        f"{len(plan)} rows")
        assert columns(catalog, table) == [
            ("id", "long", True), ("name", "string", False), ("qty", "long", True), ("ok", "boolean", True),
            ("ratio", "float", True), ("at", "timestamptz", True), ("day", "date", True), ("score", "double", False),
        ]
        expected = [{"score": None, **record(v, i)} for i, v in enumerate(plan)]
        assert sorted(rows, key=lambda r: r["id"]) == expected
        [bad] = dlq_messages(dlq, 1)
        headers = {k: v.decode() for k, v in bad.headers()}
        assert headers["__connect.errors.offset"] == str(bad_at), headers
        assert headers["__connect.errors.stage"] == "VALUE_CONVERTER", headers
        assert "Error deserializing Avro message" in headers["__connect.errors.exception.message"], headers
        assert worker.task_states(name) == ["RUNNING"]
    finally:
        worker.stop()
        delete_topics(topic, dlq)
