import t from 'tap'
import { loadConfig, ConfigError } from '../src/config.js'
import { redactStreamPaths } from '../src/logger.js'

t.test('bad settings stop the start with the variable named', async (t) => {
  t.throws(() => loadConfig({ RTMP_PORT: 'abc' }), ConfigError)
  t.throws(() => loadConfig({ RTMP_PORT: 'abc' }), /RTMP_PORT/)
  t.throws(() => loadConfig({ REDIS_URL: 'http://x' }), /REDIS_URL/)
  t.throws(() => loadConfig({ API_USER: 'admin' }), /API_PASS/)
  t.throws(() => loadConfig({ INGEST_NODE_ID: 'has space' }), /INGEST_NODE_ID/)
  const c = loadConfig({})
  t.equal(c.rtmpPort, 1935)
  t.equal(c.httpPort, 8000)
  t.equal(c.admin, null, 'admin API disabled when unset')
  t.equal(c.reconnectWindowMs, 10_000)
  t.equal(c.publishSlowdownMaxMs, 3_000)
  const admin = loadConfig({ API_USER: 'op', API_PASS: 'pw' }).admin
  t.same(admin, { host: '127.0.0.1', port: 8001, user: 'op', pass: 'pw', secret: null }, 'the admin API listens on loopback unless ADMIN_HOST says otherwise')
})

t.test("a SECRET equal to JWT_SECRET (the api's user-token secret) stops the start, saying why", async (t) => {
  const shared = 'x'.repeat(40)
  t.throws(() => loadConfig({ API_USER: 'op', API_PASS: 'pw', SECRET: shared, JWT_SECRET: shared }), /SECRET: it equals JWT_SECRET.*openssl rand/)
  t.ok(loadConfig({ API_USER: 'op', API_PASS: 'pw', SECRET: 'y'.repeat(40), JWT_SECRET: shared }).admin, 'distinct secrets start')
})

t.test('media settings: part and window defaults, TLS only as a pair, parts shorter than segments', async (t) => {
  const c = loadConfig({})
  t.equal(c.hlsPartSeconds, 0.33)
  t.equal(c.mediaWindowSegments, 6)
  t.equal(c.tls, null, 'plain HTTP by default')
  t.throws(() => loadConfig({ TLS_CERT_PATH: '/x/cert.pem' }), /TLS_KEY_PATH/)
  t.throws(() => loadConfig({ HLS_PART_SECONDS: '2' }), /HLS_PART_SECONDS/)
  t.throws(() => loadConfig({ MEDIA_WINDOW_SEGMENTS: '1' }), /MEDIA_WINDOW_SEGMENTS/)
  t.match(loadConfig({ TLS_CERT_PATH: '/x/cert.pem', TLS_KEY_PATH: '/x/key.pem' }).tls, { certPath: '/x/cert.pem', keyPath: '/x/key.pem' })
})

t.test('stream paths are redacted from log text', async (t) => {
  t.equal(redactStreamPaths('start push /live/3b241101-e2bb-4255-8caf-4136c566a962 ok'), 'start push /live/[redacted] ok')
})
