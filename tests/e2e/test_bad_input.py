"""A malformed record fails the task with a trace naming it, and nothing is committed past it."""

from harness import (
    committed_offsets, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog,
    read_rows, sqlite_catalog_config, unique, wait_for,
)


def test_malformed_json_fails_the_task_and_commits_nothing_past_it(worker, tmp_path):
    topic, name, table = unique("bad"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        produce(topic, [{"id": i} for i in range(3)])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg))
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 3, 60, "the 3 good rows")
        wait_for(lambda: committed_offsets(f"connect-{name}", topic) == {0: 3}, 30, "offset 3 committed")

        produce(topic, ['{"id": 3', {"id": 4}, {"id": 5}])
        trace = worker.failed_task_trace(name)
        assert f"topic {topic}, partition 0, offset 3" in trace
        assert "Converting byte[] to Kafka Connect data failed due to serialization error" in trace
        assert trace.startswith("org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler")
        assert worker.get(f"/connectors/{name}/status").json()["connector"]["state"] == "RUNNING"

        assert sorted(r["id"] for r in read_rows(catalog, table)) == [0, 1, 2]
        assert committed_offsets(f"connect-{name}", topic) == {0: 3}
    finally:
        delete_topics(topic)


def test_value_that_does_not_fit_its_column_names_record_and_column(worker, tmp_path):
    topic, name, table = unique("mismatch"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        produce(topic, [{"id": 1}, {"id": "abc"}])
        worker.create_connector(name, connector_config(topic, table, catalog_cfg))
        trace = worker.failed_task_trace(name)
        assert f"topic: {topic}, partition: 0, offset: 1" in trace
        assert "column id: cannot convert string value 'abc' to long" in trace
        assert read_rows(pyiceberg_catalog(catalog_cfg), table) == []
        assert committed_offsets(f"connect-{name}", topic)[0] < 0
    finally:
        delete_topics(topic)


def test_tolerated_errors_go_to_the_dead_letter_queue_with_context(worker, tmp_path):
    from confluent_kafka import Consumer

    from harness import BOOTSTRAP

    topic, name, table, dlq = unique("dlq"), unique("sink"), f"db_{unique('ns')}.events", unique("dlq_topic")
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        produce(topic, [{"id": 1}, '{"id": ', {"id": 3}], keys=["k1", "k2", "k3"])
        config = connector_config(topic, table, catalog_cfg, **{
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true",
        })
        worker.create_connector(name, config)
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: sorted(r["id"] for r in read_rows(catalog, table)) == [1, 3], 60, "the two good rows")
        wait_for(lambda: committed_offsets(f"connect-{name}", topic) == {0: 3}, 30, "offsets past the bad record")
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("dlqreader"), "auto.offset.reset": "earliest"})
        c.subscribe([dlq])
        msg = wait_for(lambda: (m := c.poll(1.0)) is not None and m.error() is None and m, 30, "the DLQ record")
        c.close()
        assert msg.key() == b"k2"
        assert msg.value() == b'{"id": '
        headers = {k: v.decode() for k, v in msg.headers()}
        assert headers["__connect.errors.topic"] == topic
        assert headers["__connect.errors.partition"] == "0"
        assert headers["__connect.errors.offset"] == "1"
        assert headers["__connect.errors.connector.name"] == name
        assert headers["__connect.errors.task.id"] == "0"
        assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
        assert headers["__connect.errors.class.name"] == "org.apache.kafka.connect.json.JsonConverter"
        assert headers["__connect.errors.exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
        assert headers["__connect.errors.exception.message"].startswith("Converting byte[] to Kafka Connect data failed")
        assert worker.task_states(name) == ["RUNNING"]
    finally:
        delete_topics(topic, dlq)


def dlq_messages(dlq, count):
    from confluent_kafka import Consumer

    from harness import BOOTSTRAP

    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("dlqreader"), "auto.offset.reset": "earliest"})
    c.subscribe([dlq])
    got = []
    try:
        def more():
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                got.append(m)
            return len(got) >= count
        wait_for(more, 60, f"{count} DLQ records")
    finally:
        c.close()
    return got


def test_records_the_sink_cannot_write_go_to_the_dead_letter_queue(worker, tmp_path):
    """errors.tolerance=all covers what fails inside the sink too (stage TASK_PUT): a value that
    does not fit its column, a record for a table that does not exist (auto-create off), a
    record whose route field is missing, a route field naming a table with a path separator or a
    control character (its location would leave the warehouse). The good records are written;
    nothing is dropped."""
    topic, name, dlq = unique("dlq"), unique("sink"), unique("dlq_topic")
    ns = f"db_{unique('ns')}"
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    catalog = pyiceberg_catalog(catalog_cfg)
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    catalog.create_namespace(ns)
    catalog.create_table(f"{ns}.orders", Schema(NestedField(1, "id", LongType(), required=False),
                                                NestedField(2, "kind", StringType(), required=False)))
    try:
        orders, refunds = f"{ns}.orders", f"{ns}.refunds"
        produce(topic, [{"id": 1, "kind": orders}, {"id": "abc", "kind": orders}, {"id": 3, "kind": refunds},
                        {"id": 4}, {"id": 5, "kind": orders}, {"id": 6, "kind": f"{ns}.x/../../../escape"},
                        {"id": 7, "kind": f"{ns}.bell\u0007"}],
                keys=["k1", "k2", "k3", "k4", "k5", "k6", "k7"])
        config = connector_config(topic, "", catalog_cfg, **{
            "iceberg.tables.dynamic-enabled": "true", "iceberg.tables.route-field": "kind",
            "iceberg.tables.auto-create-enabled": "false",
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true",
        })
        del config["iceberg.tables"]
        worker.create_connector(name, config)
        msgs = dlq_messages(dlq, 5)
        by_key = {m.key(): {k: v.decode() for k, v in m.headers()} for m in msgs}
        assert set(by_key) == {b"k2", b"k3", b"k4", b"k6", b"k7"}
        for headers in by_key.values():
            assert headers["__connect.errors.stage"] == "TASK_PUT"
            assert headers["__connect.errors.class.name"] == "org.apache.iceberg.connect.IcebergSinkTask"
        assert "cannot convert string value 'abc' to long" in by_key[b"k2"]["__connect.errors.exception.message"]
        assert "does not exist" in by_key[b"k3"]["__connect.errors.exception.message"]
        assert "Route field kind is missing" in by_key[b"k4"]["__connect.errors.exception.message"]
        assert "holds a path separator" in by_key[b"k6"]["__connect.errors.exception.message"]
        assert "holds a control character" in by_key[b"k7"]["__connect.errors.exception.message"]
        rows = wait_for(lambda: (r := read_rows(catalog, orders)) and len(r) == 2 and r, 60, "the good rows")
        assert sorted(r["id"] for r in rows) == [1, 5]
        wait_for(lambda: committed_offsets(f"connect-{name}", topic) == {0: 7}, 30, "offsets past every record")
        assert worker.task_states(name) == ["RUNNING"]
    finally:
        delete_topics(topic, dlq)
