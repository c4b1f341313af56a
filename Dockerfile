# syntax=docker/dockerfile:1
# One image for the hub, the workers (`pek`) and the operator (`pek-operator`); runs as the
# non-root user 65532 (distroless "nonroot"), with nothing but the two binaries, CA roots and
# PostgreSQL 17's pg_dump and pg_restore (the operator's dumps, restores and scheduled backups).
#   docker build -t ghcr.io/schonherz/pek:dev .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pek --bin pek-operator \
 && mkdir -p /out \
 && cp target/release/pek target/release/pek-operator /out/

# pg_dump and pg_restore of postgresql-client-$PG_MAJOR for Debian 12, from the PostgreSQL
# project's own repository (apt.postgresql.org, set up by Debian's postgresql-common with the
# key it ships): pg_dump refuses a server newer than itself, and dumps and restores every older
# one, so the newest client serves the chart's bundled PostgreSQL 16 and external servers up
# to 17. With the libraries they need beyond what distroless cc has: deploy/pg-client.sh (the
# same script puts Debian's own client 15 into the image tests/checks/k8s-node.sh runs).
FROM docker.io/library/debian:bookworm-slim AS pgclient
ARG PG_MAJOR=17
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates postgresql-common \
 && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client-$PG_MAJOR \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/pg-client.sh /usr/local/sbin/pg-client.sh
RUN PG_MAJOR=$PG_MAJOR bash /usr/local/sbin/pg-client.sh /out

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
