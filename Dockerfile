# fedtest image: a static (musl) binary on a distroless base that has CA certificates and a
# non-root user. Build:   docker build -t fedtest .
# Run (as yourself: uid 65532 cannot write a checkout it does not own):
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work fedtest plan --from-history
#
# Offline / with a binary built on the host (see docs/development.md, "The Docker image"):
#   cargo build --release --target x86_64-unknown-linux-musl
#   podman build --pull=never --target runtime-prebuilt --build-arg RUNTIME_IMAGE=<local base> -t fedtest .
# On a glibc base the host's build works too: --build-arg FEDTEST_BINARY=target/release/fedtest
ARG RUST_IMAGE=docker.io/library/rust:1.89-alpine3.22
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The rust:alpine image ships musl-dev and gcc (the bundled SQLite is C): the result is static.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The demo embeds its example builds; the manifest names the integration tests.
COPY examples/demo ./examples/demo
COPY tests ./tests
RUN cargo build --release --locked --bin fedtest \
    && strip target/release/fedtest \
    && target/release/fedtest --version

# A binary built on the host (`--target runtime-prebuilt`): no toolchain or registry needed.
FROM ${RUNTIME_IMAGE} AS runtime-prebuilt
ARG FEDTEST_BINARY=target/x86_64-unknown-linux-musl/release/fedtest
COPY ${FEDTEST_BINARY} /usr/local/bin/fedtest
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/fedtest"]
CMD ["--help"]

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /src/target/release/fedtest /usr/local/bin/fedtest
# distroless "nonroot": uid/gid 65532.
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/fedtest"]
CMD ["--help"]
