import t from 'tap'
import { assertEnvelope, as, build, register } from './helper.js'

const app = await build(t)
const user = await register(app, 'validator')
const U = as(app, user)
const auth = { authorization: `Bearer ${user.token}` }

t.test('bad bodies are 400 with a message that names the field', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /title.*required/],
    [{ title: '' }, /title/],
    [{ title: '   ' }, /title/],
    [{ title: 'x'.repeat(10_000) }, /title/],
    [{ title: 42 }, /title/],
    [{ title: null }, /title/],
    [{ title: ['a'] }, /title/],
    [{ title: 'ok', extra: true }, /extra/]
  ]
  for (const [payload, message] of cases) {
    const body = assertEnvelope(t, await U('POST', '/api/livestream/streams', payload), 400)
    t.match(body.message, message, JSON.stringify(payload).slice(0, 60))
  }
  const status = assertEnvelope(t, await U('PATCH', '/api/livestream/streams/1/status', { status: 'paused' }), 400)
  t.match(status.message, /status/)
  const join = assertEnvelope(t, await U('POST', '/api/livestream/streams/join', { stream_id: '1' }), 400)
  t.match(join.message, /stream_id/)
  const reg = assertEnvelope(
    t,
    await app.inject({ method: 'POST', url: '/api/auth/register', payload: { email: 'not-an-email', password: 'correct horse', display_name: 'x' } }),
    400
  )
  t.match(reg.message, /email/)
  const short = assertEnvelope(
    t,
    await app.inject({ method: 'POST', url: '/api/auth/register', payload: { email: 'a@b.co', password: 'short', display_name: 'x' } }),
    400
  )
  t.match(short.message, /password/)
})

t.test('query strings: converted, defaulted and refused by field', async (t) => {
  await U('POST', '/api/livestream/streams', { title: 'one' })
  const ok = assertEnvelope(t, await U('GET', `/api/livestream/streams?user_id=${user.id}`), 200)
  t.equal(ok.count, 1, 'user_id converted from text')
  t.equal(ok.data.length, 1, 'page and limit defaulted')
  const cases: Array<[string, RegExp]> = [
    ['limit=1.5', /query limit/],
    ['limit=1e1', /query limit/],
    ['limit=', /query limit/],
    ['page=1&page=2', /query page/],
    ['user_id=abc', /query user_id/],
    ['user_id=99999999999999999999', /query user_id/],
    ['status=paused', /query status/],
    ['status=live&status=ended', /query status/],
    ['sort=desc', /query sort.*not allowed/]
  ]
  for (const [qs, message] of cases) {
    const body = assertEnvelope(t, await U('GET', `/api/livestream/streams?${qs}`), 400)
    t.match(body.message, message, qs)
  }
  const key = assertEnvelope(t, await U('GET', '/api/livestream/streams/key'), 400)
  t.match(key.message, /streamKey.*required/)
})

t.test('malformed JSON, wrong content types and huge bodies are client errors in the envelope', async (t) => {
  const bad = await app.inject({ method: 'POST', url: '/api/livestream/streams', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"title": ' })
  t.match(assertEnvelope(t, bad, 400).message, /JSON/)
  const text = await app.inject({ method: 'POST', url: '/api/livestream/streams', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'title=x' })
  t.equal(text.statusCode, 400, 'a text body is not the JSON object the route expects')
  t.equal(text.json().success, false)
  const huge = await app.inject({
    method: 'POST',
    url: '/api/livestream/streams',
    headers: { ...auth, 'content-type': 'application/json' },
    payload: JSON.stringify({ title: 'x'.repeat(200_000) })
  })
  t.equal(huge.statusCode, 413)
  t.equal(huge.json().success, false)
})

t.test('unknown routes are 404 in the envelope', async (t) => {
  const body = assertEnvelope(t, await U('GET', '/api/livestream/nothing-here'), 404)
  t.match(body.message, /not found/)
  assertEnvelope(t, await app.inject({ method: 'DELETE', url: '/api/livestream/streams/1' }), 404)
})

t.test('answers carry no stack traces and security headers are set', async (t) => {
  const res = await U('POST', '/api/livestream/streams', { title: 42 })
  t.notMatch(res.body, /at .*\.(js|ts):\d+/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.match(res.headers['content-security-policy'], /default-src 'none'/)
  t.notOk(res.headers['access-control-allow-origin'], 'no CORS unless configured')
})

t.test('CORS answers only configured origins', async (t) => {
  const corsApp = await import('./helper.js').then((h) => h.build(t, { CORS_ORIGINS: 'https://app.example.com' }))
  const ok = await corsApp.inject({ method: 'OPTIONS', url: '/api/livestream/streams', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' } })
  t.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com')
  const other = await corsApp.inject({ method: 'OPTIONS', url: '/api/livestream/streams', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } })
  t.not(other.headers['access-control-allow-origin'], 'https://evil.example')
})

t.test('health and readiness', async (t) => {
  assertEnvelope(t, await app.inject({ method: 'GET', url: '/healthz' }), 200)
  const ready = assertEnvelope(t, await app.inject({ method: 'GET', url: '/readyz' }), 200)
  t.same(ready.data, { database: 'ok', redis: 'ok' })
})
