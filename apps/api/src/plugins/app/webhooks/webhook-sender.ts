import http from 'node:http'
import https from 'node:https'
import { resolveAllowed, pinnedLookup, WebhookUrlError, type Resolver, type SsrfPolicy } from './ssrf-guard.js'
import { webhookHeaders } from './signing.js'

/** What one delivery attempt came to: stored as one row of the endpoint's log. */
export interface AttemptResult {
  ok: boolean
  httpStatus: number | null
  /** Why it failed, in words (never the receiver's body). */
  error: string | null
  /** The start of the receiver's answer, for its owner's debugging. */
  responseExcerpt: string | null
  durationMs: number
}

export interface SendRequest {
  url: string
  /** The `webhook-id`: the event's id, the same on every attempt. */
  id: string
  body: string
  /** Signing secrets, the current one first. */
  secrets: readonly string[]
}

export interface SenderOptions {
  policy: SsrfPolicy
  /** The whole attempt: DNS, connect, TLS, the answer's headers and the part of its body we read. */
  timeoutMs: number
  resolve?: Resolver
}

/** How much of an answer is read (the rest is dropped with the connection) and how much of it is kept. */
const READ_LIMIT = 4_096
const EXCERPT_CHARS = 200

/**
 * Sends signed webhooks. Each attempt checks the URL's addresses again and connects only to one it checked; it has
 * one deadline for everything; redirects are not followed (a 3xx is a failure: following one would be a way around the
 * address check); only the first few KB of the answer are read. Connections are kept alive per host.
 */
export function createWebhookSender(opts: SenderOptions) {
  const agentOptions = { keepAlive: true, keepAliveMsecs: 1_000, maxSockets: 32, maxFreeSockets: 8, timeout: opts.timeoutMs }
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) }

  async function send(req: SendRequest): Promise<AttemptResult> {
    const started = performance.now()
    const done = (r: Omit<AttemptResult, 'durationMs'>): AttemptResult => ({ ...r, durationMs: Math.round(performance.now() - started) })
    const url = new URL(req.url)
    const deadline = AbortSignal.timeout(opts.timeoutMs)
    let addresses
    try {
      addresses = await Promise.race([
        resolveAllowed(url, opts.policy, opts.resolve),
        new Promise<never>((_, reject) => deadline.addEventListener('abort', () => reject(new Error('timed out resolving the host')), { once: true }))
      ])
    } catch (err) {
      const message = err instanceof WebhookUrlError ? err.message.replace(/^url: /, 'refused: the url ') : (err as Error).message
      return done({ ok: false, httpStatus: null, error: message.slice(0, 255), responseExcerpt: null })
    }
    const headers = {
      ...webhookHeaders(req.secrets, req.id, req.body),
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(req.body)),
      'user-agent': 'circle-livestream-webhooks/1'
    }
    const isHttps = url.protocol === 'https:'
    return new Promise<AttemptResult>((resolve) => {
      let settled = false
      const finish = (r: Omit<AttemptResult, 'durationMs'>) => {
        if (settled) return
        settled = true
        resolve(done(r))
      }
      const request = (isHttps ? https : http).request(
        url,
        {
          method: 'POST',
          headers,
          agent: isHttps ? agents.https : agents.http,
          lookup: pinnedLookup(addresses),
          signal: deadline,
          // The body we send is ours; what comes back is bounded below.
          maxHeaderSize: 16_384
        },
        (res) => {
          const status = res.statusCode ?? 0
          const chunks: Buffer[] = []
          let size = 0
          const settle = () => {
            const excerpt = Buffer.concat(chunks).toString('utf8').slice(0, EXCERPT_CHARS) || null
            const ok = status >= 200 && status < 300
            const error = ok
              ? null
              : status >= 300 && status < 400
                ? `answered ${status}: redirects are not followed`
                : `answered ${status}`
            finish({ ok, httpStatus: status, error, responseExcerpt: excerpt })
          }
          res.on('data', (chunk: Buffer) => {
            if (size >= READ_LIMIT) return
            chunks.push(chunk)
            size += chunk.length
            if (size >= READ_LIMIT) {
              // Enough: the rest is not ours to read. The connection is not reused.
              settle()
              res.destroy()
            }
          })
          res.on('end', settle)
          res.on('error', () => {
            if (deadline.aborted) finish({ ok: false, httpStatus: status, error: `timed out after ${opts.timeoutMs} ms reading the answer`, responseExcerpt: null })
            else settle()
          })
        }
      )
      request.on('error', (err: Error & { code?: string }) => {
        const reason =
          deadline.aborted || err.name === 'AbortError'
            ? `timed out after ${opts.timeoutMs} ms`
            : `${err.code ?? 'error'}: ${err.message}`
        finish({ ok: false, httpStatus: null, error: reason.slice(0, 255), responseExcerpt: null })
      })
      request.end(req.body)
    })
  }

  return {
    send,
    close() {
      agents.http.destroy()
      agents.https.destroy()
    }
  }
}

export type WebhookSender = ReturnType<typeof createWebhookSender>
