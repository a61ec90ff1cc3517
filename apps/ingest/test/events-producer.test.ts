import t, { type Test } from 'tap'
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { STREAM_EVENTS_QUEUE } from '@livestream/events'
import { testQueuePrefix } from '@livestream/events/testing'
import { loadConfig } from '../src/config.js'
import { EventsProducer } from '../src/events-producer.js'
import { outboxPath } from '../src/outbox-file.js'
import { capturedLogger, dropRedisPrefix, tempDir } from './helper.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** Nothing listens there: Redis is unreachable. */
const NO_REDIS = 'redis://127.0.0.1:1'
const published = { type: 'stream.published', streamId: 1, sessionId: 's', playbackBaseUrl: 'http://x' } as const
const unpublished = { type: 'stream.unpublished', streamId: 1, sessionId: 's', reason: 'publisher-left' } as const

/** A fresh queue prefix on the real Redis, obliterated when `t` ends; its jobs' ids, in order. */
async function realQueue(t: Test) {
  const prefix = testQueuePrefix('outbox')
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
  const queue = new Queue(STREAM_EVENTS_QUEUE, { connection, prefix })
  t.teardown(async () => {
    await queue.obliterate({ force: true })
    await queue.close()
    connection.disconnect()
    await dropRedisPrefix(prefix)
  })
  const jobIds = async () => (await queue.getJobs(['wait', 'active', 'delayed', 'completed', 'failed'])).map((j) => j.id).sort()
  return { prefix, jobIds }
}

const waitUntil = async (what: string, ok: () => boolean | Promise<boolean>, ms = 10_000) => {
  const deadline = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('OUTBOX_DIR defaults to MEDIA_ROOT/.outbox', async (t) => {
  t.equal(loadConfig({ MEDIA_ROOT: '/srv/media' }).outboxDir, '/srv/media/.outbox')
  t.equal(loadConfig({ MEDIA_ROOT: '/srv/media', OUTBOX_DIR: '/var/lib/ingest' }).outboxDir, '/var/lib/ingest')
})

t.test('the producer keeps events while Redis is unreachable and never drops them', async (t) => {
  const { log } = capturedLogger('fatal')
  const producer = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-x', outboxDir: await tempDir(t, 'ls-outbox-'), log })
  const sent = producer.send(published)
  producer.send(unpublished)
  await new Promise((r) => setTimeout(r, 3_500))
  t.equal(producer.pending.length, 2, 'both held')
  t.equal(producer.pending[0]!.id, sent.id, 'in order')
  t.ok(producer.stats.failures >= 1, 'sending was tried and failed')
  const left = await producer.close(300)
  t.equal(left, 2, 'close reports what could not be sent')
})

t.test('unsent events survive a restart of the node: replayed in order under their ids, delivered once, then the file is emptied', async (t) => {
  const dir = await tempDir(t, 'ls-outbox-')
  const { log, lines } = capturedLogger('info')
  const first = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-a', outboxDir: dir, log })
  const a = first.send(published)
  const b = first.send(unpublished)
  const file = outboxPath(dir, 'node-a')
  t.match(await readFile(file, 'utf8'), new RegExp(`${a.id}[^]*${b.id}`), 'both are on disk when send() returns')
  t.equal(await first.close(200), 2)
  t.match(lines.join(''), /kept in the outbox file for the next start/, 'the stop says where they are kept, not that they are lost')

  // Restarted while Redis is still away: nothing is lost, nothing reordered, nothing restamped.
  const second = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-a', outboxDir: dir, log })
  t.same(second.pending, [a, b], 'pending after the restart, in order, as they were stamped')
  const c = second.send(published)
  t.same(second.pending.map((e) => e.id), [a.id, b.id, c.id], 'new events queue behind them')
  t.equal(await second.close(200), 3)
  const beforeDelivery = await readFile(file, 'utf8')

  // Restarted with Redis back: all three go out, once each, and the file is emptied.
  const q = await realQueue(t)
  const third = new EventsProducer({ redisUrl: REDIS_URL, prefix: q.prefix, nodeId: 'node-a', outboxDir: dir, log })
  t.same(third.pending.map((e) => e.id), [a.id, b.id, c.id])
  await waitUntil('delivery', () => third.pending.length === 0)
  t.same(await q.jobIds(), [a.id, b.id, c.id].sort(), 'each event is one job, under its own id')
  t.equal((await stat(file)).size, 0, 'the file is empty once everything in it is acknowledged')
  t.equal(await third.close(1_000), 0)

  // Acknowledgements lost (say in a power cut): the events go again and the queue drops them by id.
  await writeFile(file, beforeDelivery)
  const fourth = new EventsProducer({ redisUrl: REDIS_URL, prefix: q.prefix, nodeId: 'node-a', outboxDir: dir, log })
  t.equal(fourth.pending.length, 3)
  await waitUntil('resend', () => fourth.pending.length === 0)
  t.same(await q.jobIds(), [a.id, b.id, c.id].sort(), 'still one job per event')
  t.equal(await fourth.close(1_000), 0)
  const fifth = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-a', outboxDir: dir, log })
  t.same(fifth.pending, [], 'nothing is replayed once acknowledged')
  await fifth.close(0)
})

t.test('a last line torn by a crash mid-write is skipped; the events before it are kept', async (t) => {
  const dir = await tempDir(t, 'ls-outbox-')
  const { log, lines } = capturedLogger('warn')
  const first = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-t', outboxDir: dir, log })
  const a = first.send(published)
  const b = first.send(unpublished)
  await first.close(0)
  await appendFile(outboxPath(dir, 'node-t'), '{"event":{"type":"stream.unpub')
  const second = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-t', outboxDir: dir, log })
  t.same(second.pending, [a, b])
  t.match(lines.join(''), /partial line/, 'the torn line is reported')
  const c = second.send(published)
  await second.close(0)
  const third = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-t', outboxDir: dir, log })
  t.same(third.pending.map((e) => e.id), [a.id, b.id, c.id], 'the file was rewritten whole at the start: later events are not glued to the torn line')
  await third.close(0)
})

t.test('two nodes sharing OUTBOX_DIR each replay only their own file', async (t) => {
  const dir = await tempDir(t, 'ls-outbox-')
  const { log } = capturedLogger('fatal')
  const x = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-x', outboxDir: dir, log })
  const y = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-y', outboxDir: dir, log })
  const ex = x.send(published)
  const ey = y.send(unpublished)
  await Promise.all([x.close(0), y.close(0)])
  const x2 = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-x', outboxDir: dir, log })
  const y2 = new EventsProducer({ redisUrl: NO_REDIS, prefix: 'lstest-outbox', nodeId: 'node-y', outboxDir: dir, log })
  t.same(x2.pending, [ex])
  t.same(y2.pending, [ey])
  await Promise.all([x2.close(0), y2.close(0)])
})
