import t from 'tap'
import { serveMedia } from './helper.js'

const { base } = await serveMedia(t)

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
