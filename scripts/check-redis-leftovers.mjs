#!/usr/bin/env node
// Runs a test command and fails when it left Redis keys behind. `node scripts/check-redis-leftovers.mjs <command...>`
// tags the run (LSTEST_RUN): every test prefix made by @livestream/events/testing is then `lstest-<run>-...`, so the
// keys this run left are counted apart from other runs sharing the Redis. Exit: the command's code when it failed,
// else 1 when keys are left (listed by prefix), else 0. `pnpm test` runs through it.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'

const args = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'))
if (!args.length) {
  console.error('usage: check-redis-leftovers.mjs <command> [args...]')
  process.exit(2)
}
const run = process.env.LSTEST_RUN ?? `r${randomBytes(4).toString('hex')}`
const redisUrl = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379')

/** One RESP reply from `buf` at `at`: [value, next offset], or null when incomplete. */
function parse(buf, at) {
  const eol = buf.indexOf('\r\n', at)
  if (eol < 0) return null
  const type = String.fromCharCode(buf[at])
  const line = buf.toString('utf8', at + 1, eol)
  if (type === '+' || type === ':') return [line, eol + 2]
  if (type === '-') throw new Error(`redis: ${line}`)
  if (type === '$') {
    const n = Number(line)
    if (n < 0) return [null, eol + 2]
    if (buf.length < eol + 2 + n + 2) return null
    return [buf.toString('utf8', eol + 2, eol + 2 + n), eol + 2 + n + 2]
  }
  if (type === '*') {
    const out = []
    let next = eol + 2
    for (let i = 0; i < Number(line); i++) {
      const item = parse(buf, next)
      if (!item) return null
      out.push(item[0])
      next = item[1]
    }
    return [out, next]
  }
  throw new Error(`redis: unexpected reply ${type}`)
}

/** Every key matching `pattern`, by SCAN over one plain connection (no client library needed at the root). */
function scanAll(pattern) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(redisUrl.port || 6379), redisUrl.hostname)
    const keys = []
    let buf = Buffer.alloc(0)
    const send = (...words) => socket.write(`*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`)
    socket.on('connect', () => send('SCAN', '0', 'MATCH', pattern, 'COUNT', '1000'))
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      let reply
      try {
        reply = parse(buf, 0)
      } catch (err) {
        socket.destroy()
        return reject(err)
      }
      if (!reply) return
      buf = buf.subarray(reply[1])
      const [cursor, found] = reply[0]
      keys.push(...found)
      if (cursor === '0') {
        socket.end()
        resolve(keys)
      } else send('SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000')
    })
    socket.on('error', reject)
  })
}

const child = spawn(args[0], args.slice(1), { stdio: 'inherit', env: { ...process.env, LSTEST_RUN: run } })
const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))))
const left = await scanAll(`lstest-${run}-*`)
if (left.length) {
  const byPrefix = new Map()
  for (const key of left) {
    const prefix = key.split(':')[0]
    byPrefix.set(prefix, (byPrefix.get(prefix) ?? 0) + 1)
  }
  console.error(`[redis] the tests left ${left.length} keys in Redis (run ${run}):`)
  for (const [prefix, n] of byPrefix) console.error(`  ${prefix}: ${n}`)
} else console.error(`[redis] no keys left by the tests (run ${run})`)
process.exit(code !== 0 ? code : left.length ? 1 : 0)
