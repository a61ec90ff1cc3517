import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { assertEnvelope, as, build, register } from './helper.js'
import { refuses, startReceiver } from './webhook-receiver.js'
import { PLATFORM_EVENT_TYPES } from '../src/plugins/app/platform-events.js'

// Receivers listen on 127.0.0.1 over plain http: both switches on here (their refusals: webhooks-ssrf.test.ts).
const app = await build(t, {
  WEBHOOK_ALLOW_HTTP: 'true',
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_TIMEOUT_MS: '800',
  WEBHOOK_MAX_ENDPOINTS: '30',
  WEBHOOK_LOG_ROWS: '10'
})
const alice = await register(app, 'alice')
const bob = await register(app, 'bob')
const A = as(app, alice)
const B = as(app, bob)
const receiver = await startReceiver()
t.teardown(() => receiver.close())

async function createEndpoint(who = A, body: Record<string, unknown> = { url: receiver.url }) {
  const res = await who('POST', '/api/webhooks', body)
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().data as { id: number; secret: string; url: string; event_types: string[] | null }
}

t.test('creating an endpoint answers its whsec_ secret once; reads never show it again', async (t) => {
  const body = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, description: ' my hook ', event_types: ['stream.live', 'stream.ended'] }), 201)
  const ep = body.data
  t.match(ep.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'whsec_ + base64 of 32 bytes')
  t.equal(ep.description, 'my hook')
  t.same(ep.event_types, ['stream.live', 'stream.ended'])
  t.equal(ep.enabled, true)
  const one = assertEnvelope(t, await A('GET', `/api/webhooks/${ep.id}`), 200)
  const list = assertEnvelope(t, await A('GET', '/api/webhooks'), 200)
  t.ok(list.data.some((e: { id: number }) => e.id === ep.id))
  t.equal(list.count, list.data.length)
  for (const res of [JSON.stringify(one), JSON.stringify(list)]) {
    t.notMatch(res, ep.secret.slice(6), 'no secret in reads')
    t.notMatch(res, '"secret"')
  }
})

t.test('a ping is delivered, signed per Standard Webhooks: a third-party verifier and ours accept it', async (t) => {
  const ep = await createEndpoint()
  const before = receiver.received.length
  const res = assertEnvelope(t, await A('POST', `/api/webhooks/${ep.id}/ping`), 200)
  t.equal(res.data.delivered, true)
  t.equal(res.data.http_status, 200)
  const got = receiver.received[before]!
  t.equal(got.headers['webhook-id'], res.data.event_id)
  t.match(got.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/)
  t.equal(got.headers['content-type'], 'application/json')
  const payload = new Webhook(ep.secret).verify(got.body, got.headers as Record<string, string>) as { type: string; data: { endpoint_id: number } }
  t.equal(payload.type, 'webhook.ping')
  t.equal(payload.data.endpoint_id, ep.id)
  t.equal(refuses(ep.secret, got.headers, got.body), null, 'our own verifier agrees')
})

t.test('a replay outside the tolerance and a tampered body are refused by the verifiers', async (t) => {
  const ep = await createEndpoint()
  const before = receiver.received.length
  await A('POST', `/api/webhooks/${ep.id}/ping`)
  const got = receiver.received[before]!
  const headers = got.headers as Record<string, string>
  const wh = new Webhook(ep.secret)
  t.ok(wh.verify(got.body, headers), 'the delivery as sent verifies')

  // Replayed 10 minutes later (the library reads the clock: it is moved, then put back).
  const realNow = Date.now
  Date.now = () => realNow() + 10 * 60_000
  try {
    t.throws(() => wh.verify(got.body, headers), /timestamp/i, 'the library refuses the stale timestamp')
  } finally {
    Date.now = realNow
  }
  t.equal(refuses(ep.secret, got.headers, got.body, Math.floor(realNow() / 1000) + 600), 'timestamp outside tolerance')
  // A replay with a fresh timestamp header: the signature covers the timestamp, so it no longer matches.
  const refreshed = { ...headers, 'webhook-timestamp': String(Math.floor(realNow() / 1000) + 1) }
  t.throws(() => wh.verify(got.body, refreshed), /signature/i, 'a moved timestamp breaks the signature')

  const tampered = got.body.replace('"webhook.ping"', '"stream.ended"')
  t.not(tampered, got.body)
  t.throws(() => wh.verify(tampered, headers), /signature/i, 'a tampered body is refused')
  t.equal(refuses(ep.secret, got.headers, tampered), 'no matching signature')
  t.throws(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(got.body, headers), /signature/i, 'another secret is refused')
})

t.test('rotation: the new secret is shown once, both sign for a day, then only the new one', async (t) => {
  const ep = await createEndpoint()
  const rotated = assertEnvelope(t, await A('POST', `/api/webhooks/${ep.id}/rotate-secret`), 200).data
  t.match(rotated.secret, /^whsec_/)
  t.not(rotated.secret, ep.secret)
  const until = Date.parse(rotated.previous_secret_expires_at)
  t.ok(until > Date.now() + 23 * 3600_000 && until <= Date.now() + 24 * 3600_000 + 60_000, 'the old secret is valid for a day')
  t.notMatch(JSON.stringify((await A('GET', `/api/webhooks/${ep.id}`)).json()), rotated.secret.slice(6), 'GET does not show it')

  let before = receiver.received.length
  await A('POST', `/api/webhooks/${ep.id}/ping`)
  let got = receiver.received[before]!
  t.equal(String(got.headers['webhook-signature']).split(' ').length, 2, 'two signatures during the overlap')
  t.ok(new Webhook(rotated.secret).verify(got.body, got.headers as Record<string, string>), 'the new secret verifies')
  t.ok(new Webhook(ep.secret).verify(got.body, got.headers as Record<string, string>), 'the old secret still verifies')

  // The day has passed.
  await app.dbClient.pool.query('UPDATE webhook_endpoints SET previous_secret_expires_at = ? WHERE id = ?', [new Date(Date.now() - 1000), ep.id])
  before = receiver.received.length
  await A('POST', `/api/webhooks/${ep.id}/ping`)
  got = receiver.received[before]!
  t.equal(String(got.headers['webhook-signature']).split(' ').length, 1, 'one signature after it')
  t.ok(new Webhook(rotated.secret).verify(got.body, got.headers as Record<string, string>))
  t.throws(() => new Webhook(ep.secret).verify(got.body, got.headers as Record<string, string>), /signature/i, 'the old secret no longer verifies')
  t.equal((await A('GET', `/api/webhooks/${ep.id}`)).json().data.previous_secret_expires_at, null)
})

t.test('bad filters: unknown event types, oversized and empty lists are a 400 naming the rule', async (t) => {
  const unknown = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, event_types: ['stream.live', 'stream.exploded'] }), 400)
  t.match(unknown.message, /event_types\.1: unknown event type; known types: stream\.created/)
  const all = [...PLATFORM_EVENT_TYPES]
  const oversized = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, event_types: [...all, 'stream.live'] }), 400)
  t.match(oversized.message, new RegExp(`event_types: at most ${all.length} types`))
  const huge = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, event_types: Array(65).fill('stream.live') }), 400)
  t.match(huge.message, /event_types/)
  const empty = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, event_types: [] }), 400)
  t.match(empty.message, /event_types: give at least one/)
  const wrong = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, event_types: 'stream.live' }), 400)
  t.match(wrong.message, /event_types/)
  const extra = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, secret: 'whsec_mine' }), 400)
  t.match(extra.message, /secret: is not allowed/, 'the secret is ours to make')
  assertEnvelope(t, await A('POST', '/api/webhooks', { url: 'x'.repeat(2049) }), 400)
  const full = assertEnvelope(t, await A('POST', '/api/webhooks', { url: receiver.url, event_types: all }), 201)
  t.same(full.data.event_types, all, 'every known type at once is fine')
})

t.test("someone else's endpoint answers 404 exactly like a missing one, on every route", async (t) => {
  const ep = await createEndpoint()
  const routes: Array<['GET' | 'POST' | 'DELETE' | 'PATCH', string]> = [
    ['GET', ''],
    ['PATCH', ''],
    ['DELETE', ''],
    ['POST', '/ping'],
    ['POST', '/rotate-secret'],
    ['POST', '/enable'],
    ['GET', '/deliveries']
  ]
  const before = receiver.received.length
  for (const [method, suffix] of routes) {
    const body = method === 'PATCH' ? { description: 'mine now' } : undefined
    const theirs = assertEnvelope(t, await B(method, `/api/webhooks/${ep.id}${suffix}`, body), 404)
    const missing = assertEnvelope(t, await B(method, `/api/webhooks/999999${suffix}`, body), 404)
    t.equal(theirs.message, missing.message, `${method} ${suffix || '/'}`)
  }
  t.equal(receiver.received.length, before, "bob's ping reached nothing")
  t.notOk((await B('GET', '/api/webhooks')).json().data.some((e: { id: number }) => e.id === ep.id), "not in bob's list")
  assertEnvelope(t, await A('GET', `/api/webhooks/${ep.id}`), 200)
  assertEnvelope(t, await as(app, null)('GET', '/api/webhooks'), 401)
})

t.test('update (PATCH): url, description and filter change as given, the rest stays (secret, state, log); bad input is a 400', async (t) => {
  const ep = await createEndpoint(A, { url: receiver.url, description: 'first', event_types: ['stream.live'] })
  await A('POST', `/api/webhooks/${ep.id}/ping`)
  const second = await startReceiver()
  t.teardown(() => second.close())

  const moved = assertEnvelope(t, await A('PATCH', `/api/webhooks/${ep.id}`, { url: second.url }), 200).data
  t.equal(moved.url, second.url, 'the new url')
  t.equal(moved.description, 'first', 'the description kept')
  t.same(moved.event_types, ['stream.live'], 'the filter kept')
  t.notOk('secret' in moved, 'no secret in the answer')
  const before = second.received.length
  assertEnvelope(t, await A('POST', `/api/webhooks/${ep.id}/ping`), 200)
  t.equal(second.received.length, before + 1, 'deliveries go to the new url')
  const sig = new Webhook(ep.secret).verify(second.received.at(-1)!.body, second.received.at(-1)!.headers as Record<string, string>) as { type: string }
  t.equal(sig.type, 'webhook.ping', 'signed with the same secret')
  t.equal(assertEnvelope(t, await A('GET', `/api/webhooks/${ep.id}/deliveries`), 200).count, 2, 'the log kept its earlier attempt')

  const all = assertEnvelope(t, await A('PATCH', `/api/webhooks/${ep.id}`, { event_types: null, description: '  second  ' }), 200).data
  t.equal(all.event_types, null, 'null filter: every type')
  t.equal(all.description, 'second', 'trimmed')
  t.equal(assertEnvelope(t, await A('PATCH', `/api/webhooks/${ep.id}`, { description: null }), 200).data.description, null, 'cleared')

  const refusals: Array<[unknown, RegExp]> = [
    [{}, /must NOT have fewer than 1 properties|at least/i],
    [{ secret: 'whsec_x' }, /must NOT have additional properties|secret/],
    [{ event_types: ['stream.nope'] }, /event_types\.0: unknown event type/],
    [{ event_types: [] }, /event_types: give at least one event type/],
    [{ url: 42 }, /url/]
  ]
  for (const [body, message] of refusals) t.match(assertEnvelope(t, await A('PATCH', `/api/webhooks/${ep.id}`, body), 400).message, message, JSON.stringify(body))
  t.equal(assertEnvelope(t, await A('GET', `/api/webhooks/${ep.id}`), 200).data.url, second.url, 'refused updates changed nothing')
})

t.test('delete: the endpoint and its log go; a second delete is a 404', async (t) => {
  const ep = await createEndpoint()
  await A('POST', `/api/webhooks/${ep.id}/ping`)
  assertEnvelope(t, await A('DELETE', `/api/webhooks/${ep.id}`), 200)
  assertEnvelope(t, await A('GET', `/api/webhooks/${ep.id}`), 404)
  assertEnvelope(t, await A('DELETE', `/api/webhooks/${ep.id}`), 404)
  const [[n]] = (await app.dbClient.pool.query('SELECT COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = ?', [ep.id])) as unknown as [[{ n: number }]]
  t.equal(Number(n.n), 0, 'its delivery log went with it')
})

t.test('at most WEBHOOK_MAX_ENDPOINTS per user: the next create is a 409', async (t) => {
  const carol = await register(app, 'carol')
  const C = as(app, carol)
  for (let i = 0; i < 30; i++) await createEndpoint(C)
  const over = assertEnvelope(t, await C('POST', '/api/webhooks', { url: receiver.url }), 409)
  t.match(over.message, /at most 30 webhook endpoints/)
  t.equal((await C('GET', '/api/webhooks')).json().count, 30)
})

t.test('redirects are not followed: a 3xx is a failed delivery and its target hears nothing', async (t) => {
  const target = await startReceiver()
  t.teardown(() => target.close())
  const redirecting = await startReceiver(() => ({ status: 307, headers: { location: target.url } }))
  t.teardown(() => redirecting.close())
  const ep = await createEndpoint(A, { url: redirecting.url })
  const res = assertEnvelope(t, await A('POST', `/api/webhooks/${ep.id}/ping`), 200).data
  t.equal(res.delivered, false)
  t.equal(res.http_status, 307)
  t.match(res.error, /redirects are not followed/)
  t.equal(redirecting.received.length, 1)
  t.equal(target.received.length, 0, 'the redirect target got nothing')
})

t.test('a receiver that never answers fails at the timeout; a huge answer is cut to a short excerpt', async (t) => {
  const hanging = await startReceiver(() => 'hang')
  t.teardown(() => hanging.close())
  const ep = await createEndpoint(A, { url: hanging.url })
  const res = assertEnvelope(t, await A('POST', `/api/webhooks/${ep.id}/ping`), 200).data
  t.equal(res.delivered, false)
  t.equal(res.http_status, null)
  t.match(res.error, /timed out after 800 ms/)

  const chatty = await startReceiver(() => ({ status: 500, body: 'x'.repeat(1_000_000) }))
  t.teardown(() => chatty.close())
  const ep2 = await createEndpoint(A, { url: chatty.url })
  const res2 = assertEnvelope(t, await A('POST', `/api/webhooks/${ep2.id}/ping`), 200).data
  t.equal(res2.delivered, false)
  t.equal(res2.http_status, 500)
  const log = assertEnvelope(t, await A('GET', `/api/webhooks/${ep2.id}/deliveries`), 200)
  t.equal(log.data[0].response_excerpt.length, 200, 'only a short excerpt is kept')
})

t.test('the delivery log: every attempt, newest first, paginated, capped at WEBHOOK_LOG_ROWS per endpoint', async (t) => {
  let n = 0
  const flaky = await startReceiver(() => (n++ % 2 === 0 ? 200 : 503))
  t.teardown(() => flaky.close())
  const ep = await createEndpoint(A, { url: flaky.url })
  const ids: string[] = []
  for (let i = 0; i < 14; i++) ids.push((await A('POST', `/api/webhooks/${ep.id}/ping`)).json().data.event_id)
  const page1 = assertEnvelope(t, await A('GET', `/api/webhooks/${ep.id}/deliveries?limit=4`), 200)
  t.equal(page1.count, 10, 'the oldest 4 of 14 were pruned')
  t.same(page1.data.map((d: { event_id: string }) => d.event_id), ids.slice(-4).reverse(), 'newest first')
  const d = page1.data[0]
  t.equal(d.event_type, 'webhook.ping')
  t.equal(d.attempt, 1)
  t.equal(d.status, 'failed', 'the 14th answered 503')
  t.equal(d.http_status, 503)
  t.equal(page1.data[1].status, 'succeeded')
  t.type(d.duration_ms, 'number')
  const page3 = assertEnvelope(t, await A('GET', `/api/webhooks/${ep.id}/deliveries?limit=4&page=3`), 200)
  t.equal(page3.data.length, 2)
  const ep2 = (await A('GET', `/api/webhooks/${ep.id}`)).json().data
  t.equal(ep2.failure_streak, 0, 'pings do not count against an endpoint')
  t.equal(ep2.enabled, true)
})

t.test('an account deleting itself takes its endpoints and their logs with it', async (t) => {
  const dave = await register(app, 'dave')
  const D = as(app, dave)
  const ep = await createEndpoint(D)
  await D('POST', `/api/webhooks/${ep.id}/ping`)
  assertEnvelope(t, await D('DELETE', '/api/auth/me'), 200)
  const [[left]] = (await app.dbClient.pool.query(
    'SELECT (SELECT COUNT(*) FROM webhook_endpoints WHERE user_id = ?) AS endpoints, (SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?) AS deliveries',
    [dave.id, ep.id]
  )) as unknown as [[{ endpoints: number; deliveries: number }]]
  t.same([Number(left.endpoints), Number(left.deliveries)], [0, 0])
})

t.test('with Redis unreachable, an owner with endpoints still creates, starts and ends streams at once (the fan-out fails fast)', async (t) => {
  const cut = await build(t, { REDIS_URL: 'redis://127.0.0.1:1', WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOW_PRIVATE: 'true' })
  const erin = await register(cut, 'erin')
  const E = as(cut, erin)
  assertEnvelope(t, await E('POST', '/api/webhooks', { url: receiver.url }), 201)
  const created = assertEnvelope(t, await E('POST', '/api/livestream/streams', { title: 'no redis' }), 201)
  assertEnvelope(t, await E('POST', `/api/livestream/streams/${created.data.id}/start`), 200)
  assertEnvelope(t, await E('POST', `/api/livestream/streams/${created.data.id}/end`), 200)
})
