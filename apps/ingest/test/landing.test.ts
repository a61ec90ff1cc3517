import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { closeMediaHttp, createMediaHttp } from '../src/media-http.js'
import { MediaWindows } from '../src/media/window.js'

const server = createMediaHttp({
  windows: new MediaWindows(),
  host: '127.0.0.1',
  port: 0,
  requestTimeout: 2_000,
  headersTimeout: 1_000,
  health: () => ({ ok: true, detail: {} }),
  ready: () => ({ ok: true, detail: {} }),
  metrics: () => '',
  log: pino({ level: 'silent' })
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
t.teardown(() => closeMediaHttp(server))

t.test('/ on the media server answers with what it serves, in the envelope, instead of a 404', async (t) => {
  const res = await fetch(`${base}/`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.equal(res.headers.get('x-content-type-options'), 'nosniff')
  const body = (await res.json()) as { success: boolean; data: { service: string; links: Record<string, string> }; message: string }
  t.equal(body.success, true)
  t.equal(body.data.service, 'circle-livestream ingest')
  t.equal(body.data.links.hls, '/hls/{playback_id}/index.m3u8')
  t.equal(body.data.links.dash, '/dash/{playback_id}/index.mpd')
  t.match(body.message, '/watch/{playback_id}')
  t.equal((await fetch(`${base}/?x=1`)).status, 200, 'a query does not change it')
  const head = await fetch(`${base}/`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(await head.text(), '')
  t.equal((await fetch(`${base}/nothing-here`)).status, 404, 'other unknown paths stay 404')
})
