import t from 'tap'
import mysql from 'mysql2/promise'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { createTestDatabase } from '../src/testing.js'
import { inTransaction, isDuplicateEntry, isRetryableConflict, isUnavailable, mysqlErrorCode } from '../src/db-errors.js'

const driverError = (code: string, errno: number) => Object.assign(new Error(`${code} happened`), { code, errno, sqlState: 'HY000' })

t.test('codes are found down the cause chain, whoever wrapped the driver error', async (t) => {
  const dup = driverError('ER_DUP_ENTRY', 1062)
  t.equal(mysqlErrorCode(new DrizzleQueryError('insert ...', [], dup)), 'ER_DUP_ENTRY')
  t.ok(isDuplicateEntry(new Error('outer', { cause: new DrizzleQueryError('insert ...', [], dup) })))
  t.ok(isRetryableConflict(driverError('ER_LOCK_DEADLOCK', 1213)))
  t.ok(isRetryableConflict(new Error('outer', { cause: driverError('ER_LOCK_WAIT_TIMEOUT', 1205) })))
  t.notOk(isRetryableConflict(dup))
})

t.test('unavailable: network and server codes and mysql2 pool refusals; never a message that merely mentions them', async (t) => {
  t.ok(isUnavailable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' })))
  t.ok(isUnavailable(new Error('x', { cause: driverError('ER_CON_COUNT_ERROR', 1040) })))
  t.ok(isUnavailable(new Error('Queue limit reached.')))
  t.ok(isUnavailable(new Error('Pool is closed.')))
  t.notOk(isUnavailable(new Error('title: Pool is closed. Queue limit reached. connect ETIMEDOUT')), 'text is not a code')
  t.notOk(isUnavailable(driverError('ER_DUP_ENTRY', 1062)))
})

t.test('inTransaction commits, rolls back on error, and retries a deadlock victim from the start', async (t) => {
  const tdb = await createTestDatabase('ls_tx')
  const pool = mysql.createPool({ uri: tdb.url, connectionLimit: 4 })
  t.teardown(async () => {
    await pool.end()
    await tdb.drop()
  })
  await pool.query("INSERT INTO users (id, email, display_name) VALUES (1, 'a@example.com', 'a'), (2, 'b@example.com', 'b')")
  const name = async (id: number) => ((await pool.query('SELECT display_name FROM users WHERE id = ?', [id]))[0] as Array<{ display_name: string }>)[0]!.display_name

  await t.rejects(
    inTransaction(pool, async (conn) => {
      await conn.query("UPDATE users SET display_name = 'changed' WHERE id = 1")
      throw new Error('boom')
    }),
    /boom/
  )
  t.equal(await name(1), 'a', 'rolled back')

  // Two transactions lock 1 and 2 in opposite orders: InnoDB kills one, which the helper runs again.
  let attempts = 0
  let bothHoldFirst: () => void
  const held = new Promise<void>((resolve) => {
    let n = 0
    bothHoldFirst = () => ++n === 2 && resolve()
  })
  const cross = (first: number, second: number, counted: boolean) =>
    inTransaction(pool, async (conn) => {
      if (counted) attempts++
      await conn.query('UPDATE users SET display_name = CONCAT(display_name, ?) WHERE id = ?', [`+${first}`, first])
      bothHoldFirst()
      await held
      await conn.query('UPDATE users SET display_name = CONCAT(display_name, ?) WHERE id = ?', [`+${second}`, second])
    })
  await Promise.all([cross(1, 2, true), cross(2, 1, false)])
  t.ok(attempts >= 1)
  t.equal((await name(1)).split('+').length, 3, 'each transaction wrote row 1 exactly once')
  t.equal((await name(2)).split('+').length, 3, 'and row 2 exactly once')
})
