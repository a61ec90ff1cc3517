# The api image (also runs the standalone worker and the migrations).
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN npm install -g pnpm@10.34.9
COPY . .
RUN pnpm install --frozen-lockfile && pnpm build && pnpm deploy --filter @livestream/api --prod --legacy /out/apps/api \
    && mkdir -p /out/packages && cp -r packages/db /out/packages/db

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out/apps/api apps/api
COPY --from=build /out/packages/db packages/db
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "apps/api/dist/server.js"]
