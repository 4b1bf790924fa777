"""Schema evolution (iceberg.tables.evolve-schema-enabled) on the real stack: producers change
their schemas while records of older versions are still in flight; the table's schema and every
row are checked with PyIceberg."""

from harness import (
    Worker, columns, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog, read_rows,
    sqlite_catalog_config, unique, wait_for,
)
from registry import REGISTRY_URL, avro_frame, register


def address(*fields):
    return {"name": "address", "type": {"type": "record", "name": "Address", "fields": list(fields)}}


CITY = {"name": "city", "type": "string"}
ZIP = {"name": "zip", "type": ["null", "string"], "default": None}
EMAIL = {"name": "email", "type": ["null", "string"], "default": None}


def customer(*fields):
    return {"type": "record", "name": "Customer", "namespace": "shop", "fields": list(fields)}


V1 = customer({"name": "id", "type": "long"}, {"name": "qty", "type": "int"}, address(CITY))
V2 = customer({"name": "id", "type": "long"}, {"name": "qty", "type": "int"}, address(CITY), EMAIL)
# v3: a nested field added and an int widened to long
V3 = customer({"name": "id", "type": "long"}, {"name": "qty", "type": "long"}, address(CITY, ZIP), EMAIL)


def test_avro_versions_interleaved_evolve_the_table(tmp_path):
    topic, name, table = unique("evolve"), unique("sink"), f"db_{unique('ns')}.customers"
    create_topic(topic)
    subject = f"{topic}-value"
    ids = {v: register(subject, s) for v, s in (("v1", V1), ("v2", V2), ("v3", V3))}
    schemas = {"v1": V1, "v2": V2, "v3": V3}

    def record(version, i):
        r = {"id": i, "qty": i * 10, "address": {"city": f"c{i}"}}
        if version in ("v2", "v3"):
            r["email"] = f"e{i}@x"
        if version == "v3":
            r["address"]["zip"] = f"z{i}"
            r["qty"] = 10_000_000_000 + i
        return r

    # v1, then v2, older v1 still in flight, v3, and v2/v1 after it.
    plan = ["v1"] * 4 + ["v2"] * 4 + ["v1"] * 2 + ["v3"] * 4 + ["v2", "v1", "v3", "v1"]
    worker = Worker(tmp_path, {
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": REGISTRY_URL,
    }).start()
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        config = connector_config(topic, table, catalog_cfg, **{"iceberg.tables.evolve-schema-enabled": "true"})
        worker.create_connector(name, config)
        # The first half arrives before the table exists, the rest while it is being written.
        half = len(plan) // 2
        produce(topic, [avro_frame(ids[v], schemas[v], record(v, i)) for i, v in enumerate(plan[:half])])
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == half, 60, f"{half} rows")
        produce(topic, [avro_frame(ids[v], schemas[v], record(v, half + i)) for i, v in enumerate(plan[half:])])
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == len(plan) and r, 60,
                        f"{len(plan)} rows")
        assert columns(catalog, table) == [
            ("id", "long", True), ("qty", "long", True),
            ("address", "struct<city: required string, zip: optional string>", True),
            ("email", "string", False),
        ]
        expected = []
        for i, v in enumerate(plan):
            r = record(v, i)
            expected.append({"id": i, "qty": r["qty"], "address": {"city": f"c{i}", "zip": r["address"].get("zip")},
                             "email": r.get("email")})
        assert sorted(rows, key=lambda r: r["id"]) == expected
        field_ids = {f.name: f.field_id for f in catalog.load_table(table).schema().fields}
        assert field_ids["id"] == 1, field_ids
        assert worker.task_states(name) == ["RUNNING"]
    finally:
        worker.stop()
        delete_topics(topic)


def test_schemaless_json_evolves_nested_and_concurrently(tmp_path):
    """Two tasks see the same new fields at once; the table ends with one column each."""
    topic, name, table = unique("evolve"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path).start()
    try:
        produce(topic, [{"id": 0, "a": "x", "nested": {"p": 1}}], partition=0)
        config = connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.evolve-schema-enabled": "true", "tasks.max": "2"})
        worker.create_connector(name, config)
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 1, 60, "the first row")
        for p in (0, 1):
            produce(topic, [{"id": 1 + p * 10 + i, "a": "y", "b": True, "nested": {"p": 2, "q": "new"},
                             "items": [{"k": i}]} for i in range(5)], partition=p)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == 11 and r, 60, "11 rows")
        assert columns(catalog, table) == [
            ("id", "long", False), ("a", "string", False),
            ("nested", "struct<p: optional long, q: optional string>", False),
            ("b", "boolean", False), ("items", "list<optional struct<k: optional long>>", False),
        ]
        by_id = {r["id"]: r for r in rows}
        assert by_id[0] == {"id": 0, "a": "x", "nested": {"p": 1, "q": None}, "b": None, "items": None}
        assert by_id[12] == {"id": 12, "a": "y", "nested": {"p": 2, "q": "new"}, "b": True, "items": [{"k": 1}]}
    finally:
        worker.stop()
        delete_topics(topic)


def test_json_schema_versions_evolve_the_table(tmp_path):
    from registry import json_frame

    topic, name, table = unique("evolve"), unique("sink"), f"db_{unique('ns')}.people"
    create_topic(topic)
    v1 = {"type": "object", "title": "shop.Person", "properties": {
        "id": {"type": "integer"},
        "qty": {"type": "integer", "connect.type": "int32"},
    }, "required": ["id", "qty"]}
    v2 = {"type": "object", "title": "shop.Person", "properties": {
        "id": {"type": "integer"},
        "qty": {"type": "integer"},  # int32 -> int64
        "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }, "required": ["id", "qty"]}
    subject = f"{topic}-value"
    id1 = register(subject, v1, schema_type="JSON")
    id2 = register(subject, v2, schema_type="JSON")
    worker = Worker(tmp_path, {
        "value.converter": "io.confluent.connect.json.JsonSchemaConverter",
        "value.converter.schema.registry.url": REGISTRY_URL,
    }).start()
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        produce(topic, [json_frame(id1, {"id": i, "qty": i}) for i in range(3)])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.evolve-schema-enabled": "true"}))
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 3, 60, "3 rows")
        produce(topic, [json_frame(id2, {"id": 3, "qty": 5_000_000_000, "address": {"city": "Oslo"}}),
                        json_frame(id1, {"id": 4, "qty": 4})])
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == 5 and r, 60, "5 rows")
        assert columns(catalog, table) == [
            ("id", "long", True), ("qty", "long", True), ("address", "struct<city: required string>", False),
        ]
        assert sorted(rows, key=lambda r: r["id"]) == [
            {"id": 0, "qty": 0, "address": None}, {"id": 1, "qty": 1, "address": None},
            {"id": 2, "qty": 2, "address": None}, {"id": 3, "qty": 5_000_000_000, "address": {"city": "Oslo"}},
            {"id": 4, "qty": 4, "address": None},
        ]
    finally:
        worker.stop()
        delete_topics(topic)
