import { createHash } from 'node:crypto'
import { loggableError, type PublishTarget } from '@livestream/db'
import type { Logger } from './logger.js'

export type Verdict =
  | { ok: true; target: PublishTarget }
  | { ok: false; reason: 'malformed' | 'unknown' | 'ended' | 'unavailable' }

const KEY_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
const FAIL_WINDOW_MS = 60_000
const MAX_CACHE = 10_000
/** First delay over the limit; it doubles with each further failure, up to `slowdownMaxMs`. */
const SLOWDOWN_BASE_MS = 250
/**
 * Publishes of one address waiting their turn; past this a publish waits the longest delay on its own and is then
 * looked up like any other (never refused unseen: the valid key may be the one in excess).
 */
const MAX_WAITING_PER_ADDRESS = 8

/** A short, non-reversible tag for a key, for correlating log lines without writing the key. */
export const keyFingerprint = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 10)

export interface PublishAuthOptions {
  /** The stream a key publishes to, or null when no stream has it. */
  lookup: (key: string) => Promise<PublishTarget | null>
  /** How long an answer (a miss too) is reused. */
  cacheMs: number
  /** Failures of one address within a minute before its verdicts are slowed down. */
  failLimit: number
  /** The longest an address over the limit waits for a verdict. */
  slowdownMaxMs: number
  log: Logger
}

interface Line {
  tail: Promise<unknown>
  waiting: number
}

/**
 * Decides whether a stream key may publish. Lookups are cached briefly, misses too, so a reconnect storm or a
 * guessing client costs the database little. An address that keeps failing is slowed down, not locked out: its
 * publishes are judged one at a time, each after a delay that grows with its failures, and a valid key is still
 * accepted (OBS retrying an ended key, then the user pasting the new one, gets in after that delay).
 */
export class PublishAuth {
  private readonly cache = new Map<string, { target: PublishTarget | null; expires: number }>()
  private readonly failures = new Map<string, { count: number; since: number }>()
  private readonly inFlight = new Map<string, number>()
  private readonly lines = new Map<string, Line>()
  readonly stats = { accepted: 0, refused: 0, throttled: 0, unavailable: 0 }

  constructor(private readonly opts: PublishAuthOptions) {}

  async authorize(key: string, address: string): Promise<Verdict> {
    // Quick answers for an address while its failures, plus the checks it already has running, stay under the
    // limit: a burst of guesses cannot fan out into more concurrent lookups than that.
    if (this.failuresOf(address) + (this.inFlight.get(address) ?? 0) < this.opts.failLimit && !this.lines.has(address)) {
      return this.judge(key, address)
    }
    return this.inTurn(address, () => this.judge(key, address))
  }

  /** Forget a key's cached answer (after a rotation or an end was noticed). */
  forget(key: string): void {
    this.cache.delete(key)
  }

  /** One verdict at a time for `address`, each after the delay its failures have earned. */
  private async inTurn(address: string, judge: () => Promise<Verdict>): Promise<Verdict> {
    let line = this.lines.get(address)
    if ((line && line.waiting >= MAX_WAITING_PER_ADDRESS) || (!line && this.lines.size >= MAX_CACHE)) {
      // The line is full (a flood from this address), or too many addresses are in line. Refusing unseen would lock
      // a valid key out behind the flood; instead this publish waits the cap and is judged. A flood's cost is then
      // one lookup per connection per `slowdownMaxMs`, bounded by the connections ingest lets in.
      this.stats.throttled++
      await new Promise((r) => setTimeout(r, this.opts.slowdownMaxMs))
      return judge()
    }
    if (!line) {
      line = { tail: Promise.resolve(), waiting: 0 }
      this.lines.set(address, line)
    }
    line.waiting++
    this.stats.throttled++
    const turn = line.tail.then(async () => {
      const delay = this.delayFor(address)
      if (delay > 0) await new Promise((r) => setTimeout(r, delay))
      return judge()
    })
    line.tail = turn.catch(() => undefined)
    try {
      return await turn
    } finally {
      line.waiting--
      if (line.waiting === 0 && this.lines.get(address) === line) this.lines.delete(address)
    }
  }

  private delayFor(address: string): number {
    const excess = this.failuresOf(address) - this.opts.failLimit
    if (excess < 0) return 0
    return Math.min(SLOWDOWN_BASE_MS * 2 ** Math.min(excess, 20), this.opts.slowdownMaxMs)
  }

  private async judge(key: string, address: string): Promise<Verdict> {
    if (!KEY_PATTERN.test(key)) return this.refuse(address, 'malformed')
    this.inFlight.set(address, (this.inFlight.get(address) ?? 0) + 1)
    let target: PublishTarget | null
    try {
      target = await this.lookup(key)
    } catch (err) {
      this.stats.unavailable++
      this.opts.log.error({ err: loggableError(err), key: keyFingerprint(key) }, 'cannot authorise publish: database unreachable')
      return { ok: false, reason: 'unavailable' }
    } finally {
      const n = (this.inFlight.get(address) ?? 1) - 1
      if (n > 0) this.inFlight.set(address, n)
      else this.inFlight.delete(address)
    }
    if (!target) return this.refuse(address, 'unknown')
    if (target.status === 'ended') return this.refuse(address, 'ended')
    this.stats.accepted++
    return { ok: true, target }
  }

  private async lookup(key: string): Promise<PublishTarget | null> {
    const now = Date.now()
    const hit = this.cache.get(key)
    if (hit && hit.expires > now) return hit.target
    const target = await this.opts.lookup(key)
    if (this.opts.cacheMs > 0) {
      if (this.cache.size >= MAX_CACHE) this.cache.clear()
      this.cache.set(key, { target, expires: now + this.opts.cacheMs })
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
