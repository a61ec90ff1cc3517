import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from './ports.js'
import { startProcess, type Managed } from './process.js'
import { waitFor } from './wait.js'

/**
 * A Redis server of the test's own, on a spare port, persisting to its own folder (append-only), so a test can stop
 * and restart it without touching the machine's shared one.
 */
export class OwnRedis {
  private proc: Managed | null = null
  port = 0
  dir = ''

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    if (!this.port) this.port = await freePort()
    if (!this.dir) this.dir = await mkdtemp(path.join(tmpdir(), 'ls-redis-'))
    this.proc = startProcess('redis', process.env.REDIS_SERVER ?? 'redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'
    ], { PATH: process.env.PATH })
    await waitFor('own redis', async () => {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      // Refused while the server starts: connect() rejects and waitFor asks again; the event itself is not news.
      c.on('error', () => {})
      try {
        await c.connect()
        return (await c.ping()) === 'PONG'
      } finally {
        c.disconnect()
      }
    })
  }

  /** SIGTERM: Redis writes its append-only file and exits, as in a restart. */
  async stop(): Promise<void> {
    await this.proc?.stop('SIGTERM')
    this.proc = null
  }

  async destroy(): Promise<void> {
    await this.stop()
    if (this.dir) await rm(this.dir, { recursive: true, force: true })
  }
}
