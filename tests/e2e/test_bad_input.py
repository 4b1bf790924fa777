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
