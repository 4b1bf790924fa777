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
        status = wait_for(
            lambda: (s := worker.get(f"/connectors/{name}/status").json())["tasks"][0]["state"] == "FAILED" and s,
            60, "the task to fail")
        trace = status["tasks"][0]["trace"]
        assert f"topic {topic}, partition 0, offset 3" in trace
        assert "Converting byte[] to Kafka Connect data failed due to serialization error" in trace
        assert trace.startswith("org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler")
        assert status["connector"]["state"] == "RUNNING"

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
        status = wait_for(
            lambda: (s := worker.get(f"/connectors/{name}/status").json())["tasks"][0]["state"] == "FAILED" and s,
            60, "the task to fail")
        trace = status["tasks"][0]["trace"]
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
