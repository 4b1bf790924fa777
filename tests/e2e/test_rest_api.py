"""The REST API's first slice: shapes, status codes and the Java worker's messages."""

from harness import CONNECTOR_CLASS, connector_config, create_topic, delete_topics, sqlite_catalog_config, unique


def test_root_health_and_plugins(worker):
    root = worker.get("/")
    assert root.status_code == 200
    body = root.json()
    assert set(body) == {"version", "commit", "kafka_cluster_id"}
    assert isinstance(body["kafka_cluster_id"], (str, type(None)))

    health = worker.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "healthy",
        "message": "Worker has completed startup and is ready to handle requests.",
    }

    plugins = worker.get("/connector-plugins").json()
    classes = [p["class"] for p in plugins]
    assert classes == [CONNECTOR_CLASS, "io.tabular.iceberg.connect.IcebergSinkConnector"]
    assert all(p["type"] == "sink" and isinstance(p["version"], str) for p in plugins)


def test_connector_lifecycle(worker, tmp_path):
    topic, name = unique("rest"), unique("conn")
    create_topic(topic)
    try:
        config = connector_config(topic, f"db.{unique('t')}", sqlite_catalog_config(tmp_path))
        r = worker.post("/connectors", {"name": name, "config": config})
        assert r.status_code == 201, r.text
        assert r.headers["Location"] == f"/connectors/{name}"
        info = r.json()
        assert info["name"] == name
        assert info["type"] == "sink"
        assert info["config"] == {**config, "name": name}
        assert info["tasks"] == [{"connector": name, "task": 0}]

        dup = worker.post("/connectors", {"name": name, "config": config})
        assert dup.status_code == 409
        assert dup.json() == {"error_code": 409, "message": f"Connector {name} already exists"}

        assert worker.get("/connectors").json() == [name]
        worker.wait_running(name)

        expanded = worker.get("/connectors?expand=status&expand=info").json()
        assert set(expanded) == {name}
        assert set(expanded[name]) == {"status", "info"}
        assert expanded[name]["info"] == worker.get(f"/connectors/{name}").json()

        status = worker.get(f"/connectors/{name}/status").json()
        assert status["name"] == name and status["type"] == "sink"
        version = worker.get("/connector-plugins").json()[0]["version"]
        assert status["connector"] == {"state": "RUNNING", "worker_id": f"127.0.0.1:{worker.port}", "version": version}
        assert status["tasks"] == [{"id": 0, "state": "RUNNING", "worker_id": f"127.0.0.1:{worker.port}",
                                    "version": version}]

        assert worker.get(f"/connectors/{name}/config").json() == {**config, "name": name}
        tasks = worker.get(f"/connectors/{name}/tasks").json()
        assert len(tasks) == 1
        assert tasks[0]["id"] == {"connector": name, "task": 0}
        assert tasks[0]["config"]["task.class"] == "org.apache.iceberg.connect.IcebergSinkTask"
        assert tasks[0]["config"]["task.id"] == "0"
        assert tasks[0]["config"]["topics"] == topic

        updated = {**config, "tasks.max": "2"}
        r = worker.put(f"/connectors/{name}/config", updated)
        assert r.status_code == 200, r.text
        assert r.json()["tasks"] == [{"connector": name, "task": 0}, {"connector": name, "task": 1}]

        mismatch = worker.put(f"/connectors/{name}/config", {**config, "name": "other"})
        assert mismatch.status_code == 400
        assert mismatch.json()["message"] == f"Connector name configuration (other) doesn't match connector name in the URL ({name})"

        r = worker.delete(f"/connectors/{name}")
        assert r.status_code == 204
        assert worker.get("/connectors").json() == []
        for path in ["", "/config", "/tasks"]:
            r = worker.get(f"/connectors/{name}{path}")
            assert r.status_code == 404
            assert r.json() == {"error_code": 404, "message": f"Connector {name} not found"}
        r = worker.get(f"/connectors/{name}/status")
        assert r.json() == {"error_code": 404, "message": f"No status found for connector {name}"}
        assert worker.delete(f"/connectors/{name}").status_code == 404

        created = worker.put(f"/connectors/{name}/config", config)
        assert created.status_code == 201
        assert created.headers["Location"] == f"/connectors/{name}"
        assert worker.delete(f"/connectors/{name}").status_code == 204
    finally:
        delete_topics(topic)


def test_invalid_config_lists_every_error(worker):
    r = worker.post("/connectors", {"name": "bad", "config": {"connector.class": CONNECTOR_CLASS, "tasks.max": "zero"}})
    assert r.status_code == 400
    message = r.json()["message"]
    assert r.json()["error_code"] == 400
    lines = message.split("\n")
    assert lines[0] == "Connector configuration is invalid and contains the following 5 error(s):"
    assert lines[1:-1] == [
        "Invalid value zero for configuration tasks.max: Not a number of type INT",
        "Must configure one of topics or topics.regex",
        "Must configure one of topics or topics.regex",
        "Must specify table name(s)",
        "Must specify Iceberg catalog properties (iceberg.catalog.*)",
    ]
    assert lines[-1] == "You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`"
    assert worker.get("/connectors").json() == []

    r = worker.post("/connectors", {"name": "bad", "config": {"connector.class": "com.example.Nope", "topics": "t"}})
    assert r.status_code == 400
    assert r.json()["message"].startswith("Failed to find any class that implements Connector and which name matches com.example.Nope")

    r = worker.post("/connectors", {"name": "bad", "config": {"topics": "t"}})
    assert r.status_code == 400
    assert r.json()["message"] == "Connector config {name=bad, topics=t} contains no connector type"


def test_validate_endpoint(worker, tmp_path):
    good = connector_config("t", "db.t", sqlite_catalog_config(tmp_path), name="v")
    r = worker.put("/connector-plugins/IcebergSinkConnector/config/validate", good)
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == CONNECTOR_CLASS
    assert body["error_count"] == 0
    assert body["groups"] == ["Common", "Transforms", "Predicates", "Error Handling"]
    by_name = {c["definition"]["name"]: c for c in body["configs"]}
    assert by_name["tasks.max"]["definition"]["type"] == "INT"
    assert by_name["tasks.max"]["definition"]["default_value"] == "1"
    assert by_name["topics"]["value"] == {"name": "topics", "value": "t", "recommended_values": [], "errors": [], "visible": True}
    assert "iceberg.tables" in by_name

    bad = {"connector.class": CONNECTOR_CLASS, "name": "v", "topics": "a", "topics.regex": "b.*"}
    body = worker.put("/connector-plugins/IcebergSinkConnector/config/validate", bad).json()
    by_name = {c["definition"]["name"]: c for c in body["configs"]}
    both = "topics and topics.regex are mutually exclusive options, but both are set."
    assert by_name["topics"]["value"]["errors"] == [both]
    assert by_name["topics.regex"]["value"]["errors"] == [both]
    assert body["error_count"] == 4

    r = worker.put("/connector-plugins/SomethingElse/config/validate", good)
    assert r.status_code == 400
    assert r.json()["message"] == f"Included connector type {CONNECTOR_CLASS} does not match request type SomethingElse"


def test_unknown_paths_and_bad_bodies(worker):
    r = worker.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error_code": 404, "message": "HTTP 404 Not Found"}
    r = worker.post("/connectors", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 500
    assert r.json()["error_code"] == 500


def rss_kb(pid: int) -> int:
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_invalid_requests_do_not_grow_the_worker(worker, tmp_path):
    """Validation errors on keys a user names (a table's route-regex, a transform alias) keep no
    memory: 1,500 requests, each with new 4 KB key names, leave the worker's RSS where it was."""
    import requests

    session = requests.Session()

    def invalid(i: int) -> dict:
        long = f"{i:06d}" + "x" * 4096
        return {
            "connector.class": CONNECTOR_CLASS, "name": f"v{i}", "topics": "t", "iceberg.tables": "db.t",
            "iceberg.catalog.type": "rest", "iceberg.catalog.uri": "http://127.0.0.1:1",
            f"iceberg.table.db.{long}.route-regex": "(",
            "transforms": f"a{long}", f"transforms.a{long}.type": "com.example.Nope",
        }

    def send(first: int, count: int):
        for i in range(first, first + count):
            r = session.put(worker.url + f"/connector-plugins/{CONNECTOR_CLASS}/config/validate", json=invalid(i), timeout=30)
            assert r.status_code == 200 and r.json()["error_count"] >= 2, r.text[:300]

    send(0, 300)  # warm up: allocator pools, caches
    before = rss_kb(worker.proc.pid)
    send(300, 1500)
    after = rss_kb(worker.proc.pid)
    print(f"RSS before {before} kB, after 1,500 more invalid requests {after} kB")
    # Leaking the key names would add about 1,500 × 2 × 4 KB = 12 MB.
    assert after - before < 4096, (before, after)
