# The service's image: Node 22 LTS (pinned; the tests run on Node 20.19+ and 22), compiled in a build
# stage, run as the unprivileged `node` user with production dependencies only. It holds no database:
# set MONGODB_URI to a MongoDB replica set (deploy/ has Compose and Kubernetes examples). The embedded
# test database (SecantusDB, GPL-2.0) is never part of it.
#   docker build -t second-opinion .
#   docker run -e NODE_ENV=production -e BASE_URL=https://... -e MONGODB_URI=... \
#     -e AUTH_SIGNING_KEY_FILE=/run/secrets/auth-signing-key -e OPINION_SIGNING_KEY_FILE=... second-opinion
# Tokens for people and scripts, with the running container's own key and BASE_URL:
#   docker exec <container> npm run -s token -- --role admin --scope 'system/*.*' --lifetime 3600
ARG NODE_IMAGE=node:22.23.5-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts off: `prepare` would compile before the sources are here; dependencies' install scripts are denied in package.json.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY test ./test
COPY web ./web
# The build reads profiles/ for the FHIR value sets they bind to (src/conformance/terminology.ts).
COPY profiles ./profiles
# The service and the workbench (web/, bundled by esbuild into dist/web).
RUN npm run build

FROM ${NODE_IMAGE}
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/web ./dist/web
COPY --from=build /app/dist/scripts/token.js /app/dist/scripts/wait-ready.js ./dist/scripts/
COPY profiles ./profiles
COPY src/outcomes/page ./src/outcomes/page
USER node
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["node", "dist/scripts/wait-ready.js", "--url", "http://127.0.0.1:8080/readyz", "--timeout", "4"]
CMD ["node", "dist/src/main.js"]
