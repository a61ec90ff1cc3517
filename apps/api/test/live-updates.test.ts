import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestDatabase } from '@livestream/db/testing'
import { newEventId, type StreamEvent } from '@livestream/events'
import { testQueuePrefix } from '@livestream/events/testing'
import { buildApp } from '../src/app.js'
import { as, dropRedisPrefix, JWT_SECRET, register, testConfig, type TestUser } from './helper.js'
import { openSse, type SseConnection, type SseEvent } from '../src/testing/sse-client.js'

// Two apps over one database and one Redis prefix: two api processes of one deployment, as far as live updates go.
const db = await createTestDatabase('ls_api_sse')
const prefix = testQueuePrefix('sse')
const env = { QUEUE_PREFIX: prefix, SSE_MAX_PER_USER: '3', SSE_MAX_PER_ADDRESS: '2', SSE_HEARTBEAT_MS: '1000' }
const apps: FastifyInstance[] = []
async function start(): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApp({ config: testConfig(db.url, env), consumer: false, reaper: false })
  apps.push(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  if (!addr || typeof addr === 'string') throw new Error('no port')
  return { app, url: `http://127.0.0.1:${addr.port}` }
}
const one = await start()
const two = await start()
const open = new Set<SseConnection>()
t.teardown(async () => {
  for (const c of open) c.close()
  for (const app of apps) await app.close()
  await db.drop()
  await dropRedisPrefix(prefix)
})

const alice = await register(one.app, 'alice')
const bob = await register(one.app, 'bob')
const A = as(one.app, alice)
const B = as(one.app, bob)
const A2 = as(two.app, alice)

async function create(title = 'sse stream') {
  const res = await A('POST', '/api/livestream/streams', { title })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().data as { id: number; stream_key: string; playback_id: string }
}
async function sse(base: string, path: string, who: TestUser | null, headers: Record<string, string> = {}) {
  const c = await openSse(`${base}${path}`, { ...(who ? { authorization: `Bearer ${who.token}` } : {}), ...headers })
  open.add(c)
  return c
}
const events = (id: number) => `/api/livestream/streams/${id}/events`
const json = (e: SseEvent) => JSON.parse(e.data)
const state = (e: SseEvent) => json(e).stream.status as string
const ingest = (e: Omit<StreamEvent, 'id' | 'nodeId' | 'sessionId' | 'at'> & Record<string, unknown>) =>
  one.app.streams.applyEvent({ id: newEventId(), nodeId: 'node-sse', sessionId: 'sess-sse', at: new Date().toISOString(), ...e } as StreamEvent)

t.test('a logged-in user gets a snapshot, then status, participants and viewers as they change; never a key', async (t) => {
  const s = await create()
  const c = await sse(one.url, events(s.id), bob)
  t.equal(c.status, 200)
  t.match(c.headers['content-type'], /^text\/event-stream/)
  t.equal(c.headers['cache-control'], 'no-cache, no-store, no-transform')
  t.equal(c.headers['x-accel-buffering'], 'no')
  t.equal(c.headers['x-content-type-options'], 'nosniff', 'the security headers the app sets on every answer')
  const snap = json(await c.next('snapshot', (e) => e.event === 'snapshot'))
  t.equal(snap.type, 'snapshot')
  t.equal(snap.stream.id, s.id)
  t.equal(snap.stream.status, 'pending')
  t.equal(snap.participant_count, 0)
  t.ok(c.retries.length === 1 && c.retries[0]! > 0, 'a retry hint')

  t.equal((await A('POST', `/api/livestream/streams/${s.id}/start`)).statusCode, 200)
  const live = json(await c.next('status live', (e) => e.event === 'status' && json(e).stream.status === 'live'))
  t.equal(live.type, 'stream.live')
  t.equal(live.stream.connection, 'awaiting-publisher', 'started by hand, nobody publishing yet')

  t.equal((await B('POST', '/api/livestream/streams/join', { stream_id: s.id })).statusCode, 200)
  const joined = json(await c.next('participants', (e) => e.event === 'participants'))
  t.equal(joined.type, 'participant.joined')
  t.equal(joined.participant_count, 1)

  t.equal(await ingest({ type: 'stream.published', streamId: s.id, playbackBaseUrl: 'http://node-sse' }), 'applied')
  await c.next('connected', (e) => e.event === 'status' && json(e).stream.connection === 'connected')
  t.equal(await ingest({ type: 'stream.reconnecting', streamId: s.id }), 'applied')
  const rec = json(await c.next('reconnecting', (e) => json(e).stream.connection === 'reconnecting'))
  t.equal(rec.type, 'stream.reconnecting')
  t.equal(rec.stream.status, 'live', 'reconnecting beside status live')
  t.equal(await ingest({ type: 'stream.resumed', streamId: s.id }), 'applied')
  const back = json(await c.next('connected again', (e, i = c.events.indexOf(e)) => i > c.events.findIndex((x) => json(x).type === 'stream.reconnecting') && json(e).stream.connection === 'connected'))
  t.equal(back.stream.status, 'live')

  t.equal((await A('POST', `/api/livestream/streams/${s.id}/end`)).statusCode, 200)
  const ended = json(await c.next('ended', (e) => e.event === 'status' && json(e).stream.status === 'ended'))
  t.equal(ended.stream.ended_reason, 'ended-by-owner')
  t.equal(ended.stream.connection, null)
  t.equal(ended.participant_count, 0, 'the end closes every participation')

  const ids = c.events.filter((e) => e.event !== 'snapshot').map((e) => e.id)
  t.ok(ids.every((id) => /^\d+-\d+$/.test(id ?? '')), 'every update has an id')
  t.notOk(c.body().includes(s.stream_key), 'the key never appears')
  t.notOk(c.body().includes('stream_key'), 'nor its field')
})

t.test('viewer figures are pushed as viewers events', async (t) => {
  const s = await create('audience')
  const c = await sse(one.url, events(s.id), alice)
  await c.next('snapshot', (e) => e.event === 'snapshot')
  // What the viewer-counting pipeline announces once it stores a figure (its storage is another change's).
  const row = await one.app.streams.getFresh(s.id)
  const { streamView } = await import('../src/plugins/app/streams/stream-view.js')
  await one.app.platformEvents.emit({
    id: 'evt_viewers_test',
    type: 'stream.viewers',
    timestamp: new Date().toISOString(),
    streamId: s.id,
    ownerId: alice.id,
    data: { stream: { ...streamView(row, { streamServerUrl: 'http://x', rtmpPublicUrl: 'rtmp://x' }), viewer_count: 7, peak_viewer_count: 9 } }
  })
  const v = json(await c.next('viewers', (e) => e.event === 'viewers'))
  t.equal(v.stream.viewer_count, 7)
  t.equal(v.stream.peak_viewer_count, 9)
})

t.test('a change made through one api process reaches a client of the other', async (t) => {
  const s = await create('across')
  const onTwo = await sse(two.url, events(s.id), bob)
  await onTwo.next('snapshot', (e) => e.event === 'snapshot')
  t.equal((await A('POST', `/api/livestream/streams/${s.id}/start`)).statusCode, 200, 'started through the first')
  const live = json(await onTwo.next('live on the second', (e) => e.event === 'status'))
  t.equal(live.stream.status, 'live')
  t.equal((await A2('POST', `/api/livestream/streams/${s.id}/end`)).statusCode, 200, 'ended through the second')
  const onOne = await sse(one.url, events(s.id), bob)
  const snap = json(await onOne.next('snapshot on the first', (e) => e.event === 'snapshot'))
  t.equal(snap.stream.status, 'ended', 'a late client starts from the current state')
  await onTwo.next('ended on the second', (e) => json(e).stream.status === 'ended')
})

t.test('Last-Event-ID: what was missed is replayed, without a snapshot; an unknown id gets a snapshot', async (t) => {
  const s = await create('replay')
  const first = await sse(one.url, events(s.id), alice)
  await first.next('snapshot', (e) => e.event === 'snapshot')
  await A('POST', `/api/livestream/streams/${s.id}/start`)
  const seen = await first.next('live', (e) => e.event === 'status')
  first.close()
  await B('POST', '/api/livestream/streams/join', { stream_id: s.id })
  await B('POST', `/api/livestream/streams/${s.id}/leave`)
  await A('POST', `/api/livestream/streams/${s.id}/end`)

  const again = await sse(two.url, events(s.id), alice, { 'last-event-id': seen.id! })
  const ended = await again.next('ended', (e) => json(e).stream.status === 'ended')
  t.same(
    again.events.slice(0, again.events.indexOf(ended) + 1).map((e) => `${e.event}:${json(e).type}`),
    ['participants:participant.joined', 'participants:participant.left', 'status:stream.ended'],
    'exactly what came after the last id seen, in order, and no snapshot'
  )

  for (const id of ['1-0', '99999999999999-0', 'garbage']) {
    const c = await sse(one.url, events(s.id), alice, { 'last-event-id': id })
    const snap = json(await c.next(`snapshot for ${id}`, () => true))
    t.equal(snap.type, 'snapshot', `Last-Event-ID ${id}: a snapshot`)
    t.equal(snap.stream.status, 'ended')
    c.close()
  }
})

t.test('refusals are answers in the envelope: 401 without a token, 404 for a missing stream, 400 for a bad id', async (t) => {
  const s = await create('refusals')
  for (const [path, who, status] of [
    [events(s.id), null, 401],
    [events(987654321), alice, 404],
    ['/api/livestream/streams/abc/events', alice, 400]
  ] as const) {
    const c = await sse(one.url, path, who)
    t.equal(c.status, status, `${path}: ${status}`)
    await c.ended
    const body = JSON.parse(c.body())
    t.equal(body.success, false)
    t.equal(body.data, null)
  }
})

t.test('a browser EventSource sends no header: a ticket from POST .../events/ticket opens that stream\'s events, and nothing else', async (t) => {
  const s = await create('ticketed')
  const other = await create('another')
  const dave = await register(one.app, 'dave')
  const D = as(one.app, dave)
  t.equal((await as(one.app, null)('POST', `${events(s.id)}/ticket`)).statusCode, 401, 'a ticket needs a token')
  t.equal((await D('POST', `${events(987654321)}/ticket`)).statusCode, 404, 'and a stream that exists')
  const res = await D('POST', `${events(s.id)}/ticket`)
  t.equal(res.statusCode, 201)
  const { ticket, expires_at: expiresAt, events_url: url } = res.json().data as { ticket: string; expires_at: string; events_url: string }
  t.equal(url, `${events(s.id)}?ticket=${ticket}`, 'the events URL with the ticket')
  const ttl = Date.parse(expiresAt) - Date.now()
  t.ok(ttl > 30_000 && ttl <= 61_000, `valid about a minute (${ttl} ms)`)

  // On the other process too: the ticket is signed, not stored.
  const c = await sse(two.url, url, null)
  t.equal(c.status, 200, 'no header, the ticket: 200')
  t.equal(json(await c.next('snapshot', (e) => e.event === 'snapshot')).stream.id, s.id)
  c.close()

  const refused = async (path: string, headers: Record<string, string> = {}) => {
    const r = await sse(one.url, path, null, headers)
    await r.ended
    return { status: r.status, message: r.status === 200 ? '' : (JSON.parse(r.body()).message as string) }
  }
  t.same(await refused(`${events(other.id)}?ticket=${ticket}`), { status: 401, message: 'invalid or expired ticket' }, 'another stream: 401')
  const forged = ticket.slice(0, -2) + (ticket.endsWith('AA') ? 'BB' : 'AA')
  t.same(await refused(`${events(s.id)}?ticket=${forged}`), { status: 401, message: 'invalid or expired ticket' }, 'a changed signature: 401')
  t.equal((await refused(`${events(s.id)}?ticket=lt1.1.1.1.x`)).status, 400, 'not a ticket at all: 400')
  const signedElsewhere = ticket.replace(`lt1.${dave.id}.`, `lt1.${alice.id}.`)
  t.equal((await refused(`${events(s.id)}?ticket=${signedElsewhere}`)).status, 401, 'another user in the same signature: 401')
  const asBearer = await one.app.inject({ method: 'GET', url: `/api/livestream/streams/${s.id}`, headers: { authorization: `Bearer ${ticket}` } })
  t.equal(asBearer.statusCode, 401, 'a ticket is no bearer token')
  const ticketOnOther = await one.app.inject({ method: 'GET', url: `/api/livestream/streams/${s.id}?ticket=${ticket}` })
  t.equal(ticketOnOther.statusCode, 401, 'nor does it open any other route')
  const tokenAsTicket = await refused(`${events(s.id)}?ticket=${encodeURIComponent(dave.token)}`)
  t.equal(tokenAsTicket.status, 400, 'and a token is no ticket')

  // Expired: a ticket issued TICKET_TTL_MS ago, signed as the app signs them.
  const { liveUpdateTickets, TICKET_TTL_MS } = await import('../src/plugins/external/auth.js')
  const old = liveUpdateTickets(JWT_SECRET).issue(dave.id, s.id, Date.now() - TICKET_TTL_MS - 1_000)
  t.same(await refused(`${events(s.id)}?ticket=${old.ticket}`), { status: 401, message: 'invalid or expired ticket' }, 'expired: 401')
})

t.test('last_event_id in the URL resumes like the header (a new EventSource cannot send one)', async (t) => {
  const s = await create('resume by url')
  const first = await sse(one.url, events(s.id), alice)
  await first.next('snapshot', (e) => e.event === 'snapshot')
  await A('POST', `/api/livestream/streams/${s.id}/start`)
  const live = await first.next('live', (e) => e.event === 'status' && state(e) === 'live')
  first.close()
  await A('POST', `/api/livestream/streams/${s.id}/end`)
  const again = await sse(one.url, `${events(s.id)}?last_event_id=${encodeURIComponent(live.id as string)}`, alice)
  const next = await again.next('the missed end', () => true)
  t.equal(next.event, 'status', 'no snapshot: what was missed')
  t.equal(state(next), 'ended')
  again.close()
})

t.test('connections past the cap per user get a 429, counted over both processes; a closed one frees its place at once', async (t) => {
  const s = await create('capped')
  const carol = await register(one.app, 'carol')
  const held = [await sse(one.url, events(s.id), carol), await sse(two.url, events(s.id), carol), await sse(one.url, events(s.id), carol)]
  for (const c of held) await c.next('snapshot', (e) => e.event === 'snapshot')
  const over = await sse(two.url, events(s.id), carol)
  t.equal(over.status, 429, 'the fourth, on the other process: 429')
  await over.ended
  const body = JSON.parse(over.body())
  t.equal(body.success, false)
  t.match(body.message, /at most 3 per user/)
  t.equal((await sse(one.url, events(s.id), await register(one.app, 'dave'))).status, 200, 'another user is not affected')

  held[0]!.close()
  await held[0]!.ended
  let back: SseConnection | undefined
  // The server hears the close as soon as the socket closes; the place is free once it has.
  for (let i = 0; i < 100 && back?.status !== 200; i++) {
    back?.close()
    back = await sse(two.url, events(s.id), carol)
    if (back.status !== 200) await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(back?.status, 200, 'a place freed by a disconnect is taken again')
})

t.test('heartbeats are comment lines sent while nothing happens', async (t) => {
  const s = await create('quiet')
  const c = await sse(one.url, events(s.id), alice)
  await c.next('snapshot', (e) => e.event === 'snapshot')
  const until = Date.now() + 10_000
  while (!c.comments.includes('hb') && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
  t.ok(c.comments.includes('hb'), 'a `: hb` line arrived (SSE_HEARTBEAT_MS=1000 here)')
})

t.test('an SSE connection outlives the idle-socket timeout of ordinary requests', async (t) => {
  const idle = await buildApp({ config: testConfig(db.url, { ...env, CONNECTION_TIMEOUT_MS: '300', SSE_HEARTBEAT_MS: '60000' }), consumer: false, reaper: false })
  apps.push(idle)
  await idle.listen({ port: 0, host: '127.0.0.1' })
  const port = (idle.server.address() as { port: number }).port
  const s = await create('idle')
  const c = await sse(`http://127.0.0.1:${port}`, events(s.id), await register(one.app, 'frank'))
  await c.next('snapshot', (e) => e.event === 'snapshot')
  // Nothing is written for four idle timeouts (no heartbeat due for a minute): an ordinary socket would be cut by now.
  await new Promise((r) => setTimeout(r, 1_200))
  await A('POST', `/api/livestream/streams/${s.id}/start`)
  t.equal(state(await c.next('live after the idle spell', (e) => e.event === 'status')), 'live', 'still open, still fed')
})

t.test('after its Redis subscription is cut and comes back, a process sends every client the current state, then updates again', async (t) => {
  const s = await create('resubscribed')
  const c = await sse(two.url, events(s.id), await register(one.app, 'gina'))
  await c.next('snapshot', (e) => e.event === 'snapshot')
  // Cut this deployment's subscriptions (named after its channel) at the server, as a Redis restart or a network cut would.
  const redis = two.app.redis
  const list = (await redis.client('LIST')) as string
  const ids = list.split('\n').filter((l) => l.includes(`name=${prefix}:live-updates `)).map((l) => /id=(\d+)/.exec(l)?.[1])
  t.ok(ids.length >= 1, 'the subscriptions are found by name')
  for (const id of ids) await redis.client('KILL', 'ID', id!)
  const again = await c.next('a fresh snapshot', (e) => e.event === 'snapshot', { from: 1 })
  t.equal(state(again), 'pending')
  await A('POST', `/api/livestream/streams/${s.id}/start`)
  t.equal(state(await c.next('live, subscribed again', (e) => e.event === 'status')), 'live')
})

t.test('the public endpoints by playback id: only public fields, no participants events, a cap per address', async (t) => {
  const s = await create('public show')
  const res = await one.app.inject({ method: 'GET', url: `/api/public/streams/${s.playback_id}` })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], '*', 'readable from any origin')
  const view = res.json().data
  t.same(Object.keys(view).sort(), [
    'connection', 'dash_url', 'ended_at', 'peak_viewer_count', 'playback_id', 'playback_url', 'started_at', 'status', 'title', 'viewer_count'
  ])
  t.equal(view.title, 'public show')
  t.equal((await one.app.inject({ method: 'GET', url: '/api/public/streams/nosuchplaybackid00' })).statusCode, 404)
  t.equal((await one.app.inject({ method: 'GET', url: '/api/public/streams/bad!id' })).statusCode, 400)

  const preflight = await one.app.inject({
    method: 'OPTIONS',
    url: `/api/public/streams/${s.playback_id}/events`,
    headers: { origin: 'https://elsewhere.example', 'access-control-request-headers': 'last-event-id' }
  })
  t.equal(preflight.statusCode, 204, 'a cross-origin preflight is answered')
  t.equal(preflight.headers['access-control-allow-origin'], '*')
  t.match(preflight.headers['access-control-allow-headers'], /last-event-id/)

  const pub = await sse(two.url, `/api/public/streams/${s.playback_id}/events`, null)
  t.equal(pub.status, 200)
  const snap = json(await pub.next('public snapshot', (e) => e.event === 'snapshot'))
  t.same(Object.keys(snap).sort(), ['stream', 'timestamp', 'type'])
  t.same(Object.keys(snap.stream).sort(), Object.keys(view).sort(), 'the same fields as the JSON')
  await B('POST', '/api/livestream/streams/join', { stream_id: s.id })
  await A('POST', `/api/livestream/streams/${s.id}/start`)
  const live = json(await pub.next('public live', (e) => e.event === 'status'))
  t.equal(live.stream.status, 'live')
  t.notOk(pub.events.some((e) => e.event === 'participants'), 'no participants events')
  for (const secret of [s.stream_key, 'user_id', 'ref_no', 'ingest_node_id', 'participant_count', `"id":${s.id}`]) {
    t.notOk(pub.body().includes(secret), `nothing private: ${secret.slice(0, 20)}`)
  }

  const second = await sse(one.url, `/api/public/streams/${s.playback_id}/events`, null)
  t.equal(second.status, 200)
  const third = await sse(two.url, `/api/public/streams/${s.playback_id}/events`, null)
  t.equal(third.status, 429, 'the third from one address (SSE_MAX_PER_ADDRESS=2)')
  await third.ended
  t.match(JSON.parse(third.body()).message, /per client address/)
})

t.test('closing the api ends its open live-update streams and does not wait for their clients', async (t) => {
  const extra = await start()
  const s = await create('closing')
  const c = await sse(extra.url, events(s.id), await register(one.app, 'erin'))
  t.equal(c.status, 200)
  await c.next('snapshot', (e) => e.event === 'snapshot')
  t.equal(extra.app.liveUpdates.hub.size, 1)
  // A close that waited for the client would hang here until the file's timeout.
  await extra.app.close()
  t.pass('close() returned with a client still connected')
  await c.ended
  t.pass('the client saw its stream end (and would reconnect after the retry hint)')
  t.equal(extra.app.liveUpdates.hub.size, 0)
})
