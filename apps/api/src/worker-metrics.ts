import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { SECURITY_HEADERS } from './plugins/app/security-headers.js'

/**
 * The worker process serves no API, yet what only it counts (events applied, its reaper's actions) must be scraped:
 * this listener answers `GET /metrics` alone, through the app's own route (the same credential check, the same
 * envelope on a refusal), and 404 in the envelope for anything else. One scrape every few seconds: `inject` is cheap
 * enough and keeps one route as the only definition of the endpoint.
 */
export async function serveWorkerMetrics(app: FastifyInstance, port: number, host: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' || path !== '/metrics') {
      const body = JSON.stringify({ success: false, data: null, message: 'not found: this port serves GET /metrics only' })
      res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    const headers = req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }
    app.inject({ method: 'GET', url: '/metrics', headers }).then(
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers as http.OutgoingHttpHeaders)
        res.end(answer.rawPayload)
      },
      (err: unknown) => {
        app.log.error({ err }, 'worker metrics failed')
        res.writeHead(500).end()
      }
    )
  })
  server.requestTimeout = 10_000
  server.headersTimeout = 5_000
  server.listen(port, host)
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
