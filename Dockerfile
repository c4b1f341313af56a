# syntax=docker/dockerfile:1
# One image for the hub, the workers (`pek`) and the operator (`pek-operator`); runs as the
# non-root user 65532 (distroless "nonroot"), with nothing but the two binaries, CA roots and
# PostgreSQL 15's pg_dump and pg_restore (the operator's dumps, restores and scheduled backups).
#   docker build -t ghcr.io/schonherz/pek:dev .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pek --bin pek-operator \
 && mkdir -p /out \
 && cp target/release/pek target/release/pek-operator /out/

# pg_dump and pg_restore of Debian 12's postgresql-client-15 (they dump and restore servers up
# to PostgreSQL 15: pg_dump refuses a newer server) with the libraries they need beyond what
# distroless cc has: deploy/pg-client.sh (the same script puts them into the image
# tests/checks/k8s-node.sh runs on a real node).
FROM docker.io/library/debian:bookworm-slim AS pgclient
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/pg-client.sh /usr/local/sbin/pg-client.sh
RUN bash /usr/local/sbin/pg-client.sh /out

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="pek" \
      org.opencontainers.image.description="PéK realm federation: hub, worker and operator" \
      org.opencontainers.image.source="https://github.com/schonherz/pek"
COPY --from=build /out/pek /out/pek-operator /usr/local/bin/
COPY --from=pgclient /out/ /
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/pek"]
CMD ["serve"]
