// A real HTTP receiver for webhook tests, on 127.0.0.1 at a port the OS picks, and an independent Standard Webhooks
// verifier (written from the spec, not from our signing code) to check what it receives.
import { createHmac, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  headers: http.IncomingHttpHeaders
  body: string
  at: number
}

/** What the receiver answers to the n-th request (from 0): a status, or `hang` to never answer. */
export type Behaviour = (n: number, req: Received) => number | 'hang' | { status: number; headers?: Record<string, string>; body?: string }

export interface Receiver {
  url: string
  port: number
  received: Received[]
  behave(b: Behaviour): void
  /** Resolves once `n` requests have come in. */
  waitFor(n: number, what?: string): Promise<Received[]>
  close(): Promise<void>
}

export async function startReceiver(behaviour: Behaviour = () => 200): Promise<Receiver> {
  let behave = behaviour
  const received: Received[] = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() }
      const n = received.push(r) - 1
      for (const w of waiters.filter((w) => received.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
      const answer = behave(n, r)
      if (answer === 'hang') return
      const a = typeof answer === 'number' ? { status: answer } : answer
      res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers })
      res.end(a.body ?? 'ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    behave: (b) => (behave = b),
    async waitFor(n) {
      if (received.length < n) await new Promise<void>((resolve) => waiters.push({ n, resolve }))
      return received
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/**
 * Standard Webhooks verification, from the spec: the timestamp within `toleranceS` of `nowS`, and one of the
 * space-separated `v1,` signatures equal to base64(HMAC-SHA256(base64-decoded secret, "id.timestamp.body")).
 * Returns why it refuses, or null.
 */
export function refuses(secret: string, headers: http.IncomingHttpHeaders, body: string, nowS = Math.floor(Date.now() / 1000), toleranceS = 300): string | null {
  const id = headers['webhook-id']
  const ts = headers['webhook-timestamp']
  const sigs = headers['webhook-signature']
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sigs !== 'string') return 'missing headers'
  if (!/^\d+$/.test(ts)) return 'bad timestamp'
  if (Math.abs(nowS - Number(ts)) > toleranceS) return 'timestamp outside tolerance'
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest()
  for (const sig of sigs.split(' ')) {
    const [version, value] = sig.split(',')
    if (version !== 'v1' || !value) continue
    const got = Buffer.from(value, 'base64')
    if (got.length === expected.length && timingSafeEqual(got, expected)) return null
  }
  return 'no matching signature'
}
