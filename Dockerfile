# tls_exporter container image.
#
#   docker build -t tls_exporter .
#   docker run --rm -p 19443:19443 tls_exporter
#   docker run --rm -p 19443:19443 -v "$PWD/my.yml:/etc/tls_exporter/config.yml:ro" tls_exporter
#
# Runtime: distroless (glibc + libgcc, no shell, no package manager), user
# nonroot (65532). The configuration lives at /etc/tls_exporter/config.yml;
# mount your own file there (or pass --config.file). Reload with SIGHUP
# (docker kill -s HUP) or POST /-/reload.
#
# State across restarts: the latest outcome of every target is kept in
# /var/lib/tls_exporter/state.json (--storage.path), a directory owned by
# 65532. In the container's own layer it survives `docker restart`; mount a
# volume there to keep it across new containers:
#   docker run -p 19443:19443 -v tls_exporter_state:/var/lib/tls_exporter tls_exporter

# ---- build ------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
# make: jemalloc (the global allocator) is built from source by tikv-jemalloc-sys; the slim
# image has gcc but not make.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/tls_exporter /out/tls_exporter \
 && install -d -m 0755 /out/state

# ---- runtime ----------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/tls_exporter /usr/local/bin/tls_exporter
COPY config/container.yml /etc/tls_exporter/config.yml
COPY --from=builder --chown=65532:65532 /out/state /var/lib/tls_exporter
USER 65532:65532
EXPOSE 19443
ENTRYPOINT ["/usr/local/bin/tls_exporter"]
CMD ["--config.file=/etc/tls_exporter/config.yml", "--web.listen-address=0.0.0.0:19443", "--storage.path=/var/lib/tls_exporter/state.json"]
