import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import Fastify from 'fastify'
import { assertEnvelope, as, build, register, testConfig } from './helper.js'
import watchRoutes from '../src/routes/watch.js'
import { shownState } from '../src/watch/page.js'

const app = await build(t)
const alice = await register(app, 'alice')
const A = as(app, alice)
const pool = app.dbClient.pool

// A title that tries every way out of its place: element, attribute, the JSON block, a comment.
const HOSTILE = `</script><script>alert(1)</script><img src=x onerror="alert(2)"> ' & <!--`

async function create(title: string) {
  const res = await A('POST', '/api/livestream/streams', { title })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().data as { id: number; playback_id: string; title: string }
}
const page = (id: string, query = '') => app.inject({ method: 'GET', url: `/watch/${id}${query}` })
/** The page's own state block, as watch.js reads it. */
const configOf = (html: string) => JSON.parse(/<script type="application\/json" id="watch-config">([^<]*)<\/script>/.exec(html)?.[1] ?? 'null')
const cspOf = (res: { headers: Record<string, unknown> }) => String(res.headers['content-security-policy'])

t.test('a pending stream: the page says it has not started, with its title, count and an embed snippet', async (t) => {
  const s = await create('Friday show')
  const res = await page(s.playback_id)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/)
  t.match(res.body, '<h1 id="title">Friday show</h1>')
  t.match(res.body, '<title>Friday show</title>')
  t.match(res.body, 'This stream has not started yet')
  t.match(res.body, /<span id="status" class="badge" data-status="pending">Not started<\/span>/)
  t.match(res.body, '<span id="viewer-count">0</span> watching')
  t.match(res.body, `&#60;iframe src=&#34;/watch/${s.playback_id}?embed=1&#34;`, 'the embed snippet, escaped as text')
  t.match(res.body, '<meta name="viewport" content="width=device-width, initial-scale=1">')
  t.match(res.body, /<video id="video" muted autoplay playsinline controls>/, 'muted autoplay, inline on phones')
  const config = configOf(res.body)
  t.same(
    { ...config, media_origins: undefined },
    {
      playback_id: s.playback_id,
      title: 'Friday show',
      status: 'pending',
      connection: null,
      viewer_count: 0,
      playback_url: `http://cdn.test:8000/hls/${s.playback_id}/index.m3u8`,
      state_url: `/api/public/streams/${s.playback_id}`,
      events_url: `/api/public/streams/${s.playback_id}/events`,
      media_origins: undefined
    }
  )
})

t.test('a hostile title is text everywhere: escaped in the markup, intact in the JSON block, never a tag', async (t) => {
  const s = await create(HOSTILE)
  t.equal(s.title, HOSTILE.trim(), 'the api keeps the title as given')
  const res = await page(s.playback_id)
  t.equal(res.statusCode, 200)
  t.notMatch(res.body, '<script>alert', 'no script element from the title')
  t.notMatch(res.body, '<img', 'no img element from the title')
  t.notMatch(res.body, '<!--', 'no comment opened by the title')
  t.equal(res.body.match(/<\/script>/g)?.length, 3, 'only our three script elements are closed')
  t.match(res.body, '<h1 id="title">&#60;/script&#62;&#60;script&#62;alert(1)&#60;/script&#62;&#60;img src=x onerror=&#34;alert(2)&#34;&#62; &#39; &#38; &#60;!--</h1>')
  t.equal(configOf(res.body).title, HOSTILE.trim(), 'the JSON block gives watch.js the exact title back')
})

t.test('the page loads only our own files: no CDN, no inline script, and a policy that says so', async (t) => {
  const s = await create('no cdn')
  const res = await page(s.playback_id)
  const refs = [...res.body.matchAll(/<(?:script|link)[^>]*(?:src|href)="([^"]*)"/g)].map((m) => m[1])
  t.equal(refs.length, 3, 'one style sheet, hls.js and watch.js')
  for (const ref of refs) t.match(ref, /^\/watch\/assets\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{12}\.(js|css)$/, `${ref} is ours, content-hashed`)
  const markup = res.body.replace(/<script type="application\/json" id="watch-config">[^<]*<\/script>/, '')
  t.notMatch(markup, /https?:\/\//, 'no absolute URL in the markup (only the playback URL, in the state block; the snippet is made absolute in the browser)')
  t.notMatch(res.body, /<script(?![^>]*\bsrc=)(?![^>]*type="application\/json")[^>]*>/, 'no inline executable script')
  const csp = cspOf(res)
  t.match(csp, "default-src 'none'")
  t.match(csp, "script-src 'self';")
  t.match(csp, "style-src 'self';")
  t.match(csp, "media-src 'self' blob: http://cdn.test:8000;", 'media from the playback origin, through MSE blobs')
  t.match(csp, "connect-src 'self' http://cdn.test:8000;", 'playlists and segments fetched from the playback origin')
  t.match(csp, 'frame-ancestors *', 'embeddable anywhere by default')
  t.notMatch(csp, /unsafe|cdn\.jsdelivr|unpkg/)
  t.equal(res.headers['x-frame-options'], undefined, 'no X-Frame-Options: DENY on an embeddable page')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['cache-control'], 'no-store', 'the state in the page is never served stale')
})

t.test('the assets are served by the api with a year of cache, compressed when asked', async (t) => {
  const s = await create('assets')
  const body = (await page(s.playback_id)).body
  const refs = [...body.matchAll(/(?:src|href)="(\/watch\/assets\/[^"]+)"/g)].map((m) => m[1] as string)
  for (const ref of refs) {
    const plain = await app.inject({ method: 'GET', url: ref })
    t.equal(plain.statusCode, 200, ref)
    t.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable')
    t.equal(plain.headers['vary'], 'accept-encoding')
    t.equal(plain.headers['content-encoding'], undefined)
    t.match(plain.headers['content-type'], ref.endsWith('.css') ? /^text\/css/ : /^text\/javascript/)
    const br = await app.inject({ method: 'GET', url: ref, headers: { 'accept-encoding': 'gzip, deflate, br' } })
    t.equal(br.headers['content-encoding'], 'br')
    t.ok(brotliDecompressSync(br.rawPayload).equals(plain.rawPayload), 'brotli copy decodes to the same bytes')
    const gz = await app.inject({ method: 'GET', url: ref, headers: { 'accept-encoding': 'gzip' } })
    t.equal(gz.headers['content-encoding'], 'gzip')
    t.ok(gunzipSync(gz.rawPayload).equals(plain.rawPayload), 'gzip copy decodes to the same bytes')
  }
  const hls = refs.find((r) => r.includes('/hls.'))
  t.ok(hls, 'hls.js is one of them')
  const hlsBody = (await app.inject({ method: 'GET', url: hls as string })).body
  t.match(hlsBody, /Hls/, 'the hls.js build from our node_modules')
  t.notMatch(hlsBody, /sourceMappingURL/, 'no source map comment pointing at a file we do not serve')
  const watchJs = (await app.inject({ method: 'GET', url: refs.find((r) => r.includes('/watch.') && r.endsWith('.js')) as string })).body
  t.match(watchJs, 'xhrSetup', 'watch.js adds the viewer session to hls.js requests')
  const plainName = await app.inject({ method: 'GET', url: '/watch/assets/hls.js' })
  t.equal(plainName.statusCode, 200, 'hls.js under its plain name too, for the README snippet')
  t.equal(plainName.body, hlsBody, 'the same bytes')
  t.equal(plainName.headers['cache-control'], 'public, max-age=86400', 'a day: it changes with an upgrade')
  t.equal(plainName.headers['cross-origin-resource-policy'], 'cross-origin', 'loadable from pages of other sites')
  const missing = await app.inject({ method: 'GET', url: '/watch/assets/hls.AAAAAAAAAAAA.js' })
  assertEnvelope(t, missing, 404)
})

t.test('a live stream on a node, reconnecting: the badge says so, the count shows, it plays from the one playback URL, not the node', async (t) => {
  const s = await create('on a node')
  await pool.query(
    "UPDATE streams SET status = 'live', started_at = NOW(), ingest_node_id = 'n1', playback_base_url = 'http://node-a.test:8000', connection = 'reconnecting', viewer_count = 7, peak_viewer_count = 9 WHERE id = ?",
    [s.id]
  )
  const res = await page(s.playback_id)
  t.equal(res.statusCode, 200)
  t.match(res.body, /<span id="status" class="badge" data-status="reconnecting">Reconnecting…<\/span>/)
  t.match(res.body, '<span id="viewer-count">7</span> watching')
  t.notMatch(res.body, 'has not started')
  const config = configOf(res.body)
  // Any node serves any playback id (it proxies to the holder), so the page never needs the node's own origin.
  t.equal(config.playback_url, `http://cdn.test:8000/hls/${s.playback_id}/index.m3u8`)
  t.same(config.media_origins, ['http://cdn.test:8000'])
  t.match(cspOf(res), "media-src 'self' blob: http://cdn.test:8000;")
  t.match(cspOf(res), "connect-src 'self' http://cdn.test:8000;")
  t.notMatch(res.body, 'node-a.test', 'the node is named nowhere on the page')
})

t.test('the state shown: the status, refined by the connection while live', async (t) => {
  t.equal(shownState('pending', null), 'pending')
  t.equal(shownState('live', null), 'live', 'live with no connection news: live')
  t.equal(shownState('live', 'connected'), 'live')
  t.equal(shownState('live', 'reconnecting'), 'reconnecting')
  t.equal(shownState('live', 'awaiting-publisher'), 'starting', 'set live by hand, no publisher yet')
  t.equal(shownState('ended', null), 'ended')
})

t.test('an ended stream: the page says it has ended', async (t) => {
  const s = await create('over')
  t.equal((await A('POST', `/api/livestream/streams/${s.id}/end`)).statusCode, 200)
  const res = await page(s.playback_id)
  t.equal(res.statusCode, 200)
  t.match(res.body, 'This stream has ended.')
  t.match(res.body, /data-status="ended">Ended</)
  t.equal(configOf(res.body).status, 'ended')
})

t.test('embed=1 gives the video alone', async (t) => {
  const s = await create('embedded')
  t.match((await page(s.playback_id, '?embed=1')).body, '<body class="watch embed"')
  t.match((await page(s.playback_id)).body, '<body class="watch"')
  t.match((await page(s.playback_id, '?embed=0&utm_source=x')).body, '<body class="watch"', 'other query parameters are ignored')
})

t.test('an unknown or malformed playback id is a 404 page, not JSON, not a stack, not an echo', async (t) => {
  for (const id of ['AAAAAAAAAAAAAAAA', 'x', '%3Cscript%3Ealert(1)%3C%2Fscript%3E', 'a'.repeat(65), '..%2F..%2Fetc%2Fpasswd', 'AAAAAAAA.AAAAAAA']) {
    const res = await page(id)
    t.equal(res.statusCode, 404, id)
    t.match(res.headers['content-type'], /^text\/html/)
    t.match(res.body, 'Stream not found')
    t.notMatch(res.body, /at .*\.(ts|js):\d+/, 'no stack')
    t.notMatch(res.body, decodeURIComponent(id).slice(0, 12), 'the id is not echoed')
    t.match(cspOf(res), "default-src 'none'")
  }
  const res = await page('AAAAAAAAAAAAAAAA')
  t.notMatch(res.body, '<script', 'the 404 page runs no script')
})

t.test('HEAD answers like GET without a body', async (t) => {
  const s = await create('head')
  const res = await app.inject({ method: 'HEAD', url: `/watch/${s.playback_id}` })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  t.equal(res.body, '')
  const missing = await app.inject({ method: 'HEAD', url: '/watch/AAAAAAAAAAAAAAAA' })
  t.equal(missing.statusCode, 404)
})

t.test('/ answers with directions: the watch page, the api, docs and health', async (t) => {
  const body = assertEnvelope(t, await app.inject({ method: 'GET', url: '/' }), 200)
  t.equal(body.data.service, 'circle-livestream api')
  t.same(body.data.links, { watch: '/watch/{playback_id}', api: '/api', docs: '/docs', healthz: '/healthz', readyz: '/readyz' })
})

t.test('WATCH_EMBED_ORIGINS: none refuses framing, a list allows those sites only, anything else stops the start', async (t) => {
  const assetsDir = path.join(import.meta.dirname, '../dist/watch-assets')
  const pageWith = async (env: Record<string, string>) => {
    const config = testConfig('mysql://x@127.0.0.1/x', env)
    const bare = Fastify()
    bare.decorate('streams', {
      getByPlaybackId: async () => ({
        id: 1, refNo: 'LS-1', title: 't', streamKey: 'k', playbackId: 'AAAAAAAAAAAAAAAA', userId: 1, status: 'pending', connection: null, connectionAt: null,
        viewerCount: 0, peakViewerCount: 0, ingestNodeId: null, playbackBaseUrl: null, endedReason: null, startedAt: null, endedAt: null,
        createdAt: new Date(), updatedAt: new Date()
      })
    } as never)
    await bare.register(watchRoutes, { urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl }, watch: config.watch, assetsDir })
    const res = await bare.inject({ method: 'GET', url: '/watch/AAAAAAAAAAAAAAAA' })
    await bare.close()
    return res
  }
  const none = await pageWith({ WATCH_EMBED_ORIGINS: 'none' })
  t.match(cspOf(none), "frame-ancestors 'none'")
  t.equal(none.headers['x-frame-options'], 'DENY')
  const some = await pageWith({ WATCH_EMBED_ORIGINS: 'https://community.example, https://other.example:8443', WATCH_MEDIA_ORIGINS: 'https://media.example' })
  t.match(cspOf(some), "frame-ancestors 'self' https://community.example https://other.example:8443")
  t.match(cspOf(some), "media-src 'self' blob: http://cdn.test:8000 https://media.example;")
  for (const bad of ['https://a.example/path', 'javascript:alert(1)', "https://a.example; script-src 'unsafe-inline'", ' , ']) {
    t.throws(() => testConfig('mysql://x@127.0.0.1/x', { WATCH_EMBED_ORIGINS: bad }), { message: /WATCH_EMBED_ORIGINS/ }, JSON.stringify(bad))
  }
  t.throws(() => testConfig('mysql://x@127.0.0.1/x', { WATCH_MEDIA_ORIGINS: 'ftp://x' }), { message: /WATCH_MEDIA_ORIGINS/ })
})

t.test('a database that is down or a bug: a 503 or 500 page, the detail only in the log', async (t) => {
  const config = testConfig('mysql://x@127.0.0.1/x')
  const assetsDir = path.join(import.meta.dirname, '../dist/watch-assets')
  for (const [err, status] of [
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' }), 503],
    [new TypeError('secret detail of a bug'), 500]
  ] as const) {
    const bare = Fastify()
    bare.decorate('streams', { getByPlaybackId: async () => Promise.reject(err) } as never)
    await bare.register(watchRoutes, { urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl }, watch: config.watch, assetsDir })
    const res = await bare.inject({ method: 'GET', url: '/watch/AAAAAAAAAAAAAAAA' })
    await bare.close()
    t.equal(res.statusCode, status)
    t.match(res.headers['content-type'], /^text\/html/)
    t.match(res.body, 'cannot be shown right now')
    t.notMatch(res.body, /ECONNREFUSED|secret detail|at .*:\d+/, 'nothing of the error in the page')
  }
})

t.test('assets not built: the page is a 503 saying so, not a crash', async (t) => {
  const empty = await mkdtemp(path.join(tmpdir(), 'ls-no-assets-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))
  const config = testConfig('mysql://x@127.0.0.1/x')
  const bare = Fastify()
  await bare.register(watchRoutes, { urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl }, watch: config.watch, assetsDir: empty })
  const res = await bare.inject({ method: 'GET', url: '/watch/AAAAAAAAAAAAAAAA' })
  await bare.close()
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.body, 'not installed')
})
