# Floe worker image. Build: docker build -t floe .
# Run:   docker run -p 8083:8083 -e CONNECT_BOOTSTRAP_SERVERS=kafka:9092 floe
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# Stripped: the release profile keeps line tables (358 MB); the image does not need them (62 MB).
RUN cargo build --release --locked --bin floe \
 && strip target/release/floe

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 1000 floe \
 && useradd --system --uid 1000 --gid 1000 --home /var/lib/floe --create-home floe
COPY --from=build /src/target/release/floe /usr/local/bin/floe
COPY docker/worker.properties /etc/floe/worker.properties
USER 1000:1000
WORKDIR /var/lib/floe
EXPOSE 8083
HEALTHCHECK --interval=10s --timeout=15s CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8083/health"]
# Worker settings come from /etc/floe/worker.properties overlaid with CONNECT_* variables,
# the convention of the Confluent cp-kafka-connect image.
ENTRYPOINT ["floe", "standalone", "/etc/floe/worker.properties"]
