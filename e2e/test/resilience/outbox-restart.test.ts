import t from 'tap'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import mysql from 'mysql2/promise'
import { ApiUser } from '../../src/api-client.js'
import { publishClipLoop } from '../../src/ffmpeg.js'
import { OwnRedis } from '../../src/redis-server.js'
import { createStackEnv, startApi, startIngest } from '../../src/stack.js'
import { waitFor } from '../../src/wait.js'

const pendingEvents = async (publicUrl: string) => {
  const m = await (await fetch(`${publicUrl}/metrics`)).text()
  return Number(/livestream_ingest_outbox_events\{[^}]*\} (\d+)/.exec(m)?.[1] ?? 0)
}

t.test('an ingest stopped while Redis is down keeps its events on disk; restarted with Redis back, the api applies each once', async (t) => {
  const own = new OwnRedis()
  await own.start()
  const stack = await createStackEnv('outbox')
  stack.redisUrl = own.url
  const api = await startApi(stack)
  const owner = await ApiUser.register(api.url, 'outbox')
  const sql = await mysql.createConnection({ uri: stack.db.url, timezone: 'Z' })
  t.teardown(async () => {
    await api.stop()
    await sql.end()
    await own.destroy()
    await stack.cleanup()
  })
  const s = await owner.createStream('published while Redis is down')

  // Redis goes away; the node starts without it (alive, not ready) and takes a publish.
  await own.stop()
  const nodeId = 'outbox-node'
  const ingest = await startIngest(stack, { INGEST_NODE_ID: nodeId })
  t.teardown(() => ingest.stop())
  const publisher = await publishClipLoop(ingest.rtmpUrl(s.stream_key), 60, 'no-redis')
  t.teardown(() => publisher.stop())
  const playlist = `${ingest.publicUrl}/hls/${s.playback_id}/index.m3u8`
  // HEAD: a GET would make this test a viewer, and its viewer report a third event in the outbox.
  await waitFor('packaged and served by the node', async () => (await fetch(playlist, { method: 'HEAD' })).ok, 20_000)
  const ready = await fetch(`${ingest.publicUrl}/readyz`)
  t.equal(ready.status, 503, 'the node is not ready')
  t.match(await ready.text(), /redis/, 'and says Redis is what is down')
  await waitFor('the publish event held', async () => (await pendingEvents(ingest.publicUrl)) >= 1, 10_000)
  t.equal((await owner.stream(s.id)).status, 'pending', 'the api has heard nothing yet')

  // Stopped with its publisher still on: the unpublish joins the publish in the outbox, and both stay on disk.
  const exit = await ingest.stop('SIGTERM')
  await publisher.stop()
  t.equal(exit.code, 0, 'the node stops cleanly')
  t.match(ingest.output(), /closing with events the queue has not acknowledged; kept in the outbox file for the next start/)
  t.notMatch(ingest.output(), /never acknowledged/, 'nothing is reported lost')
  const file = path.join(stack.mediaRoot, '.outbox', `${nodeId}.jsonl`)
  t.ok((await stat(file)).size > 0, 'the events are in the node’s outbox file')

  // Redis back, the node restarted under its id: the kept events go out first, and the api applies them.
  await own.start()
  const restartedAt = Date.now()
  const restarted = await startIngest(stack, { INGEST_NODE_ID: nodeId })
  t.teardown(() => restarted.stop())
  const ended = await waitFor('the stream ended through the replayed events', async () => {
    const v = await owner.stream(s.id)
    return v.status === 'ended' ? v : null
  }, 30_000)
  t.equal(ended.ended_reason, 'node-shutdown', 'ended for the reason its node gave when it stopped')
  t.match(restarted.output(), /"pending":2[^\n]*events kept by an earlier run of this node; sending them first/, 'the restart replayed both')

  const [rows] = await sql.query('SELECT event_id, type, outcome, node_id, occurred_at FROM stream_events WHERE stream_id = ? ORDER BY id', [s.id])
  const ledger = rows as Array<{ event_id: string; type: string; outcome: string; node_id: string; occurred_at: Date }>
  t.same(
    ledger.map((r) => `${r.type}:${r.outcome}:${r.node_id}`),
    [`stream.published:applied:${nodeId}`, `stream.unpublished:applied:${nodeId}`],
    'the ledger has the publish then the unpublish, each applied once: the stream went live, then ended'
  )
  t.ok(ledger.every((r) => r.occurred_at.getTime() < restartedAt), 'both keep the time they happened, before the restart (stamped once)')
  const [started] = await sql.query('SELECT started_at FROM streams WHERE id = ?', [s.id])
  t.ok((started as Array<{ started_at: Date | null }>)[0]?.started_at, 'it was live (started_at recorded) before it ended')

  await waitFor('the outbox file emptied once all was acknowledged', async () => (await stat(file)).size === 0, 10_000)
  // A further restart sends nothing again.
  await restarted.stop('SIGTERM')
  const again = await startIngest(stack, { INGEST_NODE_ID: nodeId })
  t.teardown(() => again.stop())
  await new Promise((r) => setTimeout(r, 1_500))
  t.notMatch(again.output(), /events kept by an earlier run/, 'nothing is replayed twice')
  const [count] = await sql.query('SELECT COUNT(*) n FROM stream_events WHERE stream_id = ?', [s.id])
  t.equal(Number((count as Array<{ n: number }>)[0]!.n), 2, 'and the ledger still has two rows')
})
