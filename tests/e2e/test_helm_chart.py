"""The Helm chart (charts/floe, docs/kubernetes.md), rendered with `helm template` and run as
a cluster would run it: each worker starts with exactly the rendered container's command and
environment (what a pod provides stands in: its IP and port, the image's worker.properties,
the mounted Secret), the connectors Job runs its rendered command against them, and rows land.
The chart's offline checks (lint, schemas, hadolint) are charts/check."""

import json
import os
import subprocess
from pathlib import Path

import yaml

from harness import (
    FLOE_BIN, ROOT, BOOTSTRAP, Worker, connector_config, create_topic, delete_topics, produce,
    pyiceberg_catalog, read_rows, unique, wait_for,
)

CHART = ROOT / "charts" / "floe"
# What the image puts at the paths the rendered command names (Dockerfile).
IMAGE_FILES = {"/etc/floe/worker.properties": ROOT / "docker" / "worker.properties"}


def helm() -> str:
    return subprocess.run([str(ROOT / "stack" / "tools"), "helm"], check=True, capture_output=True,
                          text=True).stdout.strip()


def render(values: dict, tmp: Path, release: str) -> list[dict]:
    values_file = tmp / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    out = subprocess.run([helm(), "template", release, str(CHART), "-f", str(values_file), "--namespace", "lake"],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs: list[dict], kind: str, suffix: str = "") -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class PodWorker(Worker):
    """A worker started with a rendered container's command and environment."""

    start_timeout = 90

    def __init__(self, tmp: Path, container: dict, secrets: dict[tuple[str, str], str]):
        super().__init__(tmp)
        self.container = container
        env = {}
        for e in container["env"]:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "fieldRef" in e.get("valueFrom", {}):
                assert e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", e
                env[e["name"]] = "127.0.0.1"
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = secrets[(ref["name"], ref["key"])]
        # What differs between pods on one host: the listener's port.
        env["CONNECT_LISTENERS"] = f"http://127.0.0.1:{self.port}"
        env["CONNECT_REST_ADVERTISED_PORT"] = str(self.port)
        self.env = env

    def command(self, props_file: Path, connector_files: tuple[Path, ...]) -> list[str]:
        cmd = list(self.container["command"])
        assert cmd[0] == "floe", cmd
        return [str(FLOE_BIN), *[str(IMAGE_FILES.get(a, a)) for a in cmd[1:]]]


def test_the_rendered_chart_runs_a_cluster_that_applies_its_connectors(tmp_path):
    """Two workers from the rendered Deployment form one Connect group (internal topics named
    after the release); the rendered Job applies the values' connector, whose catalog URI comes
    from a mounted Secret through `${file:...}`; its tasks spread over both workers and every
    produced row lands. Running the Job again (an upgrade) changes nothing."""
    release = unique("lake").replace("_", "-")
    topic, name, table = unique("helm"), "events-sink", f"db_{unique('ns')}.events"
    create_topic(topic, partitions=4)
    catalog = {
        "iceberg.catalog.type": "jdbc",
        "iceberg.catalog.uri": "${file:/etc/floe/secrets/catalog/catalog.properties:uri}",
        "iceberg.catalog.warehouse": str(tmp_path / "warehouse"),
    }
    values = {
        "replicaCount": 2,
        "kafka": {"bootstrapServers": BOOTSTRAP, "replicationFactor": -1},
        "workerConfig": {"offset.storage.partitions": 1, "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 500, "scheduled.rebalance.max.delay.ms": 3000},
        "secretMounts": [{"name": "catalog", "secretName": "lake-catalog",
                          "mountPath": "/etc/floe/secrets/catalog"}],
        "connectors": {name: connector_config(topic, table, catalog, **{"tasks.max": 2})},
        "logging": {"level": "info", "format": "json"},
    }
    docs = render(values, tmp_path, release)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["name"].endswith("-connect") and container["name"].endswith("-connect")
    assert pod["enableServiceLinks"] is False and pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    group = f"{release}-floe"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONNECT_GROUP_ID"] == group
    assert env["CONNECT_CONFIG_STORAGE_TOPIC"] == f"{group}-configs"
    assert env["CONNECT_OFFSET_STORAGE_PARTITIONS"] == "1"

    # The Secret the pod would mount, at its mount path's stand-in.
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "secret-catalog"]
    secret_dir = tmp_path / "secret-catalog"
    secret_dir.mkdir()
    (secret_dir / "catalog.properties").write_text(f"uri=jdbc:sqlite:{tmp_path / 'catalog.db'}\n")

    # The connector's config as the Job applies it, with the mounted file's path mapped.
    configmap = one(docs, "ConfigMap", "-connectors")
    job = one(docs, "Job", "-connectors")
    connectors_dir = tmp_path / "connectors"
    connectors_dir.mkdir()
    for key, text in configmap["data"].items():
        if key.endswith(".json"):
            config = json.loads(text)
            assert config["tasks.max"] == "2", "numbers are rendered as strings"
            config["iceberg.catalog.uri"] = config["iceberg.catalog.uri"].replace(
                mount["mountPath"], str(secret_dir))
            text = json.dumps(config)
        (connectors_dir / key).write_text(text)
    (job_container,) = job["spec"]["template"]["spec"]["containers"]

    workers = [PodWorker(tmp_path, container, {}) for _ in range(2)]
    try:
        for w in workers:
            w.start()
        idle = [rss_mb(w.proc.pid) for w in workers]

        def run_job():
            job_env = {e["name"]: e["value"] for e in job_container["env"]}
            assert job_env["FLOE_URL"] == f"http://{release}-floe:8083"
            job_env["FLOE_URL"] = workers[0].url
            job_env["FLOE_CONNECTORS_DIR"] = str(connectors_dir)
            cmd = [str(connectors_dir / Path(a).name) if a.startswith("/etc/floe/connectors/") else a
                   for a in job_container["command"]]
            out = subprocess.run(cmd, env={**os.environ, **job_env}, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stderr
            return out.stdout

        assert f"connector {name} applied (HTTP 201)" in run_job()

        def spread():
            s = workers[1].get(f"/connectors/{name}/status")
            if s.status_code != 200:
                return None
            s = s.json()
            tasks = s["tasks"]
            if len(tasks) != 2 or any(t["state"] != "RUNNING" for t in tasks):
                return None
            return {t["worker_id"] for t in tasks}
        owners = wait_for(spread, 90, "2 tasks RUNNING")
        assert owners == {f"127.0.0.1:{w.port}" for w in workers}, owners
        total = 4000
        produce(topic, [{"id": i} for i in range(total)])
        reader = pyiceberg_catalog({**catalog, "iceberg.catalog.uri": f"jdbc:sqlite:{tmp_path / 'catalog.db'}"})

        def landed():
            try:
                return len(read_rows(reader, table)) == total
            except Exception:  # noqa: BLE001 - the table appears with the first commit
                return False
        wait_for(landed, 120, f"{total} rows")
        assert sorted(r["id"] for r in read_rows(reader, table)) == list(range(total))
        busy = [rss_mb(w.proc.pid) for w in workers]
        # An upgrade runs the Job again: PUT again is an update of the same config.
        assert f"connector {name} applied (HTTP 200)" in run_job()
        assert workers[0].get("/connectors").json() == [name]
        print(f"helm chart: 2 workers from the rendered Deployment, connector applied by the Job, {total} rows; "
              f"worker RSS idle {idle[0]:.0f}/{idle[1]:.0f} MB, after the stream {busy[0]:.0f}/{busy[1]:.0f} MB")
    finally:
        for w in workers:
            try:
                w.stop()
            except AssertionError:
                pass
        delete_topics(topic, f"{group}-configs", f"{group}-status", f"{group}-offsets")
