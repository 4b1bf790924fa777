"""The maintenance benchmark (bench/run --maintenance): the small-file problem of a long stream,
with Floe's built-in table maintenance and without it.

A producer thread offers a fixed rate of schemaless JSON records of about 300 bytes (a payload
of random hex, seeded by the record's id, so both runs write the same records and files hold
real bytes) to a topic of 3 partitions for a fixed time. A Floe worker streams the topic into an
append-mode table (SQLite catalog, commit interval 2 s), twice, each run on a topic and table
of its own:

  maintenance  floe.maintenance.compaction.enabled, .expire-snapshots.enabled and
               .remove-orphans.enabled true (orphans with their default 3-day safety age), run
               every --maintenance-interval-ms; the table is created with
               history.expire.max-snapshot-age-ms = --snapshot-max-age-ms
  none         all three false (same table properties)

Measured per run: records offered and committed (the table's row count once the sink has caught
up after the stream), the ingestion rate (committed records over the time from the stream's
start to the commit that made the last record visible), worker CPU seconds and per million
records, peak RSS (VmHWM), the largest commit lag seen (now minus the newest snapshot's
kafka.connect.valid-through-ts, sampled every --sample-seconds while the stream runs) and the
largest live data-file count seen; at the end, with the worker stopped: live data files and
their mean and median size, snapshots, files and bytes under the table's location, the
compactions and expiries the coordinator logged, and a DuckDB full scan (every column, median of
--scan-repeats).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("FLOE_LOG", "info")

from bench import bulk_producer, cpu_seconds, file_path, fmt, produce_waiting, status_kb  # noqa: E402
from harness import (  # noqa: E402
    Worker, connector_config, create_topic, delete_topics, pyiceberg_catalog, sqlite_catalog_config, unique,
    wait_for,
)
from upsert import scan_seconds  # noqa: E402

PARTITIONS = 3
EVENTS = ("view", "click", "buy")
VALID_THROUGH = "kafka.connect.valid-through-ts"
# Every column of the table, so the scan decodes all of each file.
SCAN = "count(*), sum(id), sum(length(user)), sum(length(event)), sum(amount), sum(length(payload))"


def record(i: int) -> bytes:
    """Record `i`, about 300 bytes of JSON, the same on every run."""
    return json.dumps({"id": i, "user": f"user-{i % 1000}", "event": EVENTS[i % 3], "amount": i * 0.25,
                       "payload": random.Random(i).randbytes(110).hex()}).encode()


class Stream(threading.Thread):
    """Offers `rate` records/s to `topic` for `seconds`: every 10 ms it produces the records due
    by then, so a slow moment is made up at once and the total is rate x seconds."""

    def __init__(self, topic: str, rate: int, seconds: float):
        super().__init__(name="stream", daemon=True)
        self.topic, self.rate, self.seconds = topic, rate, seconds
        self.sent = 0
        self.bytes = 0
        self.most_behind = 0  # records due but not yet produced, at worst
        self.started = self.stopped = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            p = bulk_producer()
            self.started = time.monotonic()
            total = int(self.rate * self.seconds)
            while self.sent < total:
                due = min(total, int((time.monotonic() - self.started) * self.rate))
                self.most_behind = max(self.most_behind, due - self.sent)
                while self.sent < due:
                    value = record(self.sent)
                    produce_waiting(p, self.topic, value, str(self.sent).encode())
                    self.sent += 1
                    self.bytes += len(value)
                p.poll(0)
                time.sleep(0.01)
            left = p.flush(120)
            assert left == 0, f"{left} records were not delivered to {self.topic}"
            self.stopped = time.monotonic()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.error = e


def current_snapshot(catalog, table: str):
    """(table, current snapshot), or (None, None) while the table has no snapshot."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        tbl = catalog.load_table(table)
    except NoSuchTableError:
        return None, None
    return tbl, tbl.current_snapshot()


def total_records(catalog, table: str) -> int:
    _, snap = current_snapshot(catalog, table)
    return int(snap.summary["total-records"]) if snap else 0


def commit_lag_seconds(tbl) -> float | None:
    """Now minus the valid-through timestamp of the newest snapshot carrying one (a compaction's
    `replace` snapshot carries none; a commit with an idle partition neither)."""
    for snap in sorted(tbl.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True):
        ts = snap.summary.get(VALID_THROUGH) if snap.summary else None
        if ts:
            return time.time() - datetime.datetime.fromisoformat(ts).timestamp()
    return None


def live_data_files(tbl) -> list[int]:
    """The sizes (bytes) of the data files the current snapshot reads."""
    from pyiceberg.manifest import ManifestContent

    snap = tbl.current_snapshot()
    if snap is None:
        return []
    return [e.data_file.file_size_in_bytes for m in snap.manifests(tbl.io) if m.content == ManifestContent.DATA
            for e in m.fetch_manifest_entry(tbl.io, discard_deleted=True)]


def files_on_disk(tbl) -> dict:
    """Files under the table's location: all of them, the data files, the metadata.json
    versions, and their bytes."""
    root = file_path(tbl.metadata.location)
    out = {"files": 0, "data_files": 0, "metadata_json": 0, "bytes": 0}
    for d, _, names in os.walk(root):
        for n in names:
            out["files"] += 1
            out["data_files"] += n.endswith(".parquet")
            out["metadata_json"] += n.endswith(".metadata.json")
            out["bytes"] += os.path.getsize(os.path.join(d, n))
    return out


def maintenance_log(worker: Worker) -> dict:
    """What the coordinator logged of its maintenance, and its maintenance warnings (the worker
    logs JSON lines)."""
    out = {"compactions": 0, "bytes_rewritten": 0, "bytes_written": 0, "compaction_ms": 0, "longest_compaction_ms": 0,
           "expiries": 0, "snapshots_expired": 0, "files_deleted": 0, "warnings": []}
    for line in worker.log().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        fields = event.get("fields", event)
        message = fields.get("message", "")
        if message == "table compacted":
            out["compactions"] += 1
            out["bytes_rewritten"] += int(fields.get("bytes_rewritten", 0))
            out["bytes_written"] += int(fields.get("bytes_written", 0))
            out["compaction_ms"] += int(fields.get("millis", 0))
            out["longest_compaction_ms"] = max(out["longest_compaction_ms"], int(fields.get("millis", 0)))
        elif message == "snapshots expired":
            out["expiries"] += 1
            out["snapshots_expired"] += int(fields.get("snapshots_expired", 0))
            out["files_deleted"] += int(fields.get("files_deleted", 0))
        elif event.get("level") in ("WARN", "ERROR") and any(
                w in message for w in ("compaction", "expiry", "orphan", "maintenance")):
            out["warnings"].append(message)
    return out


def run(mode: str, args, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    on = "true" if mode == "maintenance" else "false"
    worker = Worker(workdir, {"consumer.max.poll.records": "500"}, env={"FLOE_LOG_FORMAT": "json"})
    catalog_cfg = sqlite_catalog_config(workdir)
    table = f"bench.stream_{mode}"
    name = unique(f"bench-{mode}")
    topic = unique(f"bench-stream-{mode}")
    create_topic(topic, PARTITIONS)
    create_topic(f"control-{name}")
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": str(args.tasks), "iceberg.control.commit.interval-ms": str(args.commit_interval_ms),
        "iceberg.control.topic": f"control-{name}",
        "floe.maintenance.compaction.enabled": on, "floe.maintenance.expire-snapshots.enabled": on,
        "floe.maintenance.remove-orphans.enabled": on,
        "floe.maintenance.interval-ms": str(args.maintenance_interval_ms),
        "iceberg.tables.auto-create-props.history.expire.max-snapshot-age-ms": str(args.snapshot_max_age_ms),
    })
    worker.start()
    pid = worker.proc.pid
    try:
        catalog = pyiceberg_catalog(catalog_cfg)
        worker.create_connector(name, config)
        worker.wait_running(name, args.tasks)
        stream = Stream(topic, args.rate, args.minutes * 60)
        cpu0 = cpu_seconds(pid)
        stream.start()
        most_lag, most_files, series, next_point = None, 0, [], 0.0
        while stream.is_alive():
            time.sleep(args.sample_seconds)
            tbl, snap = current_snapshot(catalog, table)
            if snap is None:
                continue
            files = int(snap.summary.get("total-data-files") or 0)
            most_files = max(most_files, files)
            lag = commit_lag_seconds(tbl)
            if lag is not None and stream.is_alive():
                most_lag = lag if most_lag is None else max(most_lag, lag)
            elapsed = time.monotonic() - stream.started
            if elapsed >= next_point:
                series.append({"s": round(elapsed), "live_data_files": files, "snapshots": len(tbl.metadata.snapshots),
                               "records": int(snap.summary["total-records"]), "lag_s": lag})
                print(f"maintenance: {mode}: {elapsed:.0f} s, {stream.sent:,} offered, "
                      f"{int(snap.summary['total-records']):,} committed, {files} live data files, "
                      f"{len(tbl.metadata.snapshots)} snapshots, lag {fmt(lag)} s", flush=True)
                next_point += args.report_seconds
        stream.join()
        if stream.error:
            raise stream.error
        wait_for(lambda: total_records(catalog, table) >= stream.sent, args.timeout,
                 f"{mode}: {stream.sent} committed records", interval=0.5)
        caught_up = time.monotonic()
        cpu = cpu_seconds(pid) - cpu0
        peak_rss = status_kb(pid, "VmHWM") / 1024
        committed = total_records(catalog, table)
    finally:
        worker.stop()
        delete_topics(topic, f"control-{name}")
    tbl = pyiceberg_catalog(catalog_cfg).load_table(table)
    sizes = live_data_files(tbl)
    return {
        "mode": mode, "offered": stream.sent, "offered_bytes": stream.bytes, "committed": committed,
        "stream_s": stream.stopped - stream.started, "offered_rate": stream.sent / (stream.stopped - stream.started),
        "producer_most_behind": stream.most_behind, "catch_up_s": caught_up - stream.stopped,
        "rate": committed / (caught_up - stream.started), "cpu_s": cpu, "cpu_s_per_m": cpu / committed * 1e6,
        "peak_rss_mb": peak_rss, "max_lag_s": most_lag, "live_data_files": len(sizes),
        "max_live_data_files": max(most_files, len(sizes)),
        "mean_file_mb": statistics.fmean(sizes) / 1e6 if sizes else None,
        "median_file_mb": statistics.median(sizes) / 1e6 if sizes else None,
        "snapshots": len(tbl.metadata.snapshots), "on_disk": files_on_disk(tbl), "log": maintenance_log(worker),
        "series": series, "metadata": tbl.metadata_location, "table": table,
    }


def report(runs: dict[str, dict], args, started: str) -> str:
    m, n = runs["maintenance"], runs["none"]
    # (figure, its value in a run's result, decimals)
    rows = [
        ("records offered", lambda r: r["offered"], 0),
        ("records committed", lambda r: r["committed"], 0),
        ("offered rate (records/s)", lambda r: r["offered_rate"], 0),
        ("ingestion rate (records/s)", lambda r: r["rate"], 0),
        ("catch-up after the stream s", lambda r: r["catch_up_s"], 1),
        ("worker CPU s", lambda r: r["cpu_s"], 1),
        ("CPU s / M records", lambda r: r["cpu_s_per_m"], 2),
        ("peak RSS MB", lambda r: r["peak_rss_mb"], 1),
        ("max commit lag s (sampled)", lambda r: r["max_lag_s"], 1),
        ("live data files at the end", lambda r: r["live_data_files"], 0),
        ("max live data files", lambda r: r["max_live_data_files"], 0),
        ("mean live data file MB", lambda r: r["mean_file_mb"], 3),
        ("median live data file MB", lambda r: r["median_file_mb"], 3),
        ("snapshots", lambda r: r["snapshots"], 0),
        ("files under the table location", lambda r: r["on_disk"]["files"], 0),
        ("of which data files", lambda r: r["on_disk"]["data_files"], 0),
        ("of which metadata.json", lambda r: r["on_disk"]["metadata_json"], 0),
        ("MB under the table location", lambda r: r["on_disk"]["bytes"] / 1e6, 1),
        ("compactions", lambda r: r["log"]["compactions"], 0),
        ("MB rewritten by compaction", lambda r: r["log"]["bytes_rewritten"] / 1e6, 1),
        ("compaction time s (sum)", lambda r: r["log"]["compaction_ms"] / 1e3, 1),
        ("longest compaction s", lambda r: r["log"]["longest_compaction_ms"] / 1e3, 1),
        ("snapshots expired", lambda r: r["log"]["snapshots_expired"], 0),
        ("files deleted by expiry", lambda r: r["log"]["files_deleted"], 0),
        (f"DuckDB full scan s (median of {args.scan_repeats})", lambda r: r["scan_s"], 3),
    ]
    lines = [f"# Floe maintenance benchmark, {started}", "",
             f"{args.minutes:g} min of {args.rate:,} records/s offered (~{m['offered_bytes'] / max(m['offered'], 1):.0f} B "
             f"of JSON each) to {PARTITIONS} partitions; {args.tasks} tasks, commit interval {args.commit_interval_ms} ms, "
             f"append mode, SQLite catalog. With maintenance: compaction and snapshot expiry every "
             f"{args.maintenance_interval_ms} ms; both tables have history.expire.max-snapshot-age-ms "
             f"{args.snapshot_max_age_ms}. {os.cpu_count()} cores; {os.environ.get('FLOE_BIN', 'default floe binary')}.", "",
             "| figure | with maintenance | without | with/without |", "|---|---|---|---|"]
    for label, get, digits in rows:
        a, b = get(m), get(n)
        show = (lambda v: fmt(float(v), digits)) if digits else (lambda v: fmt(None if v is None else round(v)))
        lines.append(f"| {label} | {show(a)} | {show(b)} | {fmt(a / b, 2) if a is not None and b else '–'} |")
    notes = []
    for r in (m, n):
        if r["committed"] != r["offered"]:
            notes.append(f"- {r['mode']}: {r['committed']:,} records committed of {r['offered']:,} offered")
        if r["producer_most_behind"] > args.rate:
            notes.append(f"- {r['mode']}: the producer fell up to {r['producer_most_behind']:,} records behind its schedule")
        for w in sorted(set(r["log"]["warnings"])):
            notes.append(f"- {r['mode']}: the worker warned: {w}")
    if m["log"]["compactions"] == 0:
        notes.append("- maintenance: no compaction ran (is the stream shorter than the maintenance interval?)")
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maintenance", action="store_true", help="(selects this benchmark in bench/run)")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run: 0.5 min, maintenance every 10 s, snapshots expire after 20 s")
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--minutes", type=float, default=10, help="of the stream, per run (fractions allowed)")
    ap.add_argument("--rate", type=int, default=2000, help="records/s offered, over all partitions")
    ap.add_argument("--tasks", type=int, default=PARTITIONS)
    ap.add_argument("--commit-interval-ms", type=int, default=2000)
    ap.add_argument("--maintenance-interval-ms", type=int, default=60_000)
    ap.add_argument("--snapshot-max-age-ms", type=int, default=120_000,
                    help="the table's history.expire.max-snapshot-age-ms (both runs)")
    ap.add_argument("--sample-seconds", type=float, default=2, help="between two samples of lag and live files")
    ap.add_argument("--report-seconds", type=float, default=30, help="between two progress lines and series points")
    ap.add_argument("--scan-repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300, help="for the sink to catch up after the stream")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if args.smoke:
        args.minutes, args.maintenance_interval_ms, args.snapshot_max_age_ms = 0.5, 10_000, 20_000
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = Path(args.out) / f"work-maintenance-{started}"
    runs = {}
    for mode in ("maintenance", "none"):
        t = time.monotonic()
        r = run(mode, args, work / mode)
        r["scan_s"], rows = scan_seconds(r["metadata"], args.scan_repeats, SCAN)
        assert rows == r["committed"], (mode, rows, r["committed"])
        runs[mode] = r
        print(f"maintenance: {mode}: {r['committed']:,} records, {r['rate']:,.0f} records/s, CPU {r['cpu_s_per_m']:.2f} s/M, "
              f"{r['live_data_files']} live data files, scan {r['scan_s']:.3f} s ({time.monotonic() - t:.0f} s)",
              flush=True)
    text = report(runs, args, started)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{started.replace(':', '')}-maintenance"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps({"started": started, "args": vars(args), "runs": runs}, indent=2))
    print(f"report: {out / (stem + '.md')}")


if __name__ == "__main__":
    main()
