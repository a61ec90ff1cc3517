import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import mysql from 'mysql2/promise'

/** Where the SQL lives: `migrations/` beside `src/` and `dist/`. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url))
const LEDGER = 'schema_migrations'

interface JournalEntry {
  idx: number
  tag: string
}

export interface MigrationResult {
  applied: string[]
}

async function journal(dir: string): Promise<JournalEntry[]> {
  const raw = JSON.parse(await readFile(path.join(dir, 'meta', '_journal.json'), 'utf8')) as {
    entries: JournalEntry[]
  }
  return [...raw.entries].sort((a, b) => a.idx - b.idx)
}

/** drizzle-kit separates statements with this marker; MySQL runs one statement per query. */
function statements(sqlText: string): string[] {
  return sqlText
    .split('--> statement-breakpoint')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

async function withConnection<T>(url: string, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({ uri: url, connectTimeout: 10_000 })
  try {
    return await fn(conn)
  } finally {
    await conn.end()
  }
}

async function ensureLedger(conn: mysql.Connection): Promise<void> {
  await conn.query(
    `CREATE TABLE IF NOT EXISTS \`${LEDGER}\` (
      tag varchar(255) NOT NULL PRIMARY KEY,
      applied_at datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
    )`
  )
}

async function appliedTags(conn: mysql.Connection): Promise<string[]> {
  const [rows] = await conn.query(`SELECT tag FROM \`${LEDGER}\` ORDER BY tag`)
  return (rows as Array<{ tag: string }>).map((r) => r.tag)
}

/**
 * Applies every migration in the journal that the database has not seen, in order.
 * MySQL DDL is not transactional, so each migration is recorded right after it succeeds;
 * a failure stops the run and throws (the process exits non-zero).
 */
export async function migrateUp(url: string, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  return withConnection(url, async (conn) => {
    await ensureLedger(conn)
    const done = new Set(await appliedTags(conn))
    const applied: string[] = []
    for (const entry of await journal(dir)) {
      if (done.has(entry.tag)) continue
      const text = await readFile(path.join(dir, `${entry.tag}.sql`), 'utf8')
      for (const statement of statements(text)) await conn.query(statement)
      await conn.query(`INSERT INTO \`${LEDGER}\` (tag) VALUES (?)`, [entry.tag])
      applied.push(entry.tag)
    }
    return { applied }
  })
}

/**
 * Undoes the latest applied migrations with their hand-written `<tag>.down.sql`.
 * `steps` = how many (default 1); `'all'` rolls everything back and drops the ledger.
 */
export async function migrateDown(
  url: string,
  steps: number | 'all' = 1,
  dir = MIGRATIONS_DIR
): Promise<MigrationResult> {
  return withConnection(url, async (conn) => {
    await ensureLedger(conn)
    const done = await appliedTags(conn)
    const order = (await journal(dir)).map((e) => e.tag).filter((t) => done.includes(t))
    const count = steps === 'all' ? order.length : Math.min(steps, order.length)
    const applied: string[] = []
    for (const tag of order.reverse().slice(0, count)) {
      const text = await readFile(path.join(dir, `${tag}.down.sql`), 'utf8')
      for (const statement of statements(text)) await conn.query(statement)
      await conn.query(`DELETE FROM \`${LEDGER}\` WHERE tag = ?`, [tag])
      applied.push(tag)
    }
    if (steps === 'all') await conn.query(`DROP TABLE IF EXISTS \`${LEDGER}\``)
    return { applied }
  })
}

/** Creates the database named in the URL if it does not exist (connecting without it). */
export async function ensureDatabase(url: string): Promise<void> {
  const u = new URL(url)
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''))
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`DATABASE_URL: database name "${name}" must match [A-Za-z0-9_]+`)
  u.pathname = '/'
  await withConnection(u.toString(), async (conn) => {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  })
}
