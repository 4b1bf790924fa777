"""Table maintenance (docs/maintenance.md): the coordinator compacts the tables it commits —
small files bin-packed, deletes applied — in `replace` snapshots, and `floe table compact` does
the same for any table. Every reader (PyIceberg, DuckDB, Iceberg's generic reader) reads exactly
the produced rows before and after."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import (
    FLOE_BIN, Worker, connector_config, create_topic, delete_topics, java_rows, produce, pyiceberg_catalog,
    read_rows, sqlite_catalog_config, unique, wait_for,
)
from test_upserts import Changes, assert_every_reader, duckdb_rows, wait_committed


def live_files(catalog, table):
    """(data files, delete files) of the current snapshot."""
    tbl = catalog.load_table(table)
    s = tbl.current_snapshot().summary
    return int(s.get("total-data-files") or 0), int(s.get("total-delete-files") or 0)


def files_on_disk_and_reached(catalog, table):
    """(files under the table's location, files its snapshots reach). A snapshot reaches its
    manifest list, its manifests and the files they list as live: an entry DELETED in a kept
    manifest (a compaction's `replace` lists the files it rewrote so) reaches nothing."""
    import os

    tbl = catalog.load_table(table)
    reached = set()
    for snap in tbl.metadata.snapshots:
        reached.add(snap.manifest_list)
        for m in snap.manifests(tbl.io):
            reached.add(m.manifest_path)
            reached.update(e.data_file.file_path for e in m.fetch_manifest_entry(tbl.io, discard_deleted=True))
    root = tbl.metadata.location.removeprefix("file://")
    on_disk = set()
    for d, _, names in os.walk(root):
        for n in names:
            if not n.endswith(".metadata.json") and not n.startswith("."):
                on_disk.add("file://" + os.path.join(d, n))
    return on_disk, {p if p.startswith("file://") else "file://" + p for p in reached}


def assert_files_match(catalog, table):
    """The files under the table's location are exactly those its snapshots reach (no file of
    an expired snapshot left behind, none a kept snapshot needs gone)."""
    on_disk, reached = files_on_disk_and_reached(catalog, table)
    assert on_disk == reached, f"left behind: {sorted(on_disk - reached)[:5]}; missing: {sorted(reached - on_disk)[:5]}"


def operations(catalog, table):
    tbl = catalog.load_table(table)
    return [s.summary.operation.value for s in sorted(tbl.metadata.snapshots, key=lambda s: s.sequence_number)]


def test_the_coordinator_compacts_a_stream_without_losing_or_repeating_a_row(tmp_path):
    """A stream committing every second for 90 s into a partitioned table, compaction every
    4 s: the small files of each partition are rewritten while the stream goes on, the file
    count stays bounded, every compaction's snapshot holds exactly the rows of the snapshot it
    replaced, and every reader reads every produced row once."""
    topic, name, table = unique("compact"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path).start()
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "tasks.max": "2",
            "iceberg.control.commit.interval-ms": "1000",
            "iceberg.tables.default-partition-by": "region",
            "floe.maintenance.interval-ms": "4000",
        }))
        sent, most_files = 0, 0
        catalog = pyiceberg_catalog(catalog_cfg)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            produce(topic, [{"id": sent + i, "region": ("eu", "us", "ap")[(sent + i) % 3]} for i in range(200)],
                    keys=[str(sent + i) for i in range(200)])
            sent += 200
            time.sleep(0.5)
            try:
                most_files = max(most_files, live_files(catalog, table)[0])
            except Exception:  # noqa: BLE001 - not created yet
                pass
        want = sorted(range(sent))

        def settled():
            rows = read_rows(pyiceberg_catalog(catalog_cfg), table)
            return sorted(r["id"] for r in rows) == want
        wait_for(settled, 90, f"{table} to hold the {sent} rows")
        ops = operations(catalog, table)
        assert "replace" in ops, ops
        # Once the stream stops, the next compactions leave each of the 3 partitions fewer new
        # small files than min-input-files (5) beside the few larger ones compacted before
        # (size-tiered: a file larger than all the smaller ones together waits).
        wait_for(lambda: live_files(pyiceberg_catalog(catalog_cfg), table)[0] <= 3 * 7, 60,
                 "at most 7 files per partition after the stream")
        ops = operations(pyiceberg_catalog(catalog_cfg), table)
        files = live_files(pyiceberg_catalog(catalog_cfg), table)[0]
        for reader, rows in (("pyiceberg", read_rows(pyiceberg_catalog(catalog_cfg), table)),
                             ("duckdb", duckdb_rows(pyiceberg_catalog(catalog_cfg), table)),
                             ("iceberg-generics", java_rows(catalog_cfg, table))):
            ids = sorted(r["id"] for r in rows)
            assert ids == want, f"{reader}: {len(ids)} rows, {len(set(ids))} distinct, {sent} produced"
        # Before and after every compaction: the same rows.
        tbl = pyiceberg_catalog(catalog_cfg).load_table(table)
        for snap in tbl.metadata.snapshots:
            if snap.summary.operation.value == "replace":
                at = lambda sid: sorted(r["id"] for r in tbl.scan(snapshot_id=sid).to_arrow().to_pylist())
                assert at(snap.snapshot_id) == at(snap.parent_snapshot_id), f"compaction {snap.snapshot_id}"
        print(f"compaction while streaming: rows {sent}, commits {ops.count('append')}, compactions "
              f"{ops.count('replace')}, most live data files {most_files}, data files at the end {files}")
        # Without compaction the table would hold a file per task, partition and commit.
        assert ops.count("append") * 3 > 3 * 4
    finally:
        worker.stop()
        delete_topics(topic)


def lineage(catalog_cfg, table, snapshot_id):
    """Each row's (_row_id, _last_updated_sequence_number) by id in a snapshot, as Iceberg's
    reader derives them."""
    return {r["id"]: (r["_row_id"], r["_last_updated_sequence_number"])
            for r in java_rows(catalog_cfg, table, lineage=True, snapshot_id=snapshot_id)}


@pytest.mark.parametrize("version", [2, 3], ids=["v2", "v3"])
def test_compaction_applies_the_deletes_of_an_upserted_table(tmp_path, version):
    """Upserts leave position delete files (v2) or deletion vectors (v3); compaction rewrites
    the files they point into with the deleted rows gone, and removes the delete files. On v3
    every row keeps its lineage: the same _row_id and _last_updated_sequence_number after as
    before, as Iceberg's own reader derives them."""
    topic, name, table = unique("ucompact"), unique("sink"), f"db_{unique('ns')}.items"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path).start()
    changes = Changes(topic)
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "tasks.max": "2",
            "iceberg.tables.upsert-mode-enabled": "true",
            "iceberg.tables.cdc-field": "op",
            "iceberg.tables.default-id-columns": "id",
            "iceberg.control.commit.interval-ms": "1000",
            "floe.maintenance.interval-ms": "6000",
            "iceberg.tables.auto-create-props.format-version": str(version),
        }))
        changes.send([("I", i, f"v0-{i}", "eu") for i in range(1000)])
        wait_committed(catalog_cfg, table, changes)
        for step in range(1, 5):
            changes.send([("U", i, f"v{step}-{i}", "eu") for i in range(step, 1000, 7)] +
                         [("D", i, "", "eu") for i in range(1000 - step * 20, 1000 - step * 20 + 10)])
            wait_committed(catalog_cfg, table, changes)
        catalog = pyiceberg_catalog(catalog_cfg)
        before = live_files(catalog, table)
        assert catalog.load_table(table).metadata.format_version == version
        wait_for(lambda: live_files(pyiceberg_catalog(catalog_cfg), table)[1] == 0, 60,
                 "a compaction that applies every delete")
        after = live_files(pyiceberg_catalog(catalog_cfg), table)
        assert_every_reader(catalog_cfg, table, changes.expected, ("id", "payload"))
        if version == 3:
            # The compaction that applied the last deletes, read as of it and as of the snapshot
            # it replaced: the same rows with the same lineage.
            tbl = pyiceberg_catalog(catalog_cfg).load_table(table)
            last = max((s for s in tbl.metadata.snapshots if s.summary.operation.value == "replace"),
                       key=lambda s: s.sequence_number)
            ids_after = lineage(catalog_cfg, table, last.snapshot_id)
            ids_before = lineage(catalog_cfg, table, last.parent_snapshot_id)
            assert len(ids_after) == len(changes.expected)
            assert ids_after == ids_before, "a compaction changed rows' lineage"
            assert len({row_id for row_id, _ in ids_after.values()}) == len(ids_after)
        summary = pyiceberg_catalog(catalog_cfg).load_table(table).current_snapshot().summary
        print(f"upserted table compacted: (data, delete) files before {before}, after {after}; "
              f"rows {len(changes.expected)}, total-records {summary.get('total-records')}")
        assert int(summary.get("total-records")) == len(changes.expected)
        # Later upserts resolve against the compacted files.
        changes.send([("U", i, f"v9-{i}", "eu") for i in range(0, 1000, 5)])
        wait_committed(catalog_cfg, table, changes)
        assert_every_reader(catalog_cfg, table, changes.expected, ("id", "payload"))
    finally:
        worker.stop()
        delete_topics(topic)


def test_floe_table_compact_from_the_command_line(tmp_path):
    """`floe table compact` with `--dry-run` plans without touching the table; without it, the
    table is compacted, read alike by every reader, and reported as JSON."""
    topic, name, table = unique("clicompact"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=1)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{"floe.maintenance.compaction.enabled": "false"})
    worker = Worker(tmp_path).start()
    try:
        worker.create_connector(name, config)
        for batch in range(6):
            produce(topic, [{"id": batch * 100 + i, "v": f"x{i}"} for i in range(100)])
            wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == (batch + 1) * 100, 60,
                     f"batch {batch} committed")
    finally:
        worker.stop()
        delete_topics(topic)
    cfile = tmp_path / "connector.json"
    cfile.write_text(json.dumps({"name": name, "config": config}))
    catalog = pyiceberg_catalog(catalog_cfg)
    files_before, _ = live_files(catalog, table)
    snapshots_before = len(catalog.load_table(table).metadata.snapshots)

    def floe_table(*args):
        out = subprocess.run([str(FLOE_BIN), "table", "compact", str(cfile), table, *args],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    plan = json.loads(floe_table("--dry-run", "--json"))
    assert plan["data_files_rewritten"] == files_before == 6, plan
    assert plan["snapshot_id"] is None
    assert len(pyiceberg_catalog(catalog_cfg).load_table(table).metadata.snapshots) == snapshots_before
    done = json.loads(floe_table("--json"))
    assert done["data_files_written"] == 1 and done["rows"] == 600, done
    catalog = pyiceberg_catalog(catalog_cfg)
    assert live_files(catalog, table) == (1, 0)
    assert operations(catalog, table)[-1] == "replace"
    want = sorted(range(600))
    for reader, rows in (("pyiceberg", read_rows(catalog, table)), ("duckdb", duckdb_rows(catalog, table)),
                         ("iceberg-generics", java_rows(catalog_cfg, table))):
        assert sorted(r["id"] for r in rows) == want, reader
    # Nothing left to do.
    assert "nothing to compact" in floe_table()
    print(f"floe table compact: {files_before} files into {done['data_files_written']}, {done['rows']} rows")
    # Expiry: the compaction's snapshot carries no offsets, so the last append (which does)
    # stays with it; the older appends go.
    out = subprocess.run([str(FLOE_BIN), "table", "expire-snapshots", str(cfile), table, "--older-than-ms", "0",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    expired = json.loads(out.stdout)
    assert (expired["snapshots_expired"], expired["snapshots_kept"], expired["kept_for_offsets"]) == (5, 2, 1), expired
    catalog = pyiceberg_catalog(catalog_cfg)
    assert len(catalog.load_table(table).metadata.snapshots) == 2
    assert sorted(r["id"] for r in java_rows(catalog_cfg, table)) == want
    assert_files_match(catalog, table)
    print(f"floe table expire-snapshots: {expired}")


def test_the_coordinator_expires_snapshots_and_keeps_its_offsets(tmp_path):
    """A table whose snapshots expire after 1 ms (`history.expire.max-snapshot-age-ms`, set at
    creation): the coordinator compacts and expires between commits, keeps the chain down to
    its offsets, deletes what only expired snapshots reached, and a new worker continues the
    stream exactly once. With `write.metadata.delete-after-commit.enabled`, metadata versions
    that leave the log (`write.metadata.previous-versions-max` 2) are deleted on commit."""
    topic, name, table = unique("expire"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=1)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "floe.maintenance.interval-ms": "3000",
        "iceberg.tables.auto-create-props.history.expire.max-snapshot-age-ms": "1",
        "iceberg.tables.auto-create-props.write.metadata.delete-after-commit.enabled": "true",
        "iceberg.tables.auto-create-props.write.metadata.previous-versions-max": "2",
    })
    worker = Worker(tmp_path).start()
    sent = 0
    try:
        worker.create_connector(name, config)
        for batch in range(8):
            produce(topic, [{"id": sent + i} for i in range(100)])
            sent += 100
            wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == sent, 60, f"batch {batch}")
        catalog = pyiceberg_catalog(catalog_cfg)
        # 8 commits (and compactions): expiry leaves the head and, if the head is a compaction,
        # the last commit below it.
        wait_for(lambda: len(pyiceberg_catalog(catalog_cfg).load_table(table).metadata.snapshots) <= 2, 60,
                 "expiry to leave the head and the last commit")
        # The expired snapshots' files are deleted after the commit that removes them.
        wait_for(lambda: assert_files_match(pyiceberg_catalog(catalog_cfg), table) or True, 30,
                 "the files only expired snapshots reached to be deleted")
        catalog = pyiceberg_catalog(catalog_cfg)
        kept = operations(catalog, table)
        # Metadata versions beyond the last two went with the commits that dropped them.
        metadata_files = list(Path(table_dir(catalog, table), "metadata").glob("*.metadata.json"))
        assert len(metadata_files) <= 3, sorted(p.name for p in metadata_files)
    finally:
        worker.stop()
    # A new worker: the coordinator finds its offsets through the kept chain.
    worker = Worker(tmp_path).start()
    try:
        worker.create_connector(name, config)
        produce(topic, [{"id": sent + i} for i in range(100)])
        sent += 100
        wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) >= sent, 60, "the last batch")
        ids = sorted(r["id"] for r in read_rows(pyiceberg_catalog(catalog_cfg), table))
        assert ids == list(range(sent)), f"{len(ids)} rows, {len(set(ids))} distinct, {sent} produced"
        print(f"expiry: {sent} rows, snapshots kept after the stream {kept}")
    finally:
        worker.stop()
        delete_topics(topic)


def test_expiry_deletes_the_files_a_kept_compaction_rewrote(tmp_path):
    """A 25 s stream (2 tasks, bucket(id, 4), 1 s commits, maintenance every 3 s, snapshots
    expiring after 8 s). A compaction's `replace` snapshot lists the files it rewrote as
    DELETED and outlives the appends that added them (the appends after it carry its manifest
    on): once those appends expire, no kept snapshot reaches the files, and expiry deletes
    them, not orphan removal days later. With the worker stopped, no unreached file older than
    the oldest kept snapshot is on disk (one younger is a compaction cut short by the stop),
    and every reached file is."""
    import os

    topic, name, table = unique("expirecompact"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    worker = Worker(tmp_path).start()
    sent = 0
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "tasks.max": "2",
            "iceberg.tables.default-partition-by": "bucket(id, 4)",
            "floe.maintenance.interval-ms": "3000",
            "floe.maintenance.remove-orphans.enabled": "false",
            "iceberg.tables.auto-create-props.history.expire.max-snapshot-age-ms": "8000",
        }))
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            produce(topic, [{"id": sent + i} for i in range(100)], keys=[str(sent + i) for i in range(100)])
            sent += 100
            time.sleep(0.5)
        wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == sent, 60, f"the {sent} rows")
    finally:
        worker.stop()
        delete_topics(topic)
    catalog = pyiceberg_catalog(catalog_cfg)
    assert sorted(r["id"] for r in read_rows(catalog, table)) == list(range(sent))
    ops = operations(catalog, table)
    tbl = catalog.load_table(table)
    assert "replace" in ops, ops
    assert min(s.sequence_number for s in tbl.metadata.snapshots) > 1, "no snapshot expired"
    oldest_kept_ms = min(s.timestamp_ms for s in tbl.metadata.snapshots)
    on_disk, reached = files_on_disk_and_reached(catalog, table)
    left = sorted(p for p in on_disk - reached
                  if os.path.getmtime(p.removeprefix("file://")) * 1000 < oldest_kept_ms)
    assert not left, f"{len(left)} of {len(on_disk)} files reached only by expired snapshots left behind: {left[:5]}"
    assert not reached - on_disk, f"reached files gone: {sorted(reached - on_disk)[:5]}"
    print(f"expiry after compaction: {sent} rows, kept snapshots {ops}, {len(on_disk)} files on disk")


@pytest.mark.parametrize("value", ["maybe"])
def test_a_bad_maintenance_key_is_a_validation_error(tmp_path, value):
    worker = Worker(tmp_path).start()
    try:
        config = connector_config("t", "db.t", sqlite_catalog_config(tmp_path),
                                  **{"floe.maintenance.compaction.enabled": value})
        r = worker.put("/connector-plugins/IcebergSinkConnector/config/validate", config)
        assert r.status_code == 200, r.text
        errors = {c["value"]["name"]: c["value"]["errors"] for c in r.json()["configs"]}
        assert errors["floe.maintenance.compaction.enabled"], errors
    finally:
        worker.stop()


def table_dir(catalog, table):
    import os

    return os.path.normpath(catalog.load_table(table).metadata.location.removeprefix("file:"))


def plant(path, age_s):
    """A file no metadata references, last modified `age_s` seconds ago."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not referenced")
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def assert_reached_on_disk(catalog, table):
    """Every file the table's snapshots (and metadata log) reach is on disk."""
    import os

    tbl = catalog.load_table(table)
    reached = set()
    for snap in tbl.metadata.snapshots:
        reached.add(snap.manifest_list)
        for m in snap.manifests(tbl.io):
            reached.add(m.manifest_path)
            reached.update(e.data_file.file_path for e in m.fetch_manifest_entry(tbl.io))
    missing = [p for p in reached if not os.path.exists(p.removeprefix("file:").replace("//", "/", 1)
                                                          if p.startswith("file://") else p)]
    assert not missing, f"referenced files gone: {missing[:5]}"


def test_orphan_files_go_and_in_flight_files_stay(tmp_path):
    """The coordinator removes files under the table's location that no metadata references and
    that are older than the safety age (a crashed task's data file, a stray metadata file), and
    keeps younger ones (a task's file waiting for its commit); the stream goes on, every
    referenced file stays, every row is read once. Then `floe table remove-orphans` does the same
    from the command line, `--dry-run` first."""
    topic, name, table = unique("orphans"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "tasks.max": "2",
        "iceberg.control.commit.interval-ms": "1000",
        "iceberg.control.commit.timeout-ms": "5000",
        "floe.maintenance.interval-ms": "2000",
        "floe.maintenance.remove-orphans.interval-ms": "2000",
        "floe.maintenance.remove-orphans.older-than-ms": "600000",
    })
    worker = Worker(tmp_path).start()
    sent = 0
    try:
        worker.create_connector(name, config)
        produce(topic, [{"id": i} for i in range(100)])
        sent = 100
        wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == sent, 60, "the first batch")
        root = Path(table_dir(pyiceberg_catalog(catalog_cfg), table))
        old_data = plant(root / "data" / "00000-crashed-task.parquet", 3600)
        old_meta = plant(root / "metadata" / "99999-stray.metadata.json", 3600)
        young = plant(root / "data" / "00001-in-flight.parquet", 0)
        for batch in range(5):
            produce(topic, [{"id": sent + i} for i in range(100)])
            sent += 100
            time.sleep(1)
        wait_for(lambda: not old_data.exists() and not old_meta.exists(), 60, "the old orphans to go")
        wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == sent, 60, "every batch")
        assert young.exists(), "a file younger than the safety age was deleted"
        assert "orphan files removed" in worker.log()
        assert "table health" in worker.log()
    finally:
        worker.stop()
        delete_topics(topic)
    catalog = pyiceberg_catalog(catalog_cfg)
    assert_reached_on_disk(catalog, table)
    assert sorted(r["id"] for r in read_rows(catalog, table)) == list(range(sent))

    cfile = tmp_path / "connector.json"
    cfile.write_text(json.dumps({"name": name, "config": config}))
    old = plant(root / "data" / "sub" / "00002-lost-commit.parquet", 3 * 24 * 3600 + 60)

    def remove_orphans(*args):
        out = subprocess.run([str(FLOE_BIN), "table", "remove-orphans", str(cfile), table, "--json", *args],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    plan = remove_orphans("--dry-run")
    # Too young: the planted in-flight file, and any file of a commit the stop cut short.
    assert plan["orphans"] == 1 and plan["too_young"] >= 1, plan
    assert plan["orphan_paths"] == [str(old)], plan
    assert old.exists()
    done = remove_orphans()
    assert (done["orphans"], done["failed"]) == (1, 0), done
    assert not old.exists() and young.exists()
    # With a safety age of 0 the young file goes too; every referenced file stays.
    assert remove_orphans("--older-than-ms", "0")["orphans"] == plan["too_young"]
    assert not young.exists()
    catalog = pyiceberg_catalog(catalog_cfg)
    assert_reached_on_disk(catalog, table)
    want = list(range(sent))
    for reader, rows in (("pyiceberg", read_rows(catalog, table)), ("duckdb", duckdb_rows(catalog, table)),
                         ("iceberg-generics", java_rows(catalog_cfg, table))):
        assert sorted(r["id"] for r in rows) == want, reader
    print(f"orphans: coordinator and CLI removed the old orphans, kept the young file; {sent} rows")


def test_orphan_removal_leaves_other_tables_alone(tmp_path):
    """The SQL catalog puts `<ns>.p.c` (namespace `<ns>.p`) inside `<ns>.p`'s directory, and
    `<ns>.p.data` in `<ns>.p`'s data directory itself. With every file of the three tables older
    than the safety age, the coordinator's orphan removal runs on each (a planted orphan of each
    goes) and `floe table remove-orphans --older-than-ms 0` runs on `<ns>.p`: every table still
    reads back exactly. A table located at the warehouse itself is refused."""
    ns = f"db_{unique('ns')}"
    tables = [f"{ns}.p", f"{ns}.p.c", f"{ns}.p.data"]
    topic, name = unique("orphans"), unique("sink")
    create_topic(topic)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, ",".join(tables), catalog_cfg, **{
        "floe.maintenance.interval-ms": "1000",
        "floe.maintenance.remove-orphans.interval-ms": "1000",
        "floe.maintenance.remove-orphans.older-than-ms": "600000",
        "floe.maintenance.compaction.enabled": "false",
        "floe.maintenance.expire-snapshots.enabled": "false",
    })
    rows = list(range(50))

    def assert_every_table_whole():
        catalog = pyiceberg_catalog(catalog_cfg)
        for t in tables:
            assert sorted(r["id"] for r in read_rows(catalog, t)) == rows, t
            assert_reached_on_disk(catalog, t)

    worker = Worker(tmp_path).start()
    try:
        worker.create_connector(name, config)
        produce(topic, [{"id": i} for i in rows])
        for t in tables:
            wait_for(lambda t=t: len(read_rows(pyiceberg_catalog(catalog_cfg), t)) == len(rows), 90, f"{t} committed")
        catalog = pyiceberg_catalog(catalog_cfg)
        dirs = {t: Path(table_dir(catalog, t)) for t in tables}
        assert dirs[f"{ns}.p.c"].parent == dirs[f"{ns}.p"] and dirs[f"{ns}.p.data"] == dirs[f"{ns}.p"] / "data"
        # Every row is committed, so no file is in flight: age them all past the safety age.
        import os

        old = time.time() - 3600
        for d, _, names in os.walk(dirs[f"{ns}.p"]):
            for n in names:
                os.utime(os.path.join(d, n), (old, old))
        planted = [plant(dirs[f"{ns}.p"] / "metadata" / "00000-stray.avro", 3600),
                   plant(dirs[f"{ns}.p.c"] / "data" / "00000-crashed.parquet", 3600),
                   plant(dirs[f"{ns}.p.data"] / "data" / "00000-crashed.parquet", 3600)]
        wait_for(lambda: not any(p.exists() for p in planted), 90, "each table's planted orphan to go")
        assert_every_table_whole()
    finally:
        worker.stop()
        delete_topics(topic)

    cfile = tmp_path / "connector.json"
    cfile.write_text(json.dumps({"name": name, "config": config}))

    def remove_orphans(table, *args):
        return subprocess.run([str(FLOE_BIN), "table", "remove-orphans", str(cfile), table, "--json", *args],
                              capture_output=True, text=True, timeout=120)

    out = remove_orphans(f"{ns}.p", "--older-than-ms", "0")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["other_tables"] == [str(dirs[f"{ns}.p.data"])], report
    assert report["orphans"] == 0, report
    assert_every_table_whole()

    # A table at the warehouse itself: nothing is listed or deleted.
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    warehouse = catalog_cfg["iceberg.catalog.warehouse"]
    pyiceberg_catalog(catalog_cfg).create_table(f"{ns}.at_root", Schema(NestedField(1, "id", LongType())),
                                                location=f"file://{warehouse}")
    out = remove_orphans(f"{ns}.at_root", "--older-than-ms", "0")
    assert out.returncode != 0 and "orphan removal refused" in out.stderr and "warehouse" in out.stderr, out
    assert_every_table_whole()
    print(f"orphans: three nested tables whole after the coordinator's and the CLI's removals; {report}")


def test_a_table_written_by_the_java_sink_is_compacted_then_appended_by_it(tmp_path):
    """The Java sink writes a table in several commits; `floe table compact` rewrites it while
    the Java worker runs; the Java sink then appends on top of the `replace` snapshot. Every
    reader reads every row once, and `floe table health` sees the files before and after."""
    from harness import JavaWorker
    from test_java_takeover import create_table_as_the_java_sink_would, produce_ids

    topic, control, name = unique("javacompact"), unique("control"), unique("sink")
    table = f"db_{unique('ns')}.events"
    create_topic(topic, partitions=1)
    create_topic(control, partitions=1)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    config = connector_config(topic, table, catalog_cfg, **{
        "iceberg.control.topic": control, "iceberg.control.commit.interval-ms": "1000",
    })
    catalog = pyiceberg_catalog(catalog_cfg)
    create_table_as_the_java_sink_would(catalog, table)
    cfile = tmp_path / "connector.json"
    cfile.write_text(json.dumps({"name": name, "config": config}))

    def floe_table(*args):
        out = subprocess.run([str(FLOE_BIN), "table", *args[:1], str(cfile), table, *args[1:]],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    java = JavaWorker(tmp_path)
    try:
        java.start()
        java.create_connector(name, config)
        java.wait_running(name, tasks=1)
        for batch in range(5):
            produce_ids(topic, range(batch * 100, batch * 100 + 100))
            wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == batch * 100 + 100, 120,
                     f"the Java sink to commit batch {batch}")
        before = json.loads(floe_table("health", "--json"))
        assert (before["data_files"], before["small_files"], before["records"]) == (5, 5, 500), before
        assert before["commits_last_hour"] == before["snapshots"] == 5, before
        assert before["freshness_ms"] is not None and before["freshness_ms"] >= 0, before
        done = json.loads(floe_table("compact", "--json"))
        assert (done["data_files_rewritten"], done["data_files_written"], done["rows"]) == (5, 1, 500), done
        after = json.loads(floe_table("health", "--json"))
        assert (after["data_files"], after["compactions_last_hour"], after["data_manifests"]) == (1, 1, 1), after
        assert "data files" in floe_table("health")
        produce_ids(topic, range(500, 600))
        wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == 600, 120,
                 "the Java sink to append after the compaction")
    finally:
        # Every row is committed by now; the Java worker's graceful stop can hang on its REST
        # server, and it is not what this test checks.
        java.stop(signal.SIGKILL)
        delete_topics(topic, control)
        print(f"--- java log ---\n{java.log()[-5000:]}")
    catalog = pyiceberg_catalog(catalog_cfg)
    ops = operations(catalog, table)
    assert ops == ["append"] * 5 + ["replace", "append"], ops
    want = list(range(600))
    for reader, rows in (("pyiceberg", read_rows(catalog, table)), ("duckdb", duckdb_rows(catalog, table)),
                         ("iceberg-generics", java_rows(catalog_cfg, table))):
        assert sorted(r["id"] for r in rows) == want, reader
    print(f"java table: health before {before['data_files']} files, after {after['data_files']}; then appended")


def test_compaction_races_another_writers_commits(tmp_path):
    """Two connectors stream into one table, each committing every second and compacting it
    every 2 s, so a compaction can race the other connector's commits (whether one does depends
    on timing; crates/floe-iceberg/tests/compaction_race.rs makes both cases happen): one whose
    table moved on by appends only is rebased onto them, one that meets the other's rewrite
    gives up and deletes its files, and every row of both topics is read once by every reader."""
    topic_a, topic_b = unique("racea"), unique("raceb")
    table = f"db_{unique('ns')}.events"
    create_topic(topic_a, partitions=1)
    create_topic(topic_b, partitions=1)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    extra = {"iceberg.control.commit.interval-ms": "1000", "floe.maintenance.interval-ms": "2000"}
    name_a, name_b = unique("sinka"), unique("sinkb")
    worker = Worker(tmp_path).start()
    a, b = 0, 0
    try:
        worker.create_connector(name_a, connector_config(topic_a, table, catalog_cfg, **extra))
        produce(topic_a, [{"id": i} for i in range(100)])
        a = 100
        wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == 100, 60, "the table")
        worker.create_connector(name_b, connector_config(topic_b, table, catalog_cfg, **extra))
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            produce(topic_a, [{"id": a + i} for i in range(50)])
            produce(topic_b, [{"id": 1_000_000 + b + i} for i in range(50)])
            a, b = a + 50, b + 50
            time.sleep(0.5)
        want = sorted([*range(a), *range(1_000_000, 1_000_000 + b)])

        def settled():
            return sorted(r["id"] for r in read_rows(pyiceberg_catalog(catalog_cfg), table)) == want
        wait_for(settled, 90, f"{len(want)} rows from both connectors")
        ops = operations(pyiceberg_catalog(catalog_cfg), table)
        assert "replace" in ops, ops
        log = worker.log()
    finally:
        worker.stop()
        delete_topics(topic_a, topic_b)
    catalog = pyiceberg_catalog(catalog_cfg)
    for reader, rows in (("pyiceberg", read_rows(catalog, table)), ("duckdb", duckdb_rows(catalog, table)),
                         ("iceberg-generics", java_rows(catalog_cfg, table))):
        assert sorted(r["id"] for r in rows) == want, reader
    assert_reached_on_disk(catalog, table)
    import re
    rebased = [int(n) for n in re.findall(r"table compacted.*?rebased=(\d+)", log)]
    gave_up = log.count("the table changed while it was compacted")
    print(f"racing compactions: {len(want)} rows, {ops.count('append')} appends, {ops.count('replace')} compactions "
          f"({sum(1 for n in rebased if n)} rebased onto the other connector's appends, {gave_up} gave up)")


def test_expiry_keeps_what_each_branch_keeps_and_removes_aged_refs(tmp_path):
    """Ref-level retention: a branch whose own `min-snapshots-to-keep` is 3 keeps its three
    newest snapshots (and their files) though the table keeps one, and a tag older than its
    `max-ref-age-ms` is removed, as Java's `RemoveSnapshots` does; `main` keeps its head."""
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    catalog_cfg = sqlite_catalog_config(tmp_path)
    catalog = pyiceberg_catalog(catalog_cfg)
    ns = f"db_{unique('ns')}"
    table = f"{ns}.events"
    catalog.create_namespace(ns)
    tbl = catalog.create_table(table, Schema(NestedField(1, "id", LongType(), required=False)))
    ids = []
    for batch in range(6):
        rows = list(range(batch * 10, batch * 10 + 10))
        tbl.append(pa.table({"id": pa.array(rows, pa.int64())}))
        ids.append(tbl.current_snapshot().snapshot_id)
        if batch == 2:
            tbl.manage_snapshots().create_branch(ids[2], "audit", min_snapshots_to_keep=3).commit()
        if batch == 3:
            tbl.manage_snapshots().create_tag(ids[3], "weekly", max_ref_age_ms=1).commit()
        tbl = catalog.load_table(table)
    time.sleep(0.05)
    cfile = tmp_path / "connector.json"
    cfile.write_text(json.dumps({"name": "expiry", "config": connector_config("t", table, catalog_cfg)}))
    out = subprocess.run([str(FLOE_BIN), "table", "expire-snapshots", str(cfile), table, "--older-than-ms", "0",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["refs_removed"] == ["weekly"], report
    tbl = catalog.load_table(table)
    kept = {s.snapshot_id for s in tbl.metadata.snapshots}
    # audit: its three newest (ids 0..2); main: its head.
    assert kept == {ids[0], ids[1], ids[2], ids[5]}, (kept, ids)
    assert set(tbl.metadata.refs) == {"main", "audit"}
    assert sorted(r["id"] for r in tbl.scan(snapshot_id=ids[0]).to_arrow().to_pylist()) == list(range(10))
    assert sorted(r["id"] for r in tbl.scan(snapshot_id=ids[2]).to_arrow().to_pylist()) == list(range(30))
    assert sorted(r["id"] for r in read_rows(catalog, table)) == list(range(60))
    assert_reached_on_disk(catalog, table)
