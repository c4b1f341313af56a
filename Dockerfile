# syntax=docker/dockerfile:1
# One image for the hub, the workers (`pek`) and the operator (`pek-operator`); runs as the
# non-root user 65532 (distroless "nonroot"), with nothing but the two binaries and CA roots.
#   docker build -t ghcr.io/schonherz/pek:dev .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pek --bin pek-operator \
 && mkdir -p /out \
 && cp target/release/pek target/release/pek-operator /out/

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="pek" \
      org.opencontainers.image.description="PéK realm federation: hub, worker and operator" \
      org.opencontainers.image.source="https://github.com/schonherz/pek"
COPY --from=build /out/pek /out/pek-operator /usr/local/bin/
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/pek"]
CMD ["serve"]
