# The native runner in a container, as a drop-in for the Go proxy's image: it reads the Go proxy's
# config.json unchanged (mount it at /etc/tempo-s3-shard/config.json), listens on :8080 unless
# listen_addr says otherwise, serves Prometheus metrics at /metrics on the same port, and on SIGTERM
# stops accepting, finishes the requests in flight and exits.
#
#   docker build -t tempo-s3-shard .
#   docker run -p 8080:8080 -v $PWD/config.json:/etc/tempo-s3-shard/config.json:ro tempo-s3-shard

# Build stage: the component (wasm32-wasip2, size-optimised profile) and the host (release).
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN rustup target add wasm32-wasip2 \
 && cargo build --locked --target wasm32-wasip2 --profile component -p tempo-s3-shard \
 && cargo build --locked --release -p tempo-s3-shard-host --bin tempo-s3-shard \
 && strip target/release/tempo-s3-shard

# Runtime stage: the runner binary and the component; CA certificates for HTTPS backends.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /app --shell /usr/sbin/nologin tempo \
 && mkdir -p /app /etc/tempo-s3-shard \
 && chown tempo /app
COPY --from=builder /src/target/release/tempo-s3-shard /usr/local/bin/tempo-s3-shard
COPY --from=builder /src/target/wasm32-wasip2/component/tempo_s3_shard.wasm /app/tempo_s3_shard.wasm
# The runner loads this component (and caches its compiled form next to it, in /app).
ENV TEMPO_S3_SHARD_WASM=/app/tempo_s3_shard.wasm
USER tempo
WORKDIR /app
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["tempo-s3-shard", "--config", "/etc/tempo-s3-shard/config.json"]
