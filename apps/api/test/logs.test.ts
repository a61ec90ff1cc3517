import t, { type Test } from 'tap'
import pino from 'pino'
import { assertEnvelope, as, build, register } from './helper.js'
import { createLogger } from '../src/logger.js'

/** A pino destination that keeps every line written to it. */
function capture() {
  const lines: string[] = []
  return { lines, text: () => lines.join(''), stream: { write: (line: string) => void lines.push(line) } }
}

/** Asks for a stream by its key in every way a client might, as the owner and as another user; returns the key. */
async function askForKeyEveryWay(t: Test, app: Awaited<ReturnType<typeof build>>) {
  const owner = await register(app, 'owner')
  const other = await register(app, 'other')
  const created = assertEnvelope(t, await as(app, owner)('POST', '/api/livestream/streams', { title: 'logged' }), 201)
  const key: string = created.data.stream_key
  t.match(key, /^[0-9a-f-]{36}$/, 'the owner got a key')
  assertEnvelope(t, await as(app, owner)('GET', `/api/livestream/streams/key?streamKey=${key}`), 200)
  assertEnvelope(t, await as(app, other)('GET', `/api/livestream/streams/key?streamKey=${key}`), 404)
  assertEnvelope(t, await as(app, null)('GET', `/api/livestream/streams/key?streamKey=${key}`), 401)
  // The parameter's name percent-encoded, the key in another parameter, the key taken for an id.
  assertEnvelope(t, await as(app, other)('GET', `/api/livestream/streams/key?stream%4Bey=${key}`), 404)
  await as(app, other)('GET', `/api/livestream/streams?page=1&note=${key}`)
  assertEnvelope(t, await as(app, other)('GET', `/api/livestream/streams/${key}`), 400)
  return key
}

t.test('the process logger (as server.ts builds it) never writes a stream key', async (t) => {
  const out = capture()
  const app = await build(t, {}, { logger: createLogger('trace', out.stream) })
  const key = await askForKeyEveryWay(t, app)
  t.match(out.text(), /incoming request/, 'requests were logged')
  t.match(out.text(), /"url":"\/api\/livestream\/streams\/key"/, 'the key lookup was logged, by its path')
  t.notOk(out.text().includes(key), 'the key is in no log line')
})

t.test('any pino instance handed to buildApp gets the key-free request serializer', async (t) => {
  // A bare instance, with none of createLogger's settings: the app must not rely on the caller having them.
  const out = capture()
  const app = await build(t, {}, { logger: pino({ level: 'trace' }, out.stream) })
  const key = await askForKeyEveryWay(t, app)
  t.match(out.text(), /incoming request/, 'requests were logged')
  t.notOk(out.text().includes(key), 'the key is in no log line')
})

t.test('one access line per request: its id, method, path, status, time and address, nothing else of the request', async (t) => {
  const out = capture()
  const app = await build(t, {}, { logger: createLogger('debug', out.stream) })
  const owner = await register(app, 'owner')
  const created = assertEnvelope(t, await as(app, owner)('POST', '/api/livestream/streams', { title: 'logged' }), 201)
  out.lines.length = 0
  await as(app, owner)('GET', `/api/livestream/streams/${created.data.id}?note=${created.data.stream_key}`)
  await as(app, null)('GET', '/api/livestream/streams/1')
  const lines = out.lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  const access = lines.filter((l) => l.msg === 'request')
  t.equal(access.length, 2, 'one access line for each of the two requests')
  const [ok, refused] = access as [Record<string, unknown>, Record<string, unknown>]
  t.match(ok, { level: 30, method: 'GET', url: `/api/livestream/streams/${created.data.id}`, status: 200, ip: '127.0.0.1', msg: 'request' })
  t.equal(typeof ok.ms, 'number', 'the answer time, in ms')
  t.same(Object.keys(ok).sort(), ['hostname', 'ip', 'level', 'method', 'ms', 'msg', 'pid', 'reqId', 'status', 'time', 'url'], 'those fields only')
  t.match(refused, { url: '/api/livestream/streams/1', status: 401 })
  // The request id is the one the request's other lines carry (its arrival line at debug).
  const arrivals = lines.filter((l) => l.msg === 'incoming request')
  t.same(arrivals.map((l) => l.reqId), [ok.reqId, refused.reqId], 'the access lines carry the ids of their requests')
  t.not(ok.reqId, refused.reqId)
  t.notOk(out.text().includes(created.data.stream_key), 'the key is in no line')
  // Redaction still applies to the app's own lines: the access line's logger is a sibling without it, not a change of it.
  app.log.info({ user: { password: 'hunter2' } }, 'probe')
  t.notOk(out.text().includes('hunter2'), "the app's other lines are still redacted")
})
