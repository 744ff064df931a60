# ari-transfer: the service image.
#   docker build -t ari-transfer .
# Configuration is by environment variables only (README, Configuration).
# `npm start` runs the TypeScript sources through tsx; this image runs the
# compiled JavaScript (dist/) instead.

ARG NODE_VERSION=20

# --- build: compile src/ to dist/ with the dev dependencies (typescript) ---
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies and dist/ only ---
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY docker/ari-transfer/healthcheck.mjs ./healthcheck.mjs

# The files stay owned by root: the service cannot modify its own code.
USER node

# Healthy = the service's GET /readyz answers 200: connected to ARI and
# registry in sync (docker/ari-transfer/healthcheck.mjs).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "healthcheck.mjs"]

# main.ts stops cleanly on SIGTERM (docker stop) and SIGINT. Exec form, and
# not `npm start`: node itself is PID 1 and gets the signal, with no npm or
# shell in between.
CMD ["node", "dist/main.js"]
