# One image for every SimpleBank service; the container's argument names the service:
#   docker build -t simplebank .
#   docker run --rm -e PORT=8083 -e DATABASE_URL=… -e BUS_URL=… -e SERVICE_TOKEN=… simplebank orders
# Services run from their TypeScript sources under tsx (as `npm start` does with SIMPLEBANK_FROM_SOURCE=1).
# deploy/observability/docker-compose.yml builds it and runs one container per service.
# The Node.js `npm start` runs on (package.json pins it as the `node` package; here the image's own).
FROM node:24.21-bookworm-slim

WORKDIR /app

# Dependencies first (cached while only sources change). Install scripts are not needed: services use an external
# PostgreSQL (no embedded server) and tsx needs no esbuild install step.
COPY package.json package-lock.json ./
COPY packages/chassis/package.json packages/chassis/
COPY packages/money/package.json packages/money/
COPY services/accounts/package.json services/accounts/
COPY services/customers/package.json services/customers/
COPY services/fees/package.json services/fees/
COPY services/gateway/package.json services/gateway/
COPY services/market/package.json services/market/
COPY services/market-data/package.json services/market-data/
COPY services/orders/package.json services/orders/
COPY tools/cli/package.json tools/cli/
RUN npm ci --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY packages packages
COPY services services
COPY deploy/docker/entrypoint.sh deploy/docker/entrypoint.sh

# After `npm ci`: with NODE_ENV=production it would leave out tsx (a development dependency of the workspace).
# NODE_OPTIONS: the Node.js flags every service runs with (tools/cli/src/node-tuning.ts, as `npm start` gives them).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    NODE_OPTIONS=--max-semi-space-size=64

USER node
ENTRYPOINT ["deploy/docker/entrypoint.sh"]
