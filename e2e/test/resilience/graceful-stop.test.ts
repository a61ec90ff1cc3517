import t from 'tap'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { connect } from 'node:net'
import mysql from 'mysql2/promise'
import { STREAM_EVENTS_QUEUE, newEventId, type StreamEvent } from '@livestream/events'
import { ApiUser } from '../../src/api-client.js'
import { createStackEnv, startApi } from '../../src/stack.js'
import { waitFor } from '../../src/wait.js'

t.test('SIGTERM on the api: requests in flight are answered, the consumer hands back its jobs, nothing is lost', async (t) => {
  const stack = await createStackEnv('sigterm')
  const env = { CONSUMER_CONCURRENCY: '4', REAPER_ENABLED: 'false', AUTH_RATE_LIMIT_MAX: '1000', LOG_LEVEL: 'debug' }
  let api = await startApi(stack, env)
  const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: null })
  const queue = new Queue(STREAM_EVENTS_QUEUE, { connection: redis, prefix: stack.queuePrefix })
  const sql = await mysql.createConnection({ uri: stack.db.url })
  t.teardown(async () => {
    await api.stop()
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
    redis.disconnect()
    await sql.end()
    await stack.cleanup()
  })

  const owner = await ApiUser.register(api.url, 'graceful')
  const streams = []
  for (let i = 0; i < 150; i++) streams.push(await owner.createStream(`graceful ${i}`))
  const events: StreamEvent[] = []
  for (const s of streams) {
    const common = { nodeId: 'node-g', sessionId: `sess-${s.id}`, streamId: s.id }
    events.push({ ...common, type: 'stream.published', id: newEventId(), at: new Date().toISOString(), playbackBaseUrl: 'http://node-g' })
    events.push({ ...common, type: 'stream.unpublished', id: newEventId(), at: new Date().toISOString(), reason: 'publisher-left' })
  }

  const email = `graceful-login-${Date.now()}@example.com`
  const reg = await fetch(`${api.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'correct horse battery', display_name: 'g' })
  })
  t.equal(reg.status, 201)

  // Logins hash with argon2id (tens of ms each, a few at a time): once the api has received all of them, most are still
  // being worked on. That is when the signal goes, with the consumer in the middle of 300 events. One more login is
  // held in flight for certain: its body is sent half before the signal and half after, followed on the same
  // connection by one more request, which arrives during shutdown and must get the envelope's 503.
  const loginBody = JSON.stringify({ email, password: 'correct horse battery' })
  await queue.addBulk(events.map((e) => ({ name: e.type, data: e, opts: { jobId: e.id, attempts: 12, backoff: { type: 'exponential', delay: 200 } } })))
  let signalled = false
  let answeredAfterSignal = 0
  const logins = Array.from({ length: 20 }, async () => {
    const res = await fetch(`${api.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: loginBody })
    if (signalled) answeredAfterSignal++
    return { status: res.status, body: (await res.json()) as { success: boolean; data: { token?: string } } }
  })
  const raw = connect(api.port, '127.0.0.1')
  let rawAnswer = ''
  raw.on('data', (d: Buffer) => (rawAnswer += d.toString('utf8')))
  const rawClosed = new Promise((resolve) => raw.on('close', resolve))
  const half = loginBody.length >> 1
  raw.write(`POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${loginBody.length}\r\n\r\n${loginBody.slice(0, half)}`)
  const received = () => api.output().split('\n').filter((l) => l.includes('"url":"/api/auth/login"') && l.includes('incoming request')).length
  await waitFor('all 21 logins received', async () => received() >= 21, 10_000, 2)
  signalled = true
  const exit = api.stop('SIGTERM', 20_000)
  await waitFor('shutdown begun', async () => api.output().includes('"msg":"closing"'), 10_000, 2)
  t.equal(rawAnswer, '', 'the held login is still in flight at the signal')
  raw.write(`${loginBody.slice(half)}GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n`)

  const answers = await Promise.all(logins)
  t.equal((await exit).code, 0, 'the api exits cleanly')
  t.ok(answeredAfterSignal > 0, `${answeredAfterSignal} of 20 logins were still in flight at the signal`)
  t.same(answers.map((a) => a.status), Array(20).fill(200), 'every request in flight was answered')
  t.ok(answers.every((a) => typeof a.body.data?.token === 'string'))
  await rawClosed
  const [loginAnswer, lateAnswer] = rawAnswer.split(/(?=HTTP\/1\.1 )/)
  t.match(loginAnswer, /^HTTP\/1\.1 200/, 'the login in flight on that connection was answered')
  t.match(lateAnswer, /^HTTP\/1\.1 503/, 'the request that came during shutdown: 503')
  t.match(lateAnswer, /connection: close/i, 'and the connection is closed')
  t.same(
    JSON.parse(lateAnswer!.slice(lateAnswer!.indexOf('\r\n\r\n') + 4)),
    { success: false, data: null, message: 'the server is shutting down, try again' },
    'in the envelope'
  )

  const [mid] = await sql.query('SELECT COUNT(*) n FROM stream_events')
  const appliedAtStop = (mid as Array<{ n: number }>)[0]!.n
  t.comment(`stopped with ${appliedAtStop} of ${events.length} events applied`)
  const counts = await queue.getJobCounts('active', 'failed')
  t.equal(counts.active, 0, 'no job is left locked by the stopped consumer')
  t.equal(counts.failed, 0, 'and none failed')

  api = await startApi(stack, env)
  await waitFor('queue drained', async () => {
    const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized')
    return Object.values(c).every((n) => n === 0)
  }, 60_000, 200)
  const [ledger] = await sql.query('SELECT event_id, COUNT(*) n FROM stream_events GROUP BY event_id')
  const rows = ledger as Array<{ event_id: string; n: number }>
  t.equal(rows.length, events.length, 'every event is in the ledger')
  t.ok(rows.every((r) => r.n === 1), 'each exactly once')
  const [status] = await sql.query('SELECT status, COUNT(*) n FROM streams GROUP BY status')
  t.same(status, [{ status: 'ended', n: 150 }], 'every stream ended')
})
