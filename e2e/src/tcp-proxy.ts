import net from 'node:net'
import { once } from 'node:events'

/**
 * A TCP proxy in front of a real server, for cutting the network without touching the server (shared by other
 * tests and processes). `cut()` drops every connection and refuses new ones; `restore()` lets them through again.
 */
export class TcpProxy {
  private server: net.Server | null = null
  private readonly sockets = new Set<net.Socket>()
  port = 0

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number
  ) {}

  async start(port = 0): Promise<number> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream).pipe(client)
    })
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    this.server = server
    this.port = (server.address() as net.AddressInfo).port
    return this.port
  }

  async cut(): Promise<void> {
    const server = this.server
    this.server = null
    for (const s of this.sockets) s.destroy()
    if (server) await new Promise((r) => server.close(r))
  }

  async restore(): Promise<void> {
    await this.start(this.port)
  }

  async stop(): Promise<void> {
    await this.cut()
  }
}
