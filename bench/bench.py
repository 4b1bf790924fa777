"""The Floe benchmark (started by bench/run, which builds Floe and brings up the stack).

For every case (record format x partitions x tasks) it preloads one topic, then measures on the
same data, one after the other:

  ceiling  floe-ceiling: librdkafka consume-and-discard, nothing decoded or written
  floe     a `floe standalone` worker with the Iceberg sink connector
  java     the Java Kafka Connect standalone worker with org.apache.iceberg:iceberg-kafka-connect

Both sinks get the same connector JSON (SQLite catalog, same commit interval, same tasks.max).
Per sink: sustained records/s and MB/s into committed snapshots, CPU seconds per million records
(user+sys of the worker process), peak RSS, produce-to-visible latency p50/p99 under a steady
stream, files and bytes written, and /health readiness after process start. The report is
written as Markdown and JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
os.environ.setdefault("FLOE_LOG", "info")

import requests  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from harness import (  # noqa: E402
    BOOTSTRAP, JavaWorker, Worker, connector_config, create_topic, delete_topics, java_connect_libs,
    pyiceberg_catalog, sqlite_catalog_config, unique, wait_for,
)

CEILING_BIN = os.environ.get("FLOE_CEILING_BIN", str(ROOT / "target" / "release" / "floe-ceiling"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAYLOAD = "x" * 860  # with the other fields, a JSON record of about 1 KB

AVRO_SCHEMA = {
    "type": "record", "name": "Event", "namespace": "bench", "fields": [
        {"name": "id", "type": "long"},
        {"name": "ts", "type": "long"},
        {"name": "user", "type": "string"},
        {"name": "event", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "flag", "type": "boolean"},
        {"name": "payload", "type": "string"},
    ],
}


@dataclass
class Case:
    name: str
    fmt: str  # json | avro
    partitions: int
    tasks: int
    # Connector keys of a transform chain, if the case has one.
    transforms: dict[str, str] = field(default_factory=dict)
    # Routed to one table per `event` value (view, click, buy) by `iceberg.tables.route-field`.
    routed: bool = False


# Two transforms on schemaless JSON, as many Iceberg sink configs carry them: the record's
# Kafka offset and timestamp as columns, and its epoch-millisecond `ts` as a timestamp.
TWO_TRANSFORMS = {
    "transforms": "meta,ts",
    "transforms.meta.type": "org.apache.kafka.connect.transforms.InsertField$Value",
    "transforms.meta.offset.field": "kafka_offset",
    "transforms.meta.timestamp.field": "kafka_ts",
    "transforms.ts.type": "org.apache.kafka.connect.transforms.TimestampConverter$Value",
    "transforms.ts.field": "ts",
    "transforms.ts.target.type": "Timestamp",
}

CASES = {c.name: c for c in [
    Case("json-1p-1t", "json", 1, 1),
    Case("json-smt-1p-1t", "json", 1, 1, TWO_TRANSFORMS),
    Case("json-route-1p-1t", "json", 1, 1, routed=True),
    Case("json-16p-4t", "json", 16, 4),
    Case("avro-16p-4t", "avro", 16, 4),
]}


def record(i: int, ts: int) -> dict:
    return {"id": i, "ts": ts, "user": f"user-{i % 1000}", "event": ("view", "click", "buy")[i % 3],
            "amount": i * 0.25, "flag": i % 2 == 0, "payload": PAYLOAD}


class Encoder:
    def __init__(self, case: Case, topic: str):
        self.fmt = case.fmt
        if self.fmt == "avro":
            import fastavro

            from registry import register

            self.schema_id = register(f"{topic}-value", AVRO_SCHEMA)
            self.parsed = fastavro.parse_schema(AVRO_SCHEMA)

    def __call__(self, rec: dict) -> bytes:
        if self.fmt == "json":
            return json.dumps(rec).encode()
        import io
        import struct

        import fastavro

        out = io.BytesIO()
        out.write(b"\x00" + struct.pack(">I", self.schema_id))
        fastavro.schemaless_writer(out, self.parsed, rec)
        return out.getvalue()

    def worker_props(self, system: str) -> dict[str, str]:
        if self.fmt == "json":
            return {}
        from registry import REGISTRY_URL

        if system != "java":
            return {"value.converter": "io.confluent.connect.avro.AvroConverter",
                    "value.converter.schema.registry.url": REGISTRY_URL}
        # Confluent's AvroConverter is not on Maven Central; Apicurio's is, and in its
        # Confluent-compatible mode it reads the same frames (magic byte, 4-byte schema id) by
        # the id the registry's ccompat API gave (Apicurio 3's content id), through the v2 API.
        converter = subprocess.run([str(ROOT / "stack" / "resolve"), "apicurio-converter"], check=True,
                                   capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        return {"plugin.path": f"{java_connect_libs()[1]},{converter}",
                "value.converter": "io.apicurio.registry.utils.converter.AvroConverter",
                "value.converter.apicurio.registry.url": REGISTRY_URL.replace("/apis/ccompat/v7", "/apis/registry/v2"),
                "value.converter.apicurio.registry.as-confluent": "true",
                "value.converter.apicurio.registry.use-id": "contentId"}


def bulk_producer() -> Producer:
    return Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20, "batch.size": 1_000_000,
                     "queue.buffering.max.messages": 1_000_000, "enable.idempotence": True})


def produce_waiting(p, topic: str, value: bytes, key: bytes) -> None:
    """Produces one record, serving delivery reports while the client's queue is full."""
    while True:
        try:
            p.produce(topic, value=value, key=key)
            return
        except BufferError:
            p.poll(0.05)


def preload(topic: str, encode: Encoder, first: int, count: int) -> int:
    """Produces ids first..first+count-1 as fast as the client goes; returns the payload bytes."""
    p, total = bulk_producer(), 0
    now = int(time.time() * 1000)
    for i in range(first, first + count):
        value = encode(record(i, now))
        total += len(value)
        produce_waiting(p, topic, value, str(i).encode())
        if i % 10_000 == 0:
            p.poll(0)
    left = p.flush(120)
    assert left == 0, f"{left} records were not delivered to {topic}"
    return total


def steady(topic: str, encode: Encoder, first: int, rate: int, seconds: float) -> int:
    """Produces `rate` records/s for `seconds`, each stamped with its produce time (ms)."""
    p, count, tick = bulk_producer(), 0, 0.05
    per_tick = max(1, int(rate * tick))
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        now = int(time.time() * 1000)
        for _ in range(per_tick):
            i = first + count
            p.produce(topic, value=encode(record(i, now)), key=str(i).encode())
            count += 1
        p.poll(0)
        time.sleep(max(0.0, start + (count / per_tick) * tick - time.monotonic()))
    assert p.flush(60) == 0
    return count


# ------------------------------------------------------------------------------------ processes

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime are fields 14-17 of stat; index 11.. after the comm field
    return sum(int(x) for x in fields[11:15]) / CLOCK_TICKS


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def health_ready_seconds(make_worker) -> float:
    """Seconds from process start to the first 200 from GET /health (polled every 5 ms)."""
    w = make_worker()
    props_file = w.dir / f"health-{w.port}.properties"
    props_file.write_text("".join(f"{k}={v}\n" for k, v in w.props.items()))
    log = open(w.dir / f"health-{w.port}.log", "wb")
    start = time.monotonic()
    proc = subprocess.Popen(w.command(props_file, ()), stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ))
    try:
        while time.monotonic() - start < 180:
            try:
                if requests.get(w.url + "/health", timeout=1).status_code == 200:
                    return time.monotonic() - start
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode} before /health was ready")
            time.sleep(0.005)
        raise AssertionError("/health not ready within 180 s")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            # Only startup is measured here; a worker slow to stop is killed.
            proc.kill()
            proc.wait(10)


class ProfiledWorker(Worker):
    """Floe under `perf record` (call graphs); `perf report -i <dir>/perf.data` reads it."""

    def command(self, props_file, connector_files):
        return ["perf", "record", "-F", "499", "-g", "-o", str(self.dir / "perf.data"), "--",
                *super().command(props_file, connector_files)]


# ------------------------------------------------------------------------------------ measuring

@dataclass
class Result:
    system: str
    records: int
    payload_bytes: int
    seconds: float
    rate: float
    mb_per_s: float
    cpu_s_per_m: float | None = None
    peak_rss_mb: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    files: int | None = None
    file_bytes: int | None = None
    health_ready_s: float | None = None
    notes: list[str] = field(default_factory=list)


def ceiling(topic: str, n: int, payload_bytes: int) -> Result:
    out = subprocess.run([CEILING_BIN, BOOTSTRAP, topic, str(n)], check=True, capture_output=True, text=True)
    m = json.loads(out.stdout)
    return Result("ceiling", n, payload_bytes, m["seconds"], n / m["seconds"], payload_bytes / m["seconds"] / 1e6)


def total_records(catalog, table: str) -> int:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        snap = catalog.load_table(table).current_snapshot()
    except NoSuchTableError:
        return 0
    return int(snap.summary["total-records"]) if snap else 0


def file_path(uri: str) -> str:
    for prefix in ("file://", "file:"):
        if uri.startswith(prefix):
            return uri[len(prefix):]
    return uri


def latencies(catalog, table: str, first_id: int) -> list[int]:
    """Produce-to-visible latency (ms) of every record with id >= first_id: the commit time of
    the snapshot that added its data file minus the produce time stamped in the record."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyiceberg.manifest import ManifestEntryStatus

    t = catalog.load_table(table)
    out: list[int] = []
    for snap in t.snapshots():
        for manifest in snap.manifests(t.io):
            if manifest.added_snapshot_id != snap.snapshot_id:
                continue
            for entry in manifest.fetch_manifest_entry(t.io):
                if entry.status != ManifestEntryStatus.ADDED or entry.snapshot_id != snap.snapshot_id:
                    continue
                data = pq.read_table(file_path(entry.data_file.file_path), columns=["id", "ts"])
                data = data.filter(pc.greater_equal(data["id"], first_id))
                # `ts` is epoch ms, or a timestamp where a transform made it one.
                out.extend(snap.timestamp_ms - (ts if isinstance(ts, int) else int(ts.timestamp() * 1000))
                           for ts in data["ts"].to_pylist())
    return out


def sustained_rate(catalog, table: str, n: int) -> tuple[float, float]:
    """Records/s between the first and the last snapshot of the preload drain (commits after the
    first, so process start and the first commit wait are not counted), and that span in s.
    0 when fewer than half the records came after the first commit: the span then measures the
    tail of the drain, not its rate."""
    snaps = [s for s in catalog.load_table(table).snapshots() if int(s.summary["total-records"]) <= n]
    if len(snaps) < 2:
        return 0.0, 0.0
    first, last = snaps[0], snaps[-1]
    span = (last.timestamp_ms - first.timestamp_ms) / 1000
    added = int(last.summary["total-records"]) - int(first.summary["total-records"])
    if added < n / 2 or span <= 0:
        return 0.0, 0.0
    return added / span, span


def run_sink(system: str, case: Case, topic: str, encode: Encoder, n: int, payload_bytes: int,
             args, workdir: Path) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    props = {"consumer.max.poll.records": "500", **encode.worker_props(system), **dict(args.worker_prop)}
    if system == "floe" and args.profile:
        def make():
            return ProfiledWorker(workdir, props)
    elif system == "floe":
        def make():
            return Worker(workdir, props)
    else:
        def make():
            return JavaWorker(workdir, props, heap=args.java_heap)
    ready = health_ready_seconds(make)
    worker = make()
    catalog_cfg = sqlite_catalog_config(workdir)
    table = f"bench.{case.name.replace('-', '_')}_{system}"
    events = ("view", "click", "buy")
    tables = [f"{table}_{e}" for e in events] if case.routed else [table]
    routing = {"iceberg.tables.route-field": "event",
               **{f"iceberg.table.{t}.route-regex": f"^{e}$" for t, e in zip(tables, events)}} if case.routed else {}
    name = unique(f"bench-{system}")
    # The latency stream goes to a topic of this run's own, so no sink reads another's.
    steady_topic = unique(f"bench-steady-{system}")
    create_topic(steady_topic, case.partitions)
    config = connector_config(f"{topic},{steady_topic}", ",".join(tables), catalog_cfg, **{
        "tasks.max": str(case.tasks), "iceberg.control.commit.interval-ms": str(args.commit_interval_ms),
        "iceberg.control.topic": f"control-{name}", **case.transforms, **routing,
    })
    create_topic(f"control-{name}")
    worker.start()
    pid = worker.proc.pid
    try:
        catalog = pyiceberg_catalog(catalog_cfg)
        cpu0, start = cpu_seconds(pid), time.monotonic()
        worker.create_connector(name, config)
        def committed() -> int:
            return sum(total_records(catalog, t) for t in tables)

        wait_for(lambda: committed() >= n, args.timeout, f"{system}: {n} committed records", interval=0.5)
        drain = time.monotonic() - start
        cpu = cpu_seconds(pid) - cpu0
        # A routed case's tables each hold a third: its rate is records / drain time.
        rate, span = (0.0, 0.0) if case.routed else sustained_rate(catalog, table, n)
        notes = []
        if rate == 0.0:
            rate = n / drain
            notes.append("fewer than half the records after the first commit of the drain: rate is records / drain time")
        sent = steady(steady_topic, encode, n, args.steady_rate, args.steady_seconds)
        wait_for(lambda: committed() >= n + sent, args.timeout, f"{system}: {n + sent} committed records")
        peak_rss = status_kb(pid, "VmHWM") / 1024
        lat = sorted(x for t in tables for x in latencies(catalog, t, n))
        summaries = [catalog.load_table(t).current_snapshot().summary for t in tables]
        mb_per_s = rate * (payload_bytes / n) / 1e6
        return Result(system, n, payload_bytes, drain, rate, mb_per_s, cpu / n * 1e6, peak_rss,
                      lat[len(lat) // 2] if lat else None, lat[min(len(lat) - 1, len(lat) * 99 // 100)] if lat else None,
                      sum(int(x["total-data-files"]) for x in summaries),
                      sum(int(x["total-files-size"]) for x in summaries), ready, notes)
    finally:
        worker.stop()
        delete_topics(f"control-{name}", steady_topic)


# ------------------------------------------------------------------------------------ reporting

def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def ratio(a, b):
    return a / b if a is not None and b else None


def report(results: dict[str, dict[str, Result]], args, started: str) -> tuple[str, dict]:
    lines = [f"# Floe benchmark, {started}", "",
             f"Machine: {os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
             f"{platform.processor() or platform.machine()}, {platform.system()} {platform.release()}. "
             f"Records per case: {args.records:,} (~1 KB each); commit interval {args.commit_interval_ms} ms; "
             f"steady stream {args.steady_rate}/s for {args.steady_seconds} s for latency; Java heap {args.java_heap}.", ""]
    head = ("| case | system | records/s | MB/s | CPU s / M records | peak RSS MB | latency p50 ms | latency p99 ms "
            "| files | MB written | /health ready s |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for case, by_system in results.items():
        for system, r in by_system.items():
            lines.append(f"| {case} | {system} | {fmt(r.rate, 0)} | {fmt(r.mb_per_s)} | {fmt(r.cpu_s_per_m, 2)} | "
                         f"{fmt(r.peak_rss_mb)} | {fmt(r.latency_p50_ms)} | {fmt(r.latency_p99_ms)} | {fmt(r.files)} | "
                         f"{fmt(r.file_bytes / 1e6 if r.file_bytes else None)} | {fmt(r.health_ready_s, 3)} |")
    lines += ["", "| case | Floe/Java CPU per record | Floe/Java peak RSS | Floe/Java rate | Floe/ceiling rate |",
              "|---|---|---|---|---|"]
    ratios = {}
    for case, s in results.items():
        floe, java, ceil = s.get("floe"), s.get("java"), s.get("ceiling")
        r = {
            "cpu_floe_over_java": ratio(floe and floe.cpu_s_per_m, java and java.cpu_s_per_m),
            "rss_floe_over_java": ratio(floe and floe.peak_rss_mb, java and java.peak_rss_mb),
            "rate_floe_over_java": ratio(floe and floe.rate, java and java.rate),
            "rate_floe_over_ceiling": ratio(floe and floe.rate, ceil and ceil.rate),
        }
        ratios[case] = r
        lines.append(f"| {case} | {fmt(r['cpu_floe_over_java'], 3)} | {fmt(r['rss_floe_over_java'], 3)} | "
                     f"{fmt(r['rate_floe_over_java'], 2)} | {fmt(r['rate_floe_over_ceiling'], 2)} |")
    plain, chained = results.get("json-1p-1t", {}), results.get("json-smt-1p-1t", {})
    if plain and chained:
        lines += ["", "Cost of a two-transform chain (InsertField + TimestampConverter) on json-1p-1t:", "",
                  "| system | CPU s / M plain | CPU s / M with the chain | extra CPU µs per record | rate plain | rate with the chain |",
                  "|---|---|---|---|---|---|"]
        for system in ("floe", "java"):
            p, c = plain.get(system), chained.get(system)
            if p and c and p.cpu_s_per_m and c.cpu_s_per_m:
                lines.append(f"| {system} | {fmt(p.cpu_s_per_m, 2)} | {fmt(c.cpu_s_per_m, 2)} | "
                             f"{fmt(c.cpu_s_per_m - p.cpu_s_per_m, 2)} | {fmt(p.rate, 0)} | {fmt(c.rate, 0)} |")
    routed = results.get("json-route-1p-1t", {})
    if plain and (chained or routed):
        lines += ["", "The general path beside the fast path (json-1p-1t: one static table, no transform):", "",
                  "| system | case | CPU s / M | general / fast CPU per record | records/s |", "|---|---|---|---|---|"]
        for system in ("floe", "java"):
            p = plain.get(system)
            for case_name, c in (("json-smt-1p-1t", chained.get(system)), ("json-route-1p-1t", routed.get(system))):
                if p and c and p.cpu_s_per_m and c.cpu_s_per_m:
                    lines.append(f"| {system} | {case_name} | {fmt(c.cpu_s_per_m, 2)} | "
                                 f"{fmt(c.cpu_s_per_m / p.cpu_s_per_m, 2)} | {fmt(c.rate, 0)} |")
    notes = [f"- {case}/{system}: {n}" for case, s in results.items() for system, r in s.items() for n in r.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    data = {"started": started, "args": vars(args),
            "results": {c: {s: vars(r) for s, r in by.items()} for c, by in results.items()}, "ratios": ratios}
    return "\n".join(lines) + "\n", data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a short run of every code path (CI)")
    ap.add_argument("--debug", action="store_true", help="use the debug build (bench/run)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    ap.add_argument("--systems", default="ceiling,floe,java")
    ap.add_argument("--records", type=int, default=3_000_000)
    ap.add_argument("--commit-interval-ms", type=int, default=2000)
    ap.add_argument("--steady-rate", type=int, default=2000, help="records/s of the latency stream")
    ap.add_argument("--steady-seconds", type=float, default=15)
    ap.add_argument("--java-heap", default="2g", help="-Xmx of the Java worker (connect-distributed.sh: 2G)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--worker-prop", action="append", default=[], metavar="KEY=VALUE",
                    type=lambda kv: tuple(kv.split("=", 1)),
                    help="an extra worker property for both workers (repeatable)")
    ap.add_argument("--profile", action="store_true",
                    help="run Floe under perf record (figures of that run are not comparable)")
    args = ap.parse_args()
    if args.smoke:
        args.records, args.steady_seconds, args.steady_rate, args.cases = 5000, 3, 500, "json-1p-1t"
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = Path(args.out) / f"work-{started}"
    systems = args.systems.split(",")
    results: dict[str, dict[str, Result]] = {}
    for case_name in args.cases.split(","):
        case = CASES[case_name]
        topic = unique(f"bench-{case.name}")
        create_topic(topic, case.partitions)
        try:
            encode = Encoder(case, topic)
            t = time.monotonic()
            payload = preload(topic, encode, 0, args.records)
            print(f"{case.name}: preloaded {args.records:,} records ({payload / 1e6:,.1f} MB) in "
                  f"{time.monotonic() - t:.1f} s", flush=True)
            by_system: dict[str, Result] = {}
            for system in systems:
                t = time.monotonic()
                if system == "ceiling":
                    by_system[system] = ceiling(topic, args.records, payload)
                else:
                    by_system[system] = run_sink(system, case, topic, encode, args.records, payload, args,
                                                 work / f"{case.name}-{system}")
                r = by_system[system]
                print(f"{case.name}: {system}: {r.rate:,.0f} records/s, CPU {fmt(r.cpu_s_per_m, 2)} s/M, "
                      f"peak RSS {fmt(r.peak_rss_mb)} MB, p50 {fmt(r.latency_p50_ms)} ms "
                      f"({time.monotonic() - t:.0f} s)", flush=True)
            results[case.name] = by_system
        finally:
            delete_topics(topic)
    md, data = report(results, args, started)
    write_report(Path(args.out), "smoke" if args.smoke else started.replace(":", ""), md, data,
                 work if args.smoke else None)


def write_report(out: Path, stem: str, md: str, data: dict, remove: Path | None = None) -> None:
    """Writes <out>/<stem>.md and .json, prints the Markdown, and removes `remove` (a smoke
    run's working directory)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(md)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=2, default=str))
    print("\n" + md)
    print(f"report: {out / (stem + '.md')}")
    if remove is not None:
        import shutil

        shutil.rmtree(remove, ignore_errors=True)


if __name__ == "__main__":
    main()
