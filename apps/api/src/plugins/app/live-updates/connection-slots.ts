import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'

// One sorted set per holder (a user, or a client address): members are connections, scores the time each lapses
// unless refreshed. Lapsed members (a process that died with its connections open) are dropped before counting.
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`

type WithAcquire = Redis & {
  liveSlotAcquire(key: string, now: number, max: number, until: number, member: string, ttl: number): Promise<number>
}

export interface ConnectionSlotsOptions {
  prefix: string
  /** How long a slot lives unless refreshed; refreshed at every heartbeat, so a few heartbeats. */
  leaseMs: number
  now?: () => number
}

/** A held slot: give it back when the connection ends. */
export interface Slot {
  readonly key: string
  readonly member: string
  release(): void
}

/**
 * The cap on open live-update connections per holder, over every api process: each connection holds a slot in Redis
 * for as long as it is open (released at its end, refreshed at each heartbeat, lapsing a few heartbeats after a
 * process that died). While Redis cannot be asked, the cap is applied to this process's own connections.
 */
export function createConnectionSlots(redis: Redis, opts: ConnectionSlotsOptions) {
  const now = opts.now ?? Date.now
  const r = redis as WithAcquire
  if (typeof r.liveSlotAcquire !== 'function') redis.defineCommand('liveSlotAcquire', { numberOfKeys: 1, lua: ACQUIRE })
  const process = randomBytes(6).toString('base64url')
  let n = 0
  /** Slots held here, by key: the fallback count and what each heartbeat refreshes. */
  const held = new Map<string, Set<string>>()

  const keep = (key: string, member: string): Slot => {
    let set = held.get(key)
    if (!set) held.set(key, (set = new Set()))
    set.add(member)
    let released = false
    return {
      key,
      member,
      release() {
        if (released) return
        released = true
        const s = held.get(key)
        s?.delete(member)
        if (s?.size === 0) held.delete(key)
        redis.zrem(key, member).catch(() => {})
      }
    }
  }

  return {
    /** A slot under `holder` (`u:<user id>`, `a:<address>`), or null when `max` are taken already. */
    async acquire(holder: string, max: number): Promise<Slot | null> {
      const key = `${opts.prefix}:live:slots:${holder}`
      const member = `${process}:${++n}`
      const t = now()
      try {
        const ok = await r.liveSlotAcquire(key, t, max, t + opts.leaseMs, member, opts.leaseMs)
        return ok === 1 ? keep(key, member) : null
      } catch {
        return (held.get(key)?.size ?? 0) >= max ? null : keep(key, member)
      }
    },

    /** Extends every slot held here by one lease (one pipeline, whatever their number). */
    async refresh(): Promise<void> {
      if (held.size === 0) return
      const until = now() + opts.leaseMs
      const p = redis.pipeline()
      for (const [key, members] of held) {
        for (const m of members) p.zadd(key, until, m)
        p.pexpire(key, opts.leaseMs)
      }
      await p.exec()
    },

    get size() {
      let total = 0
      for (const s of held.values()) total += s.size
      return total
    }
  }
}
export type ConnectionSlots = ReturnType<typeof createConnectionSlots>
