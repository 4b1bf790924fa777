# shellcheck shell=bash
# Resolving a component's jars from Maven Central into $LIB_DIR/<component>/ (one
# profile of stack/pom.xml each). Sourced after lib/common.sh, not executed.

REST_LAUNCHER_SRC=$STACK_SRC/rest-catalog/LoopbackRestCatalogServer.java
# The test oracle: Iceberg's generic reader (applies every kind of delete), compiled against the
# iceberg-sink jars.
ORACLE_SRC=$STACK_SRC/oracle/ReadTable.java
ORACLE_CLASSES=$LIB_DIR/iceberg-oracle
REST_LAUNCHER_CLASS=dev.floe.stack.LoopbackRestCatalogServer

# Files that, when newer than a component's lib folder, call for a new resolve.
resolve_inputs() {
  echo "$STACK_SRC/pom.xml"
  if [[ $1 == rest-catalog ]]; then
    echo "$REST_LAUNCHER_SRC"
  fi
}

is_resolved() {
  local marker=$LIB_DIR/$1/.resolved input
  [[ -f $marker ]] || return 1
  for input in $(resolve_inputs "$1"); do
    [[ $marker -nt $input ]] || return 1
  done
}

# Builds SeaweedFS's weed from its Go module into the tool cache (once per version; Go's own
# module and build caches make a rebuild quick). `go install pkg@version` refuses the module
# (its go.mod has replace directives), so it is built from a copy of the module's source.
build_weed() {
  [[ -x $WEED ]] && return
  local log=$LOG_DIR/resolve-s3.log start=$SECONDS src
  say "s3: building SeaweedFS $SEAWEEDFS_VERSION (go module github.com/seaweedfs/seaweedfs) into $(dirname "$WEED")"
  src=$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" 2>>"$log" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
  [[ -n $src && -d $src ]] || die "s3: downloading the SeaweedFS module failed (log: $log)"
  local work
  work=$(mktemp -d)
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  mkdir -p "$(dirname "$WEED")"
  if ! (cd "$work" && go build -o "$WEED.tmp" ./weed) >>"$log" 2>&1; then
    rm -rf "$work"
    tail -n 30 "$log" >&2
    die "s3: building weed failed (log: $log)"
  fi
  rm -rf "$work"
  mv "$WEED.tmp" "$WEED"
  say "s3: built in $((SECONDS - start))s"
}

# Compiles the oracle when its class is missing or older than its source.
build_oracle() {
  local log=$LOG_DIR/resolve-iceberg-sink.log
  if [[ -f $ORACLE_CLASSES/ReadTable.class && $ORACLE_CLASSES/ReadTable.class -nt $ORACLE_SRC ]]; then
    return 0
  fi
  mkdir -p "$ORACLE_CLASSES"
  javac -nowarn -d "$ORACLE_CLASSES" -cp "$LIB_DIR/iceberg-sink/iceberg-sink/*" "$ORACLE_SRC" >>"$log" 2>&1 ||
    die "iceberg-sink: compiling $ORACLE_SRC failed (log: $log)"
}

resolve() {
  local c=$1 log=$LOG_DIR/resolve-$1.log start=$SECONDS
  case $c in
    s3) build_weed; return ;;
    rest-catalog-s3) c=rest-catalog log=$LOG_DIR/resolve-rest-catalog.log ;;
  esac
  if is_resolved "$c"; then
    if [[ $c == iceberg-sink ]]; then build_oracle; fi
    return 0
  fi
  say "$c: resolving jars with Maven into $LIB_DIR/$c"
  rm -rf "${LIB_DIR:?}/$c" "$STACK_DIR/maven-build"
  if ! mvn -q -B -Dstyle.color=never -f "$STACK_SRC/pom.xml" -P "$c" \
    -Dstack.dir="$STACK_DIR" package >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "$c: Maven resolution failed (log: $log)"
  fi
  if [[ $c == postgres ]]; then
    tar -xJf "$LIB_DIR/$c"/postgres-linux-*.txz -C "$LIB_DIR/$c" >>"$log" 2>&1 ||
      die "$c: unpacking the PostgreSQL binaries failed (log: $log)"
    chmod -R a+rX "$LIB_DIR/$c"
  fi
  if [[ $c == rest-catalog ]]; then
    mkdir -p "$LIB_DIR/$c/classes"
    javac -nowarn -d "$LIB_DIR/$c/classes" -cp "$LIB_DIR/$c/*" "$REST_LAUNCHER_SRC" >>"$log" 2>&1 ||
      die "$c: compiling $REST_LAUNCHER_SRC failed (log: $log)"
  fi
  touch "$LIB_DIR/$c/.resolved"
  if [[ $c == iceberg-sink ]]; then build_oracle; fi
  say "$c: resolved in $((SECONDS - start))s"
}
