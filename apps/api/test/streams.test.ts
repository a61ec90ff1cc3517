import t from 'tap'
import { assertEnvelope, as, build, register } from './helper.js'

const app = await build(t)
const alice = await register(app, 'alice')
const bob = await register(app, 'bob')
const A = as(app, alice)
const B = as(app, bob)

async function create(title = 'my stream', who = A) {
  const res = await who('POST', '/api/livestream/streams', { title })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().data
}

t.test('creating a stream gives the owner its key, rtmp url and playback urls built from the playback id', async (t) => {
  const body = assertEnvelope(t, await A('POST', '/api/livestream/streams', { title: '  Friday show  ' }), 201)
  const s = body.data
  t.equal(s.status, 'pending')
  t.equal(s.title, 'Friday show', 'title trimmed')
  t.equal(s.user_id, alice.id)
  t.match(s.ref_no, /^LS-[A-Z0-9]{8}$/)
  t.match(s.stream_key, /^[0-9a-f-]{36}$/, 'a UUID key')
  t.equal(s.rtmp_url, 'rtmp://ingest.test:1935/live')
  t.equal(s.playback_url, `http://cdn.test:8000/hls/${s.playback_id}/index.m3u8`)
  t.equal(s.dash_url, `http://cdn.test:8000/dash/${s.playback_id}/index.mpd`)
  t.notMatch(s.playback_url, s.stream_key)
  t.not(s.playback_id, s.stream_key)
})

t.test('the key is seen by its owner only: never in lists, nor by anyone else', async (t) => {
  const s = await create('secret keeper')
  const key: string = s.stream_key
  const seenByBob = [
    await B('GET', '/api/livestream/streams'),
    await B('GET', `/api/livestream/streams?user_id=${alice.id}`),
    await B('GET', `/api/livestream/streams/${s.id}`),
    await B('GET', `/api/livestream/streams/key?streamKey=${key}`),
    await B('POST', '/api/livestream/streams/join', { stream_id: s.id }),
    await B('GET', `/api/livestream/streams/${s.id}/participants`),
    await B('POST', `/api/livestream/streams/${s.id}/start`),
    await B('PATCH', `/api/livestream/streams/${s.id}/status`, { status: 'ended' }),
    await B('POST', `/api/livestream/streams/${s.id}/key/rotate`)
  ]
  for (const res of seenByBob) t.notMatch(res.body, key, `${res.statusCode} answer has no key`)
  const ownList = await A('GET', '/api/livestream/streams')
  t.notMatch(ownList.body, key, "not even in the owner's own list")
  t.notOk(ownList.json().data.some((x: Record<string, unknown>) => 'stream_key' in x))
  const own = await A('GET', `/api/livestream/streams/${s.id}`)
  t.equal(own.json().data.stream_key, key, 'the owner sees it on the stream itself')
  t.equal(own.json().data.owner.display_name, 'alice', "with the owner's public profile")
})

t.test('get by key: the owner finds the stream; anyone else gets the same 404 as for a key that does not exist', async (t) => {
  const s = await create('by key')
  const mine = assertEnvelope(t, await A('GET', `/api/livestream/streams/key?streamKey=${s.stream_key}`), 200)
  t.equal(mine.data.id, s.id)
  const other = assertEnvelope(t, await B('GET', `/api/livestream/streams/key?streamKey=${s.stream_key}`), 404)
  const none = assertEnvelope(t, await B('GET', '/api/livestream/streams/key?streamKey=00000000-0000-4000-8000-000000000000'), 404)
  t.equal(other.message, none.message)
  assertEnvelope(t, await A('GET', '/api/livestream/streams/key'), 400)
})

t.test('get by key compares byte for byte: the upper-cased key, or one with a trailing space, finds nothing', async (t) => {
  const s = await create('exact key')
  t.match(s.stream_key, /[a-f]/, 'the key has letters to upper-case')
  assertEnvelope(t, await A('GET', `/api/livestream/streams/key?streamKey=${s.stream_key}`), 200)
  assertEnvelope(t, await A('GET', `/api/livestream/streams/key?streamKey=${s.stream_key.toUpperCase()}`), 404)
  assertEnvelope(t, await A('GET', `/api/livestream/streams/key?streamKey=${s.stream_key}%20`), 404)
})

t.test('lists paginate newest first, filter by status and owner, and count every match', async (t) => {
  const own = await register(app, 'lister')
  const L = as(app, own)
  const ids: number[] = []
  for (let i = 0; i < 5; i++) ids.push((await create(`s${i}`, L)).id)
  await L('POST', `/api/livestream/streams/${ids[0]}/start`)
  const page1 = assertEnvelope(t, await L('GET', `/api/livestream/streams?user_id=${own.id}&limit=2&page=1`), 200)
  t.equal(page1.count, 5)
  t.same(page1.data.map((s: { id: number }) => s.id), [ids[4], ids[3]])
  const page3 = assertEnvelope(t, await L('GET', `/api/livestream/streams?user_id=${own.id}&limit=2&page=3`), 200)
  t.same(page3.data.map((s: { id: number }) => s.id), [ids[0]])
  const live = assertEnvelope(t, await L('GET', `/api/livestream/streams?user_id=${own.id}&status=live`), 200)
  t.equal(live.count, 1)
  t.equal(live.data[0].id, ids[0])
  const beyond = assertEnvelope(t, await L('GET', `/api/livestream/streams?user_id=${own.id}&page=99`), 200)
  t.same(beyond.data, [])
  t.equal(beyond.count, 5)
  assertEnvelope(t, await L('GET', '/api/livestream/streams?limit=101'), 400)
  assertEnvelope(t, await L('GET', '/api/livestream/streams?limit=0'), 400)
  assertEnvelope(t, await L('GET', '/api/livestream/streams?page=0'), 400)
  assertEnvelope(t, await L('GET', '/api/livestream/streams?status=paused'), 400)
})

t.test('lifecycle: pending -> live -> ended through start and end', async (t) => {
  const s = await create('lifecycle')
  const live = assertEnvelope(t, await A('POST', `/api/livestream/streams/${s.id}/start`), 200)
  t.equal(live.data.status, 'live')
  t.ok(live.data.started_at)
  const ended = assertEnvelope(t, await A('POST', `/api/livestream/streams/${s.id}/end`), 200)
  t.equal(ended.data.status, 'ended')
  t.ok(ended.data.ended_at)
  t.equal(ended.data.ended_reason, 'ended-by-owner')
})

t.test('updated_at moves when a stream starts and when it ends', async (t) => {
  const s = await create('timestamps')
  const old = '2000-01-01T00:00:00.000Z'
  const backdate = () => app.dbClient.pool.query('UPDATE streams SET updated_at = ? WHERE id = ?', [new Date(old), s.id])
  await backdate()
  const live = assertEnvelope(t, await A('POST', `/api/livestream/streams/${s.id}/start`), 200)
  t.ok(live.data.updated_at > old, 'start moves it')
  await backdate()
  const ended = assertEnvelope(t, await A('POST', `/api/livestream/streams/${s.id}/end`), 200)
  t.ok(ended.data.updated_at > old, 'end moves it')
})

t.test('status patch allows pending -> ended (cancelled) and refuses every other move with a 409 naming it', async (t) => {
  const cancelled = await create('cancel me')
  t.equal(assertEnvelope(t, await A('PATCH', `/api/livestream/streams/${cancelled.id}/status`, { status: 'ended' }), 200).data.status, 'ended')

  const refused: Array<[string, string]> = [
    ['pending', 'pending'],
    ['live', 'pending'],
    ['live', 'live'],
    ['ended', 'pending'],
    ['ended', 'live'],
    ['ended', 'ended']
  ]
  for (const [from, to] of refused) {
    const s = await create(`${from}->${to}`)
    if (from !== 'pending') await A('POST', `/api/livestream/streams/${s.id}/start`)
    if (from === 'ended') await A('POST', `/api/livestream/streams/${s.id}/end`)
    const body = assertEnvelope(t, await A('PATCH', `/api/livestream/streams/${s.id}/status`, { status: to }), 409)
    t.equal(body.message, `cannot change status from ${from} to ${to}`)
  }
  const ended = await create('ended twice')
  await A('POST', `/api/livestream/streams/${ended.id}/end`)
  assertEnvelope(t, await A('POST', `/api/livestream/streams/${ended.id}/start`), 409)
  assertEnvelope(t, await A('POST', `/api/livestream/streams/${ended.id}/end`), 409)
})

t.test('only the owner changes a stream: others get 403 and nothing changes', async (t) => {
  const s = await create('mine')
  assertEnvelope(t, await B('POST', `/api/livestream/streams/${s.id}/start`), 403)
  assertEnvelope(t, await B('POST', `/api/livestream/streams/${s.id}/end`), 403)
  assertEnvelope(t, await B('PATCH', `/api/livestream/streams/${s.id}/status`, { status: 'live' }), 403)
  assertEnvelope(t, await B('POST', `/api/livestream/streams/${s.id}/key/rotate`), 403)
  t.equal((await A('GET', `/api/livestream/streams/${s.id}`)).json().data.status, 'pending')
})

t.test('unknown ids are 404; non-numeric or absurd ids are 400', async (t) => {
  assertEnvelope(t, await A('GET', '/api/livestream/streams/999999'), 404)
  assertEnvelope(t, await A('POST', '/api/livestream/streams/999999/start'), 404)
  assertEnvelope(t, await A('GET', '/api/livestream/streams/999999/participants'), 404)
  assertEnvelope(t, await A('POST', '/api/livestream/streams/join', { stream_id: 999999 }), 404)
  for (const id of ['abc', '-1', '0', '1.5', '99999999999999999999999', '1e3', '%00', 'null']) {
    const res = await A('GET', `/api/livestream/streams/${id}`)
    t.equal(res.statusCode, 400, `id ${id}`)
  }
  const long = await A('GET', `/api/livestream/streams/${'9'.repeat(500)}`)
  t.equal(long.statusCode, 400, 'a 500-digit id is refused')
  t.equal(long.json().success, false)
})

t.test('join: viewers and the host, joining twice gives the same row, ended streams refuse', async (t) => {
  const s = await create('join me')
  const first = assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  t.equal(first.data.role, 'viewer')
  t.equal(first.data.display_name, 'bob')
  const again = assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  t.equal(again.data.id, first.data.id, 'same row')
  const host = assertEnvelope(t, await A('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  t.equal(host.data.role, 'host')

  const list = assertEnvelope(t, await B('GET', `/api/livestream/streams/${s.id}/participants?limit=1`), 200)
  t.equal(list.count, 2)
  t.equal(list.data.length, 1)

  const left = assertEnvelope(t, await B('POST', `/api/livestream/streams/${s.id}/leave`), 200)
  t.ok(left.data.left_at)
  const back = assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  t.equal(back.data.left_at, null, 're-joining clears left_at on the same row')
  t.equal(back.data.id, first.data.id)

  await A('POST', `/api/livestream/streams/${s.id}/end`)
  const after = assertEnvelope(t, await B('GET', `/api/livestream/streams/${s.id}/participants`), 200)
  t.ok(after.data.every((p: { left_at: string | null }) => p.left_at !== null), 'ending closes every participation')
  const refused = assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: s.id }), 409)
  t.match(refused.message, /ended/)
})

t.test('leave by someone who never joined is a 404', async (t) => {
  const s = await create('never joined')
  assertEnvelope(t, await B('POST', `/api/livestream/streams/${s.id}/leave`), 404)
})

t.test('rotating the key gives a new one; the old one no longer finds the stream', async (t) => {
  const s = await create('rotate')
  const rotated = assertEnvelope(t, await A('POST', `/api/livestream/streams/${s.id}/key/rotate`), 200)
  t.not(rotated.data.stream_key, s.stream_key)
  assertEnvelope(t, await A('GET', `/api/livestream/streams/key?streamKey=${s.stream_key}`), 404)
  assertEnvelope(t, await A('GET', `/api/livestream/streams/key?streamKey=${rotated.data.stream_key}`), 200)
  await A('POST', `/api/livestream/streams/${s.id}/end`)
  assertEnvelope(t, await A('POST', `/api/livestream/streams/${s.id}/key/rotate`), 409)
})

t.test('every stream route needs a token', async (t) => {
  const anon = as(app, null)
  const routes: Array<[Parameters<typeof anon>[0], string, unknown?]> = [
    ['POST', '/api/livestream/streams', { title: 'x' }],
    ['GET', '/api/livestream/streams'],
    ['GET', '/api/livestream/streams/1'],
    ['GET', '/api/livestream/streams/key?streamKey=x'],
    ['PATCH', '/api/livestream/streams/1/status', { status: 'live' }],
    ['POST', '/api/livestream/streams/1/start'],
    ['POST', '/api/livestream/streams/1/end'],
    ['POST', '/api/livestream/streams/join', { stream_id: 1 }],
    ['POST', '/api/livestream/streams/1/leave'],
    ['GET', '/api/livestream/streams/1/participants'],
    ['POST', '/api/livestream/streams/1/key/rotate']
  ]
  for (const [method, url, body] of routes) {
    const res = await anon(method, url, body)
    t.equal(res.statusCode, 401, `${method} ${url}`)
  }
})

t.test('joins racing an end: every answer is 200 or 409, and no one is left open on the ended stream', async (t) => {
  const s = await create('rush')
  await A('POST', `/api/livestream/streams/${s.id}/start`)
  const viewers = await Promise.all(Array.from({ length: 12 }, (_, i) => register(app, `rush${i}`)))
  const joins = viewers.map((v) => as(app, v)('POST', '/api/livestream/streams/join', { stream_id: s.id }))
  const end = A('POST', `/api/livestream/streams/${s.id}/end`)
  const later = viewers.map((v) => as(app, v)('POST', '/api/livestream/streams/join', { stream_id: s.id }))
  const answers = await Promise.all([...joins, ...later])
  assertEnvelope(t, await end, 200)
  for (const res of answers) t.ok(res.statusCode === 200 || res.statusCode === 409, `join answered ${res.statusCode}`)
  t.ok(answers.some((r) => r.statusCode === 200), 'some joins landed before the end')
  const after = assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: s.id }), 409)
  t.match(after.message, /ended/)
  const list = assertEnvelope(t, await A('GET', `/api/livestream/streams/${s.id}/participants?limit=100`), 200)
  t.ok(list.count > 0)
  for (const p of list.data) t.not(p.left_at, null, `participant ${p.user_id} closed`)
})

t.test('joining twice returns the same row; the owner joins as host; unknown streams are 404', async (t) => {
  const s = await create('twice')
  const first = assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  const second = assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  t.equal(second.data.id, first.data.id)
  t.equal(first.data.role, 'viewer')
  t.equal(first.data.display_name, 'bob')
  const host = assertEnvelope(t, await A('POST', '/api/livestream/streams/join', { stream_id: s.id }), 200)
  t.equal(host.data.role, 'host')
  assertEnvelope(t, await B('POST', '/api/livestream/streams/join', { stream_id: 999_999 }), 404)
})
