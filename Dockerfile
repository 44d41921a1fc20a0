# DodoLens origin image: dodolens-origin on Debian slim with ffmpeg. Only the product: the OpenAI
# simulator (tools/openai-sim) is a test stand-in and is neither built nor shipped here.
# Build from the repository root: docker build -t dodolens-origin .
# Runs as an unprivileged user and writes nothing: it works with `--read-only` (videos live in
# memfds, never on a filesystem), so no tmpfs is needed.

FROM rust:1.95-slim-bookworm AS build
# `--build-arg FEATURES=local-whisper` adds local transcription: ct2rs builds CTranslate2 from
# source, which needs cmake and a C++ compiler (minutes more). The model is not in the image:
# mount the folder scripts/bootstrap assembles and name it, e.g.
#   docker run --read-only -v "$PWD/.tools/models/whisper-base:/models/whisper-base:ro" \
#     -e DODOLENS_WHISPER_DIR=/models/whisper-base … dodolens-origin
ARG FEATURES=
RUN if [ -n "$FEATURES" ]; then \
      apt-get update && apt-get install -y --no-install-recommends cmake g++ \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
# The workspace manifest lists every member, so their manifests must be present; only the origin
# binary is built (`--bin dodolens-origin` builds no dev-dependency, so no simulator code).
COPY Cargo.toml Cargo.lock ./
COPY shared shared
COPY origin origin
COPY edge edge
COPY tools tools
RUN cargo build --release --locked -p dodolens-origin --bin dodolens-origin --features "$FEATURES" \
 && strip target/release/dodolens-origin

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dodolens
COPY --from=build /src/target/release/dodolens-origin /usr/local/bin/
USER 10001:10001
WORKDIR /
ENV DODOLENS_BIND=0.0.0.0:8788 \
    DODOLENS_LOG_FORMAT=json
EXPOSE 8788
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8788/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dodolens-origin"]
