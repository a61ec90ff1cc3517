import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import mysql from 'mysql2/promise'
import { Webhook } from 'standardwebhooks'
import { ApiUser } from '../../src/api-client.js'
import { OwnRedis } from '../../src/redis-server.js'
import { createStackEnv, startApi } from '../../src/stack.js'
import { waitFor } from '../../src/wait.js'

interface Hit {
  id: string
  body: string
  headers: http.IncomingHttpHeaders
}

t.test('a stream ended through the API while Redis is down answers at once; with Redis back, its webhook arrives once, signed', async (t) => {
  const own = new OwnRedis()
  await own.start()
  const stack = await createStackEnv('whredis')
  stack.redisUrl = own.url
  const hits: Hit[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      hits.push({ id: String(req.headers['webhook-id']), body: Buffer.concat(chunks).toString('utf8'), headers: req.headers })
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  // The reaper (every 500 ms in the stack) runs the outbox relay; an event not passed on is its after a second.
  const api = await startApi(stack, {
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_RETRY_DELAYS_MS: '500,1000,1000',
    OUTBOX_RELAY_AFTER_MS: '1000'
  })
  const sql = await mysql.createConnection({ uri: stack.db.url, timezone: 'Z' })
  t.teardown(async () => {
    await api.stop()
    await sql.end()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await own.destroy()
    await stack.cleanup()
  })

  const owner = await ApiUser.register(api.url, 'redisdown')
  const created = await owner.call<{ id: number; secret: string }>('POST', '/webhooks', { url })
  t.equal(created.status, 201)
  const { secret } = created.body.data
  const stream = await owner.createStream('ended while Redis is down')
  t.equal((await owner.call('POST', `/livestream/streams/${stream.id}/start`)).status, 200)
  const wh = new Webhook(secret)
  const typesOf = () => hits.map((h) => (wh.verify(h.body, h.headers as Record<string, string>) as { type: string }).type)
  await waitFor('stream.created and stream.live delivered', async () => typesOf().includes('stream.live'), 20_000)

  await own.stop()
  const started = Date.now()
  const ended = await owner.call<{ status: string }>('POST', `/livestream/streams/${stream.id}/end`)
  const tookMs = Date.now() - started
  t.equal(ended.status, 200, 'the end succeeds: it is a MySQL change')
  t.equal(ended.body.data.status, 'ended')
  t.ok(tookMs < 1_500, `and answers at once with Redis down (${tookMs} ms): the fan-out fails fast`)

  const owed = async () => {
    const [rows] = await sql.query('SELECT type, attempts FROM platform_event_outbox WHERE stream_id = ?', [stream.id])
    return rows as Array<{ type: string; attempts: number }>
  }
  t.match(await owed(), [{ type: 'stream.ended' }], 'the announcement is owed in the outbox')
  await waitFor('the relay to try while Redis is down', async () => (await owed())[0]!.attempts >= 1, 10_000)
  t.notOk(typesOf().includes('stream.ended'), 'nothing delivered yet')

  await own.start()
  await waitFor('stream.ended delivered', async () => typesOf().includes('stream.ended'), 30_000)
  await waitFor('the outbox row deleted', async () => (await owed()).length === 0, 10_000)
  // A few relay rounds more: nothing is delivered twice.
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  const endedHits = hits.filter((_, i) => typesOf()[i] === 'stream.ended')
  t.equal(endedHits.length, 1, 'stream.ended delivered once')
  const payload = wh.verify(endedHits[0]!.body, endedHits[0]!.headers as Record<string, string>) as {
    type: string
    data: { stream: { id: number; status: string }; reason?: string }
  }
  t.equal(payload.data.stream.id, stream.id)
  t.equal(payload.data.stream.status, 'ended')
  t.equal(payload.data.reason, 'ended-by-owner')
  t.ok(endedHits[0]!.id.startsWith('evt_'), 'under its platform event id')
  t.same(typesOf().sort(), ['stream.created', 'stream.ended', 'stream.live'], 'each event once')
})
