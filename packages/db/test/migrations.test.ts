import t from 'tap'
import mysql from 'mysql2/promise'
import { createTestDatabase } from '../src/testing.js'
import { migrateDown, migrateUp } from '../src/migrator.js'

async function schemaOf(url: string): Promise<string[]> {
  const conn = await mysql.createConnection({ uri: url })
  try {
    const [tables] = await conn.query('SHOW TABLES')
    const out: string[] = []
    for (const row of tables as Array<Record<string, string>>) {
      const name = Object.values(row)[0]!
      const [create] = await conn.query(`SHOW CREATE TABLE \`${name}\``)
      // AUTO_INCREMENT counters are data, not schema.
      out.push(String((create as Array<Record<string, string>>)[0]!['Create Table']).replace(/ AUTO_INCREMENT=\d+/, ''))
    }
    return out.sort()
  } finally {
    await conn.end()
  }
}

t.test('migrate up, roll everything back, migrate up again gives the same schema and no leftovers', async (t) => {
  const tdb = await createTestDatabase('ls_mig', false)
  t.teardown(() => tdb.drop())

  const first = await migrateUp(tdb.url)
  t.ok(first.applied.length >= 1, 'applies the migrations')
  const schemaA = await schemaOf(tdb.url)
  t.ok(schemaA.some((s) => s.includes('CREATE TABLE `streams`')), 'streams table exists')

  t.same((await migrateUp(tdb.url)).applied, [], 'a second run applies nothing')

  const down = await migrateDown(tdb.url, 'all')
  t.same(down.applied, [...first.applied].reverse(), 'rolls back in reverse order')
  t.same(await schemaOf(tdb.url), [], 'no tables left, ledger included')

  await migrateUp(tdb.url)
  t.same(await schemaOf(tdb.url), schemaA, 'same schema after re-applying')
})

t.test('rolling back one step undoes only the latest migration', async (t) => {
  const tdb = await createTestDatabase('ls_mig', false)
  t.teardown(() => tdb.drop())
  const { applied } = await migrateUp(tdb.url)
  const down = await migrateDown(tdb.url, 1)
  t.same(down.applied, [applied.at(-1)], 'only the newest tag is undone')
  const again = await migrateUp(tdb.url)
  t.same(again.applied, [applied.at(-1)], 'and it is the one re-applied')
})

t.test('the stream key column refuses duplicates', async (t) => {
  const tdb = await createTestDatabase('ls_mig')
  t.teardown(() => tdb.drop())
  const conn = await mysql.createConnection({ uri: tdb.url })
  t.teardown(() => conn.end())
  await conn.query("INSERT INTO users (email, display_name) VALUES ('a@example.com', 'A')")
  const insert = (ref: string, pb: string) =>
    conn.query("INSERT INTO streams (ref_no, title, stream_key, playback_id, user_id) VALUES (?, 't', 'same-key', ?, 1)", [ref, pb])
  await insert('LS-1', 'pb1')
  await t.rejects(insert('LS-2', 'pb2'), { code: 'ER_DUP_ENTRY' })
})

t.test('emails: the upgrade lower-cases and trims existing rows, then josé@ and jose@ are two addresses', async (t) => {
  const tdb = await createTestDatabase('ls_mig', false)
  t.teardown(() => tdb.drop())
  await migrateUp(tdb.url)
  // Back to just before 0002 (later migrations, if any, go first).
  while (!(await migrateDown(tdb.url, 1)).applied.includes('0002_exact_emails'));
  const conn = await mysql.createConnection({ uri: tdb.url })
  t.teardown(() => conn.end())
  await conn.query("INSERT INTO users (email, display_name) VALUES (' Ada@Example.COM ', 'A')")
  t.ok(await conn.query("INSERT INTO users (email, display_name) VALUES ('josé@example.com', 'J')"))
  await t.rejects(conn.query("INSERT INTO users (email, display_name) VALUES ('jose@example.com', 'J2')"), { code: 'ER_DUP_ENTRY' }, 'before: one address')
  await migrateUp(tdb.url)
  const [rows] = await conn.query('SELECT email FROM users ORDER BY id')
  t.same((rows as Array<{ email: string }>).map((r) => r.email), ['ada@example.com', 'josé@example.com'], 'backfilled')
  await conn.query("INSERT INTO users (email, display_name) VALUES ('jose@example.com', 'J2')")
  await conn.query("INSERT INTO users (email, display_name) VALUES ('strasse@example.com', 'S')")
  await conn.query("INSERT INTO users (email, display_name) VALUES ('straße@example.com', 'S2')")
  const [[n]] = (await conn.query("SELECT COUNT(*) AS n FROM users WHERE email = 'jose@example.com'")) as unknown as [[{ n: number }]]
  t.equal(Number(n.n), 1, 'after: compared exactly')
})

t.test('updated_at moves on any UPDATE of a stream or user, plain SQL included; the down migration stops it', async (t) => {
  const tdb = await createTestDatabase('ls_mig')
  t.teardown(() => tdb.drop())
  const conn = await mysql.createConnection({ uri: tdb.url })
  t.teardown(() => conn.end())
  const old = '2000-01-01 00:00:00.000'
  await conn.query('INSERT INTO users (email, display_name, created_at, updated_at) VALUES (?, ?, ?, ?)', ['u@example.com', 'U', old, old])
  await conn.query(
    "INSERT INTO streams (ref_no, title, stream_key, playback_id, user_id, created_at, updated_at) VALUES ('LS-1', 't', 'k1', 'p1', 1, ?, ?)",
    [old, old]
  )
  const updatedAt = async (table: 'users' | 'streams') => {
    const [rows] = await conn.query(`SELECT updated_at FROM ${table} WHERE id = 1`)
    return (rows as Array<{ updated_at: Date }>)[0]!.updated_at.getFullYear()
  }
  await conn.query("UPDATE streams SET status = 'live' WHERE id = 1")
  await conn.query("UPDATE users SET display_name = 'V' WHERE id = 1")
  t.ok((await updatedAt('streams')) > 2000, 'a stream going live moves it')
  t.ok((await updatedAt('users')) > 2000, 'a renamed user moves it')

  while (!(await migrateDown(tdb.url, 1)).applied.includes('0003_updated_at_on_update'));
  await conn.query('UPDATE streams SET updated_at = ? WHERE id = 1', [old])
  await conn.query("UPDATE streams SET status = 'ended' WHERE id = 1")
  t.equal(await updatedAt('streams'), 2000, 'down: the column no longer moves by itself')
})
