# One image for every role: APP_ROLE=api|worker|migrate picks what a container runs.
# Node.js 26 is the current LTS line; the code itself runs on Node.js 20.19 and newer (package.json engines).
ARG NODE_IMAGE=node:26-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig*.json nest-cli.json ./
COPY src ./src
COPY migrations ./migrations
# The operator dashboard (/ui): built here into dist/ui, so the image needs nothing at run time to serve it.
COPY ui ./ui
RUN npm run build

FROM ${NODE_IMAGE} AS production-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production PORT=3000
# With its default heap limit (a quarter of the machine's memory) V8 collects garbage lazily and a busy
# worker grows past 200 MB; with a limit it stays near 135 MB at WORKER_CONCURRENCY=100 at the same
# throughput (npm run bench uses the same options). The old-space limit stays well below the container's
# memory limit (512 Mi in deploy/k8s): the heap is not all of a process's memory (new space, code, buffers,
# the driver's sockets), and a heap that reaches the limit must fail in V8, with a message, before the kernel
# kills the container without one. Raise both together for handlers that hold more data. The api's
# deployment sets its own, with a larger young generation (deploy/k8s/api.yaml).
ENV NODE_OPTIONS="--max-old-space-size=384 --max-semi-space-size=8"
WORKDIR /app
# Owned by root and read-only to the process: the root filesystem can be mounted read-only.
COPY --from=production-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Numeric, so that Kubernetes can verify runAsNonRoot without looking the name up (1000 is the image's
# `node` user).
USER 1000:1000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# node is PID 1 and handles SIGTERM itself: it drains and exits 0.
CMD ["node", "dist/main"]
