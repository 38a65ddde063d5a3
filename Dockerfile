# syntax=docker/dockerfile:1
# Build stage: compile the release binary (dependencies cached in their own layer).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Stub targets (cargo checks every declared target exists, benches included) to build and
# cache the dependencies alone.
RUN mkdir src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/render.rs && echo 'fn main() {}' > benches/deploy.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# Runtime stage: a small Debian with CA certificates (for cluster API servers) and curl (probes).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --create-home meshintent
COPY --from=build /src/target/release/meshintent /usr/local/bin/meshintent
USER 10001
WORKDIR /data
ENV MESHINTENT_LISTEN=0.0.0.0:8080 \
    MESHINTENT_DATA_DIR=/data \
    MESHINTENT_LOG_JSON=true
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["meshintent"]
CMD ["serve"]
