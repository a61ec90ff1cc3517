import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { Worker } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { newEventId, STREAM_EVENTS_QUEUE } from '@livestream/events'
import { createTestDatabase } from '@livestream/db/testing'
import { buildApp, ConfigError } from '../src/app.js'
import { SHIPPED_PLACEHOLDERS } from '../src/jwt-secret.js'
import { assertEnvelope, build, dropRedisPrefix, JWT_SECRET, register, testConfig } from './helper.js'

const OPERATOR_TOKEN = randomBytes(32).toString('base64url')
const app = await build(t, { OPERATOR_TOKEN })
const queue = app.observedQueues.get(STREAM_EVENTS_QUEUE)!
const operator = { authorization: `Bearer ${OPERATOR_TOKEN}` }

/** Every value the repository's examples give these variables: an operator may copy one. */
async function shippedValues(name: string): Promise<string[]> {
  const out: string[] = []
  for (const file of ['envs/env.example', 'infra/k8s/config.yaml', 'infra/compose.yaml', 'README.md']) {
    const text = await readFile(new URL(`../../../${file}`, import.meta.url), 'utf8').catch(() => '')
    for (const m of text.matchAll(new RegExp(`^[ \\t]*(?:export[ \\t]+)?${name}[ \\t]*[=:][ \\t]*([^\\s#\`'"|]+)`, 'gm'))) {
      if (!m[1]!.startsWith('$')) out.push(m[1]!)
    }
  }
  return out
}

t.test('OPERATOR_TOKEN and METRICS_TOKEN: placeholders and weak values stop the start, naming the variable', async (t) => {
  for (const name of ['OPERATOR_TOKEN', 'METRICS_TOKEN']) {
    for (const weak of [...SHIPPED_PLACEHOLDERS, ...(await shippedValues(name)), 'a'.repeat(40), 'short', 'abcdabcdabcdabcdabcdabcdabcdabcdabcd', 'example-operator-token-0123456789abcdef']) {
      t.throws(() => testConfig('mysql://x@127.0.0.1/x', { [name]: weak }), { name: 'ConfigError', message: new RegExp(`invalid environment variable ${name}`) }, `${name}=${weak.slice(0, 12)}…`)
    }
  }
  t.throws(() => testConfig('mysql://x@127.0.0.1/x', { OPERATOR_TOKEN: JWT_SECRET }), ConfigError, 'the JWT secret is not an operator token')
  const unset = testConfig('mysql://x@127.0.0.1/x')
  t.equal(unset.operatorToken, null)
  t.equal(unset.metricsToken, null)
})

t.test('Bull Board without the operator credential is a 401 in the envelope; a user token is not one', async (t) => {
  const user = await register(app, 'user')
  for (const headers of [{}, { authorization: `Bearer ${user.token}` }, { authorization: `Bearer ${OPERATOR_TOKEN.slice(1)}` }, { cookie: 'ls_operator=9999999999999.forged' }]) {
    for (const url of ['/admin/queues', '/admin/queues/', '/admin/queues/api/queues', `/admin/queues/api/queues/${STREAM_EVENTS_QUEUE}/retry/failed`]) {
      const res = await app.inject({ method: url.endsWith('retry/failed') ? 'PUT' : 'GET', url, headers })
      assertEnvelope(t, res, 401)
      t.equal(res.json().message, 'operator credentials required')
    }
  }
})

t.test('with OPERATOR_TOKEN unset, operator routes answer 403 in the envelope: operator access is not configured', async (t) => {
  const db = await createTestDatabase('ls_api_noop')
  const config = testConfig(db.url)
  const bare = await buildApp({ config, consumer: false, reaper: false })
  t.teardown(async () => {
    await bare.close()
    await db.drop()
    await dropRedisPrefix(config.queuePrefix)
  })
  for (const [method, url] of [['GET', '/admin/queues/'], ['GET', '/admin/queues/api/queues'], ['GET', '/metrics']] as const) {
    const res = await bare.inject({ method, url, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })
    assertEnvelope(t, res, 403)
    t.match(res.json().message, /not configured/)
  }
  const login = await bare.inject({ method: 'POST', url: '/admin/login', payload: { token: OPERATOR_TOKEN } })
  assertEnvelope(t, login, 403)
})

t.test('the operator sees the stream-events queue and retries a failed job', async (t) => {
  // No consumer in this app: a worker of the test's own fails the job, as the consumer does with a payload that is no event.
  const worker = new Worker(STREAM_EVENTS_QUEUE, async () => { throw new Error('payload is not an event') }, {
    connection: new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null }),
    prefix: queue.opts.prefix!
  })
  const failed = once(worker, 'failed')
  const job = await queue.add('stream.published', { broken: true }, { jobId: newEventId(), attempts: 1 })
  await failed
  await worker.close()
  await (worker.opts.connection as Redis).quit()
  t.equal(await job.getState(), 'failed')

  const list = await app.inject({ method: 'GET', url: '/admin/queues/api/queues?activeQueue=stream-events&status=failed&page=1', headers: operator })
  t.equal(list.statusCode, 200)
  const shown = list.json().queues.find((q: { name: string }) => q.name === STREAM_EVENTS_QUEUE)
  t.ok(shown, 'the stream-events queue is on the board')
  t.equal(shown.counts.failed, 1)
  t.same(shown.jobs.map((j: { id: string }) => j.id), [job.id])

  const retry = await app.inject({ method: 'PUT', url: `/admin/queues/api/queues/${STREAM_EVENTS_QUEUE}/${job.id}/retry`, headers: operator })
  t.equal(retry.statusCode, 204, retry.body)
  t.equal(await job.getState(), 'waiting', 'the job is back in the queue')
  await queue.obliterate({ force: true })
})

t.test('the board page loads under a CSP that allows only its own scripts, with its assets', async (t) => {
  const page = await app.inject({ method: 'GET', url: '/admin/queues/', headers: operator })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /<base href="\/admin\/queues\/"/)
  const csp = page.headers['content-security-policy'] as string
  t.match(csp, /script-src 'self';/)
  t.notMatch(csp, /unsafe-eval|script-src[^;]*unsafe-inline|https:/)
  t.equal(page.headers['x-frame-options'], 'DENY', 'the other security headers stay')
  const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(page.body)?.[1]
  t.ok(script)
  const asset = await app.inject({ method: 'GET', url: `/admin/queues/${script}`, headers: operator })
  t.equal(asset.statusCode, 200)
  t.match(asset.headers['content-type'], /javascript/)
  assertEnvelope(t, await app.inject({ method: 'GET', url: `/admin/queues/${script}` }), 401)
})

t.test('a browser logs in once with the token and gets an HttpOnly, SameSite=Strict session cookie for /admin', async (t) => {
  const form = await app.inject({ method: 'GET', url: '/admin/login' })
  t.equal(form.statusCode, 200)
  t.match(form.body, /<form method="post" action="\/admin\/login">/)
  t.match(form.headers['content-security-policy'], /form-action 'self'/)

  const wrong = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `token=${encodeURIComponent(OPERATOR_TOKEN + 'x')}`
  })
  assertEnvelope(t, wrong, 401)
  t.notOk(wrong.headers['set-cookie'], 'no cookie for a wrong token')

  const res = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `token=${encodeURIComponent(OPERATOR_TOKEN)}`
  })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/admin/queues/')
  const cookie = String(res.headers['set-cookie'])
  t.match(cookie, /^ls_operator=\d+\.[\w-]+; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=\d+/)
  t.notOk(cookie.includes(OPERATOR_TOKEN), 'the cookie is not the token')
  const session = cookie.split(';')[0]!
  const page = await app.inject({ method: 'GET', url: '/admin/queues/', headers: { cookie: session } })
  t.equal(page.statusCode, 200)
  const tampered = session.replace(/\.(.)/, (_m, c: string) => `.${c === 'A' ? 'B' : 'A'}`)
  assertEnvelope(t, await app.inject({ method: 'GET', url: '/admin/queues/', headers: { cookie: tampered } }), 401)
  const [, expiry, mac] = /^ls_operator=(\d+)\.(.+)$/.exec(session)!
  const extended = `ls_operator=${Number(expiry) + 1}.${mac}`
  assertEnvelope(t, await app.inject({ method: 'GET', url: '/admin/queues/', headers: { cookie: extended } }), 401)
  const out = await app.inject({ method: 'POST', url: '/admin/logout', headers: { cookie: session } })
  t.match(String(out.headers['set-cookie']), /Max-Age=0/)
})

t.test('the session cookie of another operator token is refused', async (t) => {
  const db = await createTestDatabase('ls_api_op2')
  const config = testConfig(db.url, { OPERATOR_TOKEN: randomBytes(32).toString('base64url') })
  const other = await buildApp({ config, consumer: false, reaper: false })
  t.teardown(async () => {
    await other.close()
    await db.drop()
    await dropRedisPrefix(config.queuePrefix)
  })
  const res = await app.inject({ method: 'POST', url: '/admin/login', payload: { token: OPERATOR_TOKEN } })
  const session = String(res.headers['set-cookie']).split(';')[0]!
  assertEnvelope(t, await other.inject({ method: 'GET', url: '/admin/queues/', headers: { cookie: session } }), 401)
})
