# An ingest node: node-media-server and the in-process CMAF packager. No ffmpeg: packaging needs none (it comes back
# with transcoded renditions).
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN npm install -g pnpm@10.34.9
COPY . .
RUN pnpm install --frozen-lockfile && pnpm build && pnpm deploy --filter @livestream/ingest --prod --legacy /out

FROM node:20-bookworm-slim
# A fixed glibc mmap threshold: see ALLOCATOR_ENV in apps/ingest/src/rtmp-limits.ts.
ENV NODE_ENV=production MEDIA_ROOT=/media MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /out .
RUN mkdir -p /media /var/lib/ingest/outbox && chown node:node /media /var/lib/ingest/outbox
USER node
EXPOSE 1935 8000
# SIGTERM: drain (DRAIN_SECONDS; 0: stop accepting, end packaging, send unpublish events, then exit).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/server.js"]
