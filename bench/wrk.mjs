// wrk (C, multi-threaded) as the load generator: a Node generator saturates before a fast Fastify route does and
// squeezes every ratio toward 1. Debian package `wrk`.
import { execFile } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { WORK } from './lib.mjs'

const run = promisify(execFile)
export const WRK = process.env.WRK_PATH ?? '/usr/bin/wrk'

export function haveWrk() {
  return existsSync(WRK)
}

const unit = { us: 1e-3, ms: 1, s: 1e3 }
const ms = (text) => {
  const m = /([\d.]+)(us|ms|s)/.exec(text)
  return m ? Number(m[1]) * unit[m[2]] : NaN
}

/**
 * One wrk run. `bodies` (optional) rotates request bodies through a Lua script, one per request.
 * Returns req/s, latency percentiles (ms), and non-2xx/socket errors.
 */
export async function wrk({ url, method = 'GET', headers = {}, bodies, duration = 10, connections = 64, threads = 2 }) {
  const script = path.join(WORK, `wrk-${process.pid}-${Math.random().toString(36).slice(2)}.lua`)
  const lua = [
    `wrk.method = ${JSON.stringify(method)}`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
    bodies
      ? `local bodies = { ${bodies.map((b) => JSON.stringify(b)).join(', ')} }\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend`
      : '',
    // Non-2xx answers are counted by wrk itself ("Non-2xx or 3xx responses").
  ].join('\n')
  writeFileSync(script, lua)
  const { stdout } = await run(WRK, ['-t', String(threads), '-c', String(connections), '-d', `${duration}s`, '--latency', '-s', script, url], {
    maxBuffer: 1 << 20
  }).finally(() => rmSync(script, { force: true }))
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN)
  const pctl = (p) => ms(new RegExp(`\\s${p}%\\s+(\\S+)`).exec(stdout)?.[1] ?? '')
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  const errors = non2xx + (sock ? sock.slice(1).reduce((n, x) => n + Number(x), 0) : 0)
  return { rps, p50: pctl(50), p99: pctl(99), errors, raw: stdout }
}
