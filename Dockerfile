# fsm-px sensor image: `deno task run` on the official Deno image (k8s/daemonset.yaml runs it).
#   docker build -t fsm-px:0.1.0 .
# k8s/kustomization.yaml pins the tag it deploys (images: fsm-px).
FROM denoland/deno:2.9.3

# No update check or colours in a container, no permission prompts, and V8's heap sized from the
# container's memory limit (cgroups; about half of it) rather than the node's memory. V8's young generation and
# the C allocator are set by the run task itself (deno.json), so `docker run` gets them too.
ENV DENO_NO_UPDATE_CHECK=1 \
    DENO_NO_PROMPT=1 \
    NO_COLOR=1 \
    DENO_USE_CGROUPS=1

# tcpdump for live packet capture (k8s/packet-capture/; the sensor runs it as a supervised child). The
# Pixie-only DaemonSet never starts it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tcpdump \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so that a source-only change reuses this layer. --frozen: the lockfile must already
# describe deno.json's imports (a drift fails the build instead of resolving new versions).
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY . .
# Cache the whole module graph of main.ts at build time (npm packages in /app/node_modules, the rest in
# DENO_DIR=/deno-dir): the sensor then starts without network access and with a read-only root filesystem.
RUN deno cache --frozen main.ts

# The unprivileged user of the official image (uid 1993); the DaemonSet also sets runAsUser: 1993.
USER deno

# tini (in the official image) is PID 1: it forwards SIGTERM to deno task, which forwards it to the sensor,
# so the sensor drains before Kubernetes' grace period ends.
ENTRYPOINT ["/tini", "--"]
CMD ["deno", "task", "run"]
