import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'
import { compareIds, sseFrame, type LiveUpdate } from './live-update.js'
import type { Slot } from './connection-slots.js'
import type { UpdateLog } from './update-log.js'

/** Who a client is: a logged-in user (everything members see) or the public (by playback id). */
export type Audience = 'member' | 'public'

export interface SseClient {
  readonly streamId: number
  readonly audience: Audience
  readonly res: ServerResponse
  readonly slot: Slot
  /** Updates heard while the client's first answer (snapshot or replay) is prepared; null once they flow directly. */
  pending: LiveUpdate[] | null
  /** The newest update id written to it: what is older is not written again. */
  lastId: string | undefined
}

interface Group {
  member: Set<SseClient>
  public: Set<SseClient>
}

export interface SseHubOptions {
  redisUrl: string
  log: UpdateLog
  logger: FastifyBaseLogger
  heartbeatMs: number
  /** Called at each heartbeat (connection slots are refreshed then). */
  onHeartbeat?: () => Promise<void>
  /**
   * The current state of a stream as snapshot frames (members', public), for clients whose updates may have been
   * lost (the subscription dropped and came back).
   */
  snapshot: (streamId: number) => Promise<{ id: string | undefined; member: Buffer; public: Buffer } | undefined>
}

/** A client that lets this much pile up unread is cut: a reader that is gone, or too slow to follow. */
const MAX_BUFFERED_BYTES = 256 * 1024
const HEARTBEAT = Buffer.from(': hb\n\n')

/**
 * The live-update connections of this process, by stream, and the one Redis subscription that feeds them. An update
 * is turned into bytes once per audience and the same buffer is written to every client of the stream, so a fan-out
 * to thousands of clients costs a loop of socket writes. One timer writes every client's heartbeat.
 */
export class SseHub {
  private readonly groups = new Map<number, Group>()
  private sub: Redis | undefined
  private subscribed: Promise<void> | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private everReady = false
  private closed = false
  readonly stats = { delivered: 0, cut: 0 }

  constructor(private readonly opts: SseHubOptions) {}

  get size(): number {
    let n = 0
    for (const g of this.groups.values()) n += g.member.size + g.public.size
    return n
  }

  /** Subscribes on first use (a process that serves no live updates, such as the worker, never does). */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('live updates are closed'))
    this.subscribed ??= this.subscribe().catch((err: unknown) => {
      this.subscribed = undefined
      const sub = this.sub
      this.sub = undefined
      sub?.disconnect()
      throw err
    })
    return this.subscribed
  }

  private async subscribe(): Promise<void> {
    const sub = new Redis(this.opts.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (n) => Math.min(n * 200, 2_000),
      // Named after the channel, so an operator can tell these connections apart in CLIENT LIST.
      connectionName: this.opts.log.channel
    })
    this.sub = sub
    sub.on('error', (err) => this.opts.logger.debug({ err: { message: err.message } }, 'live updates subscriber connection problem'))
    sub.on('message', (_channel: string, message: string) => {
      const update = this.opts.log.parse(message)
      if (update) this.deliver(update)
    })
    // ioredis subscribes again after a reconnect; whatever was published meanwhile is lost to us, so every client
    // gets the current state again.
    sub.on('ready', () => {
      if (this.everReady) void this.resync()
      this.everReady = true
    })
    await sub.connect()
    await sub.subscribe(this.opts.log.channel)
    this.heartbeat ??= setInterval(() => this.beat(), this.opts.heartbeatMs)
    this.heartbeat.unref()
  }

  /** Registers a client; until `start`, updates for it are held. */
  add(client: SseClient): void {
    let g = this.groups.get(client.streamId)
    if (!g) this.groups.set(client.streamId, (g = { member: new Set(), public: new Set() }))
    g[client.audience].add(client)
  }

  /** The client's first answer was written (its newest id `lastId`): what was held for it follows, then live updates. */
  start(client: SseClient): void {
    const held = client.pending ?? []
    client.pending = null
    for (const u of held) this.writeUpdate(client, u)
  }

  remove(client: SseClient): void {
    const g = this.groups.get(client.streamId)
    if (!g) return
    g[client.audience].delete(client)
    if (g.member.size === 0 && g.public.size === 0) this.groups.delete(client.streamId)
    client.slot.release()
  }

  /** An update heard on the channel: to every client of its stream, the same bytes for each audience. */
  deliver(update: LiveUpdate): void {
    const g = this.groups.get(update.streamId)
    if (!g) return
    let memberFrame: Buffer | undefined
    let publicFrame: Buffer | undefined
    for (const c of g.member) {
      if (c.pending) c.pending.push(update)
      else this.send(c, update.id, (memberFrame ??= sseFrame(update.event, update.memberData, update.id)))
    }
    if (!update.publicData) return
    for (const c of g.public) {
      if (c.pending) c.pending.push(update)
      else this.send(c, update.id, (publicFrame ??= sseFrame(update.event, update.publicData, update.id)))
    }
  }

  /** One update to one client, in its audience's rendering (none for the public's `participants`); older ids skipped. */
  writeUpdate(client: SseClient, u: LiveUpdate): void {
    const data = client.audience === 'member' ? u.memberData : u.publicData
    if (data) this.send(client, u.id, sseFrame(u.event, data, u.id))
  }

  private send(client: SseClient, id: string | undefined, frame: Buffer): void {
    if (id !== undefined) {
      if (client.lastId !== undefined && compareIds(id, client.lastId) <= 0) return
      client.lastId = id
    }
    this.raw(client, frame)
  }

  private raw(client: SseClient, frame: Buffer): void {
    const res = client.res
    if (res.destroyed || res.writableEnded) return
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.stats.cut++
      res.destroy()
      return
    }
    res.write(frame)
    this.stats.delivered++
  }

  private beat(): void {
    for (const g of this.groups.values()) {
      for (const c of g.member) if (!c.pending) this.raw(c, HEARTBEAT)
      for (const c of g.public) if (!c.pending) this.raw(c, HEARTBEAT)
    }
    this.opts.onHeartbeat?.().catch((err: Error) => this.opts.logger.debug({ err: { message: err.message } }, 'live update slots not refreshed'))
  }

  /** After the subscription came back: the current state to every client, since updates may have been missed. */
  private async resync(): Promise<void> {
    for (const [streamId, g] of [...this.groups]) {
      try {
        const snap = await this.opts.snapshot(streamId)
        if (!snap) continue
        for (const c of g.member) if (!c.pending) this.resnap(c, snap.id, snap.member)
        for (const c of g.public) if (!c.pending) this.resnap(c, snap.id, snap.public)
      } catch (err) {
        this.opts.logger.warn({ err: { message: (err as Error).message }, streamId }, 'live updates not resynchronised')
      }
    }
  }

  private resnap(client: SseClient, id: string | undefined, frame: Buffer): void {
    if (id !== undefined && (client.lastId === undefined || compareIds(id, client.lastId) > 0)) client.lastId = id
    this.raw(client, frame)
  }

  /** Ends every connection (so that the server can close) and the subscription. Clients reconnect elsewhere. */
  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.heartbeat)
    for (const g of [...this.groups.values()]) {
      for (const c of [...g.member, ...g.public]) {
        this.remove(c)
        c.res.end()
      }
    }
    const sub = this.sub
    this.sub = undefined
    if (sub) await sub.quit().catch(() => sub.disconnect())
  }
}
