// What HLS/DASH viewer counting costs ingest: 1,000 simulated players (each its own loopback address, keep-alive
// connection and `vs` token; a playlist and the newest part every second, as a non-LL player of 1-2 s segments asks)
// against two ingest nodes of one stack, one counting (VIEWER_COUNTING=true) and one not (false), each holding one
// stream published by ffmpeg (-c copy, 720p 2.5 Mbps). The same load goes to one node, then the other, alternating
// over BENCH_ROUNDS rounds, so both see the same machine; the load generator's own CPU is measured in the same windows.
import { sleep, machine, measureTree, table, writeResults, FFMPEG, start, waitFor } from './lib.mjs'
import { clip720, publishArgs } from './clip.mjs'
import { benchStack } from './stack.mjs'
import { startPlayers } from '@livestream/e2e/viewer-players'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from './lib.mjs'

const PLAYERS = Number(process.env.BENCH_PLAYERS ?? 1000)
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 1000)
const WINDOW = Number(process.env.BENCH_DURATION ?? 15) * 1000
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
// Longer than a round of requests and the first report: every player has a session before the window opens.
const WARMUP = 6000

const gauge = async (node) => {
  const text = await (await fetch(`${node.publicUrl}/metrics`)).text()
  const m = /^livestream_ingest_viewers\{[^}]*\} (\d+)$/m.exec(text)
  return m ? Number(m[1]) : 'n/a'
}

const stack = await benchStack('viewers')
const rows = []
let apiViewers = 'n/a'
try {
  const api = await stack.api({ REAPER_ENABLED: 'false' })
  const user = await stack.user(api)
  const nodes = {}
  for (const mode of ['on', 'off']) {
    const node = await stack.ingest({ INGEST_NODE_ID: `bench-viewers-${mode}`, VIEWER_COUNTING: mode === 'on' ? 'true' : 'false', HLS_SEGMENT_SECONDS: '2' })
    const stream = await stack.createStream(api, user, `viewers-${mode}`)
    const pub = start('pub', FFMPEG, publishArgs(clip720(), `rtmp://127.0.0.1:${node.rtmpPort}/live/${stream.stream_key}`))
    await waitFor(`stream on the ${mode} node`, async () => (await fetch(`${node.publicUrl}/hls/${stream.playback_id}/video.m3u8`, { method: 'HEAD' })).ok, 30_000, 200)
    nodes[mode] = { node, stream, pub }
  }

  // The baseline: both nodes packaging their stream, nobody watching.
  const idle = await Promise.all(['on', 'off'].map((m) => measureTree(nodes[m].node.pid, WINDOW)))
  for (const [i, m] of ['on', 'off'].entries()) {
    rows.push({ phase: `idle (counting ${m})`, 'ingest CPU %': idle[i].rootCpu.toFixed(1), 'req/s': 0, errors: 0, 'generator CPU %': '-', viewers: m === 'on' ? await gauge(nodes.on.node) : 'n/a' })
  }

  let offset = 0
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of ['on', 'off']) {
      const { node, stream } = nodes[mode]
      const load = startPlayers({ baseUrl: node.publicUrl, playbackId: stream.playback_id, players: PLAYERS, intervalMs: INTERVAL_MS, firstAddress: offset })
      offset += PLAYERS
      await sleep(WARMUP)
      const r0 = load.requests
      const cpu0 = process.cpuUsage()
      const t0 = Date.now()
      const srv = await measureTree(node.pid, WINDOW)
      const secs = (Date.now() - t0) / 1000
      const own = process.cpuUsage(cpu0)
      const reqs = (load.requests - r0) / secs
      const viewers = mode === 'on' ? await gauge(node) : 'n/a'
      if (mode === 'on' && round === ROUNDS) {
        // Through the queue to the api: the stream's viewer_count (reports every 5 s by default).
        const res = await fetch(`${api.url}/api/livestream/streams/${stream.id}`, { headers: { authorization: `Bearer ${user.token}` } })
        apiViewers = (await res.json()).data.viewer_count
      }
      await load.stop()
      rows.push({
        phase: `round ${round}, counting ${mode}`,
        'ingest CPU %': srv.rootCpu.toFixed(1),
        'req/s': reqs.toFixed(0),
        errors: load.errors,
        'generator CPU %': (((own.user + own.system) / 1e6 / secs) * 100).toFixed(1),
        viewers
      })
      console.log(rows.at(-1))
      // Let the players' sessions expire before the next phase loads the other node.
      await sleep(2000)
    }
  }
  for (const m of ['on', 'off']) await nodes[m].pub.stop()
} finally {
  await stack.close()
}

// The counter alone, in this process: what one request costs it (noise-free, unlike the shared machine's CPU figures).
const { ViewerCounter } = await import(pathToFileURL(path.join(ROOT, 'apps/ingest/dist/viewers.js')).href)
function microbench(anonymous) {
  const counter = new ViewerCounter({ windowMs: 10_000, perAddress: 32, maxPerStream: 50_000, maxSessions: 200_000, live: () => true })
  const tokens = Array.from({ length: PLAYERS }, (_, i) => `bench-player-token-${String(i).padStart(6, '0')}`)
  const addresses = Array.from({ length: PLAYERS }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`)
  const ua = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'
  const n = 2_000_000
  const run = (count) => {
    for (let i = 0; i < count; i++) counter.seen('pb', anonymous ? null : tokens[i % PLAYERS], addresses[i % PLAYERS], ua)
  }
  run(100_000)
  const t0 = process.hrtime.bigint()
  run(n)
  const ns = Number(process.hrtime.bigint() - t0) / n
  counter.sweep()
  return { path: anonymous ? 'address + user agent (sha1)' : '`vs` token', 'ns per request': ns.toFixed(0), sessions: counter.total() }
}
const micro = table([microbench(false), microbench(true)])
console.log(`\n${micro}`)

const loaded = (mode) => rows.filter((r) => r.phase.endsWith(`counting ${mode}`) && r.phase.startsWith('round'))
const mean = (rs, key) => rs.reduce((n, r) => n + Number(r[key]), 0) / rs.length
const on = mean(loaded('on'), 'ingest CPU %')
const off = mean(loaded('off'), 'ingest CPU %')
const rps = (mean(loaded('on'), 'req/s') + mean(loaded('off'), 'req/s')) / 2
const perRequestUs = ((on - off) / 100) * 1e6 / rps
const t = table(rows)
const summary = `counting on ${on.toFixed(1)} % vs off ${off.toFixed(1)} % of a core at ${rps.toFixed(0)} req/s: +${(on - off).toFixed(1)} points (${((on / off - 1) * 100).toFixed(0)} % more), about ${perRequestUs.toFixed(1)} µs of CPU per request; the api showed viewer_count = ${apiViewers} for the ${PLAYERS} players`
console.log(`\n${t}\n\n${summary}`)
writeResults(
  'viewers',
  `## Viewer counting's cost on ingest\n\n\`pnpm bench:viewers\` (BENCH_PLAYERS=${PLAYERS}, BENCH_INTERVAL_MS=${INTERVAL_MS}, BENCH_ROUNDS=${ROUNDS}, ${WINDOW / 1000} s windows after ${WARMUP / 1000} s warm-up), ${new Date().toISOString().slice(0, 10)}, ${machine()}. The machine was shared with other engineers' work during the run: compare the rows of this run, not absolutes.\n\nTwo ingest nodes in one stack, each packaging one ffmpeg-published stream (720p 2.5 Mbps, -c copy, 2 s segments): one with VIEWER_COUNTING=true, one with false. ${PLAYERS} simulated players (each its own 127.0.x.y address, keep-alive connection and \`vs\` token) ask for the video playlist and its newest part every ${INTERVAL_MS} ms; the same load goes to one node and then the other, alternating. CPU: 100 % = one core, the ingest process only; the generator is this script's process.\n\n${t}\n\n${summary}. Rounds of the same setting swing by more than the difference between the settings on this shared machine; the counter\'s own cost per request, measured alone below, is the figure to extrapolate from (x requests per second).\n\nThe counter alone (\`ViewerCounter.seen\`, ${PLAYERS} players' sessions refreshed round-robin, 2,000,000 calls in the bench process):\n\n${micro}`
)
