"""A worker restarted mid-stream loses no row and duplicates none."""

import threading

from harness import (
    Worker, committed_offsets, connector_config, create_topic, delete_topics, produce, pyiceberg_catalog,
    read_rows, sqlite_catalog_config, unique, wait_for,
)


def test_restart_mid_stream_neither_loses_nor_duplicates(tmp_path):
    topic, name, table = unique("restart"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=4)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": "2"})
    connector_file = tmp_path / "connector.json"
    import json
    connector_file.write_text(json.dumps({"name": name, "config": config}))
    total = 3000
    worker = Worker(tmp_path)
    stop_producing = threading.Event()

    def producer():
        for start in range(0, total, 100):
            produce(topic, [{"id": i, "v": f"value-{i}"} for i in range(start, start + 100)], keys=[str(i) for i in range(start, start + 100)])
            if stop_producing.wait(0.05):
                return

    try:
        worker.start(connector_file)
        worker.wait_running(name, tasks=2)
        catalog = pyiceberg_catalog(catalog_cfg)
        thread = threading.Thread(target=producer)
        thread.start()
        wait_for(lambda: len(read_rows(catalog, table)) > 0, 60, "a first commit")
        worker.stop()  # graceful: the worker commits what it holds before it exits
        first_run_rows = len(read_rows(catalog, table))
        worker.start(connector_file)
        thread.join(120)
        assert not thread.is_alive()
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= total and r, 90, f"{total} rows")
        ids = sorted(r["id"] for r in rows)
        assert ids == list(range(total)), f"missing {set(range(total)) - set(ids)}; duplicates {len(ids) - len(set(ids))}"
        assert 0 < first_run_rows
        wait_for(lambda: sum(committed_offsets(f"connect-{name}", topic, 4).values()) == total, 30, "offsets committed")
    finally:
        stop_producing.set()
        worker.stop()
        print(worker.log()[-10000:])
        delete_topics(topic)
