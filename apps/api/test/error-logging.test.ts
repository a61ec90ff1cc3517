import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import Fastify from 'fastify'
import { DrizzleQueryError, sql } from 'drizzle-orm'
import errorsPlugin from '../src/plugins/app/errors.js'
import { buildApp } from '../src/app.js'
import { createLogger } from '../src/logger.js'
import { loggableError } from '@livestream/db'
import { assertEnvelope, as, build, dropRedisPrefix, register, testConfig } from './helper.js'

function capture() {
  const lines: string[] = []
  return { text: () => lines.join(''), stream: { write: (line: string) => void lines.push(line) } }
}

/** What drizzle 0.45 throws when MySQL refuses an insert: its message ends with the params, the cause quotes the value. */
function duplicateKeyError(key: string) {
  const cause = Object.assign(new Error(`Duplicate entry '${key}' for key 'streams_stream_key_unique'`), {
    code: 'ER_DUP_ENTRY',
    errno: 1062,
    sqlState: '23000',
    sqlMessage: `Duplicate entry '${key}' for key 'streams_stream_key_unique'`,
    sql: `insert into \`streams\` (\`stream_key\`) values ('${key}')`
  })
  return new DrizzleQueryError('insert into `streams` (`stream_key`) values (?)', [key], cause)
}

t.test('loggableError keeps the query text and the codes, and drops every value', async (t) => {
  const key = randomUUID()
  const err = duplicateKeyError(key)
  t.ok(err.message.includes(key), 'drizzle itself puts the key in the message')
  const safe = loggableError(err)
  t.notOk(JSON.stringify(safe).includes(key), 'no key anywhere in what gets logged')
  t.equal(safe.message, 'Failed query: insert into `streams` (`stream_key`) values (?)')
  t.match(safe.stack, /^DrizzleQueryError: Failed query: .*\n\s+at /, 'stack frames kept under the clean message')
  t.match(safe.cause, { code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000' }, 'the cause says what MySQL refused')
  t.match(safe.cause?.message, /^Duplicate entry '…' for key '…'$/)
})

t.test('the error handler logs a failed query without its params and answers a generic envelope', async (t) => {
  const key = randomUUID()
  const out = capture()
  const app = Fastify({ loggerInstance: createLogger('info', out.stream) })
  await app.register(errorsPlugin)
  app.get('/refused', async () => {
    throw duplicateKeyError(key)
  })
  app.get('/unreachable', async () => {
    throw new DrizzleQueryError('select * from `streams` where `stream_key` = ?', [key], Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', errno: -111 }))
  })
  t.teardown(() => app.close())
  const refused = await app.inject({ method: 'GET', url: '/refused' })
  t.same(assertEnvelope(t, refused, 500).message, 'internal server error')
  const down = await app.inject({ method: 'GET', url: '/unreachable' })
  t.same(assertEnvelope(t, down, 503).message, 'service temporarily unavailable, try again shortly')
  t.notOk(refused.body.includes(key) || down.body.includes(key), 'no key in the answers')
  const log = out.text()
  t.match(log, /unhandled error/)
  t.match(log, /"code":"ER_DUP_ENTRY"/, 'the log says what went wrong')
  t.match(log, /dependency unavailable/)
  t.match(log, /"code":"ECONNREFUSED"/)
  t.notOk(log.includes(key), 'no key in the log')
})

t.test('a key lookup failing inside MySQL logs no key (the real query, the real error)', async (t) => {
  const out = capture()
  // Users are remembered for a minute so the token still passes once the tables are gone: the key query is what fails.
  const app = await build(t, { AUTH_USER_CACHE_MS: '60000' }, { logger: createLogger('info', out.stream) })
  const owner = await register(app, 'owner')
  const key: string = assertEnvelope(t, await as(app, owner)('POST', '/api/livestream/streams', { title: 'doomed' }), 201).data.stream_key
  assertEnvelope(t, await as(app, owner)('GET', '/api/livestream/streams/key?streamKey=' + key), 200)
  const [[{ name }]] = (await app.db.execute(sql`SELECT DATABASE() AS name`)) as unknown as [[{ name: string }]]
  await app.db.execute(sql.raw(`DROP DATABASE \`${name}\``))
  const res = await as(app, owner)('GET', '/api/livestream/streams/key?streamKey=' + key)
  t.ok(res.statusCode === 500 || res.statusCode === 503, `a 5xx (${res.statusCode})`)
  t.notOk(res.body.includes(key), 'no key in the answer')
  t.match(out.text(), /"code":"ER_[A-Z_]+","errno":[0-9]+,"sqlState":"[0-9A-Z]{5}"/, "the failure is logged with its MySQL code")
  t.notOk(out.text().includes(key), 'no key in the log')
})

t.test('with MySQL unreachable, register answers 503 and logs neither the email nor the password hash', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
  const out = capture()
  const config = testConfig(`mysql://nobody:nothing@127.0.0.1:${port}/absent`)
  const app = await buildApp({ config, logger: createLogger('info', out.stream), consumer: false, reaper: false, webhookWorker: false })
  t.teardown(async () => {
    await app.close()
    await dropRedisPrefix(config.queuePrefix)
  })
  const email = `${randomUUID()}@example.com`
  const res = await app.inject({ method: 'POST', url: '/api/auth/register', payload: { email, password: 'correct horse battery', display_name: 'x' } })
  assertEnvelope(t, res, 503)
  t.match(out.text(), /dependency unavailable/)
  t.match(out.text(), /"code":"ECONNREFUSED"/, 'the log names the cause')
  t.notOk(out.text().includes(email), 'no email in the log')
  t.notOk(out.text().includes('$argon2'), 'no password hash in the log')
})
