"""Floe takes over a connector the Java Iceberg sink was running: same connector name, same
control topic, same consumer groups, same table. The table ends with every produced record once.

The table exists before the Java sink starts: two Java tasks auto-creating it in a new
namespace race on the SQL catalog, and the loser dies and leaves its partition's records
unwritten (test_concurrent_create.py shows Floe in that situation)."""

import signal

from harness import (
    BOOTSTRAP, JavaWorker, Worker, admin, connector_config, create_topic, delete_topics, java_data_written,
    produce, pyiceberg_catalog, read_rows, snapshots, sqlite_catalog_config, unique, wait_for,
)


def produce_ids(topic, ids):
    produce(topic, [{"id": i, "payload": f"value-{i}"} for i in ids], keys=[str(i) for i in ids])


def wait_group_stable(group, members, partitions):
    """Waits until the consumer group is stable with `members` members holding `partitions`
    partitions between them."""
    from confluent_kafka import ConsumerGroupState

    client = admin()  # kept alive until its futures resolve

    def stable():
        desc = client.describe_consumer_groups([group])[group].result(timeout=10)
        assigned = sum(len(m.assignment.topic_partitions) for m in desc.members)
        return desc.state == ConsumerGroupState.STABLE and len(desc.members) == members and assigned == partitions
    wait_for(stable, 60, f"group {group} stable with {members} members and {partitions} partitions")


def create_table_as_the_java_sink_would(catalog, table):
    """The table the Java sink infers from `{"id": <int>, "payload": <str>}` (long, string)."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    catalog.create_namespace(table.split(".")[0])
    catalog.create_table(table, Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "payload", StringType(), required=False),
    ))


def test_floe_continues_a_table_written_by_the_java_sink(tmp_path):
    topic, control, name = unique("takeover"), unique("control"), unique("sink")
    table = f"db_{unique('ns')}.events"
    create_topic(topic, partitions=3)
    # The Java sink does not create its control topic.
    create_topic(control, partitions=1)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "2", "iceberg.control.topic": control,
        "iceberg.control.commit.interval-ms": "1000",
    })
    java = JavaWorker(tmp_path)
    floe = Worker(tmp_path)
    catalog = pyiceberg_catalog(catalog_cfg)
    create_table_as_the_java_sink_would(catalog, table)
    try:
        java.start()
        java.create_connector(name, config)
        java.wait_running(name, tasks=2)
        # The Java sink's coordinator dies if its leader partition is revoked while it commits
        # data files (`shutdownNow` on its commit pool: RejectedExecutionException), and its task
        # fails for good: the first records wait until both Java tasks hold their partitions.
        wait_group_stable(f"connect-{name}", members=2, partitions=3)
        produce_ids(topic, range(0, 3000))
        wait_for(lambda: len(read_rows(catalog, table)) == 3000, 120, "the Java sink to commit 3000 rows")
        java_snapshots = snapshots(catalog, table)
        offsets_key = f"kafka.connect.offsets.{control}.connect-{name}"
        assert offsets_key in java_snapshots[-1].summary.additional_properties, java_snapshots[-1].summary

        # Records in flight when the Java worker stops are re-read by Floe from the group offsets.
        produce_ids(topic, range(3000, 4000))
        java.stop(signal.SIGTERM)

        floe.start()
        floe.create_connector(name, config)
        floe.wait_running(name, tasks=2)
        produce_ids(topic, range(4000, 5000))
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= 5000 and r, 120,
                        "Floe to commit the remaining rows")
        ids = sorted(r["id"] for r in rows)
        assert ids == list(range(5000)), f"{len(ids)} rows, {len(ids) - len(set(ids))} duplicates"

        floe_snapshots = snapshots(catalog, table)[len(java_snapshots):]
        assert floe_snapshots, "Floe committed no snapshot"
        for s in floe_snapshots:
            props = s.summary.additional_properties
            assert offsets_key in props and "kafka.connect.commit-id" in props, props
    finally:
        try:
            java.stop(signal.SIGKILL)
            floe.stop()
        finally:
            print(f"--- java log ---\n{java.log()[-15000:]}\n--- floe log ---\n{floe.log()[-15000:]}")
            delete_topics(topic, control)


def test_a_java_tasks_announcement_and_floes_files_commit_together(tmp_path):
    """A takeover's first cycle can hold both a Java task's uncommitted `DataWritten` (its table
    reference has no table UUID before 1.11) and Floe's tasks' (which name the UUID). They are
    one table: one snapshot commits both, and no row is lost."""
    from confluent_kafka import Producer

    topic, control, name = unique("mixed"), unique("control"), unique("sink")
    table = f"db_{unique('ns')}.events"
    create_topic(topic)
    create_topic(control)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    catalog = pyiceberg_catalog(catalog_cfg)
    create_table_as_the_java_sink_would(catalog, table)
    # Left on the control topic by a Java worker stopped before its coordinator committed; the
    # coordinator reads the topic from the beginning, so it is in Floe's first cycle.
    record = java_data_written(catalog_cfg, table, f"connect-{name}", range(1000, 1100), tmp_path / "java.bin")
    p = Producer({"bootstrap.servers": BOOTSTRAP})
    p.produce(control, value=record, key=b"java-task")
    assert p.flush(30) == 0
    produce_ids(topic, range(100))
    config = connector_config(topic, table, catalog_cfg, **{
        "iceberg.control.topic": control, "iceberg.control.commit.interval-ms": "5000"})
    floe = Worker(tmp_path)
    try:
        floe.start()
        floe.create_connector(name, config)
        want = list(range(100)) + list(range(1000, 1100))
        wait_for(lambda: len(read_rows(catalog, table)) >= len(want), 60, "the first commit")
        # One more cycle: nothing is committed twice either.
        first = snapshots(catalog, table)
        produce_ids(topic, range(100, 110))
        want += list(range(100, 110))
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= len(want) and r, 60, "the next commit")
        assert sorted(r["id"] for r in rows) == sorted(want)
        summary = first[0].summary.additional_properties
        assert (len(first), summary["added-data-files"], summary["added-records"]) == (1, "2", "200"), summary
    finally:
        floe.stop()
        delete_topics(topic, control)
