"""The upsert benchmark (bench/run --upsert): Floe writing the same changes by plain appends and
in upsert mode, and the cost of reading the result.

One topic holds N records of about 1 KB (a payload of random hex, so files hold real bytes
rather than one repeated value): 70 % new keys, 30 % updates of keys seen before (chosen
at random). Measured per mode: records/s (N over the time from creating the connector to the
table holding the expected rows), CPU seconds per million records and peak RSS of the worker.
Then the read cost: a full DuckDB scan (every column) of the upserted table (its data files and
position deletes), of the same table once `floe table compact` has run (what the coordinator does
at its next compaction), and of a table holding the same final rows written by plain appends. Java's Iceberg
sink has no upsert mode, so there is no Java column.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("FLOE_LOG", "info")

from bench import bulk_producer, cpu_seconds, fmt, produce_waiting, status_kb  # noqa: E402
from harness import (  # noqa: E402
    Worker, connector_config, create_topic, delete_topics, pyiceberg_catalog, sqlite_catalog_config, unique,
    wait_for,
)

def payload(key: int, version: int) -> str:
    """About 900 characters of random hex, the same for a (key, version) on every run."""
    return random.Random(version * 1_000_003 + key).randbytes(450).hex()


def changes(n: int, seed: int = 5) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """(key, version) per record: 70 % new keys, 30 % updates; and the final version per key."""
    rng = random.Random(seed)
    out, final, next_key = [], {}, 0
    for i in range(n):
        if next_key and rng.random() < 0.3:
            key = rng.randrange(next_key)
        else:
            key, next_key = next_key, next_key + 1
        out.append((key, i))
        final[key] = i
    return out, final


def produce_all(topic: str, rows) -> None:
    p = bulk_producer()
    for key, version in rows:
        value = json.dumps({"id": key, "version": version, "op": "U", "payload": payload(key, version)}).encode()
        produce_waiting(p, topic, value, str(key).encode())
        p.poll(0)
    left = p.flush(120)
    assert left == 0, f"{left} records were not delivered to {topic}"


def live_rows(catalog, table: str) -> int:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        snap = catalog.load_table(table).current_snapshot()
    except NoSuchTableError:
        return -1
    if not snap:
        return -1
    s = snap.summary
    return int(s["total-records"]) - int(s.get("total-position-deletes", "0"))


def run(mode: str, topic: str, n: int, expected_rows: int, args, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    worker = Worker(workdir, {"consumer.max.poll.records": "500"})
    catalog_cfg = sqlite_catalog_config(workdir)
    table = f"bench.{mode}"
    name = unique(f"bench-{mode}")
    extra = {"tasks.max": str(args.tasks), "iceberg.control.commit.interval-ms": str(args.commit_interval_ms),
             "iceberg.control.topic": f"control-{name}"}
    if mode == "upsert":
        extra.update({"iceberg.tables.upsert-mode-enabled": "true", "iceberg.tables.default-id-columns": "id"})
    extra["iceberg.tables.auto-create-props.format-version"] = str(args.format_version)
    create_topic(f"control-{name}")
    worker.start()
    pid = worker.proc.pid
    try:
        catalog = pyiceberg_catalog(catalog_cfg)
        cpu0, start = cpu_seconds(pid), time.monotonic()
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **extra))
        wait_for(lambda: live_rows(catalog, table) == expected_rows, args.timeout,
                 f"{mode}: {expected_rows} live rows", interval=0.5)
        seconds = time.monotonic() - start
        cpu = cpu_seconds(pid) - cpu0
        summary = catalog.load_table(table).current_snapshot().summary
        return {"mode": mode, "records": n, "seconds": seconds, "rate": n / seconds, "cpu_s_per_m": cpu / n * 1e6,
                "peak_rss_mb": status_kb(pid, "VmHWM") / 1024, "rows": expected_rows,
                "data_files": int(summary["total-data-files"]), "delete_files": int(summary.get("total-delete-files", "0")),
                "position_deletes": int(summary.get("total-position-deletes", "0")),
                "metadata": catalog.load_table(table).metadata_location, "catalog": catalog_cfg, "table": table}
    finally:
        worker.stop()
        delete_topics(f"control-{name}")


def compact(result: dict, workdir: Path) -> dict:
    """`floe table compact` on a benchmark table (what the coordinator does at its next
    compaction): the report, with the new metadata location and the time it took."""
    import subprocess

    cfile = workdir / "compact.json"
    cfile.write_text(json.dumps({"name": "compact", "config": result["catalog"]}))
    t = time.monotonic()
    out = subprocess.run([os.environ["FLOE_BIN"], "table", "compact", str(cfile), result["table"], "--json"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    report["seconds"] = time.monotonic() - t
    catalog = pyiceberg_catalog(result["catalog"])
    report["metadata"] = catalog.load_table(result["table"]).metadata_location
    report["data_files"], report["delete_files"] = (
        int(catalog.load_table(result["table"]).current_snapshot().summary.get(k) or 0)
        for k in ("total-data-files", "total-delete-files"))
    return report


def scan_seconds(metadata_location: str, repeats: int,
                 select: str = "count(*), sum(version), sum(length(payload))") -> tuple[float, int]:
    """The median time of `repeats` DuckDB scans (`SELECT <select>`, whose first column is the
    row count) of the table whose metadata file is `metadata_location`, and the rows read."""
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    con = duckdb.connect()
    for ext in (duckdb_extension_avro, duckdb_extension_iceberg):
        path, = glob.glob(os.path.join(os.path.dirname(ext.__file__), "extensions", "*", "*.duckdb_extension"))
        con.execute(f"LOAD '{path}'")
    location = metadata_location.removeprefix("file://")
    times, rows = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        rows = con.execute(f"SELECT {select} FROM iceberg_scan('{location}')").fetchone()[0]
        times.append(time.perf_counter() - t)
    return statistics.median(times), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upsert", action="store_true", help="(selects this benchmark in bench/run)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--commit-interval-ms", type=int, default=2000)
    ap.add_argument("--scan-repeats", type=int, default=5)
    ap.add_argument("--format-version", type=int, default=2, choices=(2, 3),
                    help="of the tables: 2 writes position delete files, 3 deletion vectors")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if args.smoke:
        args.records = 20_000
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = Path(args.out) / f"work-upsert-{started}"
    rows, final = changes(args.records)
    topic, final_topic = unique("bench-upsert"), unique("bench-final")
    create_topic(topic, args.partitions)
    create_topic(final_topic, args.partitions)
    try:
        t = time.monotonic()
        produce_all(topic, rows)
        produce_all(final_topic, sorted(final.items()))
        print(f"upsert: preloaded {args.records:,} changes of {len(final):,} keys in {time.monotonic() - t:.1f} s", flush=True)
        append = run("append", topic, args.records, args.records, args, work / "append")
        upsert = run("upsert", topic, args.records, len(final), args, work / "upsert")
        baseline = run("final", final_topic, len(final), len(final), args, work / "final")
        for r in (append, upsert):
            print(f"upsert: {r['mode']}: {r['rate']:,.0f} records/s, CPU {r['cpu_s_per_m']:.2f} s/M, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        scan_upsert, n_upsert = scan_seconds(upsert["metadata"], args.scan_repeats)
        scan_final, n_final = scan_seconds(baseline["metadata"], args.scan_repeats)
        assert n_upsert == n_final == len(final), (n_upsert, n_final, len(final))
        compacted = compact(upsert, work / "upsert")
        scan_compacted, n_compacted = scan_seconds(compacted["metadata"], args.scan_repeats)
        assert n_compacted == len(final), (n_compacted, len(final))
    finally:
        delete_topics(topic, final_topic)
    lines = [f"# Floe upsert benchmark, {started}", "",
             f"{args.records:,} changes (~1 KB, 30 % updates of earlier keys) of {len(final):,} keys; "
             f"{args.partitions} partitions, {args.tasks} tasks, commit interval {args.commit_interval_ms} ms; "
             f"format version {args.format_version}; "
             f"{os.cpu_count()} cores.", "",
             "| mode | records/s | CPU s / M records | peak RSS MB | rows | data files | delete files | position deletes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in (append, upsert):
        lines.append(f"| {r['mode']} | {fmt(r['rate'], 0)} | {fmt(r['cpu_s_per_m'], 2)} | {fmt(r['peak_rss_mb'])} | "
                     f"{fmt(r['rows'])} | {fmt(r['data_files'])} | {fmt(r['delete_files'])} | {fmt(r['position_deletes'])} |")
    lines += ["", f"Upsert/append rate: {upsert['rate'] / append['rate']:.2f}; CPU per record: "
              f"{upsert['cpu_s_per_m'] / append['cpu_s_per_m']:.2f}.", "",
              "| table (same final rows) | DuckDB full scan s (median of " + str(args.scan_repeats) + ") |", "|---|---|",
              f"| upserted (data files + {'deletion vectors' if args.format_version == 3 else 'position deletes'}) | {scan_upsert:.3f} |",
              (f"| upserted, then `floe table compact` (skipped: {compacted['skipped']}) | {scan_compacted:.3f} |"
               if compacted.get("skipped") else
               f"| upserted, then compacted by `floe table compact` ({compacted['data_files']} data files, "
               f"{compacted['delete_files']} delete files; the compaction took {compacted['seconds']:.1f} s) | {scan_compacted:.3f} |"),
              f"| written by plain appends | {scan_final:.3f} |", "",
              f"Scan-time ratio upserted/appended: {scan_upsert / scan_final:.2f} as the stream left it, "
              f"{scan_compacted / scan_final:.2f} after compaction (goal: at most 1.2)."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"upsert-{started}.md").write_text(text)
    (out / f"upsert-{started}.json").write_text(json.dumps(
        {"append": append, "upsert": upsert, "final": baseline, "compacted": compacted, "scan_upsert_s": scan_upsert,
         "scan_compacted_s": scan_compacted, "scan_final_s": scan_final},
        indent=2))


if __name__ == "__main__":
    main()
