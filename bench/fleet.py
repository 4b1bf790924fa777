"""The fleet benchmark (bench/run --fleet): many small connectors in one worker.

For every shape N x T (N connectors of T tasks each), Floe and then the Java worker get, in one
standalone process each, N Iceberg sink connectors, each on a topic of its own (T partitions,
R records preloaded) writing a table of its own, all sharing one control topic (the default a
user gets). Measured per worker:

  committed s   from the first connector's creation until every table holds its R records
  CPU s         user+sys of the worker process over that time
  peak RSS MB   VmHWM at the end
  threads       the process's threads once everything is committed (and the most seen)
  idle cores    CPU seconds per second over --idle-seconds, once every table is committed
                and nothing arrives any more

Writes bench/results/fleet-<time>.md and .json (fleet-smoke.* with --smoke).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("FLOE_LOG", "info")

from bench import cpu_seconds, fmt, ratio, status_kb, write_report  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from harness import (  # noqa: E402
    BOOTSTRAP, JavaWorker, Worker, connector_config, create_topic, delete_topics, pyiceberg_catalog,
    sqlite_catalog_config, unique, wait_for,
)


@dataclass
class Shape:
    connectors: int
    tasks: int

    @property
    def name(self) -> str:
        return f"{self.connectors}x{self.tasks}"


def parse_shape(s: str) -> Shape:
    n, t = s.lower().split("x")
    return Shape(int(n), int(t))


@dataclass
class Result:
    system: str
    shape: str
    committed_s: float
    cpu_s: float
    peak_rss_mb: float
    rss_mb: float
    threads: int
    max_threads: int
    idle_cores: float
    idle_rss_mb: float
    notes: list[str] = field(default_factory=list)


def threads(pid: int) -> int:
    return status_kb(pid, "Threads")


def committed_counts(catalog_db: Path, warehouse_tables: dict[str, str]) -> dict[str, int]:
    """total-records of the current snapshot of each table, read from the catalog database and
    the metadata file it points at (no catalog client: 100 table loads a second would load the
    machine the workers are measured on)."""
    if not catalog_db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{catalog_db}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("select table_namespace, table_name, metadata_location from iceberg_tables").fetchall()
    except sqlite3.Error:
        return {}
    out = {}
    for ns, name, location in rows:
        table = f"{ns}.{name}"
        if table not in warehouse_tables or not location:
            continue
        path = location.removeprefix("file://").removeprefix("file:")
        try:
            meta = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        current = meta.get("current-snapshot-id")
        snap = next((s for s in meta.get("snapshots", []) if s.get("snapshot-id") == current), None)
        out[table] = int(snap["summary"].get("total-records", 0)) if snap else 0
    return out


def preload(topics: list[str], partitions: int, records: int) -> None:
    p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20})
    now = int(time.time() * 1000)
    for topic in topics:
        for i in range(records):
            rec = {"id": i, "ts": now, "user": f"user-{i % 100}", "amount": i * 0.25, "payload": "x" * 200}
            p.produce(topic, value=json.dumps(rec).encode(), key=str(i).encode(), partition=i % partitions)
        p.poll(0)
    assert p.flush(120) == 0, "preload not delivered"


def create_tables(catalog_cfg: dict[str, str], tables: list[str]) -> None:
    """Creates the tables beforehand, for both workers: a hundred Java tasks auto-creating their
    tables at once on one SQLite catalog lose the namespace insert race, and the task that loses
    fails for good (its table never fills)."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType

    schema = Schema(
        NestedField(1, "id", LongType(), required=False), NestedField(2, "ts", LongType(), required=False),
        NestedField(3, "user", StringType(), required=False), NestedField(4, "amount", DoubleType(), required=False),
        NestedField(5, "payload", StringType(), required=False))
    cat = pyiceberg_catalog(catalog_cfg)
    cat.create_namespace_if_not_exists("fleet")
    for t in tables:
        cat.create_table(t, schema)


def run(system: str, shape: Shape, args, work: Path) -> Result:
    work.mkdir(parents=True, exist_ok=True)
    props = {"offset.flush.interval.ms": "10000", **dict(args.worker_prop)}
    worker = (JavaWorker(work, props, heap=args.java_heap) if system == "java"
              else Worker(work, props, env=dict(args.env)))
    # One SQLite catalog for all (what Floe shares), or one per connector: Java's coordinators
    # fail on one SQLite file written by a hundred of them at once (SQLITE_BUSY on commit,
    # "Unknown failure"), so the comparison with Java uses one per connector.
    if args.catalogs == "shared":
        catalogs = [sqlite_catalog_config(work)] * shape.connectors
    else:
        for i in range(shape.connectors):
            (work / f"c{i:03d}").mkdir(exist_ok=True)
        catalogs = [sqlite_catalog_config(work / f"c{i:03d}") for i in range(shape.connectors)]
    run_id = unique(f"fleet-{system}")
    control = f"control-{run_id}"
    topics = [f"{run_id}-{i:03d}" for i in range(shape.connectors)]
    tables = {f"fleet.t{i:03d}_{system}": topics[i] for i in range(shape.connectors)}
    create_topic(control)
    for t in topics:
        create_topic(t, shape.tasks)
    preload(topics, shape.tasks, args.records)
    for i, t in enumerate(tables):
        create_tables(catalogs[i], [t])
    worker.start()
    pid = worker.proc.pid
    sampled_max = [threads(pid)]
    stop_sampling = threading.Event()

    def sample():
        while not stop_sampling.wait(0.5):
            try:
                sampled_max[0] = max(sampled_max[0], threads(pid))
            except OSError:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        cpu0, start = cpu_seconds(pid), time.monotonic()

        def create(i_table):
            i, (table, topic) = i_table
            worker.create_connector(f"{run_id}-{i:03d}", connector_config(topic, table, catalogs[i], **{
                "tasks.max": str(shape.tasks),
                "iceberg.control.topic": control,
                "iceberg.control.commit.interval-ms": str(args.commit_interval_ms),
            }))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, enumerate(tables.items())))
        dbs = sorted({Path(c["iceberg.catalog.uri"].removeprefix("jdbc:sqlite:")) for c in catalogs})

        def counts() -> dict[str, int]:
            out: dict[str, int] = {}
            for db in dbs:
                out.update(committed_counts(db, tables))
            return out

        def done():
            c = counts()
            return sum(1 for t in tables if c.get(t, 0) >= args.records) == len(tables)

        wait_for(done, args.timeout, f"{system} {shape.name}: every table committed", interval=1)
        committed_s = time.monotonic() - start
        extra = {t: n for t, n in counts().items() if n != args.records}
        assert not extra, f"{system} {shape.name}: tables with other than {args.records} records: {extra}"
        cpu = cpu_seconds(pid) - cpu0
        rss = status_kb(pid, "VmRSS") / 1024
        now_threads = threads(pid)
        # Idle: nothing arrives; let the last commits and offset flushes pass, then measure.
        time.sleep(args.settle_seconds)
        idle0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle_cores = (cpu_seconds(pid) - idle0) / (time.monotonic() - t0)
        return Result(system, shape.name, committed_s, cpu, status_kb(pid, "VmHWM") / 1024, rss, now_threads,
                      max(sampled_max[0], now_threads), idle_cores, status_kb(pid, "VmRSS") / 1024)
    finally:
        stop_sampling.set()
        worker.stop(timeout=180)
        delete_topics(control, *topics)


def report(results: list[Result], args, started: str) -> tuple[str, dict]:
    lines = [f"# Floe fleet benchmark, {started}", "",
             f"Machine: {os.cpu_count()} cores. One standalone worker per system; N connectors x T tasks, each "
             f"connector on its own topic (T partitions, {args.records} JSON records of ~290 B) and table, one "
             f"shared control topic, tables created beforehand, commit interval {args.commit_interval_ms} ms, SQLite catalogs "
             f"({args.catalogs}); idle CPU over "
             f"{args.idle_seconds} s after everything committed; Java heap {args.java_heap}.", "",
             "| shape | system | all committed s | CPU s | peak RSS MB | RSS idle MB | threads | max threads | idle cores |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.shape} | {r.system} | {fmt(r.committed_s)} | {fmt(r.cpu_s)} | {fmt(r.peak_rss_mb)} | "
                     f"{fmt(r.idle_rss_mb)} | {r.threads} | {r.max_threads} | {fmt(r.idle_cores, 3)} |")
    lines += ["", "| shape | Floe/Java time | Floe/Java CPU | Floe/Java peak RSS | Floe/Java threads | Floe/Java idle CPU |",
              "|---|---|---|---|---|---|"]
    ratios = {}
    for shape in dict.fromkeys(r.shape for r in results):
        f = next((r for r in results if r.shape == shape and r.system == "floe"), None)
        j = next((r for r in results if r.shape == shape and r.system == "java"), None)
        if not (f and j):
            continue
        rr = {"time": ratio(f.committed_s, j.committed_s), "cpu": ratio(f.cpu_s, j.cpu_s),
              "rss": ratio(f.peak_rss_mb, j.peak_rss_mb), "threads": ratio(f.max_threads, j.max_threads),
              "idle_cpu": ratio(f.idle_cores, j.idle_cores)}
        ratios[shape] = rr
        lines.append(f"| {shape} | {fmt(rr['time'], 3)} | {fmt(rr['cpu'], 3)} | {fmt(rr['rss'], 3)} | "
                     f"{fmt(rr['threads'], 3)} | {fmt(rr['idle_cpu'], 3)} |")
    data = {"started": started, "args": vars(args), "results": [vars(r) for r in results], "ratios": ratios}
    return "\n".join(lines) + "\n", data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleet", action="store_true", help="(the bench/run switch that selects this script)")
    ap.add_argument("--smoke", action="store_true", help="a short run of the same code path (CI)")
    ap.add_argument("--debug", action="store_true", help="use the debug build (bench/run)")
    ap.add_argument("--shapes", default="100x1,25x4", help="comma-separated NxT: N connectors of T tasks")
    ap.add_argument("--systems", default="floe,java")
    ap.add_argument("--records", type=int, default=100, help="records per connector")
    ap.add_argument("--commit-interval-ms", type=int, default=5000)
    ap.add_argument("--settle-seconds", type=float, default=15)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--java-heap", default="2g")
    ap.add_argument("--catalogs", choices=["per-connector", "shared"], default="per-connector",
                    help="one SQLite catalog per connector (Java fails on a shared one), or one for all")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--worker-prop", action="append", default=[], metavar="KEY=VALUE",
                    type=lambda kv: tuple(kv.split("=", 1)), help="an extra worker property (repeatable)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    type=lambda kv: tuple(kv.split("=", 1)), help="an environment variable for Floe (repeatable)")
    args = ap.parse_args()
    if args.smoke:
        args.shapes, args.systems, args.records = "3x1,2x2", "floe", 20
        args.commit_interval_ms, args.settle_seconds, args.idle_seconds = 1000, 2, 3
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = Path(args.out) / f"fleet-work-{started}"
    results = []
    for shape in map(parse_shape, args.shapes.split(",")):
        for system in args.systems.split(","):
            t = time.monotonic()
            r = run(system, shape, args, work / f"{shape.name}-{system}")
            results.append(r)
            print(f"{shape.name} {system}: committed in {r.committed_s:.1f} s, CPU {r.cpu_s:.1f} s, peak RSS "
                  f"{r.peak_rss_mb:.0f} MB, threads {r.threads} (max {r.max_threads}), idle {r.idle_cores:.3f} cores "
                  f"({time.monotonic() - t:.0f} s)", flush=True)
    md, data = report(results, args, started)
    stem = "fleet-smoke" if args.smoke else f"fleet-{args.catalogs}-" + started.replace(":", "")
    write_report(Path(args.out), stem, md, data, work if args.smoke else None)


if __name__ == "__main__":
    main()
