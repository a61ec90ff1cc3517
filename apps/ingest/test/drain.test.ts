import t, { type Test } from 'tap'
import pino from 'pino'
import { ConfigError, loadConfig } from '../src/config.js'
import { Drain } from '../src/drain.js'
import { checkOperatorBearer } from '../src/operator-auth.js'
import { serveMedia } from './helper.js'

const log = pino({ level: 'silent' })
const TOKEN = 'Zq8v1mXK3pL0aR7tY2wE9sD4fG6hJ5kN8bV1cX3zQ0u='

t.test('OPERATOR_TOKEN: unset disables the drain call; a placeholder, a weak value or another secret stops the start by name', async (t) => {
  const c = loadConfig({})
  t.equal(c.operatorToken, null, 'unset')
  t.equal(loadConfig({ OPERATOR_TOKEN: '' }).operatorToken, null, 'empty counts as unset')
  t.equal(loadConfig({ OPERATOR_TOKEN: TOKEN }).operatorToken, TOKEN)
  for (const weak of ['CHANGE_ME_TO_32_OR_MORE_RANDOM_CHARACTERS', 'short', 'a'.repeat(48), 'abcd'.repeat(12), 'replace-me-with-a-real-operator-token-please']) {
    t.throws(() => loadConfig({ OPERATOR_TOKEN: weak }), ConfigError)
    t.throws(() => loadConfig({ OPERATOR_TOKEN: weak }), /OPERATOR_TOKEN.*openssl rand/, `refused: ${weak.slice(0, 12)}…`)
  }
  t.throws(() => loadConfig({ OPERATOR_TOKEN: TOKEN, JWT_SECRET: TOKEN }), /OPERATOR_TOKEN: it equals JWT_SECRET/, "never the users' token secret")
  t.throws(() => loadConfig({ OPERATOR_TOKEN: TOKEN, SECRET: TOKEN }), /OPERATOR_TOKEN: it equals SECRET/)
})

t.test('drain settings: DRAIN_SECONDS (0 = no drain), the internal URL defaults to the public one', async (t) => {
  const c = loadConfig({ INGEST_PUBLIC_URL: 'https://n1.media.example.com/' })
  t.equal(c.drainMs, 30_000)
  t.equal(c.internalUrl, 'https://n1.media.example.com')
  t.equal(loadConfig({ DRAIN_SECONDS: '0' }).drainMs, 0)
  t.equal(loadConfig({ INGEST_INTERNAL_URL: 'http://ingest-0.ingest:8000' }).internalUrl, 'http://ingest-0.ingest:8000')
  t.throws(() => loadConfig({ DRAIN_SECONDS: '-1' }), /DRAIN_SECONDS/)
  t.throws(() => loadConfig({ INGEST_INTERNAL_URL: 'file:///etc' }), /INGEST_INTERNAL_URL/)
})

t.test('the bearer check: exact token only', async (t) => {
  t.equal(checkOperatorBearer(`Bearer ${TOKEN}`, TOKEN), 'ok')
  t.equal(checkOperatorBearer(`bearer ${TOKEN}`, TOKEN), 'ok', 'the scheme is case-insensitive')
  t.equal(checkOperatorBearer(undefined, TOKEN), 'missing')
  t.equal(checkOperatorBearer(`Basic ${TOKEN}`, TOKEN), 'missing')
  t.equal(checkOperatorBearer('Bearer ', TOKEN), 'missing')
  t.equal(checkOperatorBearer(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN), 'wrong', 'a prefix')
  t.equal(checkOperatorBearer(`Bearer ${TOKEN}x`, TOKEN), 'wrong', 'longer')
})

/** A Drain over fake streams: `held` ids, each disconnect recorded; a disconnected stream leaves when `leave` says. */
function fakeNode(t: Test, ids: number[], opts: { drainMs: number; reconnectWindowMs?: number; leaveOnDisconnect: boolean }) {
  const held = new Set(ids)
  const publishing = new Set(ids)
  const disconnected: number[] = []
  let accepting = true
  let done: ((why: 'empty' | 'deadline') => void) | null = null
  const finished = new Promise<'empty' | 'deadline'>((resolve) => (done = resolve))
  const drain = new Drain({
    drainMs: opts.drainMs,
    reconnectWindowMs: opts.reconnectWindowMs ?? 0,
    stopAccepting: async () => {
      accepting = false
    },
    publishing: () => [...publishing],
    disconnect: (id) => {
      disconnected.push(id)
      // Only one publisher is ever away at a time: the others are still connected when it goes.
      t.equal(publishing.size, ids.length - disconnected.length + 1, `stream ${id}: the others still publishing when it is cut`)
      publishing.delete(id)
      if (opts.leaveOnDisconnect) held.delete(id)
    },
    held: () => held.size,
    done: (why) => done?.(why),
    log,
    checkMs: 20
  })
  return { drain, disconnected, finished, accepting: () => accepting }
}

t.test('a drain refuses publishes, cuts the publishers one at a time, and is over once the node holds nothing', async (t) => {
  const node = fakeNode(t, [4, 7, 9], { drainMs: 300, leaveOnDisconnect: true })
  const first = node.drain.start('test')
  t.equal(first.started, true)
  t.match(first.status, { draining: true, toDisconnect: 3 })
  t.equal(node.accepting(), false, 'new publishes refused at once')
  t.equal(node.drain.start('again').started, false, 'a second start is a no-op')
  t.equal(await node.finished, 'empty')
  t.same(node.disconnected, [4, 7, 9], 'each publisher cut once, in turn')
})

t.test('a drain whose streams never leave ends at its deadline', async (t) => {
  const node = fakeNode(t, [1, 2], { drainMs: 100, reconnectWindowMs: 100, leaveOnDisconnect: false })
  node.drain.start('test')
  t.equal(await node.finished, 'deadline')
  t.same(node.disconnected, [1, 2])
  t.equal(node.drain.status().held, 2, 'what is still held is left to the close (ended as node-shutdown)')
})

t.test('POST /admin/drain: operators only (401/403 in the envelope), idempotent, POST only', async (t) => {
  const started: string[] = []
  // Media HTTP with the drain call on it; `token` null: no operator token configured.
  const serve = async (token: string | null) => {
    const drain = {
      token,
      start: () => {
        started.push('start')
        return { started: started.length === 1, status: { draining: true } }
      }
    }
    return `${(await serveMedia(t, { drain, log })).base}/admin/drain`
  }
  const url = await serve(TOKEN)
  const post = (headers: Record<string, string> = {}) => fetch(url, { method: 'POST', headers })

  const none = await post()
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="ingest-admin"')
  t.equal(none.headers.get('access-control-allow-origin'), null, 'no CORS on operator answers')
  t.same(await none.json(), { success: false, data: null, message: 'operator credentials required (Authorization: Bearer <OPERATOR_TOKEN>)' })
  const wrong = await post({ authorization: `Bearer ${TOKEN.slice(1)}x` })
  t.equal(wrong.status, 401)
  t.match(await wrong.json(), { success: false, message: 'bad operator credentials' })
  t.same(started, [], 'refused calls start nothing')

  const ok = await post({ authorization: `Bearer ${TOKEN}` })
  t.equal(ok.status, 202)
  t.same(await ok.json(), { success: true, data: { draining: true }, message: 'draining' })
  const again = await post({ authorization: `Bearer ${TOKEN}` })
  t.equal(again.status, 200)
  t.match(await again.json(), { success: true, message: 'already draining' })

  const get = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(get.status, 405)
  t.equal(get.headers.get('allow'), 'POST')
  t.equal(started.length, 2, 'a GET starts nothing')

  const off = await serve(null)
  const disabled = await fetch(off, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(disabled.status, 403, 'without OPERATOR_TOKEN the call is off, whatever is sent')
  t.match(await disabled.json(), { success: false, message: /set OPERATOR_TOKEN.*SIGTERM always drains/ })
  t.equal(started.length, 2)
})
