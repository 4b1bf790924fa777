"""Shared end-to-end harness: the stack's endpoints, a Floe worker process, Kafka helpers and
independent readers (PyIceberg). Every helper that waits does so on a condition with a deadline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ.get("FLOE_BOOTSTRAP", "127.0.0.1:19092")
REST_CATALOG_URI = os.environ.get("FLOE_REST_CATALOG_URI", "http://127.0.0.1:18181")
POSTGRES_URL = os.environ.get("FLOE_POSTGRES_URL", "postgresql://floe@127.0.0.1:15432/postgres")
FLOE_BIN = Path(os.environ.get("FLOE_BIN", ROOT / "target" / "debug" / "floe"))
# The broker's secured listeners and the test certificates (stack/up makes them).
SASL_SSL_BOOTSTRAP = os.environ.get("FLOE_KAFKA_SASL_SSL", "127.0.0.1:19094")
MTLS_BOOTSTRAP = os.environ.get("FLOE_KAFKA_MTLS", "127.0.0.1:19095")
SASL_USER = os.environ.get("FLOE_KAFKA_SASL_USER", "floe")
SASL_PASSWORD = os.environ.get("FLOE_KAFKA_SASL_PASSWORD", "floe-kafka-secret")
TLS_DIR = Path(os.environ.get("FLOE_TLS_DIR", ROOT / ".stack" / "tls"))
TLS_STORE_PASSWORD = os.environ.get("FLOE_TLS_STORE_PASSWORD", "floe-store-secret")
TLS_KEY_PASSWORD = os.environ.get("FLOE_TLS_KEY_PASSWORD", "floe-key-secret")
CONNECTOR_CLASS = "org.apache.iceberg.connect.IcebergSinkConnector"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Polls `condition` until it returns a truthy value; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported below if the deadline passes
            last_error = e
        time.sleep(interval)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------- Kafka

def admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": BOOTSTRAP})


def create_topic(name: str, partitions: int = 1) -> None:
    client = admin()  # keep the client alive until the futures resolve
    futures = client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    for f in futures.values():
        f.result(timeout=30)


def delete_topics(*names: str) -> None:
    client = admin()
    futures = client.delete_topics(list(names))
    for f in futures.values():
        try:
            f.result(timeout=30)
        except Exception:  # noqa: BLE001 - cleanup is best effort
            pass


def produce(topic: str, values: list[bytes | str | dict | None], keys: list | None = None, partition: int | None = None) -> None:
    p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for i, v in enumerate(values):
        if isinstance(v, dict):
            v = json.dumps(v)
        k = keys[i] if keys else None
        kwargs = {"partition": partition} if partition is not None else {}
        p.produce(topic, value=v, key=k, **kwargs)
    remaining = p.flush(30)
    assert remaining == 0, f"{remaining} records were not delivered to {topic}"


def committed_offsets(group: str, topic: str, partitions: int = 1) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


# ----------------------------------------------------------------------------------------- Floe

class Worker:
    """A `floe standalone` process on a free port, with its log in the test's tmp dir."""

    def __init__(self, tmp: Path, extra: dict[str, str] | None = None, env: dict[str, str] | None = None):
        self.env = env or {}
        self.port = free_port()
        self.dir = tmp
        self.props = {
            "bootstrap.servers": BOOTSTRAP,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            "listeners": f"http://127.0.0.1:{self.port}",
            "offset.flush.interval.ms": "1000",
            "offset.storage.file.filename": str(tmp / "offsets"),
        }
        self.props.update(extra or {})
        self.url = f"http://127.0.0.1:{self.port}"
        # Calls to the REST API; a test of an HTTPS or authenticated API sets verify and auth.
        self.http = requests.Session()
        # The session's own verify must win over REQUESTS_CA_BUNDLE and the like.
        self.http.trust_env = False
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.dir / f"floe-{self.port}-{self.starts}.log"

    start_timeout = 30

    def command(self, props_file: Path, connector_files: tuple[Path, ...]) -> list[str]:
        assert FLOE_BIN.exists(), f"{FLOE_BIN} is missing: build with cargo build"
        return [str(FLOE_BIN), "standalone", str(props_file), *map(str, connector_files)]

    def start(self, *connector_files: Path) -> "Worker":
        self.starts += 1
        props_file = self.dir / f"worker-{self.port}.properties"
        props_file.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        log = open(self.log_path, "wb")
        env = {**os.environ, "FLOE_LOG": os.environ.get("FLOE_LOG", "info,floe_connect=debug,floe_iceberg=debug"), **self.env}
        self.proc = subprocess.Popen(self.command(props_file, connector_files),
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for(self._healthy, self.start_timeout, f"worker on {self.url} to be healthy (log {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}; log:\n{self.log()}")
        return self.http.get(self.url + "/health", timeout=2).status_code == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"worker did not stop within {timeout}s; log:\n{self.log()}")
        self.proc = None

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, body: Any = None, **kw) -> requests.Response:
        if "data" in kw:
            return self.http.post(self.url + path, timeout=120, **kw)
        return self.http.post(self.url + path, json=body, timeout=120, **kw)

    def put(self, path: str, body: Any = None, **kw) -> requests.Response:
        return self.http.put(self.url + path, json=body, timeout=120, **kw)

    def patch(self, path: str, body: Any = None, **kw) -> requests.Response:
        return self.http.patch(self.url + path, json=body, timeout=120, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.http.delete(self.url + path, timeout=120, **kw)

    def create_connector(self, name: str, config: dict[str, str]) -> dict:
        r = self.post("/connectors", {"name": name, "config": config})
        assert r.status_code == 201, f"create {name}: {r.status_code} {r.text}"
        return r.json()

    def task_states(self, name: str) -> list[str]:
        return [t["state"] for t in self.get(f"/connectors/{name}/status").json()["tasks"]]

    def failed_task_trace(self, name: str, task: int = 0, timeout: float = 60) -> str:
        """Waits for task `task` of `name` to fail and returns its trace."""
        def failed():
            t = self.get(f"/connectors/{name}/status").json()["tasks"][task]
            return t["state"] == "FAILED" and t["trace"]
        return wait_for(failed, timeout, f"task {task} of {name} to fail (log {self.log_path})")

    def wait_running(self, name: str, tasks: int = 1) -> None:
        wait_for(lambda: self.task_states(name) == ["RUNNING"] * tasks, 30, f"{name} tasks RUNNING (log {self.log_path})")


class DistributedWorker(Worker):
    """A `floe distributed` worker of the cluster `group` (internal topics named after it)."""

    start_timeout = 60

    def __init__(self, tmp: Path, group: str, extra: dict[str, str] | None = None):
        super().__init__(tmp, {
            "group.id": group,
            "config.storage.topic": f"{group}-configs",
            "status.storage.topic": f"{group}-status",
            "offset.storage.topic": f"{group}-offsets",
            "config.storage.replication.factor": "-1",
            "status.storage.replication.factor": "-1",
            "offset.storage.replication.factor": "-1",
            "offset.storage.partitions": "1",
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "500",
            "scheduled.rebalance.max.delay.ms": "3000",
            **(extra or {}),
        })
        self.props.pop("offset.storage.file.filename", None)
        self.id = f"127.0.0.1:{self.port}"

    def command(self, props_file: Path, connector_files: tuple[Path, ...]) -> list[str]:
        assert FLOE_BIN.exists(), f"{FLOE_BIN} is missing: build with cargo build"
        return [str(FLOE_BIN), "distributed", str(props_file)]


def read_compacted(topic: str, timeout: float = 30) -> dict[str, Any]:
    """The latest value (parsed JSON, None for a tombstone) per key of `topic`."""
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("reader"), "enable.auto.commit": False,
                  "enable.partition.eof": True})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        done, out, deadline = set(), {}, time.time() + timeout
        while len(done) < len(parts) and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    done.add(m.partition())
                continue
            out[m.key().decode()] = json.loads(m.value()) if m.value() is not None else None
        return out
    finally:
        c.close()


def java_connect_libs() -> tuple[Path, Path]:
    """The Java Connect runtime's classpath folder and the Iceberg sink's plugin.path folder,
    resolved from Maven Central by stack/resolve (cached after the first call)."""
    out = subprocess.run([str(ROOT / "stack" / "resolve"), "java-connect", "iceberg-sink"],
                         check=True, capture_output=True, text=True).stdout
    paths = dict(line.split("=", 1) for line in out.split())
    return Path(paths["java-connect"]), Path(paths["iceberg-sink"])


def java_data_written(catalog_config: dict[str, str], table: str, group_id: str, ids: range, out: Path) -> bytes:
    """A Java sink task's announcement, never committed: the oracle (stack/oracle) writes rows
    `ids` (id, payload "value-<id>") to a data file of `table` and returns the control-topic
    record value of a `DataWritten` of `group_id` whose table reference has no table UUID, as
    Java tasks before 1.11 send it."""
    _, plugin = java_connect_libs()
    props = [f"{k.removeprefix('iceberg.catalog.')}={v}" for k, v in catalog_config.items()
             if k.startswith("iceberg.catalog.")]
    props += [f"oracle.catalog-name={catalog_config.get('iceberg.catalog', 'iceberg')}",
              f"oracle.data-written={out}", f"oracle.group-id={group_id}", f"oracle.ids={ids.start}-{ids.stop}"]
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
    cp = f"{plugin / 'iceberg-sink'}/*:{plugin.parent / 'iceberg-oracle'}"
    done = subprocess.run([java, "-Xmx512m", "-cp", cp, "ReadTable", *props, table],
                          capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise AssertionError(f"the Java oracle could not announce files of {table}:\n{done.stderr[-4000:]}")
    return Path(out).read_bytes()


def java_rows(catalog_config: dict[str, str], table: str, upgrade_to: int | None = None,
              lineage: bool = False, snapshot_id: int | None = None) -> list[dict]:
    """The rows of `table` as Iceberg's own generic reader reads them (IcebergGenerics, which
    applies every kind of delete): the oracle for tables with deletes (stack/oracle). With
    `upgrade_to`, Java's Iceberg first upgrades the table to that format version; with
    `lineage`, each row also has its `_row_id` and `_last_updated_sequence_number`; with
    `snapshot_id`, that snapshot is read instead of the current one."""
    _, plugin = java_connect_libs()
    jars = plugin / "iceberg-sink"
    classes = plugin.parent / "iceberg-oracle"
    props = [f"{k.removeprefix('iceberg.catalog.')}={v}" for k, v in catalog_config.items()
             if k.startswith("iceberg.catalog.")]
    props.append(f"oracle.catalog-name={catalog_config.get('iceberg.catalog', 'iceberg')}")
    if upgrade_to is not None:
        props.append(f"oracle.format-version={upgrade_to}")
    if lineage:
        props.append("oracle.lineage=true")
    if snapshot_id is not None:
        props.append(f"oracle.snapshot-id={snapshot_id}")
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
    out = subprocess.run([java, "-Xmx512m", "-cp", f"{jars}/*:{classes}", "ReadTable", *props, table],
                         capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise AssertionError(f"the Java reader failed on {table} (exit {out.returncode}):\n{out.stderr[-4000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


class JavaWorker(Worker):
    """The Java Kafka Connect standalone worker with the Apache Iceberg sink plugin: the reference
    Floe is checked against (same broker, same connector JSON, same catalog)."""

    start_timeout = 120

    def __init__(self, tmp: Path, extra: dict[str, str] | None = None, heap: str = "1g"):
        super().__init__(tmp, extra)
        self.runtime, plugins = java_connect_libs()
        self.props.setdefault("plugin.path", str(plugins))
        self.heap = heap

    @property
    def log_path(self) -> Path:
        return self.dir / f"java-connect-{self.port}-{self.starts}.log"

    def command(self, props_file: Path, connector_files: tuple[Path, ...]) -> list[str]:
        java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
        return [java, f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={ROOT / 'stack' / 'config' / 'connect-log4j2.xml'}",
                "-cp", f"{self.runtime}/*", "org.apache.kafka.connect.cli.ConnectStandalone",
                str(props_file), *map(str, connector_files)]


# -------------------------------------------------------------------------------------- catalogs

def sqlite_catalog_config(tmp: Path) -> dict[str, str]:
    return {
        "iceberg.catalog.type": "jdbc",
        "iceberg.catalog.uri": f"jdbc:sqlite:{tmp / 'catalog.db'}",
        "iceberg.catalog.warehouse": str(tmp / "warehouse"),
    }


def postgres_catalog_config(tmp: Path) -> dict[str, str]:
    """The JDBC catalog on the stack's PostgreSQL, as a Java user writes it."""
    from urllib.parse import urlparse

    u = urlparse(POSTGRES_URL)
    return {
        "iceberg.catalog.type": "jdbc",
        "iceberg.catalog.uri": f"jdbc:postgresql://{u.hostname}:{u.port}{u.path}",
        "iceberg.catalog.jdbc.user": u.username or "",
        "iceberg.catalog.warehouse": str(tmp / "warehouse"),
    }


def rest_catalog_config() -> dict[str, str]:
    return {"iceberg.catalog.type": "rest", "iceberg.catalog.uri": REST_CATALOG_URI}


def pyiceberg_catalog(config: dict[str, str]):
    """The independent reader for the catalog a connector config names."""
    if config["iceberg.catalog.uri"].startswith("jdbc:postgresql:"):
        from pyiceberg.catalog.sql import SqlCatalog

        url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1)
        return SqlCatalog("iceberg", uri=url, warehouse=f"file://{config['iceberg.catalog.warehouse']}")
    if config["iceberg.catalog.type"] == "jdbc":
        from pyiceberg.catalog.sql import SqlCatalog

        db = config["iceberg.catalog.uri"].removeprefix("jdbc:sqlite:")
        # PyIceberg creates the catalog tables if they are missing; Floe may be creating them at
        # the same moment, so a first attempt can lose that race.
        return wait_for(
            lambda: SqlCatalog("iceberg", uri=f"sqlite:///{db}", warehouse=f"file://{config['iceberg.catalog.warehouse']}"),
            30, f"a PyIceberg SqlCatalog on {db}")
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog("iceberg", uri=config["iceberg.catalog.uri"])


def read_rows(catalog, table: str) -> list[dict]:
    """All rows of `table`, or [] while it does not exist or has no snapshot."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        t = catalog.load_table(table)
    except NoSuchTableError:
        return []
    if t.current_snapshot() is None:
        return []
    return t.scan().to_arrow().to_pylist()


def snapshots(catalog, table: str) -> list:
    return list(catalog.load_table(table).snapshots())


def connector_config(topic: str, table: str, catalog: dict[str, str], **extra: str) -> dict[str, str]:
    config = {
        "connector.class": CONNECTOR_CLASS,
        "tasks.max": "1",
        "topics": topic,
        "iceberg.tables": table,
        "iceberg.tables.auto-create-enabled": "true",
        "iceberg.control.commit.interval-ms": "1000",
    }
    config.update(catalog)
    config.update(extra)
    return config


def render_type(t) -> str:
    """An Iceberg type as text without field ids, so expectations do not depend on id order."""
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(t, StructType):
        return "struct<" + ", ".join(f"{f.name}: {'required' if f.required else 'optional'} {render_type(f.field_type)}" for f in t.fields) + ">"
    if isinstance(t, ListType):
        return f"list<{'required' if t.element_required else 'optional'} {render_type(t.element_type)}>"
    if isinstance(t, MapType):
        return f"map<{render_type(t.key_type)}, {'required' if t.value_required else 'optional'} {render_type(t.value_type)}>"
    return str(t)


def columns(catalog, table: str) -> list[tuple[str, str, bool]]:
    return [(f.name, render_type(f.field_type), f.required) for f in catalog.load_table(table).schema().fields]


# ------------------------------------------------------------------------------ object storage

S3_ENDPOINT = os.environ.get("FLOE_S3_ENDPOINT", "http://127.0.0.1:18333")
S3_ACCESS_KEY = os.environ.get("FLOE_S3_ACCESS_KEY", "floe")
S3_SECRET_KEY = os.environ.get("FLOE_S3_SECRET_KEY", "floe-s3-secret")
S3_REGION = os.environ.get("FLOE_S3_REGION", "us-east-1")
REST_S3_CATALOG_URI = os.environ.get("FLOE_REST_S3_CATALOG_URI", "http://127.0.0.1:18182")
REST_S3_CREDENTIAL = os.environ.get("FLOE_REST_S3_CREDENTIAL", "floe-client:floe-client-secret")


def s3_props(endpoint: str = S3_ENDPOINT) -> dict[str, str]:
    """Java's S3FileIO keys for the stack's S3 gateway (also PyIceberg's FileIO keys)."""
    return {
        "s3.endpoint": endpoint, "s3.path-style-access": "true", "s3.access-key-id": S3_ACCESS_KEY,
        "s3.secret-access-key": S3_SECRET_KEY, "client.region": S3_REGION,
    }


def s3_catalog_config(kind: str, tmp: Path, endpoint: str = S3_ENDPOINT, scheme: str = "s3") -> dict[str, str]:
    """A connector's `iceberg.catalog.*` for a warehouse on S3: the SQL catalog (SQLite or the
    stack's PostgreSQL) with S3FileIO, or the REST catalog whose warehouse is on S3 (OAuth2)."""
    io = {f"iceberg.catalog.{k}": v for k, v in s3_props(endpoint).items()}
    io["iceberg.catalog.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
    warehouse = f"{scheme}://floe/{unique('wh')}"
    if kind == "sqlite":
        return {**sqlite_catalog_config(tmp), "iceberg.catalog.warehouse": warehouse, **io}
    if kind == "postgres":
        return {**postgres_catalog_config(tmp), "iceberg.catalog.warehouse": warehouse, **io}
    return {"iceberg.catalog.type": "rest", "iceberg.catalog.uri": REST_S3_CATALOG_URI,
            "iceberg.catalog.credential": REST_S3_CREDENTIAL, **io}


def pyiceberg_s3_catalog(config: dict[str, str]):
    """PyIceberg reading what `s3_catalog_config` describes, from S3."""
    props = {k.removeprefix("iceberg.catalog."): v for k, v in config.items() if k.startswith("iceberg.catalog.")}
    io = {k: props[k] for k in s3_props() if k in props}
    if props["type"] == "rest":
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog("iceberg", uri=props["uri"], credential=props["credential"], **io)
    from pyiceberg.catalog.sql import SqlCatalog

    uri = props["uri"]
    if uri.startswith("jdbc:postgresql:"):
        url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1)
    else:
        url = "sqlite:///" + uri.removeprefix("jdbc:sqlite:")
    return wait_for(lambda: SqlCatalog("iceberg", uri=url, warehouse=props["warehouse"], **io), 30,
                    "a PyIceberg SqlCatalog on S3")


def duckdb_rows(metadata_location: str, endpoint: str = S3_ENDPOINT) -> list[dict]:
    """Every row of the table whose metadata file is `metadata_location`, read by DuckDB's
    iceberg extension (over httpfs for S3)."""
    import glob

    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_httpfs
    import duckdb_extension_iceberg

    con = duckdb.connect()
    for ext in (duckdb_extension_httpfs, duckdb_extension_avro, duckdb_extension_iceberg):
        path, = glob.glob(os.path.join(os.path.dirname(ext.__file__), "extensions", "*", "*.duckdb_extension"))
        con.execute(f"LOAD '{path}'")
    from urllib.parse import urlparse

    u = urlparse(endpoint)
    con.execute(f"""CREATE SECRET s3 (TYPE S3, KEY_ID '{S3_ACCESS_KEY}', SECRET '{S3_SECRET_KEY}',
                    ENDPOINT '{u.netloc}', URL_STYLE 'path', USE_SSL false, REGION '{S3_REGION}')""")
    location = metadata_location.replace("s3a://", "s3://", 1)
    cur = con.execute(f"SELECT * FROM iceberg_scan('{location}')")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


class FaultProxy:
    """A TCP proxy in front of a stack service that a test can take down, bring back, or make
    answer HTTP requests with 503 now and then, to drive Floe through outages of a catalog or
    an object store. Runs in a thread of its own; `url` is what the client under test uses."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", tls=None):
        """`tls`: an `ssl.SSLContext` to serve TLS with (the proxy then terminates TLS in
        front of a plain service)."""
        import asyncio
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://localhost:{self.port}" if tls else f"http://127.0.0.1:{self.port}"
        self.mode = "up"
        self.flaky_every = 0
        self.connections = 0
        self.refused = 0
        self._writers: set = set()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def _run(self, started) -> None:
        import asyncio

        asyncio.set_event_loop(self._loop)

        async def main():
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.tls)
            started.set()
            async with self._server:
                await self._server.serve_forever()

        try:
            self._loop.run_until_complete(main())
        except Exception:  # noqa: BLE001 - stopped with the loop
            pass

    async def _handle(self, reader, writer) -> None:
        import asyncio

        self.connections += 1
        n = self.connections
        if self.mode == "down":
            self.refused += 1
            writer.close()
            return
        if self.flaky_every and n % self.flaky_every == 0:
            # Answer the first request on this connection with a 503 and close it.
            self.refused += 1
            try:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
            except Exception:  # noqa: BLE001 - the client went away
                pass
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except Exception:  # noqa: BLE001 - either side closed
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def _call(self, fn) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(fn(), self._loop).result(10)

    def down(self) -> None:
        """Refuses new connections and cuts the open ones, as a crashed service would."""
        async def cut():
            self.mode = "down"
            for w in list(self._writers):
                w.close()
            self._writers.clear()
        self._call(cut)

    def up(self) -> None:
        self.mode = "up"
        self.flaky_every = 0

    def flaky(self, every: int) -> None:
        """Every `every`-th new connection gets a 503 (open connections are cut, so clients
        reconnect through the flaky path)."""
        async def go():
            self.mode = "up"
            self.flaky_every = every
            for w in list(self._writers):
                w.close()
            self._writers.clear()
        self._call(go)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
