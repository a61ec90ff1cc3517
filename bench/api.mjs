// API throughput against a bare Fastify hello-world measured in the same run, at the api's default settings
// (LOG_LEVEL=info: one access line per request, written to a file as in production), load from wrk on loopback.
import path from 'node:path'
import { ROOT, freePort, machine, start, table, usage, waitFor, writeResults } from './lib.mjs'
import { benchStack } from './stack.mjs'
import { haveWrk, wrk } from './wrk.mjs'

const DURATION = Number(process.env.BENCH_DURATION ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

if (!haveWrk()) {
  console.error('bench:api needs wrk (apt-get install wrk): a JavaScript load generator saturates before the api does')
  process.exit(1)
}
const run = (opts) => wrk({ connections: CONNECTIONS, duration: DURATION, ...opts })

const stack = await benchStack('api')
try {
  const helloPort = await freePort()
  const hello = start('hello', process.execPath, [path.join(ROOT, 'bench/hello.mjs')], { PORT: String(helloPort) })
  await waitFor('hello', async () => (await fetch(`http://127.0.0.1:${helloPort}/`)).ok)
  const api = await stack.api({ CONSUMER_ENABLED: 'false', REAPER_ENABLED: 'false' }, 'server.js', [], { logTo: 'api-bench.log' })
  // The same api with METRICS_ENABLED=false beside it: what per-request metrics cost, in the same run.
  const bare = await stack.api({ CONSUMER_ENABLED: 'false', REAPER_ENABLED: 'false', METRICS_ENABLED: 'false' }, 'server.js', [], { logTo: 'api-bench-nometrics.log' })
  const user = await stack.user(api)
  const streams = []
  for (let i = 0; i < 50; i++) streams.push(await stack.createStream(api, user, `s${i}`))
  const viewers = []
  for (let i = 0; i < 20; i++) viewers.push(await stack.user(api, `viewer${i}`))
  const auth = { authorization: `Bearer ${user.token}` }

  // Warm-up so JIT and pools are in the same state for each case.
  await run({ url: `http://127.0.0.1:${helloPort}/`, duration: 2 })
  // Each case names the process that serves it: its CPU time over the run, per request, is the cost of a request
  // whatever the load generator does (on a shared box the generator's own CPU and wake-ups move the req/s).
  const cases = [
    ['(a) hello-world', { url: `http://127.0.0.1:${helloPort}/` }, hello.pid],
    ['(b) GET /streams/:id', { url: `${api.url}/api/livestream/streams/${streams[0].id}`, headers: auth }, api.pid],
    ['(c) GET /streams?limit=20', { url: `${api.url}/api/livestream/streams?limit=20`, headers: auth }, api.pid],
    [
      '(d) POST /streams/join',
      {
        url: `${api.url}/api/livestream/streams/join`,
        method: 'POST',
        headers: { authorization: `Bearer ${viewers[0].token}`, 'content-type': 'application/json' },
        bodies: streams.map((s) => JSON.stringify({ stream_id: s.id }))
      },
      api.pid
    ],
    ['(e) GET /streams/:id, METRICS_ENABLED=false', { url: `${bare.url}/api/livestream/streams/${streams[0].id}`, headers: auth }, bare.pid]
  ]
  // Rounds interleave the cases, so a drift of the shared machine hits the ceiling and our routes alike; each ratio is
  // taken within its round, and the table shows medians (p99: the worst round).
  const per = cases.map(() => ({ rps: [], ratio: [], p50: [], p99: [], cpu: [], usPerReq: [], errors: 0 }))
  for (let round = 1; round <= ROUNDS; round++) {
    let ceiling = 0
    for (const [i, [name, opts, pid]] of cases.entries()) {
      const t0 = performance.now()
      const before = usage(pid).rootTicks
      const r = await run(opts)
      const cpuMs = (usage(pid).rootTicks - before) * 10 // CLK_TCK 100
      const wallMs = performance.now() - t0
      const rps = r.rps
      per[i].cpu.push((100 * cpuMs) / wallMs)
      per[i].usPerReq.push((1000 * cpuMs) / (rps * (wallMs / 1000)))
      if (i === 0) ceiling = rps
      per[i].rps.push(rps)
      per[i].ratio.push(rps / ceiling)
      per[i].p50.push(r.p50)
      per[i].p99.push(r.p99)
      per[i].errors += r.errors
      process.stdout.write(`round ${round} ${name}: ${Math.round(rps)} req/s\n`)
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const rows = cases.map(([name], i) => ({
    case: name,
    'req/s': Math.round(median(per[i].rps)),
    'p50 ms': median(per[i].p50).toFixed(2),
    'p99 ms': Math.max(...per[i].p99).toFixed(2),
    'x hello': median(per[i].ratio).toFixed(2),
    'x hello per round': per[i].ratio.map((x) => x.toFixed(2)).join(' '),
    'server CPU %': Math.round(median(per[i].cpu)),
    'CPU us/req': median(per[i].usPerReq).toFixed(1),
    errors: per[i].errors
  }))
  const out = table(rows)
  console.log(`\nAPI (LOG_LEVEL=info, wrk), ${CONNECTIONS} connections, ${DURATION} s per case, ${ROUNDS} rounds\n${out}`)
  const b = rows[1], c = rows[2]
  const metricsCost = median(per[1].rps.map((rps, r) => rps / per[4].rps[r]))
  const verdict = [
    `metrics: GET /streams/:id with them / without (METRICS_ENABLED=false), per round: ${per[1].rps.map((rps, r) => (rps / per[4].rps[r]).toFixed(3)).join(' ')}; median ${metricsCost.toFixed(3)}x, >= 0.95x: ${metricsCost >= 0.95 ? 'met' : 'missed'}`,
    `(b) >= 0.5x hello-world: ${Number(b['x hello']) >= 0.5 ? 'met' : 'missed'} (${b['x hello']}x); p99 < 20 ms: ${Number(b['p99 ms']) < 20 ? 'met' : 'missed'} (${b['p99 ms']} ms)`,
    `(c) >= 0.3x hello-world: ${Number(c['x hello']) >= 0.3 ? 'met' : 'missed'} (${c['x hello']}x)`,
    `server CPU per request (its process's CPU time over the run / requests answered): hello-world ${rows[0]['CPU us/req']} us, (b) ${b['CPU us/req']} us (${(Number(rows[0]['CPU us/req']) / Number(b['CPU us/req'])).toFixed(2)}x hello-world's cost per request); a server at ~100 % is the bottleneck, not the load generator`
  ]
  console.log(verdict.join('\n'))
  writeResults('api', `## API\n\n\`pnpm bench:api\` (default settings: LOG_LEVEL=info, access log to a file; load from wrk, 2 threads; BENCH_DURATION=${DURATION}, BENCH_ROUNDS=${ROUNDS}, ${CONNECTIONS} connections; medians of the rounds, p99 the worst round), ${new Date().toISOString().slice(0, 10)}, ${machine()}\n\n${out}\n\n${verdict.map((v) => `- ${v}`).join('\n')}`)
  await hello.stop()
} finally {
  await stack.close()
}
