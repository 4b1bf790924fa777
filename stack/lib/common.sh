# shellcheck shell=bash disable=SC2034 # variables are used by the sourcing scripts
# Shared settings and helpers for stack/up, stack/down, stack/status and stack/env.
# Sourced, not executed.

STACK_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(dirname "$STACK_SRC")

STACK_DIR=$(realpath -m "${FLOE_STACK_DIR:-$REPO_ROOT/.stack}")

STACK_HOST=127.0.0.1
KAFKA_PORT=${FLOE_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${FLOE_KAFKA_CONTROLLER_PORT:-19093}
# Secured listeners of the same broker: SASL_SSL (SCRAM-SHA-256/512 and PLAIN), and SSL with
# client certificates required.
KAFKA_SASL_SSL_PORT=${FLOE_KAFKA_SASL_SSL_PORT:-19094}
KAFKA_MTLS_PORT=${FLOE_KAFKA_MTLS_PORT:-19095}
KAFKA_SASL_USER=floe
KAFKA_SASL_PASSWORD=floe-kafka-secret
# Test certificates (a CA, the broker's, a client's, a worker's) and their stores, made by
# stack/up in $TLS_DIR: PEM files, PKCS12 stores and a JKS truststore.
TLS_DIR=$STACK_DIR/tls
TLS_STORE_PASSWORD=floe-store-secret
TLS_KEY_PASSWORD=floe-key-secret
REST_CATALOG_PORT=${FLOE_REST_CATALOG_PORT:-18181}
REGISTRY_PORT=${FLOE_REGISTRY_PORT:-18080}
REGISTRY_MANAGEMENT_PORT=${FLOE_REGISTRY_MANAGEMENT_PORT:-18081}
POSTGRES_PORT=${FLOE_POSTGRES_PORT:-15432}
POSTGRES_USER=floe
# SeaweedFS: the S3 gateway, and the ports of its master, volume and filer servers (each also
# uses port + 10000 for gRPC).
S3_PORT=${FLOE_S3_PORT:-18333}
S3_MASTER_PORT=${FLOE_S3_MASTER_PORT:-19333}
S3_VOLUME_PORT=${FLOE_S3_VOLUME_PORT:-18334}
S3_FILER_PORT=${FLOE_S3_FILER_PORT:-18888}
S3_ACCESS_KEY=floe
S3_SECRET_KEY=floe-s3-secret
S3_REGION=us-east-1
# Buckets made at start: the tests' warehouses, and the REST catalog's on S3.
S3_BUCKETS=(floe floe-rest)
# The REST catalog on S3, behind OAuth2 client credentials.
REST_S3_PORT=${FLOE_REST_S3_PORT:-18182}
REST_S3_CREDENTIAL=floe-client:floe-client-secret
REST_S3_TOKEN_TTL_SECONDS=${FLOE_REST_S3_TOKEN_TTL_SECONDS:-20}
# SeaweedFS is built from its Go module (Apache-2.0) into a cache outside the clone.
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
TOOL_CACHE=${FLOE_TOOL_CACHE:-$HOME/.cache/floe/tools}
WEED=$TOOL_CACHE/seaweedfs-$SEAWEEDFS_VERSION/weed

VENV_DIR=$REPO_ROOT/.venv
VENV_PYTHON=$VENV_DIR/bin/python

LIB_DIR=$STACK_DIR/lib
LOG_DIR=$STACK_DIR/logs
PID_DIR=$STACK_DIR/pids
REST_WAREHOUSE=$STACK_DIR/rest-warehouse

ALL_COMPONENTS=(kafka rest-catalog apicurio postgres s3 rest-catalog-s3)

die() {
  echo "stack: $*" >&2
  exit 1
}

say() {
  echo "stack: $*"
}

# Components named on the command line, or all of them; sets SELECTED.
select_components() {
  SELECTED=()
  local name known c
  for name in "$@"; do
    known=0
    for c in "${ALL_COMPONENTS[@]}"; do
      [[ $name == "$c" ]] && known=1
    done
    ((known)) || die "unknown component '$name' (expected one of: ${ALL_COMPONENTS[*]})"
    SELECTED+=("$name")
  done
  if ((${#SELECTED[@]} == 0)); then
    SELECTED=("${ALL_COMPONENTS[@]}")
  fi
}

component_port() {
  case $1 in
    kafka) echo "$KAFKA_PORT" ;;
    rest-catalog) echo "$REST_CATALOG_PORT" ;;
    apicurio) echo "$REGISTRY_PORT" ;;
    postgres) echo "$POSTGRES_PORT" ;;
    s3) echo "$S3_PORT" ;;
    rest-catalog-s3) echo "$REST_S3_PORT" ;;
  esac
}

log_file() { echo "$LOG_DIR/$1.log"; }
pid_file() { echo "$PID_DIR/$1.pid"; }

# Prints the pid of a running component started by stack/up, or fails.
# The command line carries floe.stack.component=NAME (a -D option of the JVMs,
# PostgreSQL's cluster_name), so a stale pid file whose number was reused by
# another process is not mistaken for ours.
running_pid() {
  local pidf pid
  pidf=$(pid_file "$1")
  [[ -s $pidf ]] || return 1
  pid=$(<"$pidf")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "floe.stack.component=$1 " || return 1
  echo "$pid"
}

# Serialises stack/up and stack/down runs on one state directory.
lock_stack() {
  mkdir -p "$STACK_DIR"
  exec 9>"$STACK_DIR/.lock"
  flock -w 600 9 || die "timed out waiting for another stack/up or stack/down on $STACK_DIR"
}

port_open() {
  (exec 3<>"/dev/tcp/$STACK_HOST/$1") 2>/dev/null
}

http_ok() {
  curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null
}

# One health probe per component; each returns quickly.
healthy() {
  case $1 in
    kafka)
      [[ -x $VENV_PYTHON ]] && port_open "$KAFKA_PORT" || return 1
      "$VENV_PYTHON" "$STACK_SRC/lib/kafka_ready.py" "$STACK_HOST:$KAFKA_PORT" 3 2>/dev/null
      ;;
    rest-catalog) http_ok "http://$STACK_HOST:$REST_CATALOG_PORT/v1/config" ;;
    apicurio) http_ok "http://$STACK_HOST:$REGISTRY_PORT/apis/ccompat/v7/subjects" ;;
    postgres)
      [[ -x $VENV_PYTHON ]] && port_open "$POSTGRES_PORT" || return 1
      "$VENV_PYTHON" -c "import psycopg2; psycopg2.connect(host='$STACK_HOST', port=$POSTGRES_PORT, user='$POSTGRES_USER', dbname='postgres', connect_timeout=3).close()" 2>/dev/null
      ;;
    s3)
      [[ -x $VENV_PYTHON ]] && port_open "$S3_PORT" || return 1
      "$VENV_PYTHON" "$STACK_SRC/lib/s3_buckets.py" "http://$STACK_HOST:$S3_PORT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "${S3_BUCKETS[@]}" 2>/dev/null
      ;;
    rest-catalog-s3)
      # Answers 401 without a token: up, and guarding.
      [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$STACK_HOST:$REST_S3_PORT/v1/config") == 401 ]]
      ;;
  esac
}
