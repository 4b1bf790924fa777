"""Restart storms: every kind of restart call, interleaved, while records stream in. A task never
runs twice in one worker (each instance starts only after the previous one has stopped), every
REST call is answered at once, SIGTERM in the middle of a storm exits in time, and the table ends
with every record exactly once (docs/rest-api.md, "Restarts")."""

import random
import re
import signal
import threading
import time
from collections import Counter

from harness import (
    DistributedWorker, Worker, connector_config, create_topic, delete_topics, pyiceberg_catalog, read_rows,
    sqlite_catalog_config, unique, wait_for,
)
from test_exactly_once import FAST_FAILOVER, KeyedProducer, assert_exactly

STARTING = re.compile(r"task instance starting task=(\S+)")
ENDED = re.compile(r"task (?:stopped|failed) task=(\S+)")


def max_instances_at_once(log: str) -> dict[str, int]:
    """Per task, the most instances that ran at once in one worker, read from its log (an
    instance logs "task instance starting" before it creates any client and "task stopped" or
    "task failed" once they are all closed)."""
    running, most = Counter(), Counter()
    for line in log.splitlines():
        if m := STARTING.search(line):
            running[m.group(1)] += 1
            most[m.group(1)] = max(most[m.group(1)], running[m.group(1)])
        elif m := ENDED.search(line):
            running[m.group(1)] -= 1
    return dict(most)


class Storm(threading.Thread):
    """Calls every kind of restart (and pause/resume, config rewrite) at random, through the
    given workers, recording how long each answer took."""

    def __init__(self, workers, name, config, tasks, seed, conflicts_allowed=False):
        super().__init__(daemon=True)
        self.workers, self.name, self.config, self.tasks = workers, name, config, tasks
        # In a cluster, a request that needs the leader or the task's owner while a rebalance
        # is under way is answered 409, as Java answers it.
        self.conflicts_allowed = conflicts_allowed
        self.rng = random.Random(seed)
        self.stopped = threading.Event()
        self.calls: list[tuple[str, int, float]] = []
        self.error = None

    def one_call(self):
        w = self.rng.choice(self.workers)
        n = self.name
        kind = self.rng.choice([
            "restart-all", "restart-all", "restart-failed", "restart-task", "restart-task", "restart-connector",
            "pause-resume", "rewrite-config", "status",
        ])
        started = time.monotonic()
        if kind == "restart-all":
            r = w.post(f"/connectors/{n}/restart?includeTasks=true&onlyFailed=false")
            ok = r.status_code == 202
        elif kind == "restart-failed":
            r = w.post(f"/connectors/{n}/restart?includeTasks=true&onlyFailed=true")
            ok = r.status_code == 202
        elif kind == "restart-task":
            r = w.post(f"/connectors/{n}/tasks/{self.rng.randrange(self.tasks)}/restart")
            # 409 while a rebalance moves the task (distributed mode), as Java answers.
            ok = r.status_code in (204, 409)
        elif kind == "restart-connector":
            r = w.post(f"/connectors/{n}/restart")
            ok = r.status_code in (204, 409)
        elif kind == "pause-resume":
            r = w.put(f"/connectors/{n}/pause")
            ok = r.status_code == 202
            self.calls.append(("pause", r.status_code, time.monotonic() - started))
            started = time.monotonic()
            r = w.put(f"/connectors/{n}/resume")
            ok = ok and r.status_code == 202
        elif kind == "rewrite-config":
            r = w.put(f"/connectors/{n}/config", self.config)
            ok = r.status_code in (200, 409)
        else:
            r = w.get(f"/connectors/{n}/status")
            ok = r.status_code == 200
        self.calls.append((kind, r.status_code, time.monotonic() - started))
        ok = ok or (self.conflicts_allowed and r.status_code == 409)
        assert ok, f"{kind}: {r.status_code} {r.text}"

    def run(self):
        try:
            while not self.stopped.is_set():
                self.one_call()
                self.stopped.wait(self.rng.uniform(0.05, 0.4))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def summary(self) -> str:
        slowest = max(self.calls, key=lambda c: c[2])
        return f"{len(self.calls)} calls, slowest {slowest[0]} {slowest[2]:.3f}s, by kind {Counter(c[0] for c in self.calls)}"


def settle_running(worker, name, tasks, timeout=90):
    def running():
        s = worker.get(f"/connectors/{name}/status").json()
        return len(s["tasks"]) == tasks and all(t["state"] == "RUNNING" for t in s["tasks"])
    wait_for(running, timeout, f"{name}: {tasks} tasks RUNNING after the storm")


def test_restart_storm_standalone(tmp_path):
    topic, name, table = unique("storm"), unique("sink"), f"db_{unique('ns')}.events"
    total, tasks = 15_000, 2
    create_topic(topic, partitions=4)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": str(tasks)}, **FAST_FAILOVER)
    worker = Worker(tmp_path)
    producer = KeyedProducer(topic, total, batch=100, pause=0.15)
    storm = Storm([worker], name, config, tasks, seed=11)
    try:
        worker.start()
        worker.create_connector(name, config)
        worker.wait_running(name, tasks=tasks)
        producer.start()
        storm.start()
        time.sleep(30)
        storm.stopped.set()
        storm.join(30)
        assert storm.error is None, storm.error
        print(f"storm: {storm.summary()}")
        assert max(c[2] for c in storm.calls) < 1.0, storm.summary()

        producer.join(300)
        assert producer.error is None and not producer.is_alive()
        settle_running(worker, name, tasks)
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= total and r, 120, f"{total} rows")
        time.sleep(3)  # one more commit cycle: nothing may arrive twice
        assert_exactly(read_rows(catalog, table), total)

        log = worker.log()
        assert "abandoning" not in log, "a task instance did not stop in time"
        most = max_instances_at_once(log)
        assert set(most) == {f"{name}-{i}" for i in range(tasks)}, most
        assert max(most.values()) == 1, f"two instances of a task at once: {most}"
        print(f"storm: records produced {total}, found {len(rows)}, instances started {sum(1 for _ in STARTING.finditer(log))}")

        # SIGTERM in the middle of another storm: the worker exits within the graceful
        # timeout (5 s by default) plus a small margin.
        storm = Storm([worker], name, config, tasks, seed=12)
        storm.start()
        time.sleep(5)
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        code = worker.proc.wait(30)
        exited_after = time.monotonic() - began
        storm.stopped.set()
        storm.join(30)
        print(f"storm: SIGTERM during a storm: exit code {code} after {exited_after:.2f}s")
        assert code == 0 and exited_after < 8, (code, exited_after)
    finally:
        producer.stopped.set()
        storm.stopped.set()
        worker.stop(signal.SIGKILL)
        print(worker.log()[-8000:])
        delete_topics(topic)


def test_restart_storm_three_workers(tmp_path):
    group = unique("storm-cluster")
    workers = [DistributedWorker(tmp_path, group) for _ in range(3)]
    topic, name, table = unique("storm"), unique("sink"), f"db_{unique('ns')}.events"
    total, tasks = 12_000, 3
    create_topic(topic, partitions=6)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": str(tasks)}, **FAST_FAILOVER)
    producer = KeyedProducer(topic, total, batch=100, pause=0.15)
    storm = Storm(workers, name, config, tasks, seed=21, conflicts_allowed=True)
    try:
        for w in workers:
            w.start()
        r = workers[0].post("/connectors", {"name": name, "config": config})
        assert r.status_code == 201, r.text
        settle_running(workers[1], name, tasks)
        producer.start()
        storm.start()
        time.sleep(20)
        # SIGTERM one worker mid-storm: it exits in time and its tasks move to the others.
        storm.workers = workers[:2]
        time.sleep(1)  # a call already sent to it has its answer
        began = time.monotonic()
        workers[2].proc.send_signal(signal.SIGTERM)
        code = workers[2].proc.wait(30)
        exited_after = time.monotonic() - began
        storm.workers = workers[:2]
        time.sleep(10)
        storm.stopped.set()
        storm.join(30)
        assert storm.error is None, storm.error
        print(f"storm (cluster): {storm.summary()}; SIGTERM exit code {code} after {exited_after:.2f}s")
        assert code == 0 and exited_after < 8, (code, exited_after)
        assert max(c[2] for c in storm.calls) < 1.0, storm.summary()

        producer.join(300)
        assert producer.error is None and not producer.is_alive()
        settle_running(workers[0], name, tasks)
        catalog = pyiceberg_catalog(catalog_cfg)
        rows = wait_for(lambda: (r := read_rows(catalog, table)) and len(r) >= total and r, 120, f"{total} rows")
        time.sleep(3)
        assert_exactly(read_rows(catalog, table), total)
        for w in workers:
            log = w.log()
            assert "abandoning" not in log, f"a task instance did not stop in time on {w.id}"
            most = max_instances_at_once(log)
            assert not most or max(most.values()) == 1, f"two instances of a task at once on {w.id}: {most}"
        print(f"storm (cluster): records produced {total}, found {len(rows)}")
    finally:
        producer.stopped.set()
        storm.stopped.set()
        for w in workers:
            try:
                w.stop()
            except AssertionError:
                pass
        delete_topics(topic, f"{group}-configs", f"{group}-status", f"{group}-offsets")
