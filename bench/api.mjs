// API throughput against a bare Fastify hello-world measured in the same run (load from this process, on loopback).
import autocannon from 'autocannon'
import path from 'node:path'
import { ROOT, freePort, machine, start, table, waitFor, writeResults } from './lib.mjs'
import { benchStack } from './stack.mjs'

const DURATION = Number(process.env.BENCH_DURATION ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64)

function run(opts) {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION, pipelining: 1, ...opts }, (err, r) => (err ? reject(err) : resolve(r)))
  })
}

const stack = await benchStack('api')
try {
  const helloPort = await freePort()
  const hello = start('hello', process.execPath, [path.join(ROOT, 'bench/hello.mjs')], { PORT: String(helloPort) })
  await waitFor('hello', async () => (await fetch(`http://127.0.0.1:${helloPort}/`)).ok)
  const api = await stack.api({ CONSUMER_ENABLED: 'false', REAPER_ENABLED: 'false' })
  const user = await stack.user(api)
  const streams = []
  for (let i = 0; i < 50; i++) streams.push(await stack.createStream(api, user, `s${i}`))
  const viewers = []
  for (let i = 0; i < 20; i++) viewers.push(await stack.user(api, `viewer${i}`))
  const auth = { authorization: `Bearer ${user.token}` }

  // Warm-up so JIT and pools are in the same state for each case.
  await run({ url: `http://127.0.0.1:${helloPort}/`, duration: 2 })
  const cases = [
    ['(a) hello-world', { url: `http://127.0.0.1:${helloPort}/` }],
    ['(b) GET /streams/:id', { url: `${api.url}/api/livestream/streams/${streams[0].id}`, headers: auth }],
    ['(c) GET /streams?limit=20', { url: `${api.url}/api/livestream/streams?limit=20`, headers: auth }],
    [
      '(d) POST /streams/join',
      {
        url: `${api.url}/api/livestream/streams/join`,
        method: 'POST',
        requests: viewers.map((v, i) => ({
          method: 'POST',
          headers: { authorization: `Bearer ${v.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ stream_id: streams[i % streams.length].id })
        }))
      }
    ]
  ]
  const rows = []
  let ceiling = 0
  for (const [name, opts] of cases) {
    const r = await run(opts)
    const rps = r.requests.average
    if (!ceiling) ceiling = rps
    rows.push({
      case: name,
      'req/s': Math.round(rps),
      'p50 ms': r.latency.p50,
      'p99 ms': r.latency.p99,
      'x hello': (rps / ceiling).toFixed(2),
      errors: r.errors + r.non2xx
    })
    process.stdout.write(`${name}: ${Math.round(rps)} req/s\n`)
  }
  const out = table(rows)
  console.log(`\nAPI, ${CONNECTIONS} connections, ${DURATION} s each\n${out}`)
  const b = rows[1], c = rows[2]
  const verdict = [
    `(b) >= 0.5x hello-world: ${Number(b['x hello']) >= 0.5 ? 'met' : 'missed'} (${b['x hello']}x); p99 < 20 ms: ${b['p99 ms'] < 20 ? 'met' : 'missed'} (${b['p99 ms']} ms)`,
    `(c) >= 0.3x hello-world: ${Number(c['x hello']) >= 0.3 ? 'met' : 'missed'} (${c['x hello']}x)`
  ]
  console.log(verdict.join('\n'))
  writeResults('api', `## API\n\n\`pnpm bench:api\` (BENCH_DURATION=${DURATION}, ${CONNECTIONS} connections), ${new Date().toISOString().slice(0, 10)}, ${machine()}\n\n${out}\n\n${verdict.map((v) => `- ${v}`).join('\n')}`)
  await hello.stop()
} finally {
  await stack.close()
}
