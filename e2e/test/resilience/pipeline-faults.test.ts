import t from 'tap'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import { STREAM_EVENTS_QUEUE, newEventId, type StreamEvent } from '@livestream/events'
import { ApiUser } from '../../src/api-client.js'
import { publishClipLoop } from '../../src/ffmpeg.js'
import { linesLeaking } from '../../src/log-scan.js'
import { OwnRedis } from '../../src/redis-server.js'
import { createStackEnv, startApi, startIngest } from '../../src/stack.js'
import { TcpProxy } from '../../src/tcp-proxy.js'
import { waitFor } from '../../src/wait.js'

const drained = async (queue: Queue) => {
  const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized')
  return Object.values(c).every((n) => n === 0)
}

t.test('api killed (-9) while 200 publish/unpublish cycles flow: after restart every stream and its participants are right, every event in the ledger once', async (t) => {
  const stack = await createStackEnv('apikill')
  const env = { CONSUMER_CONCURRENCY: '4', CONSUMER_LOCK_MS: '3000', REAPER_ENABLED: 'false' }
  let api = await startApi(stack, env)
  const owner = await ApiUser.register(api.url, 'cycler')
  const leaver = await ApiUser.register(api.url, 'leaver')
  const stayer = await ApiUser.register(api.url, 'stayer')
  const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: null })
  const queue = new Queue(STREAM_EVENTS_QUEUE, { connection: redis, prefix: stack.queuePrefix })
  const sql = await mysql.createConnection({ uri: stack.db.url, timezone: 'Z' })
  t.teardown(async () => {
    await api.stop()
    await queue.close()
    redis.disconnect()
    await sql.end()
    await stack.cleanup()
  })

  // Pause the consumer's intake by stopping the api while we fill the queue, so the kill lands mid-drain.
  const streams = []
  for (let i = 0; i < 200; i++) streams.push(await owner.createStream(`cycle ${i}`))
  await api.stop('SIGTERM')

  // Each cycle: publish; the host, a viewer who leaves and one who stays to the end join; the leaver leaves; unpublish.
  // Cycles run side by side as on a busy node, so the queue holds them step by step across all 200 streams.
  const t0 = Date.now() - 60_000
  const at = (s: number, step: number) => new Date(t0 + s * 10 + step).toISOString()
  const steps: StreamEvent[][] = [[], [], [], [], [], []]
  const expected = new Map<number, { endedAt: string; participants: Array<{ user_id: number; role: string; left_at: string }> }>()
  for (const s of streams) {
    const common = { nodeId: 'node-k', sessionId: `sess-${s.id}`, streamId: s.id }
    const viewer = (type: 'viewer.joined' | 'viewer.left', userId: number, step: number): StreamEvent => ({ ...common, type, id: newEventId(), at: at(s.id, step), userId })
    steps[0]!.push({ ...common, type: 'stream.published', id: newEventId(), at: at(s.id, 0), playbackBaseUrl: 'http://node-k' })
    steps[1]!.push(viewer('viewer.joined', owner.id, 1))
    steps[2]!.push(viewer('viewer.joined', leaver.id, 2))
    steps[3]!.push(viewer('viewer.joined', stayer.id, 3))
    steps[4]!.push(viewer('viewer.left', leaver.id, 4))
    steps[5]!.push({ ...common, type: 'stream.unpublished', id: newEventId(), at: at(s.id, 5), reason: 'publisher-left' })
    expected.set(s.id, {
      endedAt: at(s.id, 5),
      participants: [
        { user_id: owner.id, role: 'host', left_at: at(s.id, 5) },
        { user_id: leaver.id, role: 'viewer', left_at: at(s.id, 4) },
        { user_id: stayer.id, role: 'viewer', left_at: at(s.id, 5) }
      ].sort((a, b) => a.user_id - b.user_id)
    })
  }
  const events = steps.flat()
  await queue.addBulk(events.map((e) => ({ name: e.type, data: e, opts: { jobId: e.id, attempts: 12, backoff: { type: 'exponential', delay: 200 } } })))

  api = await startApi(stack, { ...env, PORT: String(api.port) })
  // Half way: the consumer is in the middle of the viewer events when it dies.
  await waitFor('half applied', async () => {
    const [rows] = await sql.query('SELECT COUNT(*) n FROM stream_events')
    return (rows as Array<{ n: number }>)[0]!.n >= events.length / 2
  })
  await api.stop('SIGKILL')
  const [mid] = await sql.query('SELECT COUNT(*) n FROM stream_events')
  const appliedAtKill = (mid as Array<{ n: number }>)[0]!.n
  t.comment(`killed the api with ${appliedAtKill} of ${events.length} events applied`)
  t.ok(appliedAtKill < events.length, 'the kill landed mid-run')

  api = await startApi(stack, { ...env, PORT: String(api.port) })
  const settled = await waitFor('queue drained', () => drained(queue), 60_000, 200).then(() => true, () => false)
  if (!settled) {
    const stuck = await queue.getJobs(['wait', 'active', 'delayed', 'prioritized'], 0, 4)
    t.fail(`the queue did not drain: ${stuck.map((j) => `${j.name} (attempt ${j.attemptsMade}: ${j.failedReason ?? '-'})`).join('; ')}`)
  }
  const failed = await queue.getJobs(['failed'], 0, 4)
  t.same(failed.map((j) => `${j.name}: ${j.failedReason}`), [], 'no event failed for good')

  const [ledger] = await sql.query('SELECT event_id, COUNT(*) n FROM stream_events GROUP BY event_id')
  const counted = new Map((ledger as Array<{ event_id: string; n: number }>).map((r) => [r.event_id, Number(r.n)]))
  t.same(events.filter((e) => !counted.has(e.id)).map((e) => `${e.type} of stream ${e.streamId}`), [], `every one of the ${events.length} event ids is in the ledger`)
  t.same([...counted].filter(([, n]) => n !== 1), [], 'each exactly once')
  t.equal(counted.size, events.length, 'and nothing else is')

  const [streamRows] = await sql.query('SELECT id, status, ended_reason, ended_at FROM streams ORDER BY id')
  const wrongStreams = (streamRows as Array<{ id: number; status: string; ended_reason: string | null; ended_at: Date | null }>)
    .filter((r) => r.status !== 'ended' || r.ended_reason !== 'publisher-left' || r.ended_at?.toISOString() !== expected.get(r.id)?.endedAt)
    .map((r) => `stream ${r.id}: ${r.status} (${r.ended_reason ?? '-'}) at ${r.ended_at?.toISOString() ?? '-'}`)
  t.same(wrongStreams, [], 'every stream ended, for the reason and at the time of its unpublish')

  const [participantRows] = await sql.query('SELECT stream_id, user_id, role, left_at FROM stream_participants ORDER BY stream_id, user_id')
  const seen = new Map<number, Array<{ user_id: number; role: string; left_at: string }>>()
  for (const p of participantRows as Array<{ stream_id: number; user_id: number; role: string; left_at: Date | null }>) {
    const list = seen.get(p.stream_id) ?? []
    list.push({ user_id: p.user_id, role: p.role, left_at: p.left_at?.toISOString() ?? 'still in' })
    seen.set(p.stream_id, list)
  }
  const show = (list: Array<{ user_id: number; role: string; left_at: string }>) => list.map((p) => `${p.user_id}/${p.role}/left ${p.left_at}`).join(', ')
  const wrong = [...expected].filter(([id, want]) => show(seen.get(id) ?? []) !== show(want.participants))
  // What the consumer made of those streams' events, in the order it recorded them: says which delivery went astray.
  const [trail] = wrong.length
    ? await sql.query('SELECT stream_id, type, outcome FROM stream_events WHERE stream_id IN (?) ORDER BY id', [wrong.map(([id]) => id)])
    : [[]]
  const trailOf = (id: number) =>
    (trail as Array<{ stream_id: number; type: string; outcome: string }>).filter((r) => r.stream_id === id).map((r) => `${r.type}:${r.outcome}`).join(' ')
  const wrongParticipants = wrong.map(
    ([id, want]) => `stream ${id}: has [${show(seen.get(id) ?? [])}], want [${show(want.participants)}]; ledger: ${trailOf(id)}`
  )
  t.same(
    wrongParticipants,
    [],
    'every stream has its host and both viewers, with the right roles; the leaver left when they left, the others when it ended'
  )
})

t.test('Redis restarted mid-run: ingest keeps accepting what it can authorise, holds its events and sends them after', async (t) => {
  const own = new OwnRedis()
  await own.start()
  const stack = await createStackEnv('redis')
  stack.redisUrl = own.url
  const api = await startApi(stack)
  const ingest = await startIngest(stack)
  const owner = await ApiUser.register(api.url, 'redisfault')
  t.teardown(async () => {
    await ingest.stop()
    await api.stop()
    await own.destroy()
    await stack.cleanup()
  })
  const first = await owner.createStream('before the restart')
  const second = await owner.createStream('during the outage')
  const p1 = await publishClipLoop(ingest.rtmpUrl(first.stream_key), 60, 'first')
  t.teardown(() => p1.stop())
  await waitFor('first live', async () => (await owner.stream(first.id)).status === 'live')

  await own.stop()
  const p2 = await publishClipLoop(ingest.rtmpUrl(second.stream_key), 60, 'second')
  t.teardown(() => p2.stop())
  await p1.stop()
  const pending = await waitFor('events held by ingest', async () => {
    const m = await (await fetch(`${ingest.publicUrl}/metrics`)).text()
    const n = Number(/livestream_ingest_outbox_events\{[^}]*\} (\d+)/.exec(m)?.[1] ?? 0)
    return n >= 2 ? n : null
  }, 20_000)
  t.ok(pending >= 2, `ingest holds ${pending} events (a publish and an unpublish) while Redis is down`)
  t.equal(ingest.child.exitCode, null, 'ingest is still running')
  t.equal(api.child.exitCode, null, 'the api is still running')
  t.equal((await owner.stream(second.id)).status, 'pending', 'nothing applied yet')

  await own.start()
  await waitFor('second live', async () => (await owner.stream(second.id)).status === 'live', 30_000)
  await waitFor('first ended', async () => (await owner.stream(first.id)).status === 'ended', 30_000)
  t.pass('every held event arrived and was applied')
  t.match(ingest.output(), /event not sent yet; kept in the outbox/, 'the loss was logged')
  const keys = [first.stream_key, second.stream_key]
  t.same(linesLeaking(ingest.output(), keys), [], 'no ingest log line of the outage shows a key')
  t.same(linesLeaking(api.output(), keys), [], 'nor any api log line')
})

t.test('MySQL unreachable: 503s not hangs, readiness says so, ingest refuses, the consumer retries and all recovers', async (t) => {
  const proxy = new TcpProxy('127.0.0.1', 3306)
  await proxy.start()
  const stack = await createStackEnv('mysqlcut')
  const direct = stack.db.url
  const viaProxy = new URL(direct)
  viaProxy.port = String(proxy.port)
  const api = await startApi(stack, { DATABASE_URL: viaProxy.toString() })
  const ingest = await startIngest(stack, { DATABASE_URL: viaProxy.toString() })
  const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: null })
  const queue = new Queue(STREAM_EVENTS_QUEUE, { connection: redis, prefix: stack.queuePrefix })
  t.teardown(async () => {
    await ingest.stop()
    await api.stop()
    await queue.close()
    redis.disconnect()
    await proxy.stop()
    await stack.cleanup()
  })
  const owner = await ApiUser.register(api.url, 'dbfault')
  const s = await owner.createStream('db outage')

  await proxy.cut()
  const started = Date.now()
  const res = await owner.call('GET', `/livestream/streams/${s.id}`)
  t.equal(res.status, 503, 'the api answers 503')
  t.equal(res.body.success, false)
  t.match(res.body.message, /unavailable/)
  t.ok(Date.now() - started < 15_000, 'without hanging')
  const ready = await fetch(`${api.url}/readyz`)
  t.equal(ready.status, 503)
  t.match(((await ready.json()) as { message: string }).message, /database/)

  const refused = await publishClipLoop(ingest.rtmpUrl(s.stream_key), 5, 'refused')
  t.not((await refused.exited).code, 0, 'ingest refuses a publish it cannot authorise')
  t.match(ingest.output(), /cannot authorise publish: database unreachable/)
  // The failed lookup's error carries the query's parameters (drizzle ends its message with them): the key.
  t.same(linesLeaking(ingest.output(), [s.stream_key]), [], 'and its log does not show the key it could not check')

  const event: StreamEvent = { type: 'stream.published', id: newEventId(), nodeId: 'n', sessionId: 's', at: new Date().toISOString(), streamId: s.id, playbackBaseUrl: 'http://n' }
  await queue.add(event.type, event, { jobId: event.id, attempts: 20, backoff: { type: 'exponential', delay: 200 } })
  await waitFor('a failed attempt', async () => ((await queue.getJob(event.id))?.attemptsMade ?? 0) >= 1, 20_000)

  await proxy.restore()
  await waitFor('the consumer applied it after recovery', async () => (await owner.stream(s.id)).status === 'live', 60_000, 200)
  t.equal((await fetch(`${api.url}/readyz`)).status, 200, 'ready again')
  t.equal(api.child.exitCode, null, 'the api never died')
  t.same(linesLeaking(api.output(), [s.stream_key]), [], 'no api log line of the outage shows the key')
  t.same(linesLeaking(ingest.output(), [s.stream_key]), [], 'nor any ingest log line')
})
