"""Target states, restarts, offsets, topics and plugin endpoints of the REST API."""

from harness import (
    CONNECTOR_CLASS, committed_offsets, connector_config, create_topic, delete_topics, produce,
    pyiceberg_catalog, read_rows, sqlite_catalog_config, unique, wait_for,
)


def status(worker, name):
    return worker.get(f"/connectors/{name}/status").json()


def test_pause_resume_stop_and_restart(worker, tmp_path):
    topic, name, table = unique("states"), unique("conn"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{"tasks.max": "2"}))
        worker.wait_running(name, tasks=2)

        assert worker.put(f"/connectors/{name}/pause").status_code == 202
        wait_for(lambda: status(worker, name)["tasks"][0]["state"] == "PAUSED" and status(worker, name)["tasks"][1]["state"] == "PAUSED", 30, "tasks PAUSED")
        assert status(worker, name)["connector"]["state"] == "PAUSED"
        # Five records to each partition, so both have an offset to commit (records without a
        # key may all land on one partition).
        produce(topic, [{"id": i} for i in range(5)], partition=0)
        produce(topic, [{"id": i} for i in range(5, 10)], partition=1)
        assert worker.put(f"/connectors/{name}/resume").status_code == 202
        worker.wait_running(name, tasks=2)
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 10, 60, "10 rows after resume")

        r = worker.get(f"/connectors/{name}/tasks/1/status")
        version = worker.get("/connector-plugins").json()[0]["version"]
        assert r.json() == {"id": 1, "state": "RUNNING", "worker_id": f"127.0.0.1:{worker.port}", "version": version}
        r = worker.get(f"/connectors/{name}/tasks/7/status")
        assert r.status_code == 404
        assert r.json()["message"] == f"No status found for task {name}-7"
        tasks_config = worker.get(f"/connectors/{name}/tasks-config").json()
        assert sorted(tasks_config) == [f"{name}-0", f"{name}-1"]

        assert worker.post(f"/connectors/{name}/tasks/0/restart").status_code == 204
        assert worker.post(f"/connectors/{name}/tasks/9/restart").status_code == 404
        assert worker.post(f"/connectors/{name}/restart").status_code == 204
        r = worker.post(f"/connectors/{name}/restart?includeTasks=true&onlyFailed=false")
        assert r.status_code == 202
        body = r.json()
        assert body["connector"]["state"] == "RESTARTING"
        assert [t["state"] for t in body["tasks"]] == ["RESTARTING", "RESTARTING"]
        # The restart above completes asynchronously; the next answer describes a settled connector.
        worker.wait_running(name, tasks=2)
        r = worker.post(f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")
        assert r.status_code == 202
        assert r.json()["connector"]["state"] == "RUNNING"
        worker.wait_running(name, tasks=2)

        assert worker.get(f"/connectors/{name}/topics").json() == {name: {"topics": [topic]}}
        assert worker.put(f"/connectors/{name}/topics/reset").status_code == 202
        assert worker.get(f"/connectors/{name}/topics").json() == {name: {"topics": []}}

        # Offsets: readable any time, changeable only when STOPPED.
        wait_for(lambda: sum(committed_offsets(f"connect-{name}", topic, 2).values()) == 10, 90, "offsets committed")
        offsets = worker.get(f"/connectors/{name}/offsets").json()["offsets"]
        assert sorted((o["partition"]["kafka_partition"], o["offset"]["kafka_offset"]) for o in offsets) == sorted(committed_offsets(f"connect-{name}", topic, 2).items())
        body = {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 0}}]}
        r = worker.patch(f"/connectors/{name}/offsets", body)
        assert r.status_code == 400
        assert r.json()["message"].startswith("Connectors must be in the STOPPED state before their offsets can be modified.")

        assert worker.put(f"/connectors/{name}/stop").status_code == 204
        s = status(worker, name)
        assert s["connector"]["state"] == "STOPPED"
        assert s["tasks"] == []
        assert worker.get(f"/connectors/{name}").json()["tasks"] == []
        r = worker.patch(f"/connectors/{name}/offsets", body)
        assert r.status_code == 200, r.text
        assert r.json() == {"message": "The offsets for this connector have been altered successfully"}
        assert committed_offsets(f"connect-{name}", topic, 2)[0] == 0
        # "offset": null deletes one partition's committed offset.
        reset_one = {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 1}, "offset": None}]}
        r = worker.patch(f"/connectors/{name}/offsets", reset_one)
        assert r.status_code == 200, r.text
        assert r.json() == {"message": "The offsets for this connector have been altered successfully"}
        assert committed_offsets(f"connect-{name}", topic, 2) == {0: 0, 1: -1001}
        assert [o["partition"]["kafka_partition"] for o in worker.get(f"/connectors/{name}/offsets").json()["offsets"]] == [0]
        r = worker.delete(f"/connectors/{name}/offsets")
        assert r.status_code == 200, r.text
        assert r.json() == {"message": "The offsets for this connector have been reset successfully"}
        assert worker.get(f"/connectors/{name}/offsets").json() == {"offsets": []}

        assert worker.put(f"/connectors/{name}/resume").status_code == 202
        worker.wait_running(name, tasks=2)
        assert worker.delete(f"/connectors/{name}").status_code == 204
    finally:
        delete_topics(topic)


def test_patch_config_and_initial_state(worker, tmp_path):
    topic, name = unique("patch"), unique("conn")
    create_topic(topic)
    try:
        config = connector_config(topic, f"db_{unique('ns')}.t", sqlite_catalog_config(tmp_path))
        r = worker.post("/connectors", {"name": name, "config": config, "initial_state": "STOPPED"})
        assert r.status_code == 201, r.text
        assert status(worker, name)["connector"]["state"] == "STOPPED"
        r = worker.patch(f"/connectors/{name}/config", {"tasks.max": "3", "iceberg.control.commit.interval-ms": None})
        assert r.status_code == 200, r.text
        cfg = worker.get(f"/connectors/{name}/config").json()
        assert cfg["tasks.max"] == "3"
        assert "iceberg.control.commit.interval-ms" not in cfg
        assert worker.patch("/connectors/missing/config", {"a": "b"}).status_code == 404
        assert worker.post("/connectors", {"name": unique("x"), "config": config, "initial_state": "SLEEPING"}).status_code == 400
        assert worker.delete(f"/connectors/{name}").status_code == 204
    finally:
        delete_topics(topic)


def test_plugin_endpoints(worker):
    everything = worker.get("/connector-plugins?connectorsOnly=false").json()
    types = {p["class"]: p["type"] for p in everything}
    assert types[CONNECTOR_CLASS] == "sink"
    assert types["org.apache.kafka.connect.json.JsonConverter"] == "converter"
    keys = worker.get("/connector-plugins/IcebergSinkConnector/config").json()
    names = [k["name"] for k in keys]
    assert names[:4] == ["name", "connector.class", "connector.plugin.version", "tasks.max"]
    assert "iceberg.tables" in names
    r = worker.get("/connector-plugins/Nope/config")
    assert r.status_code == 404
    assert r.json() == {"error_code": 404, "message": "Unknown plugin Nope."}


def test_admin_loggers(worker):
    assert worker.get("/admin/loggers").json() == {"root": {"level": "INFO", "last_modified": None}}
    r = worker.put("/admin/loggers/floe_iceberg", {"level": "DEBUG"})
    assert r.status_code == 200
    assert r.json() == ["floe_iceberg"]
    got = worker.get("/admin/loggers/floe_iceberg").json()
    assert got["level"] == "DEBUG" and isinstance(got["last_modified"], int)
    assert worker.put("/admin/loggers/floe_iceberg?scope=cluster", {"level": "INFO"}).status_code == 204
    r = worker.put("/admin/loggers/x", {"level": "LOUD"})
    assert r.status_code == 404
    r = worker.put("/admin/loggers/x", {})
    assert r.status_code == 400
    assert r.json()["message"] == "Desired 'level' parameter was not specified in request."
    assert worker.get("/admin/loggers/unknown").status_code == 404


def test_config_providers_resolve_at_task_start(tmp_path):
    from harness import Worker

    secrets = tmp_path / "secrets.properties"
    catalog_cfg = sqlite_catalog_config(tmp_path)
    secrets.write_text(f"catalog.uri={catalog_cfg['iceberg.catalog.uri']}\n")
    worker = Worker(tmp_path, {
        "config.providers": "file",
        "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
    }).start()
    topic, name, table = unique("cp"), unique("conn"), f"db_{unique('ns')}.events"
    create_topic(topic)
    try:
        placeholder = f"${{file:{secrets}:catalog.uri}}"
        config = connector_config(topic, table, {**catalog_cfg, "iceberg.catalog.uri": placeholder})
        worker.create_connector(name, config)
        assert worker.get(f"/connectors/{name}/config").json()["iceberg.catalog.uri"] == placeholder
        produce(topic, [{"id": 1}])
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) == 1, 60, "the row")
        assert str(catalog_cfg["iceberg.catalog.uri"]) not in worker.log()
    finally:
        worker.stop()
        delete_topics(topic)
