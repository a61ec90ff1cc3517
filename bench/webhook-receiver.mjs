// The receiving end of the webhooks bench: answers every POST 200 at once and counts them, and the distinct
// webhook-ids among them; GET /stats tells how many, and when the first came and the last new id; POST /reset starts over.
import http from 'node:http'

let count = 0
let first = 0
let last = 0
let ids = new Set()
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count, distinct: ids.size, first, last }))
    return
  }
  req.resume()
  req.on('end', () => {
    if (req.url === '/reset') {
      count = first = last = 0
      ids = new Set()
    } else {
      const now = performance.timeOrigin + performance.now()
      if (count === 0) first = now
      count++
      const id = req.headers['webhook-id'] ?? `anonymous-${count}`
      if (!ids.has(id)) {
        ids.add(id)
        last = now
      }
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
})
server.keepAliveTimeout = 10_000
server.listen(Number(process.env.PORT), '127.0.0.1')
