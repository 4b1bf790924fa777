#!/bin/sh
# Creates or updates every connector in $FLOE_CONNECTORS_DIR (<name>.json: its config) on the
# workers at $FLOE_URL, once they answer GET /health with 200: PUT /connectors/<name>/config
# is idempotent, so every install and upgrade applies the values' connectors as they are.
set -eu
dir=${FLOE_CONNECTORS_DIR:-/etc/floe/connectors}
url=${FLOE_URL:?FLOE_URL is required}
deadline=$(( $(date +%s) + ${FLOE_WAIT_SECONDS:-600} ))

late() {
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "apply-connectors: $1" >&2
    exit 1
  fi
  sleep 3
}

until curl -fsS -o /dev/null "$url/health"; do
  late "the workers at $url were not healthy within ${FLOE_WAIT_SECONDS:-600} s"
done

for file in "$dir"/*.json; do
  [ -e "$file" ] || continue
  name=$(basename "$file" .json)
  # A rebalance or a leader change answers 409 or 500 for a moment: retry until the deadline.
  until out=$(curl -sS -o /dev/stderr -w '%{http_code}' -X PUT \
      -H 'Content-Type: application/json' --data-binary "@$file" \
      "$url/connectors/$name/config") && [ "$out" = 200 ] || [ "$out" = 201 ]; do
    late "PUT /connectors/$name/config kept failing (last status ${out:-none})"
  done
  echo "apply-connectors: connector $name applied (HTTP $out)"
done
