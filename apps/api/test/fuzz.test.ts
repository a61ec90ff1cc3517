import t from 'tap'
import fc from 'fast-check'
import mysql from 'mysql2/promise'
import { createTestDatabase } from '@livestream/db/testing'
import { buildApp } from '../src/app.js'
import { as, dropRedisPrefix, register, testConfig, type TestUser } from './helper.js'

// Property: whatever request arrives, malformed or aimed at someone else's stream, the api answers an envelope, never a
// 5xx, never shows a key to anyone but its owner, and a refused request (4xx) leaves every table exactly as it was.
// Most requests carry a valid token and real ids, so they get past auth and reach real rows in every state.
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)

const db = await createTestDatabase('ls_fuzz')
const config = testConfig(db.url)
const app = await buildApp({ config, consumer: false, reaper: false, webhookWorker: false })
await app.ready()
const sql = await mysql.createConnection({ uri: db.url })
t.teardown(async () => {
  await sql.end()
  await app.close()
  await db.drop()
  await dropRedisPrefix(config.queuePrefix)
})

// --- Seed: two owners with streams in every state, a viewer, participants on the live ones, a deleted user. ---
const owner = await register(app, 'owner')
const rival = await register(app, 'rival')
const viewer = await register(app, 'viewer')
const ghost = await register(app, 'ghost')
await sql.query('DELETE FROM users WHERE id = ?', [ghost.id])

const keyOwner = new Map<string, number>() // every stream key seen, with its owner: the leak check's list
const streamIds: number[] = []
const keysOf = (u: TestUser) => [...keyOwner].filter(([, id]) => id === u.id).map(([k]) => k)
for (const u of [owner, rival]) {
  for (const state of ['pending', 'live', 'ended', 'pending', 'live', 'ended', 'live', 'pending']) {
    const created = (await as(app, u)('POST', '/api/livestream/streams', { title: `${state} stream` })).json()
    const id: number = created.data.id
    keyOwner.set(created.data.stream_key, u.id)
    streamIds.push(id)
    if (state !== 'pending') await as(app, u)('POST', `/api/livestream/streams/${id}/start`)
    for (const guest of [viewer, u === owner ? rival : owner]) {
      if (state !== 'pending') await as(app, guest)('POST', '/api/livestream/streams/join', { stream_id: id })
    }
    if (state === 'ended') await as(app, u)('POST', `/api/livestream/streams/${id}/end`)
  }
}

// --- Every table's contents, as MariaDB's checksum of all rows and columns. ---
const [tableRows] = await sql.query('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1')
const tables = (tableRows as Array<{ name: string }>).map((r) => `\`${r.name}\``)
const checksum = async () => {
  const [rows] = await sql.query(`CHECKSUM TABLE ${tables.join(', ')}`)
  return (rows as Array<{ Table: string; Checksum: number | null }>).map((r) => `${r.Table}=${r.Checksum}`).join(' ')
}
const [[seeded]] = (await sql.query(
  "SELECT (SELECT COUNT(*) FROM streams WHERE status = 'live') live, (SELECT COUNT(*) FROM streams WHERE status = 'ended') ended, (SELECT COUNT(*) FROM stream_participants) participants"
)) as unknown as [[{ live: number; ended: number; participants: number }]]

// --- Generators. ---
interface Caller {
  name: string
  id: number | null
  authorization?: string
}
const caller = fc.oneof(
  { weight: 40, arbitrary: fc.constant<Caller>({ name: 'owner', id: owner.id, authorization: `Bearer ${owner.token}` }) },
  { weight: 20, arbitrary: fc.constant<Caller>({ name: 'rival', id: rival.id, authorization: `Bearer ${rival.token}` }) },
  { weight: 20, arbitrary: fc.constant<Caller>({ name: 'viewer', id: viewer.id, authorization: `Bearer ${viewer.token}` }) },
  {
    weight: 20,
    arbitrary: fc.constantFrom<Caller>(
      { name: 'anonymous', id: null },
      { name: 'garbage token', id: null, authorization: 'Bearer not.a.token' },
      { name: 'deleted user', id: null, authorization: `Bearer ${ghost.token}` },
      { name: 'alg none', id: null, authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"sub":"${owner.id}"}`).toString('base64url')}.` }
    )
  }
)

const junk = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.string({ minLength: 201, maxLength: 20_000 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(''),
  fc.constant('\u0000'),
  fc.constant('../../etc/passwd'),
  fc.array(fc.anything(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.anything(), { maxKeys: 3 })
)
const badId = fc.oneof(
  fc.constantFrom('abc', '-1', '0', '1.5', '1e9', '99999999999999999999', '%00', '%2e%2e', 'null', ' ', '0x10', '999999'),
  fc.string({ minLength: 1, maxLength: 30 }).map(encodeURIComponent)
)
const id = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...streamIds.map(String)) }, { weight: 2, arbitrary: badId })
const streamKeyParam = fc.oneof(
  fc.constantFrom(...keysOf(owner)),
  fc.constantFrom(...keysOf(rival)),
  badId,
  fc.string({ minLength: 65, maxLength: 300 }).map(encodeURIComponent)
)
// Bodies that are wrong on purpose: missing fields, wrong types, extra fields, or not JSON at all.
const badBody = fc.oneof(
  fc.record({ title: junk }, { requiredKeys: [] }).filter((b) => typeof b.title !== 'string' || b.title.trim().length === 0 || b.title.length > 200),
  fc.record({ status: junk }).filter((b) => !['pending', 'live', 'ended'].includes(b.status as string)),
  fc.record({ stream_id: junk }).filter((b) => !Number.isInteger(b.stream_id)),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !['title', 'status', 'stream_id', 'email', 'password', 'display_name'].includes(k)), junk, { minKeys: 1, maxKeys: 4 }),
  fc.record({ email: junk, password: junk, display_name: junk }, { requiredKeys: [] }).filter((b) => typeof b.email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(b.email as string) || typeof b.password !== 'string' || (b.password as string).length < 8),
  fc.string({ maxLength: 200 }).map((s) => ({ raw: `{"${s}` })),
  fc.constant({ raw: 'null' }),
  fc.constant({ raw: '[]' })
)
// Bodies a route accepts: with a real id, a transition, a join or a new stream is refused or done depending on who
// asks and the stream's state. These are the requests that meet real rows past validation.
const plausibleBody = fc.oneof(
  fc.record({ status: fc.constantFrom('pending', 'live', 'ended') }),
  fc.record({ stream_id: fc.constantFrom(...streamIds) }),
  fc.constant({ title: 'fuzzed' }),
  // Webhook URLs refused without a DNS lookup: an internal address, plain http.
  fc.record({ url: fc.constantFrom('https://127.0.0.1/hook', 'https://[::ffff:169.254.169.254]/', 'http://example.com/hook'), event_types: fc.constantFrom(null, ['stream.live'], ['nope']) })
)
// Bigger than the body limit: a 413 whenever auth lets the request that far.
const oversized = fc.integer({ min: config.http.bodyLimit + 1, max: config.http.bodyLimit * 2 }).map((n) => ({ raw: `{"title":"${'a'.repeat(n)}"}`, oversized: true }))
const body = fc.oneof({ weight: 6, arbitrary: badBody }, { weight: 3, arbitrary: plausibleBody }, { weight: 1, arbitrary: oversized })

const route = fc.constantFrom(
  ['POST', '/api/livestream/streams'],
  ['GET', '/api/livestream/streams?'],
  ['GET', '/api/livestream/streams/:id'],
  ['GET', '/api/livestream/streams/key?streamKey='],
  ['PATCH', '/api/livestream/streams/:id/status'],
  ['POST', '/api/livestream/streams/:id/start'],
  ['POST', '/api/livestream/streams/:id/end'],
  ['POST', '/api/livestream/streams/join'],
  ['POST', '/api/livestream/streams/:id/leave'],
  ['GET', '/api/livestream/streams/:id/participants?'],
  ['POST', '/api/livestream/streams/:id/key/rotate'],
  ['POST', '/api/auth/register'],
  ['POST', '/api/auth/login'],
  ['GET', '/api/auth/me'],
  ['POST', '/api/webhooks'],
  ['GET', '/api/webhooks'],
  ['GET', '/api/webhooks/:id'],
  ['DELETE', '/api/webhooks/:id'],
  ['POST', '/api/webhooks/:id/ping'],
  ['POST', '/api/webhooks/:id/rotate-secret'],
  ['GET', '/api/webhooks/:id/deliveries?']
)
const query = fc.oneof(
  fc.constantFrom('page=0', 'limit=1000', 'limit=-1', 'status=paused', 'user_id=abc', 'page=1.5', 'limit=', 'page=1&page=2', 'extra=1', 'status=live', 'page=2&limit=3'),
  fc.string({ maxLength: 40 }).map((s) => `limit=${encodeURIComponent(s)}`)
)

// Assertions live inside tests only: a top-level one between top-level awaits can land after tap's automatic end of
// the root test ("assertion after automatic end"), which failed full runs of this file at random.
t.test('the seed reaches every state and every table is checksummed', async (t) => {
  t.ok(tables.length >= 4, `checksummed tables: ${tables.join(', ')}`)
  t.ok(seeded.live > 0 && seeded.ended > 0 && seeded.participants > 0, `seeded ${JSON.stringify(seeded)}`)
})

t.test(`${RUNS} generated requests: no 5xx, always the envelope, no key to others, refused ones change no table`, async (t) => {
  let tried = 0
  let refusalsChecked = 0
  let accepted = 0
  const statuses = new Map<number, number>()
  let before = await checksum()
  await fc.assert(
    fc.asyncProperty(route, caller, id, streamKeyParam, body, query, async ([method, path], who, streamId, keyParam, b, q) => {
      tried++
      let url = path!.replace(':id', streamId)
      if (url.endsWith('?')) url += q
      else if (url.endsWith('=')) url += keyParam
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (who.authorization) headers.authorization = who.authorization
      const payload = 'raw' in b ? String(b.raw) : JSON.stringify(b)
      const res = await app.inject({ method: method as 'GET' | 'POST' | 'PATCH' | 'DELETE', url, headers, ...(method === 'GET' ? {} : { payload }) })
      const what = `${who.name}: ${method} ${url.slice(0, 120)} ${payload.slice(0, 100)} -> ${res.statusCode} ${res.body.slice(0, 300)}`
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)

      if (res.statusCode >= 500) throw new Error(`5xx: ${what}`)
      const parsed = res.json()
      if (typeof parsed.success !== 'boolean' || typeof parsed.message !== 'string' || !('data' in parsed)) throw new Error(`not the envelope: ${what}`)
      if (parsed.success !== res.statusCode < 400) throw new Error(`success disagrees with the status: ${what}`)
      if (/\n\s+at /.test(res.body)) throw new Error(`stack trace: ${what}`)
      for (const [key, ownerId] of keyOwner) {
        if (ownerId !== who.id && res.body.includes(key)) throw new Error(`a key shown to someone not its owner: ${what}`)
      }
      const passedAuth = res.statusCode !== 401 && res.statusCode !== 429
      if ('oversized' in b && method !== 'GET' && passedAuth && res.statusCode !== 413) throw new Error(`oversized body not refused with 413: ${what}`)

      if (res.statusCode >= 400) {
        const after = await checksum()
        const changed = after !== before
        before = after // so that fast-check's shrinking replays compare against the state they really start from
        if (changed) throw new Error(`a refused request changed the database: ${what}`)
        refusalsChecked++
      } else {
        // Accepted requests may change rows; a rotated or new key joins the leak check's list.
        accepted++
        if (typeof parsed.data?.stream_key === 'string' && who.id !== null) keyOwner.set(parsed.data.stream_key, who.id)
        before = await checksum()
      }
    }),
    { numRuns: RUNS }
  )
  t.equal(tried, RUNS, 'every generated request was sent')
  t.equal(refusalsChecked + accepted, RUNS, 'every answer was checked against the database')
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}; refused and unchanged: ${refusalsChecked}; accepted: ${accepted}`)
  t.notOk([...statuses.keys()].some((s) => s >= 500), 'no 5xx at all')
  // The run reached past validation: real rows were refused for their owner or state, oversized bodies were cut.
  if (RUNS >= 1000) {
    for (const status of [200, 401, 403, 404, 409, 413]) t.ok((statuses.get(status) ?? 0) > 0, `some answers were ${status}`)
  }
})
