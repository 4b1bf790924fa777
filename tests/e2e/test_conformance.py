"""REST conformance against the real Java Kafka Connect worker: the same sequence of calls goes to
a Java standalone worker (with the Apache Iceberg sink plugin) and to Floe, on the same broker;
status codes and JSON structure (field names and value types) must match, and values too where
they are deterministic. Differences that remain on purpose are listed in KNOWN_DIFFERENCES and in
docs/rest-api.md; any other difference fails the test with a side-by-side report."""

from __future__ import annotations

import json

import requests

from harness import (
    CONNECTOR_CLASS, JavaWorker, Worker, connector_config, create_topic, delete_topics, sqlite_catalog_config,
    unique, wait_for,
)

# step -> why Floe answers differently from the Java worker on purpose
KNOWN_DIFFERENCES: dict[str, str] = {}

T = "org.apache.kafka.connect.transforms."
# A chain with every kind of problem validation reports: a missing required key (with and without
# a validator), a bad value, an unknown class, an abstract class, negate without a predicate, a
# predicate, and a duplicate alias.
TRANSFORMS = {
    "transforms": "cast, mask, ins, ts, nope, abstract, neg, route, cast",
    "transforms.cast.type": T + "Cast$Value",
    "transforms.mask.type": T + "MaskField$Value", "transforms.mask.fields": "a,b", "transforms.mask.replacement": "",
    "transforms.ins.type": T + "InsertField$Value", "transforms.ins.topic.field": "t",
    "transforms.ins.predicate": "tomb", "transforms.ins.negate": "true",
    "transforms.ts.type": T + "TimestampConverter$Value", "transforms.ts.target.type": "Instant",
    "transforms.nope.type": "com.example.NoSuchTransform",
    "transforms.abstract.type": T + "Cast",
    "transforms.neg.type": T + "Filter", "transforms.neg.negate": "false",
    "transforms.route.type": "RegexRouter", "transforms.route.regex": "(.*)", "transforms.route.replacement": "$1",
    "predicates": "tomb, hdr",
    "predicates.tomb.type": T + "predicates.RecordIsTombstone",
    "predicates.hdr.type": T + "predicates.HasHeaderKey",
}


def shape(v):
    """Field names and value types, recursively; lists by the set of their elements' shapes."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return sorted({json.dumps(shape(x), sort_keys=True) for x in v})
    if v is None:
        return "null"
    return type(v).__name__


class Recorder:
    def __init__(self, url: str):
        self.url = url
        self.answers: dict[str, tuple[int, object]] = {}

    def call(self, step: str, method: str, path: str, body=None, raw: str | None = None) -> tuple[int, object]:
        kw = {"timeout": 120}
        if raw is not None:
            kw["data"] = raw
            kw["headers"] = {"Content-Type": "application/json"}
        elif body is not None:
            kw["json"] = body
        r = requests.request(method, self.url + path, **kw)
        try:
            payload = r.json() if r.content else None
        except ValueError:
            payload = f"<non-JSON {r.headers.get('Content-Type')}>"
        self.answers[step] = (r.status_code, payload)
        return r.status_code, payload


def state(rec: Recorder, name: str) -> tuple[str, list[str]]:
    status = requests.get(f"{rec.url}/connectors/{name}/status", timeout=30).json()
    return status["connector"]["state"], [t["state"] for t in status.get("tasks", [])]


def run_sequence(rec: Recorder, name: str, config: dict[str, str]) -> None:
    simple = CONNECTOR_CLASS.rsplit(".", 1)[1]
    rec.call("root", "GET", "/")
    rec.call("list empty", "GET", "/connectors")
    rec.call("create", "POST", "/connectors", {"name": name, "config": config})
    rec.call("create duplicate", "POST", "/connectors", {"name": name, "config": config})
    rec.call("create without class", "POST", "/connectors", {"name": name + "-x", "config": {"topics": "t"}})
    rec.call("create malformed JSON", "POST", "/connectors", raw='{"name": "broken", "config": ')
    rec.call("validate", "PUT", f"/connector-plugins/{simple}/config/validate", {**config, "name": name})
    rec.call("validate unknown plugin", "PUT", "/connector-plugins/NoSuchConnector/config/validate",
             {"connector.class": "NoSuchConnector"})
    rec.call("validate transforms", "PUT", f"/connector-plugins/{simple}/config/validate", {**config, **TRANSFORMS, "name": name})
    rec.call("create with invalid transforms", "POST", "/connectors", {"name": name + "-t", "config": {**config, **TRANSFORMS}})
    rec.call("transform plugin config", "GET", "/connector-plugins/org.apache.kafka.connect.transforms.Cast$Value/config")
    wait_for(lambda: state(rec, name) == ("RUNNING", ["RUNNING"]), 120, f"{name} RUNNING at {rec.url}")
    rec.call("info", "GET", f"/connectors/{name}")
    rec.call("config", "GET", f"/connectors/{name}/config")
    rec.call("status", "GET", f"/connectors/{name}/status")
    rec.call("tasks", "GET", f"/connectors/{name}/tasks")
    rec.call("task status", "GET", f"/connectors/{name}/tasks/0/status")
    rec.call("unknown task status", "GET", f"/connectors/{name}/tasks/7/status")
    rec.call("unknown connector", "GET", "/connectors/no-such-connector")
    rec.call("unknown connector status", "GET", "/connectors/no-such-connector/status")
    rec.call("expand status", "GET", "/connectors?expand=status")
    rec.call("pause", "PUT", f"/connectors/{name}/pause")
    # Java's connector and its task both reach PAUSED; the status is compared once they have.
    wait_for(lambda: state(rec, name) == ("PAUSED", ["PAUSED"]), 60, f"{name} and its task PAUSED at {rec.url}")
    rec.call("status paused", "GET", f"/connectors/{name}/status")
    rec.call("resume", "PUT", f"/connectors/{name}/resume")
    wait_for(lambda: state(rec, name) == ("RUNNING", ["RUNNING"]), 120, f"{name} resumed at {rec.url}")
    rec.call("restart connector", "POST", f"/connectors/{name}/restart")
    wait_for(lambda: state(rec, name) == ("RUNNING", ["RUNNING"]), 120, f"{name} restarted at {rec.url}")
    rec.call("restart with tasks", "POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed=false")
    wait_for(lambda: state(rec, name) == ("RUNNING", ["RUNNING"]), 120, f"{name} restarted at {rec.url}")
    rec.call("restart only failed", "POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")
    rec.call("restart task", "POST", f"/connectors/{name}/tasks/0/restart")
    wait_for(lambda: state(rec, name) == ("RUNNING", ["RUNNING"]), 120, f"{name} task restarted at {rec.url}")
    rec.call("offsets while running", "GET", f"/connectors/{name}/offsets")
    rec.call("alter offsets while running", "PATCH", f"/connectors/{name}/offsets",
             {"offsets": [{"partition": {"kafka_topic": config["topics"], "kafka_partition": 0},
                           "offset": {"kafka_offset": 0}}]})
    rec.call("stop", "PUT", f"/connectors/{name}/stop")
    wait_for(lambda: state(rec, name)[0] == "STOPPED", 60, f"{name} STOPPED at {rec.url}")
    rec.call("status stopped", "GET", f"/connectors/{name}/status")
    rec.call("offsets", "GET", f"/connectors/{name}/offsets")
    rec.call("alter offsets", "PATCH", f"/connectors/{name}/offsets",
             {"offsets": [{"partition": {"kafka_topic": config["topics"], "kafka_partition": 0},
                           "offset": {"kafka_offset": 1}}]})
    rec.call("offsets altered", "GET", f"/connectors/{name}/offsets")
    rec.call("reset one partition", "PATCH", f"/connectors/{name}/offsets",
             {"offsets": [{"partition": {"kafka_topic": config["topics"], "kafka_partition": 0}, "offset": None}]})
    rec.call("offsets after partition reset", "GET", f"/connectors/{name}/offsets")
    rec.call("reset offsets", "DELETE", f"/connectors/{name}/offsets")
    rec.call("topics", "GET", f"/connectors/{name}/topics")
    rec.call("delete", "DELETE", f"/connectors/{name}")
    rec.call("deleted", "GET", f"/connectors/{name}")
    rec.call("delete again", "DELETE", f"/connectors/{name}")
    rec.call("loggers", "GET", "/admin/loggers/root")


def comparable(step: str, status: int, payload, names: dict[str, str]):
    """What must be equal: the status, the shape, and deterministic values."""
    text = json.dumps(payload, sort_keys=True)
    for real, placeholder in names.items():
        text = text.replace(real, placeholder)
    value = json.loads(text)
    deterministic = {
        "list empty", "create duplicate", "config", "unknown connector", "unknown connector status",
        "deleted", "delete again", "offsets", "offsets altered",
    }
    kept = value if step in deterministic else None
    if step in ("info", "create") and isinstance(value, dict):
        kept = {k: v for k, v in value.items() if k != "config"}
    if step.startswith("status") and isinstance(value, dict):
        kept = {"connector": value["connector"]["state"], "tasks": [t["state"] for t in value["tasks"]]}
    if step in ("validate", "validate transforms") and isinstance(value, dict):
        # Floe's own keys (floe.*) are extra; the framework's and the sink's keys must all be there,
        # with the same types; each transform's keys in their group and order, with the same errors.
        kept = {"error_count": value["error_count"], "groups": value["groups"],
                "keys": sorted((c["definition"]["name"], c["definition"]["type"]) for c in value["configs"]
                               if not c["definition"]["name"].startswith("floe."))}
        if step == "validate transforms":
            kept["chain"] = [(c["definition"]["name"], c["definition"]["group"], c["definition"]["order_in_group"],
                              c["definition"]["required"], c["definition"]["default_value"], c["value"]["value"],
                              c["value"]["errors"])
                             for c in value["configs"] if c["definition"]["name"].startswith(("transforms", "predicates"))]
    if step == "create with invalid transforms" and isinstance(value, dict):
        kept = value
    if step == "transform plugin config" and isinstance(value, list):
        kept = [(k["name"], k["type"], k["required"], k["default_value"], k["importance"], k["group"], k["order_in_group"])
                for k in value]
    return status, shape(value), kept


def difference(java, floe) -> str:
    """What differs between two (status, shape, kept) triples, item by item where they are lists
    or dicts, so a report names the keys that differ rather than whole answers."""
    lines = []
    for what, j, f in zip(("status", "shape", "values"), java, floe):
        if j == f:
            continue
        if isinstance(j, dict) and isinstance(f, dict):
            for k in sorted(set(j) | set(f), key=str):
                if j.get(k) != f.get(k):
                    lines.append(difference((None, None, j.get(k)), (None, None, f.get(k))) if isinstance(j.get(k), (dict, list)) and isinstance(f.get(k), (dict, list)) else f"  {what}.{k}:\n    java: {j.get(k)}\n    floe: {f.get(k)}")
        elif isinstance(j, list) and isinstance(f, list):
            for item in j:
                if item not in f:
                    lines.append(f"  {what}: only java: {item}")
            for item in f:
                if item not in j:
                    lines.append(f"  {what}: only floe: {item}")
        else:
            lines.append(f"  {what}:\n    java: {j}\n    floe: {f}")
    return "\n".join(lines)


def test_rest_api_matches_the_java_worker(tmp_path):
    topic = unique("conf")
    create_topic(topic)
    control = unique("control")
    create_topic(control)
    java_dir, floe_dir = tmp_path / "java", tmp_path / "floe"
    java_dir.mkdir()
    floe_dir.mkdir()
    java, floe = JavaWorker(java_dir), Worker(floe_dir)
    try:
        java.start()
        floe.start()
        recs = {}
        for label, w, d in (("java", java, java_dir), ("floe", floe, floe_dir)):
            name, ns = unique("conf"), unique("ns")
            config = connector_config(topic, f"db_{ns}.t", sqlite_catalog_config(d),
                                      **{"iceberg.control.topic": control})
            rec = Recorder(w.url)
            run_sequence(rec, name, config)
            recs[label] = (rec, {name: "<name>", w.url: "<url>", f"127.0.0.1:{w.port}": "<worker>",
                                 str(d): "<dir>", ns: "<ns>"})
        (jrec, jnames), (frec, fnames) = recs["java"], recs["floe"]
        report, unexpected = [], []
        for step in jrec.answers:
            j = comparable(step, *jrec.answers[step], jnames)
            f = comparable(step, *frec.answers[step], fnames)
            if j != f:
                report.append(f"--- {step}\n{difference(j, f)}")
                if step not in KNOWN_DIFFERENCES:
                    unexpected.append(step)
        print("\n".join(report))
        (tmp_path.parent / "conformance-report.txt").write_text("\n".join(report))
        assert not unexpected, f"REST answers differ from the Java worker in {unexpected}:\n" + "\n".join(report)
    finally:
        java.stop()
        floe.stop()
        delete_topics(topic, control)
