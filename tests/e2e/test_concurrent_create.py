"""Several tasks auto-create one table in a namespace that does not exist yet, at the same
moment, on every catalog. The Java sink loses this race on the SQL catalog (a task dies on the
namespace's primary key and its partition's records never arrive); Floe creates the namespace
and the table once, no task fails, and no row is lost (docs/control-topic.md, "Auto-create")."""

import time

import pytest

from harness import (
    Worker, connector_config, create_topic, delete_topics, postgres_catalog_config, produce, pyiceberg_catalog,
    read_rows, rest_catalog_config, sqlite_catalog_config, unique, wait_for,
)
from test_exactly_once import assert_exactly

CATALOGS = {
    "sqlite": sqlite_catalog_config,
    "postgres": postgres_catalog_config,
    "rest": lambda tmp: rest_catalog_config(),
}


@pytest.mark.parametrize("catalog_kind", list(CATALOGS))
def test_tasks_auto_creating_one_table_in_a_new_namespace_at_once(tmp_path, catalog_kind):
    topic, name = unique("create"), unique("sink")
    namespace = f"db_{unique('ns')}"
    table = f"{namespace}.events"
    tasks, per_partition = 4, 500
    create_topic(topic, partitions=tasks)
    # Every partition holds records before the connector exists: all tasks see their first
    # record, and try to create the table, within moments of each other.
    for p in range(tasks):
        ids = range(p * per_partition, (p + 1) * per_partition)
        produce(topic, [{"id": i, "payload": f"value-{i}"} for i in ids], keys=[str(i) for i in ids], partition=p)
    total = tasks * per_partition
    catalog_cfg = CATALOGS[catalog_kind](tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": str(tasks)})
    worker = Worker(tmp_path)
    states_seen: set[str] = set()

    def all_rows():
        states_seen.update(worker.task_states(name))
        return (r := read_rows(catalog, table)) and len(r) >= total and r

    try:
        worker.start()
        worker.create_connector(name, config)
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(all_rows, 120, f"{total} rows in {table}")
        time.sleep(2)  # one more commit cycle: nothing may arrive twice
        assert_exactly(read_rows(catalog, table), total)
        assert "FAILED" not in states_seen and worker.task_states(name) == ["RUNNING"] * tasks, states_seen
        assert [n for n in catalog.list_namespaces() if n == (namespace,)] == [(namespace,)]
        assert [t for t in catalog.list_tables(namespace)] == [(namespace, "events")]
        log = worker.log()
        assert "task failed" not in log
        print(f"{catalog_kind}: {worker.log().count('table created')} task(s) created {table}; "
              f"{tasks} tasks, {total} rows, no task failed")
    finally:
        worker.stop()
        delete_topics(topic)
