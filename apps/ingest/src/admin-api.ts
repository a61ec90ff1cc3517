import { createHmac, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { IngestConfig } from './config.js'
import type { Logger } from './logger.js'
import { hashPassword, type NmsHttpServer } from './nms.js'


type AdminConfig = NonNullable<IngestConfig['admin']>

/**
 * Domain-separation label of the admin API's signing key. Changing it logs every admin out; nothing else signs with
 * a key derived under it.
 */
const ADMIN_KEY_LABEL = 'circle-livestream/ingest/admin-api-token-key/v1'

/**
 * The key node-media-server signs and checks its admin tokens with. Never SECRET itself: operators have put the
 * platform's user-token secret there (the seed's api read SECRET too, and `pnpm start` loads one env file into
 * both apps), and node-media-server checks only a token's signature, so every user token of the platform opened the
 * admin API (stream keys, cutting publishers). The key is an HMAC of SECRET under a label of our own (or of random
 * bytes when SECRET is unset: tokens then end with the process), so no token signed with SECRET, or with any secret
 * an operator could copy from the env, verifies here; only our admin login's tokens do.
 */
export function adminSigningKey(secret: string | null): string {
  return createHmac('sha256', secret ?? randomBytes(32)).update(ADMIN_KEY_LABEL).digest('base64url')
}

/**
 * What node-media-server 4.4.3 reads to turn its admin API on: `auth.jwt` (http_server.js mounts /api/v1 only then),
 * with users whose password is its scrypt hash, and a JWT signing key derived from SECRET (see `adminSigningKey`).
 * API_USER/API_PASS become the one user. `play` and `publish` stay off: our own publish check and play refusal
 * decide, not its signed URLs.
 */
export function adminAuthConfig(admin: AdminConfig) {
  return {
    play: false,
    publish: false,
    jwt: {
      secret: adminSigningKey(admin.secret),
      algorithm: 'HS256',
      expiresIn: '1h',
      users: [{ username: admin.user, password: hashPassword(admin.pass), role: 'admin' }]
    }
  }
}

export interface AdminServerOptions {
  admin: AdminConfig
  requestTimeout: number
  headersTimeout: number
  log: Logger
}

/**
 * node-media-server listens for its HTTP side on the RTMP bind address; the admin API belongs on ADMIN_HOST
 * (loopback unless set), with the media HTTP's timeouts. Its WebSocket-FLV endpoint is closed at once: nothing but
 * RTMP may publish or play here, and a WebSocket session with a bad stream name throws out of ws's connection
 * handler (an uncaught exception in 4.4.3).
 */
export function takeOverAdminServer(http: NmsHttpServer, opts: AdminServerOptions): () => Promise<void> {
  const server = http.httpServer
  if (!server) throw new Error('node-media-server did not create its admin HTTP server')
  server.requestTimeout = opts.requestTimeout
  server.headersTimeout = opts.headersTimeout
  server.keepAliveTimeout = 5_000
  server.maxHeadersCount = 50
  // Read when the server starts listening; Node's default checks timeouts only every 30 s.
  ;(server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = 1_000
  const ws = http.wsServer
  if (ws) {
    ws.removeAllListeners('connection')
    ws.on('connection', (socket) => {
      opts.log.warn('WebSocket-FLV refused on the admin port; only RTMP publishes')
      socket.terminate()
    })
  }
  http.run = () => {
    server.listen(opts.admin.port, opts.admin.host)
  }
  return async () => {
    if (!server.listening) await once(server, 'listening')
  }
}
