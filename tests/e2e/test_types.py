"""The Java sink's type mapping, end to end: one table holding every Iceberg type, fed schemaless
JSON whose values must be converted the Java way (strings parsed into numbers, timestamps, dates,
times, uuids; base64 into binary; decimals rounded HALF_UP to the column scale), checked column
by column with PyIceberg; and partitioned auto-created tables."""

import datetime
import decimal
import uuid

from harness import (
    Worker, columns, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog, read_rows,
    sqlite_catalog_config, unique, wait_for,
)


def test_every_type_from_schemaless_json(worker, tmp_path):
    from pyiceberg.schema import Schema
    from pyiceberg.types import (
        BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IntegerType, ListType, LongType,
        MapType, NestedField, StringType, StructType, TimestampType, TimestamptzType, TimeType, UUIDType,
    )

    topic, name, ns = unique("types"), unique("sink"), f"db_{unique('ns')}"
    table = f"{ns}.all_types"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    catalog = pyiceberg_catalog(catalog_cfg)
    catalog.create_namespace(ns)
    fields = [
        ("id", LongType()), ("b", BooleanType()), ("i", IntegerType()), ("l", LongType()), ("f", FloatType()),
        ("d", DoubleType()), ("dec", DecimalType(10, 2)), ("s", StringType()), ("u", UUIDType()),
        ("bin", BinaryType()), ("dt", DateType()), ("tm", TimeType()), ("tstz", TimestamptzType()),
        ("ts", TimestampType()),
    ]
    nid = len(fields)
    schema_fields = [NestedField(n + 1, name_, t, required=False) for n, (name_, t) in enumerate(fields)]
    schema_fields += [
        NestedField(nid + 1, "lst", ListType(nid + 4, LongType(), element_required=False), required=False),
        NestedField(nid + 2, "mp", MapType(nid + 5, StringType(), nid + 6, LongType(), value_required=False),
                    required=False),
        NestedField(nid + 3, "st", StructType(NestedField(nid + 7, "x", LongType(), required=False)), required=False),
    ]
    catalog.create_table(table, Schema(*schema_fields))
    records = [
        {"id": 1, "b": "true", "i": 7, "l": "12345678901", "f": 1.5, "d": "2.25", "dec": 3.14159, "s": 42,
         "u": "f79c3e09-677c-4d6b-8c5a-1234567890ab", "bin": "AQID", "dt": "2024-02-29", "tm": "10:15:30",
         "tstz": "2024-01-02 03:04:05.123+01:00", "ts": "2024-01-02T03:04:05", "lst": [1, 2], "mp": {"k": 1},
         "st": {"x": 5}},
        {"id": 2, "b": False, "i": "8", "l": 5, "f": "0.25", "d": 4, "dec": "2.005", "s": True,
         "u": "00000000-0000-0000-0000-000000000001", "bin": "", "dt": 19000, "tm": 3_600_000,
         "tstz": 1_700_000_000_000, "ts": "2024-01-02T03:04:05+05:00", "lst": [], "mp": {}, "st": {}},
    ]
    try:
        produce(topic, records)
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.auto-create-enabled": "false"}))
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == 2 and r, 60, "2 rows")
        by_id = {r["id"]: r for r in rows}
        utc = datetime.timezone.utc
        assert by_id[1] == {
            "id": 1, "b": True, "i": 7, "l": 12345678901, "f": 1.5, "d": 2.25, "dec": decimal.Decimal("3.14"),
            "s": "42", "u": uuid.UUID("f79c3e09-677c-4d6b-8c5a-1234567890ab"), "bin": b"\x01\x02\x03",
            "dt": datetime.date(2024, 2, 29), "tm": datetime.time(10, 15, 30),
            "tstz": datetime.datetime(2024, 1, 2, 2, 4, 5, 123000, tzinfo=utc),
            "ts": datetime.datetime(2024, 1, 2, 3, 4, 5), "lst": [1, 2], "mp": [("k", 1)], "st": {"x": 5},
        }
        assert by_id[2] == {
            "id": 2, "b": False, "i": 8, "l": 5, "f": 0.25, "d": 4.0, "dec": decimal.Decimal("2.01"),
            "s": "true", "u": uuid.UUID("00000000-0000-0000-0000-000000000001"), "bin": b"",
            "dt": datetime.date(1970, 1, 1) + datetime.timedelta(days=19000), "tm": datetime.time(1, 0),
            "tstz": datetime.datetime.fromtimestamp(1_700_000_000, tz=utc),
            # an offset on a zone-less column keeps the local wall time (Java)
            "ts": datetime.datetime(2024, 1, 2, 3, 4, 5), "lst": [], "mp": [], "st": {"x": None},
        }
    finally:
        delete_topics(topic)


def test_partitioned_auto_created_table(worker, tmp_path):
    topic, name, table = unique("parts"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    records = [{"id": i, "kind": "ab"[i % 2], "name": f"name{i}", "ts": 1_700_000_000_000 + i * 86_400_000}
               for i in range(8)]
    try:
        produce(topic, records)
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.default-partition-by": "kind, bucket(id, 4), truncate(name, 4)",
            "iceberg.tables.default-id-columns": "id"}))
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == 8 and r, 60, "8 rows")
        assert sorted(rows, key=lambda r: r["id"]) == records
        t = catalog.load_table(table)
        schema = t.schema()
        spec = [(f.name, str(f.transform), schema.find_field(f.source_id).name) for f in t.spec().fields]
        assert spec == [("kind", "identity", "kind"), ("id_bucket", "bucket[4]", "id"),
                        ("name_trunc", "truncate[4]", "name")]
        assert [schema.find_field(i).name for i in schema.identifier_field_ids] == ["id"]
        assert columns(catalog, table)[0] == ("id", "long", True), "identifier columns are required"
        partitions = {tuple(sorted(p.items())) for p in t.inspect.files().to_pydict()["partition"]}
        assert len(partitions) > 2, partitions
    finally:
        delete_topics(topic)


def test_invalid_partition_spec_fails_the_task(worker, tmp_path):
    topic, name, table = unique("parts"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    try:
        produce(topic, [{"id": 1}])
        worker.create_connector(name, connector_config(topic, table, sqlite_catalog_config(tmp_path), **{
            "iceberg.tables.default-partition-by": "bucket(nope, 4)"}))
        assert "nope" in worker.failed_task_trace(name)
    finally:
        delete_topics(topic)


def test_name_mapping_maps_record_fields_to_columns(worker, tmp_path):
    """A table with schema.name-mapping.default: record fields are found by the mapped names."""
    import json

    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType, StructType

    topic, name, ns = unique("mapping"), unique("sink"), f"db_{unique('ns')}"
    table = f"{ns}.mapped"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    catalog = pyiceberg_catalog(catalog_cfg)
    catalog.create_namespace(ns)
    mapping = [{"field-id": 1, "names": ["id", "record_id"]},
               {"field-id": 2, "names": ["info"], "fields": [{"field-id": 3, "names": ["label", "Label"]}]}]
    catalog.create_table(table, Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "details", StructType(NestedField(3, "title", StringType(), required=False)), required=False),
    ), properties={"schema.name-mapping.default": json.dumps(mapping)})
    try:
        produce(topic, [{"record_id": 1, "info": {"Label": "a"}}, {"id": 2, "details": {"title": "ignored"}}])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.auto-create-enabled": "false"}))
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == 2 and r, 60, "2 rows")
        assert sorted(rows, key=lambda r: r["id"]) == [
            {"id": 1, "details": {"title": "a"}},
            # "details" is not a mapped name of field 2: the record's value is not read
            {"id": 2, "details": None},
        ]
    finally:
        delete_topics(topic)
