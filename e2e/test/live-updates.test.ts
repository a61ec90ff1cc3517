import t from 'tap'
import { ApiUser } from '../src/api-client.js'
import { publishClipLoop } from '../src/ffmpeg.js'
import type { Managed } from '../src/process.js'
import { openSse, type SseConnection, type SseEvent } from '@livestream/api/testing/sse-client'
import { createStackEnv, startApi, startIngest } from '../src/stack.js'
import { waitFor } from '../src/wait.js'

// Live updates across two real api processes: `one` consumes the ingest events, `two` does not (CONSUMER_ENABLED=false)
// and serves the clients, so everything they see crossed Redis from another process.
const stack = await createStackEnv('sse')
const one = await startApi(stack, { REAPER_ENABLED: 'false' })
const two = await startApi(stack, { CONSUMER_ENABLED: 'false', REAPER_ENABLED: 'false', SSE_HEARTBEAT_MS: '1000' })
// A reconnect window long enough for ffmpeg to start again on a busy machine.
const ingest = await startIngest(stack, { RECONNECT_WINDOW_MS: '8000' })
const clients = new Set<SseConnection>()
const publishers = new Set<Managed>()
t.teardown(async () => {
  for (const c of clients) c.close()
  for (const p of publishers) await p.stop()
  await ingest.stop()
  await two.stop()
  await one.stop()
  await stack.cleanup()
})

const owner = await ApiUser.register(one.url, 'sse-owner')
const watcher = await ApiUser.register(one.url, 'sse-watcher')
const sse = async (url: string, headers: Record<string, string> = {}) => {
  const c = await openSse(url, headers)
  clients.add(c)
  return c
}
const state = (e: SseEvent) => JSON.parse(e.data) as { type: string; stream: { status: string; connection: string | null; ended_reason?: string } }
const connectionOf = async (id: number) => ((await owner.stream(id)) as unknown as { connection: string | null }).connection

t.test('a change made through one api process reaches an SSE client of the other', async (t) => {
  const s = await owner.createStream('by hand')
  const c = await sse(`${two.url}/api/livestream/streams/${s.id}/events`, { authorization: `Bearer ${watcher.token}` })
  t.equal(c.status, 200)
  await c.next('snapshot', (e) => e.event === 'snapshot')
  const { status } = await owner.call('POST', `/livestream/streams/${s.id}/start`)
  t.equal(status, 200, 'started through the first process')
  const live = state(await c.next('status live on the second', (e) => e.event === 'status'))
  t.equal(live.stream.status, 'live')
  t.equal(live.stream.connection, 'awaiting-publisher', 'live by hand, nobody publishing')
  await owner.call('POST', `/livestream/streams/${s.id}/end`)
  await c.next('ended on the second', (e) => state(e).stream.status === 'ended')
})

t.test('a real publisher killed and back within the window: reconnecting then connected, in the api and in SSE on the other process', async (t) => {
  const s = await owner.createStream('flaky uplink')
  const member = await sse(`${two.url}/api/livestream/streams/${s.id}/events`, { authorization: `Bearer ${watcher.token}` })
  const pub = await sse(`${two.url}/api/public/streams/${s.playback_id}/events`)
  await member.next('snapshot', (e) => e.event === 'snapshot')
  await pub.next('public snapshot', (e) => e.event === 'snapshot')

  const first = await publishClipLoop(ingest.rtmpUrl(s.stream_key), 60, 'first')
  publishers.add(first)
  const live = state(await member.next('live', (e) => e.event === 'status' && state(e).stream.status === 'live', { timeoutMs: 30_000 }))
  t.equal(live.stream.connection, 'connected', 'an ingest event consumed by the first process, seen on the second')
  t.equal(await connectionOf(s.id), 'connected')

  await first.stop('SIGKILL')
  const dropped = state(await member.next('reconnecting', (e) => state(e).stream.connection === 'reconnecting', { timeoutMs: 20_000 }))
  t.equal(dropped.type, 'stream.reconnecting')
  t.equal(dropped.stream.status, 'live', 'still live while the window runs')
  t.equal(await connectionOf(s.id), 'reconnecting', 'GET /streams/:id shows it too')
  await pub.next('reconnecting, publicly', (e) => state(e).stream.connection === 'reconnecting', { timeoutMs: 10_000 })

  const from = member.events.length
  const second = await publishClipLoop(ingest.rtmpUrl(s.stream_key), 60, 'second')
  publishers.add(second)
  const back = state(await member.next('connected again', (e) => state(e).stream.connection === 'connected', { from, timeoutMs: 20_000 }))
  t.equal(back.type, 'stream.live', 'resumed reads as live and connected')
  t.equal(await connectionOf(s.id), 'connected')
  t.notOk(member.events.some((e) => state(e).stream.status === 'ended'), 'never ended in between')

  await second.stop('SIGKILL')
  const ended = state(await member.next('ended after the window', (e) => state(e).stream.status === 'ended', { timeoutMs: 30_000 }))
  t.equal(ended.stream.ended_reason, 'publisher-left')
  await pub.next('ended, publicly', (e) => state(e).stream.status === 'ended', { timeoutMs: 10_000 })
  t.notOk(pub.body().includes(s.stream_key) || member.body().includes(s.stream_key), 'the key never appears')
})

t.test('SIGTERM on an api with open SSE clients: it exits cleanly and promptly, ending their streams', async (t) => {
  const s = await owner.createStream('closing')
  const extra = await startApi(stack, { CONSUMER_ENABLED: 'false', REAPER_ENABLED: 'false' })
  const open = [
    await sse(`${extra.url}/api/livestream/streams/${s.id}/events`, { authorization: `Bearer ${watcher.token}` }),
    await sse(`${extra.url}/api/public/streams/${s.playback_id}/events`)
  ]
  for (const c of open) await c.next('snapshot', (e) => e.event === 'snapshot')
  const exit = await extra.stop('SIGTERM', 30_000)
  // A close held open by the clients would end in close-with-grace's forced exit (code 1) or our SIGKILL.
  t.equal(exit.code, 0, 'exit code 0')
  t.match(extra.output(), /"msg":"closing"/)
  t.notMatch(extra.output(), /forcefully|timeout/i)
  for (const c of open) await c.ended
  t.pass('both clients saw their stream end')
  await waitFor('the other process still serves', async () => (await fetch(`${two.url}/healthz`)).ok)
})
