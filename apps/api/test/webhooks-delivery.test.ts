import t from 'tap'
import { Queue } from 'bullmq'
import { Webhook } from 'standardwebhooks'
import { newEventId } from '@livestream/events'
import { testQueuePrefix } from '@livestream/events/testing'
import { assertEnvelope, as, build, register } from './helper.js'
import { startReceiver, type Received } from './webhook-receiver.js'
import { platformEventId } from '../src/plugins/app/platform-events.js'
import { streamView } from '../src/plugins/app/streams/stream-view.js'
import { deliveryJobId, webhookBackoff, WEBHOOK_DELIVERIES_QUEUE } from '../src/plugins/app/webhooks/webhooks-service.js'

// Small retry steps (3 attempts), so that retries and exhaustion happen within the test; two failed events disable.
const STEPS = [300, 600]
const QUEUE_PREFIX = testQueuePrefix('webhooks')
const app = await build(
  t,
  {
    QUEUE_PREFIX,
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_RETRY_DELAYS_MS: STEPS.join(','),
    WEBHOOK_DISABLE_AFTER_FAILED_EVENTS: '2',
    WEBHOOK_TIMEOUT_MS: '2000',
    // The log is cut every 5th row: the cut runs beside concurrent deliveries (it once deadlocked with them).
    WEBHOOK_LOG_ROWS: '100'
  },
  { webhookWorker: true }
)
const alice = await register(app, 'alice')
const viewer = await register(app, 'viewer')
const A = as(app, alice)
const V = as(app, viewer)

interface Payload {
  type: string
  timestamp: string
  data: { stream: Record<string, unknown>; participant?: { user_id: number }; reason?: string; endpoint_id?: number }
}

async function endpoint(url: string, eventTypes?: string[]) {
  const res = await A('POST', '/api/webhooks', { url, ...(eventTypes ? { event_types: eventTypes } : {}) })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().data as { id: number; secret: string }
}

const verified = (secret: string, r: Received) => new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as Payload

t.test('backoff: each wait is drawn between half and all of its step; past the schedule, its last step', async (t) => {
  const lows = webhookBackoff([1000, 8000], () => 0)
  const highs = webhookBackoff([1000, 8000], () => 0.999999)
  t.same([lows(1), lows(2), lows(3)], [500, 4000, 4000])
  t.same([highs(1), highs(2)], [1000, 8000])
  const drawn = webhookBackoff([1000])
  for (let i = 0; i < 200; i++) {
    const d = drawn(1)
    if (d < 500 || d > 1000) t.fail(`drew ${d}`)
  }
  t.pass('200 draws within [500, 1000]')
})

t.test("every stream event reaches the owner's endpoint, signed, with the key in none of them", async (t) => {
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const all = await endpoint(receiver.url)
  const filteredReceiver = await startReceiver()
  t.teardown(() => filteredReceiver.close())
  const filtered = await endpoint(filteredReceiver.url, ['stream.ended'])

  const created = (await A('POST', '/api/livestream/streams', { title: 'hooked' })).json().data
  const keys: string[] = [created.stream_key]
  const id = created.id as number
  await app.streams.applyEvent({ type: 'stream.published', id: newEventId(), nodeId: 'n1', sessionId: 's1', at: new Date().toISOString(), streamId: id, playbackBaseUrl: 'http://n1' })
  const reconnectingId = newEventId()
  await app.streams.applyEvent({ type: 'stream.reconnecting', id: reconnectingId, nodeId: 'n1', sessionId: 's1', at: new Date().toISOString(), streamId: id })
  await app.streams.applyEvent({ type: 'stream.resumed', id: newEventId(), nodeId: 'n1', sessionId: 's1', at: new Date().toISOString(), streamId: id })
  await V('POST', '/api/livestream/streams/join', { stream_id: id })
  await V('POST', `/api/livestream/streams/${id}/leave`)
  keys.push((await A('POST', `/api/livestream/streams/${id}/key/rotate`)).json().data.stream_key)
  // Viewer counts come from ingest (throttled there); the event as the streams service would announce it.
  const { stream } = await app.streams.getById(id)
  await app.platformEvents.emit({
    id: platformEventId(),
    type: 'stream.viewers',
    timestamp: new Date().toISOString(),
    streamId: id,
    ownerId: alice.id,
    data: { stream: streamView(stream, { streamServerUrl: 'http://x', rtmpPublicUrl: 'rtmp://x' }) }
  })
  await A('POST', `/api/livestream/streams/${id}/end`)

  const expected = ['stream.created', 'stream.live', 'stream.reconnecting', 'stream.live', 'participant.joined', 'participant.left', 'stream.key_rotated', 'stream.viewers', 'stream.ended']
  const got = await receiver.waitFor(expected.length)
  const payloads = got.map((r) => verified(all.secret, r))
  t.same(payloads.map((p) => p.type).sort(), [...expected].sort(), 'each event once (deliveries run side by side: any order)')
  for (const p of payloads) t.equal(p.data.stream.id, id)
  const ended = payloads.find((p) => p.type === 'stream.ended')!
  t.equal(ended.data.reason, 'ended-by-owner', 'the end carries its reason')
  t.equal(ended.data.stream.status, 'ended')
  t.equal(payloads.find((p) => p.type === 'participant.joined')!.data.participant!.user_id, viewer.id)
  const reconnecting = got.find((r) => verified(all.secret, r).type === 'stream.reconnecting')!
  t.equal(reconnecting.headers['webhook-id'], `evt_${reconnectingId}`, 'an ingest-caused event keeps an id derived from the ingest event')
  t.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, expected.length, 'one id per event')
  for (const r of got) {
    for (const key of keys) t.notOk(r.body.includes(key), 'no stream key in the body')
    t.notOk(r.body.includes('stream_key'), 'not even the field')
    t.notOk(r.body.includes('rtmp_url'))
  }

  const onlyEnded = await filteredReceiver.waitFor(1)
  // The log row is written once the receiver has answered.
  let deliveries = { count: 0 }
  for (let i = 0; i < 200 && deliveries.count < 1; i++) {
    deliveries = (await A('GET', `/api/webhooks/${filtered.id}/deliveries`)).json()
    if (deliveries.count < 1) await new Promise((r) => setTimeout(r, 50))
  }
  t.equal(deliveries.count, 1, 'the filtered endpoint got the one type it asked for')
  t.equal(verified(filtered.secret, onlyEnded[0]!).type, 'stream.ended')
  t.equal(filteredReceiver.received.length, 1)
})

t.test('60 events at once to one endpoint: each delivered once, at its first attempt, and logged once (no lock conflicts)', async (t) => {
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const ep = await endpoint(receiver.url, ['stream.viewers'])
  const { stream } = await app.streams.getById((await A('POST', '/api/livestream/streams', { title: 'busy' })).json().data.id)
  const view = streamView(stream, { streamServerUrl: 'http://x', rtmpPublicUrl: 'rtmp://x' })
  const ids = Array.from({ length: 60 }, () => platformEventId())
  await Promise.all(
    ids.map((id) =>
      app.platformEvents.emit({ id, type: 'stream.viewers', timestamp: new Date().toISOString(), streamId: stream.id, ownerId: alice.id, data: { stream: view } })
    )
  )
  await receiver.waitFor(60)
  let log: Array<{ event_id: string; attempt: number; status: string }> = []
  for (let i = 0; i < 200 && log.length < 60; i++) {
    log = (await A('GET', `/api/webhooks/${ep.id}/deliveries?limit=100`)).json().data
    if (log.length < 60) await new Promise((r) => setTimeout(r, 50))
  }
  t.same(new Set(log.map((d) => d.event_id)), new Set(ids), 'one log row per event')
  t.equal(log.length, 60)
  t.ok(log.every((d) => d.attempt === 1 && d.status === 'succeeded'), 'all at their first attempt')
  t.equal(receiver.received.length, 60, 'no event delivered twice')
  t.equal((await A('GET', `/api/webhooks/${ep.id}`)).json().data.failure_streak, 0)
})

t.test('a failing receiver is retried with backoff under the same webhook-id until it answers; each attempt is logged', async (t) => {
  const receiver = await startReceiver((n) => (n < 2 ? 500 : 204))
  t.teardown(() => receiver.close())
  const ep = await endpoint(receiver.url, ['stream.created'])
  await A('POST', '/api/livestream/streams', { title: 'retried' })
  const got = await receiver.waitFor(3)
  t.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id across the attempts')
  t.ok(got.every((r) => verified(ep.secret, r).type === 'stream.created'), 'each attempt signed anew and valid')
  // BullMQ cannot run a retry before its delay: each gap is at least half its step.
  t.ok(got[1]!.at - got[0]!.at >= STEPS[0]! / 2, `first retry after ${got[1]!.at - got[0]!.at} ms`)
  t.ok(got[2]!.at - got[1]!.at >= STEPS[1]! / 2, `second retry after ${got[2]!.at - got[1]!.at} ms`)
  let log: Array<{ attempt: number; status: string; http_status: number }> = []
  for (let i = 0; i < 100 && log.length < 3; i++) {
    log = (await A('GET', `/api/webhooks/${ep.id}/deliveries`)).json().data
    if (log.length < 3) await new Promise((r) => setTimeout(r, 50))
  }
  t.same(
    log.map((d) => [d.attempt, d.status, d.http_status]),
    [
      [3, 'succeeded', 204],
      [2, 'failed', 500],
      [1, 'failed', 500]
    ]
  )
  const after = (await A('GET', `/api/webhooks/${ep.id}`)).json().data
  t.equal(after.failure_streak, 0)
  t.ok(after.last_success_at)
})

t.test('an endpoint that keeps failing is disabled after two events fail every attempt; its owner sees why; enable brings it back', async (t) => {
  let down = true
  const receiver = await startReceiver(() => (down ? 503 : 200))
  t.teardown(() => receiver.close())
  const ep = await endpoint(receiver.url, ['stream.created'])
  const waitEndpoint = async (check: (e: Record<string, unknown>) => boolean) => {
    for (let i = 0; i < 400; i++) {
      const e = (await A('GET', `/api/webhooks/${ep.id}`)).json().data
      if (check(e)) return e
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error('endpoint never reached the expected state')
  }
  await A('POST', '/api/livestream/streams', { title: 'lost 1' })
  await receiver.waitFor(3)
  const one = await waitEndpoint((e) => e.failure_streak === 1)
  t.equal(one.enabled, true, 'one lost event does not disable')
  await A('POST', '/api/livestream/streams', { title: 'lost 2' })
  const disabled = await waitEndpoint((e) => e.enabled === false)
  t.equal(receiver.received.length, 6, 'three attempts for each event')
  t.ok(disabled.disabled_at)
  t.match(disabled.disabled_reason, /2 event\(s\) in a row could not be delivered after 3 attempts each/)
  t.equal(disabled.failure_streak, 2)

  await A('POST', '/api/livestream/streams', { title: 'not sent' })
  const ping = assertEnvelope(t, await A('POST', `/api/webhooks/${ep.id}/ping`), 200)
  t.equal(receiver.received.length, 7, 'a disabled endpoint gets no events, but its owner can still ping it')
  t.equal(verified(ep.secret, receiver.received[6]!).type, 'webhook.ping')
  t.equal(ping.data.delivered, false)

  down = false
  const enabled = assertEnvelope(t, await A('POST', `/api/webhooks/${ep.id}/enable`), 200).data
  t.equal(enabled.enabled, true)
  t.equal(enabled.failure_streak, 0)
  await A('POST', '/api/livestream/streams', { title: 'sent again' })
  const [, , , , , , , next] = await receiver.waitFor(8)
  t.equal(verified(ep.secret, next!).type, 'stream.created')
  t.equal((verified(ep.secret, next!).data.stream as { title: string }).title, 'sent again', 'the event made while disabled was never queued')
})

t.test('a deleted endpoint gets nothing more: its queued retry ends without a delivery', async (t) => {
  const receiver = await startReceiver(() => 500)
  t.teardown(() => receiver.close())
  const ep = await endpoint(receiver.url, ['stream.created'])
  await A('POST', '/api/livestream/streams', { title: 'then deleted' })
  const [first] = await receiver.waitFor(1)
  assertEnvelope(t, await A('DELETE', `/api/webhooks/${ep.id}`), 200)
  const queue = new Queue(WEBHOOK_DELIVERIES_QUEUE, { connection: app.redis, prefix: QUEUE_PREFIX })
  t.teardown(() => queue.close())
  const job = await queue.getJob(deliveryJobId(String(first!.headers['webhook-id']), ep.id))
  t.ok(job, 'the delivery job exists')
  let state = ''
  for (let i = 0; i < 200 && state !== 'completed'; i++) {
    state = await job!.getState()
    if (state !== 'completed') await new Promise((r) => setTimeout(r, 50))
  }
  t.equal(state, 'completed')
  t.equal((await queue.getJob(job!.id!))?.returnvalue, 'endpoint-gone', 'its retry found the endpoint gone')
  t.ok(receiver.received.length <= 2, `${receiver.received.length} attempt(s): at most the one in flight at the delete came after it`)
})
