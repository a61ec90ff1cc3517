// Publish -> live: 50 real RTMP publishes of a pre-encoded clip; for each, the time from the publish being accepted
// by ingest to the api recording it live (ledger: occurred_at -> recorded_at), the time until the API answers live,
// and the time until a playable HLS playlist exists.
import mysql from 'mysql2/promise'
import { FFMPEG, machine, pct, sleep, start, table, waitFor, writeResults } from './lib.mjs'
import { clip720, publishArgs } from './clip.mjs'
import { benchStack } from './stack.mjs'

const N = Number(process.env.BENCH_PUBLISHES ?? 50)
const SEGMENT = Number(process.env.BENCH_SEGMENT_SECONDS ?? 2)
const file = clip720()
const stack = await benchStack('publish')
const sqlc = await mysql.createConnection({ uri: stack.db.url })
try {
  const api = await stack.api({ REAPER_ENABLED: 'false' })
  const ingest = await stack.ingest({ HLS_SEGMENT_SECONDS: String(SEGMENT), RECONNECT_WINDOW_MS: '1000', MEDIA_RETENTION_MS: '1000', LOG_LEVEL: 'warn' })
  const user = await stack.user(api)
  const toApi = [], toPlaylist = [], accepted = []
  for (let i = 0; i < N; i++) {
    const s = await stack.createStream(api, user, `p${i}`)
    const t0 = Date.now()
    const pub = start('pub', FFMPEG, publishArgs(file, `rtmp://127.0.0.1:${ingest.rtmpPort}/live/${s.stream_key}`, 8))
    await waitFor('live', async () => {
      const r = await fetch(`${api.url}/api/livestream/streams/${s.id}`, { headers: { authorization: `Bearer ${user.token}` } })
      return (await r.json()).data.status === 'live'
    }, 20_000, 10)
    toApi.push(Date.now() - t0)
    await waitFor('playlist', async () => {
      const r = await fetch(`${ingest.publicUrl}/hls/${s.playback_id}/index.m3u8`)
      return r.ok && (await r.text()).includes('.ts')
    }, 20_000, 20)
    toPlaylist.push(Date.now() - t0)
    await pub.stop()
    const [rows] = await sqlc.query("SELECT TIMESTAMPDIFF(MICROSECOND, occurred_at, recorded_at) us FROM stream_events WHERE stream_id = ? AND type = 'stream.published'", [s.id])
    accepted.push(Number(rows[0].us) / 1000)
    await sleep(100)
  }
  const row = (name, v) => ({ measure: name, p50: `${Math.round(pct(v, 50))} ms`, p99: `${Math.round(pct(v, 99))} ms`, max: `${Math.round(Math.max(...v))} ms` })
  const rows = [
    row('accepted by ingest -> live in the api (ledger)', accepted),
    row('ffmpeg start -> API answers live', toApi),
    row('ffmpeg start -> playable HLS playlist', toPlaylist)
  ]
  const out = table(rows)
  const v1 = `p99 accepted -> live < 250 ms: ${pct(accepted, 99) < 250 ? 'met' : 'missed'} (${Math.round(pct(accepted, 99))} ms)`
  const v2 = `publish -> first playlist <= segment (${SEGMENT} s) + 1 s: ${pct(toPlaylist, 50) <= SEGMENT * 1000 + 1000 ? 'met' : 'missed'} at p50 (${Math.round(pct(toPlaylist, 50))} ms), p99 ${Math.round(pct(toPlaylist, 99))} ms`
  console.log(`\nPublish -> live, ${N} publishes\n${out}\n${v1}\n${v2}`)
  writeResults('publish', `## Publish -> live\n\n\`pnpm bench:publish\` (${N} publishes of a 720p 2.5 Mbps clip, -c copy, HLS_SEGMENT_SECONDS=${SEGMENT}), ${new Date().toISOString().slice(0, 10)}, ${machine()}\n\n${out}\n\n- ${v1}\n- ${v2}`)
} finally {
  await sqlc.end()
  await stack.close()
}
