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
