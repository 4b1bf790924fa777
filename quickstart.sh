#!/usr/bin/env bash
# Quick start: Kafka on loopback, a Floe worker on the embedded SQLite catalog, a connector
# created over REST, sample JSON events, and the rows read back by PyIceberg.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
cd "$ROOT"
PORT=${FLOE_QUICKSTART_PORT:-18083}
STATE=.quickstart

step() { printf '\n==> %s\n' "$*"; }

step "Starting Kafka (stack/up kafka)"
stack/up kafka
eval "$(stack/env)"

step "Building Floe"
cargo build --bin floe
FLOE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/floe"

rm -rf "$STATE" && mkdir -p "$STATE"
cat > "$STATE/worker.properties" <<PROPS
bootstrap.servers=$FLOE_BOOTSTRAP
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
listeners=http://127.0.0.1:$PORT
offset.flush.interval.ms=2000
PROPS

step "Creating topic quickstart-events"
"$FLOE_PYTHON" - <<'PY'
import os
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": os.environ["FLOE_BOOTSTRAP"]})
for f in admin.delete_topics(["quickstart-events"]).values():
    try: f.result(30)
    except Exception: pass
import time
deadline = time.time() + 30
while True:
    try:
        for f in admin.create_topics([NewTopic("quickstart-events", 1, 1)]).values(): f.result(30)
        break
    except Exception as e:
        if time.time() > deadline: raise
        time.sleep(0.5)
PY

step "Starting the worker on http://127.0.0.1:$PORT (log: $STATE/floe.log)"
"$FLOE_BIN" standalone "$STATE/worker.properties" > "$STATE/floe.log" 2>&1 &
FLOE_PID=$!
trap 'kill $FLOE_PID 2>/dev/null; wait $FLOE_PID 2>/dev/null || true' EXIT
deadline=$((SECONDS + 30))
until curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
  if ! kill -0 $FLOE_PID 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "the worker did not become healthy; see $STATE/floe.log" >&2; tail -30 "$STATE/floe.log" >&2; exit 1
  fi
  sleep 0.2
done

step "Creating the connector: POST /connectors with connector-configs/quickstart.json"
curl -fsS -X POST -H 'Content-Type: application/json' --data @connector-configs/quickstart.json \
  "http://127.0.0.1:$PORT/connectors"
echo

step "Producing 10 events"
"$FLOE_PYTHON" - <<'PY'
import json, os
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": os.environ["FLOE_BOOTSTRAP"]})
for i in range(10):
    event = {"id": i, "user": f"user-{i % 3}", "action": ["click", "view", "buy"][i % 3],
             "amount": round(i * 1.25, 2), "ts": f"2026-11-24T12:00:{i:02d}Z"}
    p.produce("quickstart-events", key=str(i), value=json.dumps(event))
assert p.flush(30) == 0
PY

step "Waiting for the commit, then reading the table with PyIceberg"
"$FLOE_PYTHON" - "$ROOT/$STATE" <<'PY'
import sys, time
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
state = sys.argv[1]
catalog = SqlCatalog("iceberg", uri=f"sqlite:///{state}/catalog.db", warehouse=f"file://{state}/warehouse")
deadline = time.time() + 60
while True:
    try:
        table = catalog.load_table("quickstart.events")
        if table.current_snapshot() is not None and len(table.scan().to_arrow()) >= 10:
            break
    except NoSuchTableError:
        pass
    if time.time() > deadline:
        sys.exit("no commit within 60 s; see .quickstart/floe.log")
    time.sleep(0.5)
rows = table.scan().to_arrow().sort_by("id")
print(f"\nTable quickstart.events ({len(rows)} rows), read by PyIceberg:\n")
cols = rows.column_names
data = rows.to_pylist()
widths = {c: max(len(c), *(len(str(r[c])) for r in data)) for c in cols}
print("  ".join(c.ljust(widths[c]) for c in cols))
for r in data:
    print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
snap = table.current_snapshot()
print(f"\nSnapshot {snap.snapshot_id} summary:")
for k, v in sorted(snap.summary.additional_properties.items()):
    print(f"  {k} = {v}")
print(f"  operation = {snap.summary.operation.value}")
PY

step "Done. The worker stops now; Kafka keeps running (stack/down stops it)."
