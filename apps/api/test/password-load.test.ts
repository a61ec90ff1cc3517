import t from 'tap'
import { assertEnvelope, build, register } from './helper.js'

const login = (email: string, password: string, remoteAddress = '127.0.0.1') => ({
  method: 'POST' as const,
  url: '/api/auth/login',
  remoteAddress,
  payload: { email, password }
})

t.test('login and register spend one budget per address', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_WINDOW_MS: '60000' })
  const codes: number[] = []
  const signUp = (i: number) =>
    app.inject({ method: 'POST', url: '/api/auth/register', payload: { email: `budget-${i}@example.com`, password: 'correct horse battery', display_name: 'B' } })
  codes.push((await app.inject(login('nobody@example.com', 'whatever'))).statusCode)
  codes.push((await app.inject(login('nobody@example.com', 'whatever'))).statusCode)
  codes.push((await signUp(1)).statusCode)
  const refused = await signUp(2)
  codes.push(refused.statusCode, (await app.inject(login('nobody@example.com', 'whatever'))).statusCode)
  t.same(codes, [401, 401, 201, 429, 429], 'two logins and a registration use up a budget of three')
  assertEnvelope(t, refused, 429)
  const elsewhere = await app.inject(login('nobody@example.com', 'whatever', '10.9.9.9'))
  t.equal(elsewhere.statusCode, 401, 'another address has its own budget')
})

t.test('password hashing is bounded for the whole process: past the queue, 503 with Retry-After at once', async (t) => {
  // Many addresses (each under its own rate limit) log in at once: one hash at a time, two waiting, the rest told to retry.
  const app = await build(t, { AUTH_HASH_CONCURRENCY: '1', AUTH_HASH_QUEUE: '2' })
  const user = await register(app, 'busy')
  const peakBefore = app.users.hashing.peakRunning
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) => app.inject(login(user.email, i === 0 ? 'correct horse battery' : 'wrong password', `10.8.${i >> 8}.${i & 255}`)))
  )
  const by = (code: number) => answers.filter((r) => r.statusCode === code)
  t.comment(`200: ${by(200).length}, 401: ${by(401).length}, 503: ${by(503).length}`)
  t.equal(by(200).length + by(401).length + by(503).length, 40, 'only 200, 401 and 503')
  t.ok(by(503).length >= 30, 'most are refused at once rather than queued')
  t.ok(by(200).length + by(401).length >= 3, 'the running one and the two waiting are answered')
  for (const res of by(503)) {
    assertEnvelope(t, res, 503)
    t.equal(res.headers['retry-after'], '1')
  }
  t.equal(Math.max(peakBefore, app.users.hashing.peakRunning), 1, 'never more than one hash at a time')
  // Once the burst is over, logins work again.
  assertEnvelope(t, await app.inject(login(user.email, 'correct horse battery')), 200)
})
