import net from 'node:net'
import { once } from 'node:events'

export interface Upstream {
  name: string
  port: number
  /** The node's readiness URL: while it answers anything but 200 the balancer sends it no new connection. */
  readyUrl: string
}

/**
 * A TCP load balancer as a cloud one behaves, for RTMP and for media HTTP in front of several ingest nodes: new
 * connections go to the first upstream (in the given order) whose readiness probe last answered 200; connections
 * already open stay where they are until either side closes them. A node that starts draining (readyz 503) thus
 * takes no new publisher or player from the moment the next probe sees it, and keeps those it has.
 */
export class ReadyBalancer {
  private server: net.Server | null = null
  private readonly sockets = new Set<net.Socket>()
  private readonly ready = new Map<string, boolean>()
  private probe: NodeJS.Timeout | null = null
  /** Connections sent to each upstream, by name. */
  readonly sent = new Map<string, number>()
  port = 0

  constructor(
    private readonly upstreams: Upstream[],
    private readonly probeMs = 200
  ) {}

  async start(): Promise<number> {
    await this.check()
    this.probe = setInterval(() => void this.check(), this.probeMs)
    const server = net.createServer((client) => {
      const target = this.upstreams.find((u) => this.ready.get(u.name))
      if (!target) return void client.destroy()
      this.sent.set(target.name, (this.sent.get(target.name) ?? 0) + 1)
      const upstream = net.connect(target.port, '127.0.0.1')
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
        s.on('close', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream).pipe(client)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    this.server = server
    this.port = (server.address() as net.AddressInfo).port
    return this.port
  }

  private async check(): Promise<void> {
    await Promise.all(
      this.upstreams.map(async (u) => {
        const ok = await fetch(u.readyUrl, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false)
        this.ready.set(u.name, ok)
      })
    )
  }

  async stop(): Promise<void> {
    if (this.probe) clearInterval(this.probe)
    const server = this.server
    this.server = null
    for (const s of this.sockets) s.destroy()
    if (server) await new Promise((r) => server.close(r))
  }
}
