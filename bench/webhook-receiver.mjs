// The receiving end of the webhooks bench: answers every POST 200 at once and counts them; GET /stats tells how many
// and when the first and last came; POST /reset starts over.
import http from 'node:http'

let count = 0
let first = 0
let last = 0
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count, first, last }))
    return
  }
  req.resume()
  req.on('end', () => {
    if (req.url === '/reset') {
      count = first = last = 0
    } else {
      const now = performance.timeOrigin + performance.now()
      if (count === 0) first = now
      last = now
      count++
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
})
server.keepAliveTimeout = 10_000
server.listen(Number(process.env.PORT), '127.0.0.1')
