import { randomBytes } from 'node:crypto'

/**
 * Test support: every test's Redis keys live under one prefix of its own (queue, heartbeats), named here, and are
 * removed with it when the test file ends. `LSTEST_RUN` (set by a check) tags a run's prefixes so that it can count
 * what that run left behind without seeing other runs on the same Redis.
 */
export const TEST_PREFIX_ROOT = 'lstest'

/** A fresh prefix for one test file or stack: `lstest-[<run>-]<name>-<random>`. */
export function testQueuePrefix(name: string): string {
  const run = process.env.LSTEST_RUN
  return `${TEST_PREFIX_ROOT}-${run ? `${run}-` : ''}${name}-${randomBytes(4).toString('hex')}`
}

/** The part of ioredis this needs (kept structural: this package depends on no Redis client). */
export interface KeyScanner {
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[string, string[]]>
  unlink(...keys: string[]): Promise<number>
}

async function eachKey(redis: KeyScanner, pattern: string, visit: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    if (keys.length) await visit(keys)
    cursor = next
  } while (cursor !== '0')
}

/** Removes every key under `prefix` (the BullMQ queue, heartbeats, anything else); returns how many there were. */
export async function dropTestPrefix(redis: KeyScanner, prefix: string): Promise<number> {
  if (!prefix.startsWith(`${TEST_PREFIX_ROOT}-`)) throw new Error(`refusing to drop keys of "${prefix}": not a test prefix`)
  return dropPrefixKeys(redis, prefix)
}

/**
 * Removes every key under `prefix` (`<prefix>:*`), for a caller that owns the whole prefix (a test's, a bench's);
 * returns how many there were.
 */
export async function dropPrefixKeys(redis: KeyScanner, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`refusing to drop keys of "${prefix}": not a plain prefix`)
  let n = 0
  await eachKey(redis, `${prefix}:*`, async (keys) => {
    n += await redis.unlink(...keys)
  })
  return n
}

/** How many keys exist whose name starts with `start` (e.g. `lstest-<run>-`). */
export async function countKeysStartingWith(redis: KeyScanner, start: string): Promise<number> {
  let n = 0
  await eachKey(redis, `${start}*`, async (keys) => {
    n += keys.length
  })
  return n
}
