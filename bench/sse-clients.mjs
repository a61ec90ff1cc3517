// One load-generator process of `bench/sse.mjs`: holds many SSE connections over raw sockets (no HTTP client library,
// no parser beyond a substring search), and reports when a marked update reached each of them. Driven over IPC.
import net from 'node:net'

const sockets = []
let round = null

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes of one machine. */
const now = () => performance.timeOrigin + performance.now()

function connect({ port, path, token, n, batch = 50 }) {
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`
  let opened = 0
  let ready = 0
  let failed = 0
  const openOne = () =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      const entry = { s, tail: '', ready: false, seenAt: 0 }
      s.setNoDelay(true)
      s.setEncoding('latin1')
      s.on('connect', () => s.write(request))
      s.on('data', (chunk) => {
        // A frame may be cut between reads: keep the end of the previous read.
        const text = entry.tail + chunk
        entry.tail = text.slice(-256)
        if (!entry.ready) {
          if (text.includes('event: snapshot')) {
            entry.ready = true
            ready++
            resolve()
          } else if (/^HTTP\/1\.1 [45]/.test(text)) {
            failed++
            resolve()
          }
        }
        if (round && !entry.seenAt && text.includes(round.marker)) {
          entry.seenAt = now()
          round.arrivals.push(entry.seenAt)
          if (round.arrivals.length === sockets.length) finishRound()
        }
      })
      s.on('error', () => {
        if (!entry.ready) failed++
        resolve()
      })
      sockets.push(entry)
      opened++
    })
  return (async () => {
    // In batches: a burst of thousands of SYNs at once overflows the listen backlog.
    for (let i = 0; i < n; i += batch) await Promise.all(Array.from({ length: Math.min(batch, n - i) }, openOne))
    return { opened, ready, failed }
  })()
}

function finishRound() {
  if (!round) return
  clearTimeout(round.timer)
  process.send({ type: 'round', arrivals: round.arrivals, missing: sockets.length - round.arrivals.length })
  round = null
}

process.on('message', async (msg) => {
  if (msg.type === 'connect') {
    process.send({ type: 'connected', ...(await connect(msg)) })
  } else if (msg.type === 'watch') {
    for (const e of sockets) {
      e.seenAt = 0
      e.tail = ''
    }
    round = { marker: msg.marker, arrivals: [], timer: setTimeout(finishRound, msg.timeoutMs ?? 20_000) }
    process.send({ type: 'watching' })
  } else if (msg.type === 'close') {
    for (const e of sockets) e.s.destroy()
    process.send({ type: 'closed' })
    process.exit(0)
  }
})
