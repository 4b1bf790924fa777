"""Distributed mode: three `floe distributed` workers form a cluster on the real broker
(docs/distributed.md). Requests to any worker work, connectors and tasks spread over the
workers, a killed worker's tasks run elsewhere, a rolling restart loses nothing."""

import signal
import time

import pytest

from harness import (
    DistributedWorker, connector_config, create_topic, delete_topics, pyiceberg_catalog, read_compacted,
    read_rows, sqlite_catalog_config, unique, wait_for,
)
from test_exactly_once import FAST_FAILOVER, KeyedProducer, assert_exactly


@pytest.fixture
def cluster(tmp_path):
    group = unique("floe-cluster")
    workers = [DistributedWorker(tmp_path, group) for _ in range(3)]
    for w in workers:
        w.start()
    yield group, workers
    # A graceful stop: a SIGKILL here could leave a control-topic transaction open, holding back
    # the next test's connectors until the broker aborts it.
    for w in workers:
        try:
            w.stop()
        except AssertionError:
            pass
    delete_topics(f"{group}-configs", f"{group}-status", f"{group}-offsets")


def status(worker, name):
    r = worker.get(f"/connectors/{name}/status")
    return r.json() if r.status_code == 200 else None


def running_on(worker, name, tasks, among):
    """The worker ids running each task, once the connector and all `tasks` run on `among`."""
    s = status(worker, name)
    if not s or s["connector"]["state"] != "RUNNING" or len(s["tasks"]) != tasks:
        return None
    if any(t["state"] != "RUNNING" or t["worker_id"] not in among for t in s["tasks"]):
        return None
    return [t["worker_id"] for t in s["tasks"]]


def rows_at_least(catalog, table, n):
    try:
        return len(read_rows(catalog, table)) >= n
    except Exception:  # noqa: BLE001 - the table appears with the first commit
        return False


def test_spread_forwarding_internal_topics_and_sigkill(cluster, tmp_path):
    group, (w1, w2, w3) = cluster
    ids = {w.id for w in (w1, w2, w3)}
    topic, name, table = unique("dist"), unique("sink"), f"db_{unique('ns')}.events"
    total = 12_000
    create_topic(topic, partitions=6)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": "3", "iceberg.tables.default-id-columns": "id"},
                              **FAST_FAILOVER)
    try:
        # Created through worker 1, seen through worker 3, whichever is the leader.
        r = w1.post("/connectors", {"name": name, "config": config})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == name
        assert w1.post("/connectors", {"name": name, "config": config}).status_code == 409
        owners = wait_for(lambda: running_on(w3, name, 3, ids), 60, "3 tasks RUNNING")
        assert sorted(owners) == sorted(ids), f"one task per worker, got {owners}"
        stored = dict(config, name=name)
        assert w2.get(f"/connectors/{name}/config").json() == stored
        assert [t["id"] for t in w3.get(f"/connectors/{name}/tasks").json()] == [
            {"connector": name, "task": i} for i in range(3)]

        # The internal topics hold Java-format records.
        configs = read_compacted(f"{group}-configs")
        assert configs[f"connector-{name}"] == {"properties": stored}
        assert configs[f"commit-{name}"] == {"tasks": 3}
        for i in range(3):
            props = configs[f"task-{name}-{i}"]["properties"]
            assert props["task.id"] == str(i) and props["topics"] == topic
        statuses = read_compacted(f"{group}-status")
        conn = statuses[f"status-connector-{name}"]
        assert conn["state"] == "RUNNING" and conn["worker_id"] in ids and isinstance(conn["generation"], int)
        assert statuses[f"status-task-{name}-0"]["state"] == "RUNNING"

        # SIGKILL one worker mid-stream: its task runs elsewhere and every row lands once.
        catalog = pyiceberg_catalog(catalog_cfg)
        producer = KeyedProducer(topic, total, batch=100, pause=0.05)
        producer.start()
        wait_for(lambda: rows_at_least(catalog, table, 1), 90, "first rows committed")
        w2.stop(signal.SIGKILL)
        survivors = {w1.id, w3.id}
        owners = wait_for(lambda: running_on(w1, name, 3, survivors), 90,
                          f"tasks RUNNING on the survivors (logs {w1.log_path}, {w3.log_path})")
        assert set(owners) == survivors
        producer.join(180)
        assert producer.error is None
        wait_for(lambda: rows_at_least(catalog, table, total), 120, f"{total} rows")
        time.sleep(3)  # one more commit interval: nothing beyond the total may appear
        assert_exactly(read_rows(catalog, table), total)
    finally:
        w1.delete(f"/connectors/{name}")
        delete_topics(topic)


def test_rolling_restart_and_restart_requests(cluster, tmp_path):
    group, workers = cluster
    w1, w2, w3 = workers
    ids = {w.id for w in workers}
    topic, name, table = unique("roll"), unique("sink"), f"db_{unique('ns')}.events"
    total = 10_000
    create_topic(topic, partitions=6)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": "3"}, **FAST_FAILOVER)
    try:
        assert w2.post("/connectors", {"name": name, "config": config}).status_code == 201
        wait_for(lambda: running_on(w1, name, 3, ids), 60, "3 tasks RUNNING")
        catalog = pyiceberg_catalog(catalog_cfg)
        producer = KeyedProducer(topic, total, batch=100, pause=0.1)
        producer.start()
        wait_for(lambda: rows_at_least(catalog, table, 1), 90, "first rows committed")
        # Rolling restart: each worker stops gracefully (handing its tasks over) and comes back.
        for i, w in enumerate(workers):
            w.stop(signal.SIGTERM)
            other = workers[(i + 1) % 3]
            wait_for(lambda: running_on(other, name, 3, ids - {w.id}), 60, f"tasks handed over from {w.id}")
            w.start()
        wait_for(lambda: running_on(w1, name, 3, ids), 90, "3 tasks RUNNING after the rolling restart")
        producer.join(180)
        assert producer.error is None
        wait_for(lambda: rows_at_least(catalog, table, total), 120, f"{total} rows")
        time.sleep(3)
        assert_exactly(read_rows(catalog, table), total)

        # Restart requests, through any worker.
        r = w3.post(f"/connectors/{name}/restart?includeTasks=true")
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["connector"]["state"] == "RESTARTING"
        assert [t["state"] for t in body["tasks"]] == ["RESTARTING"] * 3
        wait_for(lambda: running_on(w1, name, 3, ids), 60, "RUNNING after the restart")
        assert w2.post(f"/connectors/{name}/restart").status_code == 204
        owner = status(w1, name)["tasks"][1]["worker_id"]
        elsewhere = next(w for w in workers if w.id != owner)
        assert elsewhere.post(f"/connectors/{name}/tasks/1/restart").status_code == 204
        r = w1.post(f"/connectors/{name}/tasks/7/restart")
        assert r.status_code == 404 and r.json()["message"] == f"Unknown task: {name}-7"
        assert w3.post("/connectors/nope/restart?includeTasks=true").status_code == 404

        # Config changes, pause/resume/stop and delete through non-leaders alike.
        changed = dict(config, **{"tasks.max": "2"})
        r = w3.put(f"/connectors/{name}/config", changed)
        assert r.status_code == 200, r.text
        wait_for(lambda: running_on(w2, name, 2, ids), 60, "2 tasks after the config change")
        assert w1.put(f"/connectors/{name}/pause").status_code == 202
        wait_for(lambda: (s := status(w3, name)) and s["connector"]["state"] == "PAUSED"
                 and [t["state"] for t in s["tasks"]] == ["PAUSED"] * 2, 60, "PAUSED")
        assert w2.put(f"/connectors/{name}/resume").status_code == 202
        wait_for(lambda: running_on(w3, name, 2, ids), 60, "RUNNING after resume")
        assert w3.put(f"/connectors/{name}/stop").status_code == 204
        wait_for(lambda: (s := status(w1, name)) and s["connector"]["state"] == "STOPPED" and s["tasks"] == [],
                 60, "STOPPED")
        offsets = w2.get(f"/connectors/{name}/offsets").json()["offsets"]
        assert sum(o["offset"]["kafka_offset"] for o in offsets) == total
        assert w1.delete(f"/connectors/{name}").status_code == 204
        for w in workers:
            wait_for(lambda: w.get(f"/connectors/{name}").status_code == 404, 30, f"deleted on {w.id}")
        assert name not in read_compacted(f"{group}-configs") or read_compacted(f"{group}-configs")[f"connector-{name}"] is None
    finally:
        delete_topics(topic)


def test_health_is_500_with_the_reason_while_the_group_coordinator_is_unreachable(tmp_path):
    """KIP-1017: `GET /health` answers 200 once the worker is in its group, 500 with a reason
    while the broker (its group coordinator) does not answer for longer than a rebalance may
    take, and 200 again once it does. The broker is paused (SIGSTOP) for the test."""
    import os
    from pathlib import Path

    group = unique("floe-health")
    worker = DistributedWorker(tmp_path, group, {"rebalance.timeout.ms": "5000", "session.timeout.ms": "6000"})
    pid = int((Path(os.environ["FLOE_STACK_DIR"]) / "pids" / "kafka.pid").read_text())
    try:
        worker.start()
        wait_for(lambda: worker.get("/health").status_code == 200, 60, "a healthy worker")
        assert worker.get("/health").json()["status"] == "healthy"
        os.kill(pid, signal.SIGSTOP)
        try:
            def unhealthy():
                r = worker.get("/health")
                return r.json() if r.status_code == 500 else None
            body = wait_for(unhealthy, 60, "/health 500 while the broker is paused")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert body["status"] == "unhealthy", body
        assert ("not a member of its group " + group) in body["message"] or "herder" in body["message"], body
        wait_for(lambda: worker.get("/health").status_code == 200, 90, "healthy again once the broker answers")
        # In its group again, with an assignment: not rebalancing.
        wait_for(lambda: "kafka_connect_worker_rebalance_rebalancing 0" in worker.get("/metrics").text, 30,
                 "the rebalance to end")
        print(f"health: 500 while the broker was paused ({body['message']}), 200 again after")
    finally:
        worker.stop()
        delete_topics(f"{group}-configs", f"{group}-status", f"{group}-offsets")
