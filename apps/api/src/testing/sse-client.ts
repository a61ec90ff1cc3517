import { request, type IncomingHttpHeaders } from 'node:http'

/** One Server-Sent Event as a client sees it; comments (heartbeats) are kept apart. */
export interface SseEvent {
  id: string | undefined
  event: string
  data: string
}

export interface SseConnection {
  status: number
  headers: IncomingHttpHeaders
  /** Every event received so far, in order. */
  events: SseEvent[]
  /** Comment lines received (`: hb`), without the colon. */
  comments: string[]
  /** The `retry:` hints received. */
  retries: number[]
  /** The body when the answer is not an event stream (an error in the envelope). */
  body(): string
  /** The first event from index `from` on that satisfies `match`; rejects after `timeoutMs` naming `what`. */
  next(what: string, match: (e: SseEvent) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<SseEvent>
  /** Resolves when the server ends the stream (or the connection drops). */
  ended: Promise<void>
  close(): void
}

/**
 * A minimal SSE client over node:http for tests (the api's own and e2e's, as `@livestream/api/testing/sse-client`): it parses the stream as the EventSource specification says
 * (`id:`, `event:`, `data:`, comments, `retry:`), keeps everything it received and lets a test await an event.
 */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: SseEvent[] = []
      const comments: string[] = []
      const retries: number[] = []
      const waiters = new Set<() => void>()
      let raw = ''
      let buf = ''
      let endedResolve!: () => void
      const ended = new Promise<void>((r) => (endedResolve = r))
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        raw += chunk
        if (raw.length > 1_000_000) raw = raw.slice(-500_000)
        buf += chunk
        let cut: number
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut)
          buf = buf.slice(cut + 2)
          let id: string | undefined
          let event = 'message'
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim())
            else if (line.startsWith('id:')) id = line.slice(3).trim()
            else if (line.startsWith('event:')) event = line.slice(6).trim()
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
            else if (line.startsWith('retry:')) retries.push(Number(line.slice(6).trim()))
          }
          if (data.length) events.push({ id, event, data: data.join('\n') })
        }
        for (const w of [...waiters]) w()
      })
      const finish = () => {
        endedResolve()
        for (const w of [...waiters]) w()
      }
      res.on('end', finish)
      res.on('close', finish)
      res.on('error', finish)
      let done = false
      void ended.then(() => (done = true))
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        comments,
        retries,
        body: () => raw,
        ended,
        next(what, match, opts = {}) {
          const { from = 0, timeoutMs = 10_000 } = opts
          return new Promise((ok, fail) => {
            const check = () => {
              const found = events.slice(from).find(match)
              if (found) {
                cleanup()
                ok(found)
              } else if (done) {
                cleanup()
                fail(new Error(`the stream ended before ${what}; got: ${events.map((e) => e.event).join(', ')}`))
              }
            }
            const timer = setTimeout(() => {
              cleanup()
              fail(new Error(`timed out waiting for ${what}; got: ${events.map((e) => `${e.event} ${e.data.slice(0, 200)}`).join(' | ')}`))
            }, timeoutMs)
            const cleanup = () => {
              clearTimeout(timer)
              waiters.delete(check)
            }
            waiters.add(check)
            check()
          })
        },
        close() {
          req.destroy()
          res.destroy()
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}
