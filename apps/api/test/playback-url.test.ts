import t from 'tap'
import { randomUUID } from 'node:crypto'
import { as, assertEnvelope, build, register, testConfig } from './helper.js'

// One playback URL per stream, whatever ingest node holds it: any node answers any playback id (it proxies to the
// holder), so the URL is built on the deployment's playback base and never on the node the stream is on.

t.test('PLAYBACK_BASE_URL (a CDN) is the base of playback_url and dash_url; without it, STREAM_SERVER_URL', async (t) => {
  const app = await build(t, { PLAYBACK_BASE_URL: 'https://cdn.example.com/live/' })
  const A = as(app, await register(app, 'cdn'))
  const s = assertEnvelope(t, await A('POST', '/api/livestream/streams', { title: 'behind a cdn' }), 201).data
  t.equal(s.playback_url, `https://cdn.example.com/live/hls/${s.playback_id}/index.m3u8`)
  t.equal(s.dash_url, `https://cdn.example.com/live/dash/${s.playback_id}/index.mpd`)
  t.equal(testConfig('mysql://x@127.0.0.1/x').streamServerUrl, 'http://cdn.test:8000', 'unset: STREAM_SERVER_URL')
  t.equal(testConfig('mysql://x@127.0.0.1/x', { PLAYBACK_BASE_URL: '' }).streamServerUrl, 'http://cdn.test:8000', 'empty counts as unset')
  t.throws(() => testConfig('mysql://x@127.0.0.1/x', { PLAYBACK_BASE_URL: 'ftp://cdn' }), /PLAYBACK_BASE_URL/, 'not http(s): refused by name')
})

t.test('a live stream that moves to another node keeps its playback URL: it names no node', async (t) => {
  const app = await build(t)
  const A = as(app, await register(app, 'mover'))
  const s = assertEnvelope(t, await A('POST', '/api/livestream/streams', { title: 'moves' }), 201).data
  const base = { sessionId: 's1', streamId: s.id }
  const published = (nodeId: string) => ({
    ...base,
    type: 'stream.published' as const,
    id: `ev-${randomUUID()}`,
    nodeId,
    at: new Date().toISOString(),
    playbackBaseUrl: `http://${nodeId}.internal:8000`
  })
  t.equal(await app.streams.applyEvent(published('node-a')), 'applied')
  const onA = assertEnvelope(t, await A('GET', `/api/livestream/streams/${s.id}`), 200).data
  t.equal(onA.ingest_node_id, 'node-a')
  t.equal(await app.streams.applyEvent(published('node-b')), 'applied', 'the reconnect through node-b moves it')
  const onB = assertEnvelope(t, await A('GET', `/api/livestream/streams/${s.id}`), 200).data
  t.equal(onB.ingest_node_id, 'node-b')
  t.equal(onB.status, 'live')
  t.equal(onB.playback_url, s.playback_url, 'the same playback_url before and after the move')
  t.equal(onB.dash_url, s.dash_url)
  t.notMatch(onB.playback_url, /node-/, 'no node in it')
})
