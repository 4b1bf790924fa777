"""`GET /metrics` (docs/metrics.md): the worker's metrics in the Prometheus text format, under the
names Strimzi's JMX exporter rules give a Java worker, so Strimzi's Kafka Connect dashboard and
alert rules (their queries are kept in fixtures/strimzi_connect_queries.json, with their source)
work unchanged."""

import json
import re
from pathlib import Path

import requests

from harness import (
    Worker, connector_config, create_topic, delete_topics, free_port, produce, pyiceberg_catalog, read_rows,
    sqlite_catalog_config, unique, wait_for,
)

FIXTURE = Path(__file__).parent / "fixtures" / "strimzi_connect_queries.json"
# What a worker cannot answer: the container's and Strimzi's own resources' series (scraped from
# cAdvisor and kube-state-metrics), and the JVM's (Floe answers process_* instead).
NOT_THE_WORKERS = ("cadvisor", "kube-state-metrics", "jvm")
# Queried by Strimzi, not answered yet (docs/metrics.md): Floe's admin clients are short-lived.
NOT_YET = {"kafka_admin_client_connection_count"}
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def scrape(worker) -> dict[str, list[tuple[dict, float]]]:
    r = worker.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    out: dict[str, list[tuple[dict, float]]] = {}
    types = {}
    for line in r.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"{name} typed twice"
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample: {line!r}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        family = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        assert m.group(1) in types or types.get(family) == "histogram", f"{m.group(1)} has no TYPE line"
        out.setdefault(m.group(1), []).append((labels, float(m.group(4))))
    return out


def value(metrics, name, **labels) -> float:
    found = [v for l, v in metrics.get(name, []) if all(l.get(k) == str(w) for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found} in {metrics.get(name)}"
    return found[0]


def test_metrics_answer_strimzis_dashboard_and_alerts(tmp_path):
    topic, name, table = unique("metrics"), unique("sink"), f"db_{unique('ns')}.events"
    create_topic(topic, partitions=2)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    metrics_port = free_port()
    dlq = unique("metrics-dlq")
    dlq_client = f"connector-dlq-producer-{name}-0"
    worker = Worker(tmp_path, {"floe.metrics.listener": f"http://127.0.0.1:{metrics_port}"}).start()
    try:
        worker.create_connector(name, connector_config(topic, table, catalog_cfg, **{
            "tasks.max": "1", "errors.tolerance": "all", "floe.maintenance.interval-ms": "2000",
            "errors.deadletterqueue.topic.name": dlq, "errors.deadletterqueue.topic.replication.factor": "1",
        }))
        # The metrics-only listener (floe.metrics.listener): /metrics and nothing else.
        own = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert own.status_code == 200 and "kafka_connect_worker_connector_count" in own.text, own.text[:500]
        assert requests.get(f"http://127.0.0.1:{metrics_port}/connectors", timeout=10).status_code == 404
        worker.wait_running(name, tasks=1)
        produce(topic, [{"id": i} for i in range(100)])
        produce(topic, [b"{not json"])
        wait_for(lambda: len(read_rows(pyiceberg_catalog(catalog_cfg), table)) == 100, 60, "100 rows")
        def reported(s):
            positive = lambda name: any(v > 0 for _, v in s.get(name, []))  # noqa: E731
            dlq_bytes = [v for l, v in s.get("kafka_producer_outgoing_byte_total", []) if l["clientId"] == dlq_client]
            return (positive("kafka_consumer_incoming_byte_total") and positive("kafka_producer_outgoing_byte_total")
                    and s.get("floe_table_data_files") and dlq_bytes and dlq_bytes[0] > 0)
        # Clients report their statistics every 15 s (a producer when it next commits).
        m = wait_for(lambda: (s := scrape(worker)) and reported(s) and s, 90,
                     "the clients' statistics and the table's health")
        assert value(m, "kafka_connect_worker_connector_count") == 1
        assert value(m, "kafka_connect_worker_task_count") == 1
        assert value(m, "kafka_connect_connector_status", connector=name, status="running") == 1
        assert value(m, "kafka_connect_connector_task_status", connector=name, task=0, status="running") == 1
        assert value(m, "kafka_connect_connector_connector_class", connector=name,
                     connector_class="org.apache.iceberg.connect.IcebergSinkConnector") == 1
        assert value(m, "kafka_connect_worker_connector_running_task_count", connector=name) == 1
        assert value(m, "kafka_connect_worker_connector_failed_task_count", connector=name) == 0
        assert value(m, "kafka_connect_sink_task_sink_record_read_total", connector=name, task=0) == 101
        assert value(m, "kafka_connect_sink_task_partition_count", connector=name, task=0) == 2
        assert value(m, "kafka_connect_task_error_total_record_failures", connector=name, task=0) == 1
        assert value(m, "kafka_connect_task_error_total_records_skipped", connector=name, task=0) == 1
        assert value(m, "kafka_connect_sink_task_put_batch_avg_time_ms", connector=name, task=0) > 0
        assert value(m, "process_resident_memory_bytes") > 10e6
        assert value(m, "process_threads") >= 1
        client = f"connector-consumer-{name}-0"
        assert value(m, "kafka_consumer_incoming_byte_total", clientId=client) > 0
        assert value(m, "kafka_consumer_connection_count", clientId=client) >= 1
        assert sum(v for _, v in m["kafka_producer_outgoing_byte_total"]) > 0

        # The sink's own: commits and the table's health.
        assert value(m, "floe_sink_records_committed_total", connector=name, table=table) == 100
        assert value(m, "floe_sink_commits_total", connector=name, table=table) >= 1
        assert value(m, "floe_table_records", connector=name, table=table) == 100
        assert value(m, "floe_sink_commit_lag_seconds", connector=name, table=table) >= 0
        assert value(m, "floe_sink_commit_in_progress", connector=name) in (0, 1)
        assert value(m, "floe_task_records_buffered", connector=name, task=0) >= 0
        assert value(m, "floe_task_bytes_buffered", connector=name, task=0) >= 0
        # Every data file committed, in the size histogram (its buckets cumulative).
        files = value(m, "floe_sink_data_files_committed_total", connector=name, table=table)
        assert value(m, "floe_sink_data_file_size_bytes_count", connector=name, table=table) == files
        assert value(m, "floe_sink_data_file_size_bytes_bucket", connector=name, table=table, le="+Inf") == files
        assert value(m, "floe_sink_data_file_size_bytes_bucket", connector=name, table=table, le="65536") == files
        assert value(m, "floe_table_freshness_seconds", connector=name, table=table) >= 0

        # Every metric Strimzi's dashboard and alerts query that a worker can answer.
        fixture = json.loads(FIXTURE.read_text())
        kinds = fixture["metric_kinds"]
        answered, not_answered = [], []
        for q in fixture["dashboard"] + fixture["alerts"] + fixture["templating"]:
            for metric in q["metrics"]:
                if kinds.get(metric) in NOT_THE_WORKERS or metric in NOT_YET:
                    continue
                (answered if metric in m else not_answered).append(metric)
        print(f"Strimzi queries: answered {sorted(set(answered))}; not answered {sorted(set(not_answered))}")
        assert not not_answered, sorted(set(not_answered))
        for metric in set(answered):
            if kinds.get(metric) == "counter":
                assert metric.endswith("_total"), metric

        # A deleted connector's series go.
        worker.delete(f"/connectors/{name}")
        wait_for(lambda: not {"kafka_connect_sink_task_sink_record_read_total", "floe_sink_commits_total",
                              "floe_sink_commit_in_progress", "floe_task_records_buffered"}
                 & set(scrape(worker)), 30, "the task's and the coordinator's series to go")
        assert value(scrape(worker), "kafka_connect_worker_connector_count") == 0
    finally:
        worker.stop()
        delete_topics(topic, dlq)
