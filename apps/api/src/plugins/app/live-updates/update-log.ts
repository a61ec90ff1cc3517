import type { Redis } from 'ioredis'
import type { LiveEventName, LiveUpdate } from './live-update.js'

export interface UpdateLogOptions {
  /** The deployment's prefix (`QUEUE_PREFIX`): every key and the channel live under it. */
  prefix: string
  /** Updates kept per stream for replay (trimmed approximately, as Redis does cheaply). */
  maxEvents: number
  /** How long a stream's log outlives its last update. */
  ttlMs: number
}

// Appends to the stream's log and publishes in one step: the entry id Redis gives is the SSE id, and since scripts
// run one at a time, the order of the log is the order in which every process hears the updates.
const APPEND = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2], 'm', ARGV[3], 'p', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', KEYS[2], ARGV[6] .. '\\n' .. id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4])
return id`

type WithAppend = Redis & {
  liveUpdateAppend(log: string, channel: string, max: number, event: string, member: string, pub: string, ttl: number, streamId: number): Promise<string>
}

/**
 * Where live updates go through Redis: one channel for the deployment, heard by every api process, and a short log per
 * stream (a Redis stream) whose entry ids are the SSE ids, so that a client coming back with `Last-Event-ID` is sent
 * what it missed.
 */
export function createUpdateLog(redis: Redis, opts: UpdateLogOptions) {
  const channel = `${opts.prefix}:live-updates`
  const logKey = (streamId: number) => `${opts.prefix}:live:log:${streamId}`
  const r = redis as WithAppend
  if (typeof r.liveUpdateAppend !== 'function') redis.defineCommand('liveUpdateAppend', { numberOfKeys: 2, lua: APPEND })

  const fromEntry = (streamId: number, [id, fields]: [string, string[]]): LiveUpdate => {
    const f: Record<string, string> = {}
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
    return { streamId, id, event: f.e as LiveEventName, memberData: f.m ?? '', publicData: f.p ?? '' }
  }

  return {
    channel,
    logKey,

    /** Logs and publishes an update; resolves with its id. */
    append(u: Omit<LiveUpdate, 'id'>): Promise<string> {
      return r.liveUpdateAppend(logKey(u.streamId), channel, opts.maxEvents, u.event, u.memberData, u.publicData, opts.ttlMs, u.streamId)
    },

    /**
     * The updates after `lastId`, oldest first; undefined when `lastId` is no longer (or never was) in the log, so
     * that what came between cannot be known: the client then needs a snapshot.
     */
    async since(streamId: number, lastId: string): Promise<LiveUpdate[] | undefined> {
      const entries = (await redis.xrange(logKey(streamId), lastId, '+', 'COUNT', opts.maxEvents * 2 + 1)) as Array<[string, string[]]>
      if (entries[0]?.[0] !== lastId) return undefined
      return entries.slice(1).map((e) => fromEntry(streamId, e))
    },

    /** The id of the stream's latest update, if its log still has one. */
    async latestId(streamId: number): Promise<string | undefined> {
      const entries = (await redis.xrevrange(logKey(streamId), '+', '-', 'COUNT', 1)) as Array<[string, string[]]>
      return entries[0]?.[0]
    },

    /** A message heard on the channel; undefined if it is not one of ours. */
    parse(message: string): LiveUpdate | undefined {
      const a = message.indexOf('\n')
      const b = message.indexOf('\n', a + 1)
      const c = message.indexOf('\n', b + 1)
      const d = message.indexOf('\n', c + 1)
      if (a < 0 || b < 0 || c < 0 || d < 0) return undefined
      const streamId = Number(message.slice(0, a))
      if (!Number.isSafeInteger(streamId)) return undefined
      return {
        streamId,
        id: message.slice(a + 1, b),
        event: message.slice(b + 1, c) as LiveEventName,
        memberData: message.slice(c + 1, d),
        publicData: message.slice(d + 1)
      }
    }
  }
}
export type UpdateLog = ReturnType<typeof createUpdateLog>
