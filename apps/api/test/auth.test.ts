import t from 'tap'
import { createHmac, generateKeyPairSync, createSign } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { assertEnvelope, as, build, JWT_SECRET, register } from './helper.js'

const app = await build(t)

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
function hs256(payload: Record<string, unknown>, secret = JWT_SECRET, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }) {
  const head = `${b64(header)}.${b64(payload)}`
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`
}
const now = () => Math.floor(Date.now() / 1000)
const me = (token?: string) =>
  app.inject({ method: 'GET', url: '/api/auth/me', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })

t.test('register answers 201 with the user and a token; the password never comes back', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: '/api/auth/register',
    payload: { email: 'Ada@Example.com', password: 'correct horse battery', display_name: 'Ada' }
  })
  const body = assertEnvelope(t, res, 201)
  t.equal(body.data.user.email, 'ada@example.com', 'emails are stored lower-case')
  t.equal(body.data.user.display_name, 'Ada')
  t.type(body.data.token, 'string')
  t.notMatch(res.body, /correct horse|password_hash|argon2/, 'no password or hash in the answer')
})

t.test('a duplicate email is a 409', async (t) => {
  const payload = { email: 'dup@example.com', password: 'correct horse battery', display_name: 'D' }
  assertEnvelope(t, await app.inject({ method: 'POST', url: '/api/auth/register', payload }), 201)
  const body = assertEnvelope(t, await app.inject({ method: 'POST', url: '/api/auth/register', payload: { ...payload, email: 'DUP@example.com' } }), 409)
  t.match(body.message, /already registered/)
})

t.test('login works with the right password; a wrong password and an unknown email get the same 401', async (t) => {
  const u = await register(app, 'login')
  const ok = assertEnvelope(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: u.email, password: 'correct horse battery' } }), 200)
  t.equal(ok.data.user.id, u.id)
  const wrong = assertEnvelope(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: u.email, password: 'wrong password!' } }), 401)
  const unknown = assertEnvelope(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'nobody@example.com', password: 'wrong password!' } }), 401)
  t.equal(wrong.message, unknown.message, 'no hint which part was wrong')
})

t.test('me answers the caller', async (t) => {
  const u = await register(app, 'me')
  const body = assertEnvelope(t, await as(app, { ...u })('GET', '/api/auth/me'), 200)
  t.equal(body.data.id, u.id)
})

t.test('a token from the identity provider signed with the same secret is accepted', async (t) => {
  const u = await register(app, 'idp')
  const token = hs256({ sub: String(u.id), iat: now(), exp: now() + 60, iss: 'platform-idp' })
  assertEnvelope(t, await me(token), 200)
})

t.test('every bad token is a 401 in the envelope', async (t) => {
  const u = await register(app, 'bad')
  const sub = String(u.id)
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const rsHead = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ sub, exp: now() + 60 })}`
  const rs256 = `${rsHead}.${createSign('RSA-SHA256').update(rsHead).sign(privateKey).toString('base64url')}`
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const cases: Record<string, string | undefined> = {
    'missing header': undefined,
    garbage: 'not-a-token',
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, exp: now() + 60 })}.`,
    'wrong secret': hs256({ sub, exp: now() + 60 }, 'another-secret-another-secret-another'),
    expired: hs256({ sub, iat: now() - 120, exp: now() - 60 }),
    'not yet valid': hs256({ sub, nbf: now() + 600, exp: now() + 900 }),
    'no expiry': hs256({ sub }),
    'unknown user': hs256({ sub: '999999', exp: now() + 60 }),
    'non-numeric sub': hs256({ sub: 'abc', exp: now() + 60 }),
    'RS256 signed by someone else': rs256,
    'HS256 signed with a public key (RS/HS confusion)': hs256({ sub, exp: now() + 60 }, pem),
    'HS512': hs256({ sub, exp: now() + 60 }, JWT_SECRET, { alg: 'HS512', typ: 'JWT' })
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await me(token)
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().success, false, `${name}: envelope`)
  }
})

t.test('a token answered from the verified-token cache still expires on time', async (t) => {
  const u = await register(app, 'short')
  const exp = now() + 2
  const token = hs256({ sub: String(u.id), iat: now(), exp })
  assertEnvelope(t, await me(token), 200)
  assertEnvelope(t, await me(token), 200)
  await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50))
  assertEnvelope(t, await me(token), 401)
  const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA')
  assertEnvelope(t, await me(tampered), 401)
})

t.test('login is rate-limited per address', async (t) => {
  const limited = await build(t, { AUTH_RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_WINDOW_MS: '60000' })
  const codes: number[] = []
  for (let i = 0; i < 5; i++) {
    const res = await limited.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'x@example.com', password: 'whatever' } })
    codes.push(res.statusCode)
    t.equal(res.json().success, false)
  }
  t.same(codes, [401, 401, 401, 429, 429])
})

t.test('register is rate-limited per address, and a refused registration creates no user', async (t) => {
  const limited = await build(t, { AUTH_RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_WINDOW_MS: '60000' })
  const codes: number[] = []
  let refused: { statusCode: number; body: string; json: () => { success: boolean; message: string } } | undefined
  for (let i = 0; i < 10 && !refused; i++) {
    const res = await limited.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { email: `flood-${i}@example.com`, password: 'correct horse battery', display_name: 'F' }
    })
    codes.push(res.statusCode)
    if (res.statusCode === 429) refused = res
  }
  t.same(codes, [201, 201, 201, 429], 'three registrations, then refused')
  const body = assertEnvelope(t, refused as never, 429)
  t.match(body.message, /rate limit/i)
  const [[row]] = (await limited.db.execute(sql`SELECT COUNT(*) AS n FROM users WHERE email = 'flood-3@example.com'`)) as unknown as [[{ n: number }]]
  t.equal(Number(row.n), 0, 'the refused registration wrote nothing')
})

t.test("a token whose user was deleted is a 401", async (t) => {
  // No user cache: the lookup that a deleted user fails happens on every request, so the test sees it at once.
  const uncached = await build(t, { AUTH_USER_CACHE_MS: '0' })
  const u = await register(uncached, 'deleted')
  assertEnvelope(t, await as(uncached, u)('GET', '/api/auth/me'), 200)
  assertEnvelope(t, await as(uncached, u)('GET', '/api/livestream/streams'), 200)
  await uncached.db.execute(sql`DELETE FROM users WHERE id = ${u.id}`)
  const me = assertEnvelope(t, await as(uncached, u)('GET', '/api/auth/me'), 401)
  t.match(me.message, /invalid or expired token/)
  assertEnvelope(t, await as(uncached, u)('GET', '/api/livestream/streams'), 401)
  assertEnvelope(t, await as(uncached, u)('POST', '/api/livestream/streams', { title: 'ghost' }), 401)
})

t.test('a token whose user was deleted inside the user cache window is a 401 on create and join, never a 500', async (t) => {
  // The cached "user exists" outlives the user: the writes' foreign keys are what notice.
  const cached = await build(t, { AUTH_USER_CACHE_MS: '600000' })
  const host = await register(cached, 'host')
  const ghost = await register(cached, 'ghost')
  const created = assertEnvelope(t, await as(cached, host)('POST', '/api/livestream/streams', { title: 'open' }), 201)
  assertEnvelope(t, await as(cached, ghost)('GET', '/api/livestream/streams'), 200) // caches the ghost as existing
  await cached.db.execute(sql`DELETE FROM users WHERE id = ${ghost.id}`)
  const create = assertEnvelope(t, await as(cached, ghost)('POST', '/api/livestream/streams', { title: 'ghost' }), 401)
  t.match(create.message, /invalid or expired token/)
  assertEnvelope(t, await as(cached, ghost)('POST', '/api/livestream/streams/join', { stream_id: created.data.id }), 401)
  // The 401 also ended the cached belief: a read that needs no write is refused too from now on.
  assertEnvelope(t, await as(cached, ghost)('GET', '/api/livestream/streams'), 401)
  const [[row]] = (await cached.db.execute(sql`SELECT COUNT(*) AS n FROM streams WHERE title = 'ghost'`)) as unknown as [[{ n: number }]]
  t.equal(Number(row.n), 0, 'nothing written')
})

t.test('an account deletes itself with its streams and participations; its token stops at once', async (t) => {
  const app = await build(t, { AUTH_USER_CACHE_MS: '600000' })
  const host = await register(app, 'leaving')
  const guest = await register(app, 'staying')
  const s = assertEnvelope(t, await as(app, host)('POST', '/api/livestream/streams', { title: 'mine' }), 201).data
  assertEnvelope(t, await as(app, host)('POST', `/api/livestream/streams/${s.id}/start`), 200)
  assertEnvelope(t, await as(app, guest)('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  const gone = assertEnvelope(t, await as(app, host)('DELETE', '/api/auth/me'), 200)
  t.match(gone.message, /account deleted with 1 stream/)
  assertEnvelope(t, await as(app, host)('GET', '/api/auth/me'), 401)
  assertEnvelope(t, await as(app, guest)('GET', `/api/livestream/streams/${s.id}`), 404)
  const [[row]] = (await app.db.execute(sql`SELECT (SELECT COUNT(*) FROM streams) AS s, (SELECT COUNT(*) FROM stream_participants) AS p`)) as unknown as [[{ s: number; p: number }]]
  t.same([Number(row.s), Number(row.p)], [0, 0], 'no stream, no participation left')
  assertEnvelope(t, await as(app, null)('DELETE', '/api/auth/me'), 401)
})
