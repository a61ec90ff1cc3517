import { hash, verify } from '@node-rs/argon2'
import { eq, sql } from 'drizzle-orm'
import { isDuplicateEntry, streams, users, type Database } from '@livestream/db'
import { noStreamCache, type StreamCache } from '../streams/stream-cache.js'
import { DomainError } from '../domain-errors.js'
import { createHashGate, type HashGate } from './hash-gate.js'

export type UserRow = typeof users.$inferSelect

// argon2id (the library default algorithm) with OWASP's minimum: 19 MiB, 2 passes.
const ARGON = { memoryCost: 19_456, timeCost: 2, parallelism: 1 }
const BAD_LOGIN = 'invalid email or password'

const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/

/**
 * The one spelling of an email, for storing and for comparing (the column compares byte for byte): compatibility forms
 * folded (NFKC: full-width letters, ligatures), lower case, no surrounding space. Accents and `ß` stay what they are:
 * `josé@` and `jose@` are two addresses, as are `straße@` and `strasse@`.
 */
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').toLowerCase().trim()
}

export function userView(u: UserRow) {
  return { id: u.id, email: u.email, display_name: u.displayName, created_at: u.createdAt.toISOString() }
}

export function createUsersService(
  db: Database,
  gate: HashGate = createHashGate({ concurrency: 1, maxWaiting: Infinity }),
  cache: StreamCache = noStreamCache
) {
  // Prepared once: the per-request auth lookup skips query building.
  const byId = db.select().from(users).where(eq(users.id, sql.placeholder('id'))).limit(1).prepare()

  // Verified against when the email is unknown, so both failures cost the same time.
  const dummyHash = hash('not-a-real-password', ARGON)

  return {
    /** The process-wide bound on password hashing (its peak and refusals, for tests and metrics). */
    hashing: gate.stats,

    async register(email: string, password: string, displayName: string): Promise<UserRow> {
      const normalized = normalizeEmail(email)
      // NFKC may make an address out of shape (a full-width `＠` becomes a second `@`).
      if (!EMAIL_SHAPE.test(normalized)) throw new DomainError('invalid', 'email: must be an email address')
      const passwordHash = await gate.run(() => hash(password, ARGON))
      try {
        const [res] = await db.insert(users).values({ email: normalized, passwordHash, displayName })
        const [row] = await db.select().from(users).where(eq(users.id, res.insertId))
        return row as UserRow
      } catch (err) {
        if (isDuplicateEntry(err)) throw new DomainError('conflict', 'email is already registered')
        throw err
      }
    },

    async login(email: string, password: string): Promise<UserRow> {
      const [row] = await db.select().from(users).where(eq(users.email, normalizeEmail(email))).limit(1)
      const stored = row?.passwordHash ?? (await dummyHash)
      const ok = await gate.run(() => verify(stored, password).catch(() => false))
      if (!row || !row.passwordHash || !ok) throw new DomainError('unauthenticated', BAD_LOGIN)
      return row
    },

    /**
     * Deletes an account and, by the foreign keys' cascade, its streams and participations. Ingest's key recheck then
     * cuts any publisher of those streams (their keys no longer exist). Returns the ids of the streams removed.
     */
    async remove(id: number): Promise<number[]> {
      const removed = await db.transaction(async (tx) => {
        const owned = await tx.select({ id: streams.id }).from(streams).where(eq(streams.userId, id)).for('update')
        await tx.delete(users).where(eq(users.id, id))
        return owned.map((s) => s.id)
      })
      for (const streamId of removed) cache.changed(streamId)
      return removed
    },

    async findById(id: number): Promise<UserRow | null> {
      const [row] = await byId.execute({ id })
      return row ?? null
    }
  }
}
export type UsersService = ReturnType<typeof createUsersService>
