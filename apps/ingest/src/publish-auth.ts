import { createHash } from 'node:crypto'
import { findStreamByKey, type Database, type PublishTarget } from '@livestream/db'
import type { Logger } from './logger.js'

export type Verdict =
  | { ok: true; target: PublishTarget }
  | { ok: false; reason: 'malformed' | 'unknown' | 'ended' | 'unavailable' | 'throttled' }

const KEY_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
const FAIL_WINDOW_MS = 60_000
const MAX_CACHE = 10_000

/** A short, non-reversible tag for a key, for correlating log lines without writing the key. */
export const keyFingerprint = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 10)

/**
 * Decides whether a stream key may publish. Lookups are cached briefly, misses too, so a reconnect storm or a
 * guessing client costs the database little. An address that keeps failing is refused without a lookup, and slowly.
 */
export class PublishAuth {
  private readonly cache = new Map<string, { target: PublishTarget | null; expires: number }>()
  private readonly failures = new Map<string, { count: number; since: number }>()
  readonly stats = { accepted: 0, refused: 0, throttled: 0, unavailable: 0 }

  constructor(
    private readonly db: Database,
    private readonly cacheMs: number,
    private readonly failLimit: number,
    private readonly log: Logger
  ) {}

  async authorize(key: string, address: string): Promise<Verdict> {
    const fails = this.failuresOf(address)
    if (fails >= this.failLimit) {
      this.stats.throttled++
      // Slow the guesser down; the lookup is skipped entirely.
      await new Promise((r) => setTimeout(r, Math.min(500 * (fails - this.failLimit + 1), 5_000)))
      this.recordFailure(address)
      return { ok: false, reason: 'throttled' }
    }
    if (!KEY_PATTERN.test(key)) return this.refuse(address, 'malformed')
    let target: PublishTarget | null
    try {
      target = await this.lookup(key)
    } catch (err) {
      this.stats.unavailable++
      this.log.error({ err: { message: (err as Error).message } }, 'cannot authorise publish: database unreachable')
      return { ok: false, reason: 'unavailable' }
    }
    if (!target) return this.refuse(address, 'unknown')
    if (target.status === 'ended') return this.refuse(address, 'ended')
    this.stats.accepted++
    return { ok: true, target }
  }

  /** Forget a key's cached answer (after a rotation or an end was noticed). */
  forget(key: string): void {
    this.cache.delete(key)
  }

  private async lookup(key: string): Promise<PublishTarget | null> {
    const now = Date.now()
    const hit = this.cache.get(key)
    if (hit && hit.expires > now) return hit.target
    const target = await findStreamByKey(this.db, key)
    if (this.cacheMs > 0) {
      if (this.cache.size >= MAX_CACHE) this.cache.clear()
      this.cache.set(key, { target, expires: now + this.cacheMs })
    }
    return target
  }

  private failuresOf(address: string): number {
    const f = this.failures.get(address)
    if (!f) return 0
    if (Date.now() - f.since > FAIL_WINDOW_MS) {
      this.failures.delete(address)
      return 0
    }
    return f.count
  }

  private recordFailure(address: string): void {
    const f = this.failures.get(address)
    if (f && Date.now() - f.since <= FAIL_WINDOW_MS) f.count++
    else {
      if (this.failures.size >= MAX_CACHE) this.failures.clear()
      this.failures.set(address, { count: 1, since: Date.now() })
    }
  }

  private refuse(address: string, reason: 'malformed' | 'unknown' | 'ended'): Verdict {
    this.stats.refused++
    this.recordFailure(address)
    return { ok: false, reason }
  }
}
