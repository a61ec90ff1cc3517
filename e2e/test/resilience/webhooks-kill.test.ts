import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { ApiUser } from '../../src/api-client.js'
import { createStackEnv, startApi, type ApiHandle } from '../../src/stack.js'
import { waitFor } from '../../src/wait.js'

interface Hit {
  id: string
  body: string
  headers: http.IncomingHttpHeaders
  answered: number | 'held'
}

t.test('api killed (-9) with webhook deliveries pending and one in flight: after a restart every event is delivered, under its first webhook-id', async (t) => {
  const stack = await createStackEnv('whkill')
  // Receivers on 127.0.0.1 over http; retries every ~second, never exhausted here; a killed worker's job is taken up
  // again 2 s after its lock lapses.
  const env = {
    REAPER_ENABLED: 'false',
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_RETRY_DELAYS_MS: '600,1000,1000,1000,1000,1000,1000,1000,1000,1000',
    WEBHOOK_LOCK_MS: '2000',
    WEBHOOK_TIMEOUT_MS: '30000'
  }
  let mode: 'fail' | 'hold' | 'ok' = 'fail'
  const hits: Hit[] = []
  const held: http.ServerResponse[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const hit: Hit = { id: String(req.headers['webhook-id']), body: Buffer.concat(chunks).toString('utf8'), headers: req.headers, answered: 'held' }
      hits.push(hit)
      if (mode === 'hold') {
        held.push(res)
        return
      }
      hit.answered = mode === 'ok' ? 200 : 500
      res.writeHead(hit.answered).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  let api: ApiHandle | undefined = await startApi(stack, env)
  t.teardown(async () => {
    await api?.stop()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await stack.cleanup()
  })

  const owner = await ApiUser.register(api.url, 'hooked')
  const created = await owner.call<{ id: number; secret: string }>('POST', '/webhooks', { url })
  t.equal(created.status, 201)
  const { id: endpointId, secret } = created.body.data
  const stream = await owner.createStream('killed while delivering')
  t.equal((await owner.call('POST', `/livestream/streams/${stream.id}/start`)).status, 200)
  t.equal((await owner.call('POST', `/livestream/streams/${stream.id}/end`)).status, 200)

  // Each of the three events fails its first attempt; then the receiver holds the next request open: the api is
  // killed with that delivery in flight and the others waiting for their retry.
  await waitFor('a failed first attempt of each event', async () => new Set(hits.map((h) => h.id)).size >= 3, 30_000)
  const ids = [...new Set(hits.map((h) => h.id))]
  t.equal(ids.length, 3)
  mode = 'hold'
  await waitFor('a delivery held in flight', async () => held.length > 0, 30_000)
  const inFlight = hits.find((h) => h.answered === 'held')!.id
  const killed = await api.stop('SIGKILL')
  t.equal(killed.signal, 'SIGKILL', 'killed, not stopped')
  api = undefined
  for (const res of held) res.destroy()
  const beforeRestart = hits.length

  mode = 'ok'
  api = await startApi(stack, env)
  await waitFor(
    'every event delivered',
    async () => ids.every((id) => hits.some((h) => h.id === id && h.answered === 200)),
    60_000,
    100
  )

  const delivered = hits.filter((h) => h.answered === 200)
  t.same(new Set(delivered.map((h) => h.id)), new Set(ids), 'each event delivered at least once, under its first id; no new ids')
  t.ok(delivered.every((h) => hits.indexOf(h) >= beforeRestart), 'the successes came from the restarted api')
  t.ok(delivered.some((h) => h.id === inFlight), 'the delivery cut by the kill was made again')
  const wh = new Webhook(secret)
  const types = new Set<string>()
  for (const h of hits) {
    const payload = wh.verify(h.body, h.headers as Record<string, string>) as { type: string; data: { stream: { id: number } } }
    t.equal(payload.data.stream.id, stream.id)
    types.add(payload.type)
    t.notOk(h.body.includes(stream.stream_key), 'no stream key')
  }
  t.same([...types].sort(), ['stream.created', 'stream.ended', 'stream.live'])
  // A receiver de-duplicates by webhook-id: every attempt of one event carries the same body.
  for (const id of ids) t.equal(new Set(hits.filter((h) => h.id === id).map((h) => h.body)).size, 1, `one body for ${id}`)

  const again = new ApiUser(api.url, owner.token, owner.id)
  const log = await again.call<Array<{ event_id: string; status: string }>>('GET', `/webhooks/${endpointId}/deliveries?limit=100`)
  t.equal(log.status, 200)
  for (const id of ids) t.ok(log.body.data.some((d) => d.event_id === id && d.status === 'succeeded'), `the log shows ${id} delivered`)
})
