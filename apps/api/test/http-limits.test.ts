import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { build, testConfig } from './helper.js'
import { ConfigError } from '../src/config.js'

// Small limits so the test is quick. The idle (socket) timeout is far above the others, so when a slow client is cut
// off it is the headers or request timeout that did it, not idleness.
const LIMITS = {
  HEADERS_TIMEOUT_MS: '600',
  REQUEST_TIMEOUT_MS: '1500',
  CONNECTIONS_CHECKING_INTERVAL_MS: '100',
  KEEP_ALIVE_TIMEOUT_MS: '400',
  CONNECTION_TIMEOUT_MS: '20000',
  BODY_LIMIT_BYTES: '2048'
}
// Time a loaded 2-core machine may add on top of a limit before the cut is seen; not a performance figure.
const SLACK_MS = 1500

const app = await build(t, LIMITS)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo

interface Outcome {
  afterMs: number
  received: string
}

/** Opens a raw connection, runs `drive` on it, and resolves when the server closes it, with everything it sent. */
function session(drive: (socket: Socket, closed: () => boolean) => void): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let done = false
    const started = Date.now()
    socket.on('data', (c) => chunks.push(c))
    socket.on('error', () => {}) // a reset after the server's answer is still a close
    socket.on('close', () => {
      done = true
      resolve({ afterMs: Date.now() - started, received: Buffer.concat(chunks).toString() })
    })
    socket.on('connect', () => drive(socket, () => done))
    setTimeout(() => {
      if (!done) {
        socket.destroy()
        reject(new Error('the server never closed the connection'))
      }
    }, 20_000).unref()
  })
}

/** Writes `piece` every `everyMs` until the connection is closed. */
function trickle(socket: Socket, closed: () => boolean, piece: string, everyMs: number) {
  const timer = setInterval(() => {
    if (closed()) return clearInterval(timer)
    socket.write(piece)
  }, everyMs)
  socket.once('close', () => clearInterval(timer))
}

function answer(raw: string) {
  const [head = '', body = ''] = raw.split('\r\n\r\n')
  return { status: Number(head.split(' ')[1]), head, json: JSON.parse(body) as { success: boolean; data: unknown; message: string } }
}

/** The connection was cut no earlier than the limit `name`, and no later than it plus one connections check. */
function cutAfter(t: Test, afterMs: number, name: 'HEADERS_TIMEOUT_MS' | 'REQUEST_TIMEOUT_MS', what: string) {
  const timeout = Number(LIMITS[name])
  t.ok(afterMs >= timeout - 50, `not before the timeout (${afterMs} ms)`)
  t.ok(afterMs <= timeout + Number(LIMITS.CONNECTIONS_CHECKING_INTERVAL_MS) + SLACK_MS, `closed within the ${what} + check interval (${afterMs} ms)`)
}

t.test('a client sending its headers slowly (slowloris) is cut off at the configured headers timeout', async (t) => {
  const out = await session((socket, closed) => {
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n')
    // One header line every 100 ms: never idle, never finished.
    trickle(socket, closed, 'X-Slow: 1\r\n', 100)
  })
  cutAfter(t, out.afterMs, 'HEADERS_TIMEOUT_MS', 'headers timeout')
  const res = answer(out.received)
  t.equal(res.status, 408)
  t.same(res.json, { success: false, data: null, message: 'the request took too long to arrive' }, 'in the envelope')
})

t.test('a client sending its body slowly is cut off at the configured request timeout', async (t) => {
  const out = await session((socket, closed) => {
    socket.write('POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{')
    trickle(socket, closed, ' ', 100)
  })
  cutAfter(t, out.afterMs, 'REQUEST_TIMEOUT_MS', 'request timeout')
  t.equal(answer(out.received).status, 408)
})

t.test('an idle keep-alive connection is closed after the configured keep-alive timeout', async (t) => {
  const out = await session((socket) => {
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n')
  })
  t.match(out.received, /^HTTP\/1\.1 200 /, 'the request itself was answered')
  t.ok(out.afterMs >= Number(LIMITS.KEEP_ALIVE_TIMEOUT_MS) - 50, `kept open for the keep-alive timeout (${out.afterMs} ms)`)
  // Node closes an idle keep-alive socket one second after the timeout it advertises, so the client gives up first.
  const NODE_KEEP_ALIVE_GRACE_MS = 1000
  t.ok(out.afterMs <= Number(LIMITS.KEEP_ALIVE_TIMEOUT_MS) + NODE_KEEP_ALIVE_GRACE_MS + SLACK_MS, `then closed (${out.afterMs} ms)`)
})

t.test('a body over the configured limit is a 413 in the envelope, announced or chunked', async (t) => {
  const big = JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(Number(LIMITS.BODY_LIMIT_BYTES)) })
  const announced = await session((socket) => {
    socket.write(`POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n`)
    socket.write(big)
  })
  const a = answer(announced.received)
  t.equal(a.status, 413)
  t.equal(a.json.success, false)
  t.equal(a.json.data, null)
  t.match(a.json.message, /too large/i)

  const chunked = await session((socket) => {
    socket.write('POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n')
    for (let i = 0; i < big.length; i += 500) {
      const part = big.slice(i, i + 500)
      socket.write(`${part.length.toString(16)}\r\n${part}\r\n`)
    }
    socket.write('0\r\n\r\n')
  })
  const c = answer(chunked.received)
  t.equal(c.status, 413)
  t.equal(c.json.success, false)
})

t.test('bytes that are not HTTP get a 400 in the envelope and a closed connection', async (t) => {
  const out = await session((socket) => socket.write('\u0000\u0001 garbage \r\n\r\n'))
  const res = answer(out.received)
  t.equal(res.status, 400)
  t.same(res.json, { success: false, data: null, message: 'malformed HTTP request' })
})

t.test('the server still answers after all of the above', async (t) => {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`)
  t.equal(res.status, 200)
})

t.test('a headers timeout above the request timeout stops the start, naming the variable', async (t) => {
  t.throws(() => testConfig('mysql://x@127.0.0.1/x', { HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '1000' }), {
    constructor: ConfigError,
    message: /HEADERS_TIMEOUT_MS/
  })
  t.throws(() => testConfig('mysql://x@127.0.0.1/x', { CONNECTIONS_CHECKING_INTERVAL_MS: 'soon' }), { message: /CONNECTIONS_CHECKING_INTERVAL_MS/ })
})
