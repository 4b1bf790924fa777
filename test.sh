#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, then end-to-end tests on the real stack
# (Kafka, Iceberg REST catalog, Schema Registry, PyIceberg), which stack/up starts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
step "unit tests (and the control-topic interop test against the Java Iceberg library)"
export FLOE_INTEROP_JAVA="$ROOT/tests/interop/run"
cargo test --workspace --locked
step "building floe"
cargo build --bin floe --locked

step "starting the test stack"
stack/up
eval "$(stack/env)"

step "Helm chart and Dockerfile checks (charts/check: helm lint and template, Kubernetes schemas, hadolint)"
charts/check

step "end-to-end tests"
export FLOE_BIN="$TARGET_DIR/debug/floe"
"$FLOE_PYTHON" -m pytest tests/e2e -v -p no:cacheprovider --durations=40 "$@"

step "benchmark smoke run (bench/run --smoke; the full run is by hand, docs/performance.md)"
bench/run --smoke
step "upsert benchmark smoke run (bench/run --upsert --smoke)"
bench/run --upsert --smoke
step "fleet benchmark smoke run (bench/run --fleet --smoke: many connectors in one worker)"
bench/run --fleet --smoke
