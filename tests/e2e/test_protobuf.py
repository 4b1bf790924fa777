"""Confluent-framed Protobuf with .proto schemas (and an imported one, as a schema reference) from
the real registry (Apicurio) into Iceberg, and evolution to a second version."""

from harness import (
    Worker, columns, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog, read_rows,
    sqlite_catalog_config, unique, wait_for,
)
from registry import REGISTRY_URL, pb_bytes, pb_double, pb_int, protobuf_frame, register

MONEY = 'syntax = "proto3";\npackage common;\nmessage Money { int64 cents = 1; string currency = 2; }\n'
ORDER_V1 = '''syntax = "proto3";
package shop;
import "common/money.proto";
import "google/protobuf/timestamp.proto";
message Header { string source = 1; }
message Order {
  int64 id = 1;
  int32 qty = 2;
  repeated string tags = 3;
  common.Money price = 4;
  google.protobuf.Timestamp at = 5;
  Status status = 6;
  double score = 7;
  enum Status { NEW = 0; PAID = 1; }
}
'''
# v2: a new field and a new field inside the referenced message's sibling
ORDER_V2 = ORDER_V1.replace("  double score = 7;\n", "  double score = 7;\n  string channel = 8;\n")


def order(i, v2=False):
    price = pb_int(1, i * 100) + pb_bytes(2, "EUR")
    at = pb_int(1, 1_700_000_000 + i) + pb_int(2, 5_000_000)
    body = (pb_int(1, i) + pb_int(2, i * 2) + pb_bytes(3, f"t{i}") + pb_bytes(4, price) + pb_bytes(5, at)
            + pb_int(6, i % 2) + pb_double(7, i / 4))
    if v2:
        body += pb_bytes(8, f"web{i}")
    return body


def test_protobuf_records_become_typed_rows_and_evolve(tmp_path):
    import datetime

    topic, name, table = unique("proto"), unique("sink"), f"db_{unique('ns')}.orders"
    create_topic(topic)
    money_subject = f"{topic}-money"
    register(money_subject, MONEY, schema_type="PROTOBUF")
    ref = [{"name": "common/money.proto", "subject": money_subject, "version": 1}]
    v1 = register(f"{topic}-value", ORDER_V1, schema_type="PROTOBUF", references=ref)
    # Order is the second message of the file: message indexes [1].
    produce(topic, [protobuf_frame(v1, order(i), indexes=(1,)) for i in range(4)])
    worker = Worker(tmp_path, {
        "value.converter": "io.confluent.connect.protobuf.ProtobufConverter",
        "value.converter.schema.registry.url": REGISTRY_URL,
    }).start()
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "iceberg.tables.evolve-schema-enabled": "true"}))
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 4, 60, "4 rows")
        v2 = register(f"{topic}-value", ORDER_V2, schema_type="PROTOBUF", references=ref)
        produce(topic, [protobuf_frame(v2, order(i, v2=True), indexes=(1,)) for i in range(4, 6)]
                + [protobuf_frame(v1, order(6), indexes=(1,))])
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) == 7 and r, 60, "7 rows")
        assert columns(catalog, table) == [
            ("id", "long", False), ("qty", "int", False), ("tags", "list<optional string>", False),
            ("price", "struct<cents: optional long, currency: optional string>", False),
            ("at", "timestamptz", False), ("status", "string", False), ("score", "double", False),
            ("channel", "string", False),
        ]
        utc = datetime.timezone.utc
        assert sorted(rows, key=lambda r: r["id"]) == [
            {"id": i, "qty": i * 2, "tags": [f"t{i}"], "price": {"cents": i * 100, "currency": "EUR"},
             "at": datetime.datetime.fromtimestamp(1_700_000_000 + i + 0.005, tz=utc),
             "status": ["NEW", "PAID"][i % 2], "score": i / 4, "channel": f"web{i}" if i in (4, 5) else None}
            for i in range(7)
        ]
    finally:
        worker.stop()
        delete_topics(topic)
