// Draining an ingest node with N live streams (issue 17, Measure). The approach of e2e/test/resilience/drain.test.ts:
// a real api and two real ingest nodes (default settings: DRAIN_SECONDS 30, RECONNECT_WINDOW_MS 10 s) behind TCP
// load balancers that follow /readyz (one for RTMP, one for media HTTP, which is the api's PLAYBACK_BASE_URL); N
// publishers (real ffmpeg, -re -c copy of a looped clip) that start again 500 ms after each exit, as OBS reconnects;
// the RTMP balancer prefers node A while it is ready, so all N land on A. One simulated LL-HLS player per stream
// follows the video playlist on the playback URL with blocking reloads (_HLS_msn/_HLS_part) and fetches every new
// part; its "stall" is the longest gap between two new parts arriving. Then `POST /admin/drain` on A, and we measure:
// drain call -> A's exit, streams ended (api status + the ledger's stream.unpublished), streams live on B, the stalls,
// and each publisher's cut (its ffmpeg exiting) -> accepted on B (the ledger's stream.published from node-b).
// Run: pnpm bench:drain (BENCH_DRAIN_N="10,50" by default).
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import os from 'node:os'
import mysql from 'mysql2/promise'
import { FFMPEG, machine, pct, sleep, start, table, waitFor, writeResults } from './lib.mjs'
import { clip360, publishArgs } from './clip.mjs'
import { benchStack } from './stack.mjs'

const NS = (process.env.BENCH_DRAIN_N ?? '10,50').split(',').map(Number).filter((n) => n > 0)
const RETRY_MS = Number(process.env.BENCH_DRAIN_RETRY_MS ?? 500)
const WARMUP_MS = Number(process.env.BENCH_DRAIN_WARMUP_MS ?? 10_000)
const AFTER_MS = Number(process.env.BENCH_DRAIN_AFTER_MS ?? 10_000)
const GOP = Number(process.env.BENCH_DRAIN_GOP ?? 2)
const file = clip360(GOP)

/** A TCP balancer as a cloud one behaves (e2e/src/balancer.ts): new connections to the first upstream whose /readyz last answered 200. */
function readyBalancer(upstreams, probeMs = 200) {
  const ready = new Map()
  const sockets = new Set()
  const sent = new Map()
  const check = () => Promise.all(upstreams.map(async (u) => ready.set(u.name, await fetch(u.readyUrl, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false))))
  let probe = null
  const server = net.createServer((client) => {
    const target = upstreams.find((u) => ready.get(u.name))
    if (!target) return void client.destroy()
    sent.set(target.name, (sent.get(target.name) ?? 0) + 1)
    const upstream = net.connect(target.port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      const end = () => {
        sockets.delete(s)
        client.destroy()
        upstream.destroy()
      }
      s.on('error', end)
      s.on('close', end)
    }
    client.pipe(upstream).pipe(client)
  })
  return {
    sent,
    port: 0,
    async start() {
      await check()
      probe = setInterval(() => void check(), probeMs)
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      this.port = server.address().port
    },
    async stop() {
      clearInterval(probe)
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    }
  }
}

/** An encoder that reconnects when cut, as OBS does: ffmpeg started again RETRY_MS after each exit. */
function reconnectingPublisher(url, name) {
  let current = null
  let stopped = false
  let timer = null
  const pub = {
    runs: 0,
    exits: [], // epoch ms of each ffmpeg exit (a cut)
    run() {
      if (stopped) return
      pub.runs++
      const p = start(`${name}-${pub.runs}`, FFMPEG, publishArgs(file, url))
      current = p
      void p.exited.then(() => {
        pub.exits.push(Date.now())
        void p.stop()
        if (!stopped && current === p) timer = setTimeout(() => pub.run(), RETRY_MS)
      })
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await current?.stop()
    }
  }
  return pub
}

/**
 * A lightweight LL-HLS player on one stream's video playlist: blocking reloads at the preload hint, every new part
 * fetched; records when each new part (a URI not seen before) arrived. Init segments are fetched when they change.
 */
function llhlsPlayer(indexUrl) {
  const base = indexUrl.replace(/index\.m3u8$/, '')
  const arrivals = []
  const trace = [] // [epoch ms, what]: BENCH_DRAIN_DEBUG
  const seen = new Set()
  let errors = 0
  let stopped = false
  const ctl = new AbortController()
  const get = async (url, timeout = 15_000) => {
    const r = await fetch(url, { signal: AbortSignal.any([ctl.signal, AbortSignal.timeout(timeout)]) })
    const body = await r.arrayBuffer()
    if (!r.ok) throw new Error(`${r.status}`)
    return body
  }
  const loop = (async () => {
    let query = ''
    let map = null
    while (!stopped) {
      try {
        const asked = Date.now()
        const text = Buffer.from(await get(`${base}video.m3u8${query}`)).toString()
        trace.push([asked, `playlist${query} answered after ${Date.now() - asked} ms`])
        const m = /#EXT-X-MAP:URI="([^"]+)"/g
        let last = null
        for (const x of text.matchAll(m)) last = x[1]
        if (last && last !== map) {
          await get(base + last)
          map = last
        }
        for (const [, uri] of text.matchAll(/#EXT-X-PART:[^\n]*URI="([^"]+)"/g)) {
          if (seen.has(uri)) continue
          seen.add(uri)
          await get(base + uri)
          arrivals.push(Date.now())
          trace.push([Date.now(), uri])
        }
        const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"]*?(\d+)\.(\d+)\.m4s"/.exec(text)
        query = hint ? `?_HLS_msn=${hint[1]}&_HLS_part=${hint[2]}` : ''
        if (!hint) await sleep(300)
      } catch (e) {
        if (stopped) break
        trace.push([Date.now(), `error ${e.message}`])
        errors++
        query = ''
        await sleep(200)
      }
    }
  })()
  return {
    arrivals,
    trace,
    get errors() {
      return errors
    },
    /** The longest gap between consecutive new parts arriving in [from, to], and where it ended. */
    stall(from, to) {
      let worst = 0
      let at = null
      for (let i = 1; i < arrivals.length; i++) {
        if (arrivals[i] < from || arrivals[i - 1] > to) continue
        const gap = arrivals[i] - Math.max(arrivals[i - 1], from)
        if (gap > worst) [worst, at] = [gap, arrivals[i]]
      }
      // Still waiting at the end counts too.
      const tail = to - Math.max(arrivals.at(-1) ?? from, from)
      if (tail > worst) [worst, at] = [tail, null]
      return { ms: worst, at }
    },
    async stop() {
      stopped = true
      ctl.abort()
      await loop
    }
  }
}

async function runOnce(N) {
  const name = `drain${N}`
  const stack = await benchStack(name)
  const sql = await mysql.createConnection({ uri: stack.db.url })
  const publishers = []
  const players = []
  const lbs = []
  const nodes = []
  const loadBefore = os.loadavg()
  try {
    const OPERATOR_TOKEN = randomBytes(32).toString('base64')
    // Default settings: DRAIN_SECONDS, RECONNECT_WINDOW_MS, segments and parts as shipped.
    const nodeA = await stack.ingest({ INGEST_NODE_ID: 'node-a', OPERATOR_TOKEN })
    const nodeB = await stack.ingest({ INGEST_NODE_ID: 'node-b', OPERATOR_TOKEN })
    nodes.push(nodeA, nodeB)
    const ups = (kind) => [nodeA, nodeB].map((n, i) => ({ name: 'ab'[i], port: n[kind], readyUrl: `${n.publicUrl}/readyz` }))
    const rtmpLb = readyBalancer(ups('rtmpPort'))
    const httpLb = readyBalancer(ups('httpPort'))
    lbs.push(rtmpLb, httpLb)
    await rtmpLb.start()
    await httpLb.start()
    const api = await stack.api({ PLAYBACK_BASE_URL: `http://127.0.0.1:${httpLb.port}` })
    const user = await stack.user(api, 'drain')
    const view = async (id) => (await (await fetch(`${api.url}/api/livestream/streams/${id}`, { headers: { authorization: `Bearer ${user.token}` } })).json()).data
    const streams = []
    for (let i = 0; i < N; i++) streams.push(await stack.createStream(api, user, `drain ${i}`))
    for (const s of streams) {
      const p = reconnectingPublisher(`rtmp://127.0.0.1:${rtmpLb.port}/live/${s.stream_key}`, `pub-${s.id}`)
      publishers.push(p)
      p.run()
      await sleep(100)
    }
    const live = await waitFor(`all ${N} live on node A`, async () => {
      const vs = await Promise.all(streams.map((s) => view(s.id)))
      return vs.every((v) => v.status === 'live' && v.ingest_node_id === 'node-a') ? vs : null
    }, 120_000, 500)
    for (const v of live) {
      await waitFor(`${v.playback_id} playable`, async () => (await fetch(v.playback_url)).ok, 30_000, 100)
      players.push(llhlsPlayer(v.playback_url))
    }
    await sleep(WARMUP_MS)
    const warmFrom = Date.now() - WARMUP_MS / 2
    const loadAtDrain = os.loadavg()

    const drainedAt = Date.now()
    const res = await fetch(`${nodeA.publicUrl}/admin/drain`, { method: 'POST', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })
    const accepted = await res.json()
    if (res.status !== 202) throw new Error(`drain: ${res.status} ${JSON.stringify(accepted)}`)
    const [code] = await Promise.race([nodeA.exited, sleep(180_000).then(() => ['timeout'])])
    const exitedAt = Date.now()
    const drainMs = exitedAt - drainedAt
    const why = /"why":"(\w+)"[^\n]*drain over/.exec(nodeA.output())?.[1] ?? '?'
    await sleep(AFTER_MS)
    const endAt = Date.now()

    const after = await Promise.all(streams.map((s) => view(s.id)))
    const [events] = await sql.query(
      "SELECT stream_id, type, node_id, outcome, occurred_at, recorded_at FROM stream_events WHERE stream_id IN (?) AND type IN ('stream.published', 'stream.unpublished') ORDER BY id",
      [streams.map((s) => s.id)]
    )
    const unpublished = events.filter((e) => e.type === 'stream.unpublished').length
    const ended = after.filter((v) => v.status !== 'live').length
    const onB = after.filter((v) => v.status === 'live' && v.ingest_node_id === 'node-b').length
    const connected = after.filter((v) => v.connection === undefined || v.connection === 'connected').length
    // Reconnect: the publisher's first exit after the drain call (the cut) -> node B accepted its publish (ledger).
    const toAccepted = [], toLive = []
    streams.forEach((s, i) => {
      const cut = publishers[i].exits.find((t) => t >= drainedAt)
      const pubB = events.find((e) => e.stream_id === s.id && e.type === 'stream.published' && e.node_id === 'node-b' && e.outcome === 'applied')
      if (cut === undefined || !pubB) return
      toAccepted.push(new Date(pubB.occurred_at).getTime() - cut)
      toLive.push(new Date(pubB.recorded_at).getTime() - cut)
    })
    const stalls = players.map((p) => p.stall(drainedAt, endAt).ms)
    const baseline = players.map((p) => p.stall(warmFrom, drainedAt).ms)
    const loadAfter = os.loadavg()
    if (process.env.BENCH_DRAIN_DEBUG) {
      const worst = stalls.indexOf(Math.max(...stalls))
      const cut = publishers[worst].exits.find((t) => t >= drainedAt)
      const pubB = events.find((e) => e.stream_id === streams[worst].id && e.node_id === 'node-b')
      console.log(`stream ${worst}: cut at +0, accepted on B at ${pubB ? new Date(pubB.occurred_at).getTime() - cut : '?'} ms`)
      for (const [t, what] of players[worst].trace) if (t > cut - 1500 && t < cut + 6000) console.log(`  ${t - cut} ${what}`)
      for (const p of players) for (const [t, what] of p.trace) if (what.startsWith('error')) console.log(`  error at ${t - exitedAt} ms after A's exit: ${what}`)
    }
    const r = {
      N,
      drainMs,
      why,
      code,
      ended,
      unpublished,
      onB,
      connected,
      runs: publishers.map((p) => p.runs),
      stalls,
      baseline,
      toAccepted,
      toLive,
      playerErrors: players.reduce((n, p) => n + p.errors, 0),
      rtmpSent: Object.fromEntries(rtmpLb.sent),
      loadBefore,
      loadAtDrain,
      loadAfter
    }
    console.log(JSON.stringify({ ...r, stalls: undefined, baseline: undefined }, null, 0))
    return r
  } finally {
    for (const p of players) await p.stop()
    for (const p of publishers) await p.stop()
    await sql.end()
    // SIGINT closes a node at once (SIGTERM would drain it for DRAIN_SECONDS).
    for (const n of nodes) await n.stop('SIGINT')
    await stack.close()
    for (const lb of lbs) await lb.stop()
  }
}

const s = (ms) => `${(ms / 1000).toFixed(2)} s`
const results = []
for (const N of NS) {
  console.log(`\n--- N = ${N} ---`)
  try {
    results.push(await runOnce(N))
  } catch (e) {
    console.error(`N = ${N} failed:`, e)
    results.push({ N, failed: String(e?.message ?? e) })
  }
}
const rows = results.map((r) => r.failed ? { N: r.N, 'drain call -> node A exit': `failed: ${r.failed}` } : ({
  N: r.N,
  'drain call -> node A exit': `${s(r.drainMs)} (${r.why}, exit ${r.code})`,
  'streams ended': `${r.ended} (${r.unpublished} stream.unpublished)`,
  'live on node B after': `${r.onB}/${r.N}`,
  'longest player stall': s(Math.max(...r.stalls)),
  'stall p50 / p95': `${s(pct(r.stalls, 50))} / ${s(pct(r.stalls, 95))}`,
  'stall before the drain (max)': s(Math.max(...r.baseline)),
  'cut -> accepted on B p50 / max': r.toAccepted.length ? `${s(pct(r.toAccepted, 50))} / ${s(Math.max(...r.toAccepted))}` : '-',
  'cut -> live in api p50 / max': r.toLive.length ? `${s(pct(r.toLive, 50))} / ${s(Math.max(...r.toLive))}` : '-',
  'load avg (1 min) before / at drain / after': `${r.loadBefore[0].toFixed(1)} / ${r.loadAtDrain[0].toFixed(1)} / ${r.loadAfter[0].toFixed(1)}`
}))
// Transposed: one column per N reads better than ten columns.
const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => k !== 'N')
const out = table(keys.map((k) => Object.fromEntries([['measure', k], ...rows.map((r) => [`N = ${r.N}`, r[k] ?? '-'])])))
const notes = results.filter((r) => !r.failed).map((r) =>
  `N = ${r.N}: publisher runs ${Math.min(...r.runs)}-${Math.max(...r.runs)} each (RTMP balancer connections ${JSON.stringify(r.rtmpSent)}); ${r.connected}/${r.N} connected after; ${r.playerErrors} player request errors (retried after 200 ms; in a BENCH_DRAIN_DEBUG=1 run every one was \`fetch failed\` when node A closed its keep-alive connections at its exit, after every stream had moved); ${r.toAccepted.length}/${r.N} reconnects matched to a cut`)
console.log(`\nDrain a node with N live streams\n${out}\n${notes.join('\n')}`)
writeResults('drain', `## Drain a node with N live streams

\`pnpm bench:drain\` (BENCH_DRAIN_N=${NS.join(',')}, BENCH_DRAIN_GOP=${GOP}), ${new Date().toISOString().slice(0, 10)}, ${machine()}

A real api and two real ingest nodes at default settings (DRAIN_SECONDS 30, RECONNECT_WINDOW_MS 10 s, 2 s segments,
0.33 s parts) behind two TCP balancers that follow \`/readyz\` (RTMP; media HTTP, the api's PLAYBACK_BASE_URL). N
ffmpeg publishers (\`-re -stream_loop -1 -c copy\` of a 640x360 1 Mbps clip, ${GOP} s GOP) that start again ${RETRY_MS} ms after
each exit, as OBS reconnects, all on node A first; one simulated LL-HLS player per stream on the playback URL
(blocking reloads at the preload hint, every new video part fetched). Then \`POST /admin/drain\` on A. A player's
stall is the longest gap between two new parts arriving, from the drain call to ${AFTER_MS / 1000} s after A's exit
(a part is 0.33 s; "before the drain" is the same over the ${WARMUP_MS / 2000} s before the call). Reconnect: the
publisher's ffmpeg exiting (the cut) -> node B accepting its publish (ledger \`occurred_at\`) and the api recording it
(\`recorded_at\`). Streams ended: streams not \`live\` afterwards, and \`stream.unpublished\` in the ledger. The load
averages are the machine's (shared; every process of the bench runs on it).

${out}

${notes.map((n) => `- ${n}`).join('\n')}

What bounds these figures: the drain time is DRAIN_SECONDS by design (the cuts are spread over it, the last one a
step before its end) plus the last publisher's reconnect and node A's close; each reconnect is bounded by the
encoder's restart (${RETRY_MS} ms retry here, OBS's own delay in production), ffmpeg's start, the RTMP handshake
through the balancer and the publish check (the api has it live within ~10 ms more); a player's stall is that plus
the first part of the new connection, its blocking reload returning (held requests are answered within a second while the publisher is away), and then
node B withholding the playlist until its first segment is complete: segments start at a keyframe, so after a move
that first segment is one GOP long (${GOP} s here) whatever its 1 s target (apps/ingest/src/media/media-routes.ts).`)
process.exit(results.some((r) => r.failed) ? 1 : 0)
