import t from 'tap'
import fc from 'fast-check'
import mysql from 'mysql2/promise'
import { createTestDatabase } from '@livestream/db/testing'
import { buildApp } from '../src/app.js'
import { testConfig, register } from './helper.js'

// Property: whatever malformed request arrives, the api answers a non-5xx envelope and refused requests change nothing.
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)

const db = await createTestDatabase('ls_fuzz')
const app = await buildApp({ config: testConfig(db.url), consumer: false, reaper: false })
await app.ready()
const sql = await mysql.createConnection({ uri: db.url })
t.teardown(async () => {
  await sql.end()
  await app.close()
  await db.drop()
})
const user = await register(app, 'fuzzer')
const counts = async () => {
  const [rows] = await sql.query(
    'SELECT (SELECT COUNT(*) FROM users) u, (SELECT COUNT(*) FROM streams) s, (SELECT COUNT(*) FROM stream_participants) p'
  )
  return (rows as Array<Record<string, number>>)[0]
}

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
  fc.constantFrom('abc', '-1', '0', '1.5', '1e9', '99999999999999999999', '%00', '%2e%2e', 'null', ' ', '0x10'),
  fc.string({ minLength: 1, maxLength: 30 }).map(encodeURIComponent)
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
  ['POST', '/api/auth/login']
)
const query = fc.oneof(
  fc.constantFrom('page=0', 'limit=1000', 'limit=-1', 'status=paused', 'user_id=abc', 'page=1.5', 'limit=', 'page=1&page=2', 'extra=1'),
  fc.string({ maxLength: 40 }).map((s) => `limit=${encodeURIComponent(s)}`)
)

t.test(`${RUNS} malformed requests: no 5xx, always the envelope, nothing written`, async (t) => {
  const before = await counts()
  let tried = 0
  const statuses = new Map<number, number>()
  await fc.assert(
    fc.asyncProperty(route, badId, badBody, query, fc.boolean(), async ([method, path], id, body, q, withToken) => {
      tried++
      let url = path.replace(':id', id)
      if (url.endsWith('?')) url += q
      else if (url.endsWith('=')) url += encodeURIComponent(String(id))
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (withToken) headers.authorization = `Bearer ${user.token}`
      const payload = 'raw' in body ? String(body.raw) : JSON.stringify(body)
      const res = await app.inject({ method: method as 'GET' | 'POST' | 'PATCH', url, headers, ...(method === 'GET' ? {} : { payload }) })
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      if (res.statusCode >= 500) throw new Error(`${method} ${url} ${payload.slice(0, 100)} -> ${res.statusCode} ${res.body}`)
      const parsed = res.json()
      if (parsed.success !== false && !(res.statusCode < 300)) throw new Error(`not an error envelope: ${res.body}`)
      if (res.statusCode >= 400 && (typeof parsed.message !== 'string' || !('data' in parsed))) throw new Error(`bad envelope: ${res.body}`)
      if (/\n\s+at /.test(res.body)) throw new Error(`stack trace in ${res.body}`)
    }),
    { numRuns: RUNS }
  )
  t.equal(tried, RUNS, 'every generated request was sent')
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.notOk([...statuses.keys()].some((s) => s >= 500), 'no 5xx at all')
  t.same(await counts(), before, 'row counts unchanged by refused requests')
})
