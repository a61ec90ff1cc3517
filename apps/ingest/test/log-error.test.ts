import t from 'tap'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { errorForLog } from '../src/log-error.js'

const KEY = '3b241101-e2bb-4255-8caf-4136c566a962'

t.test("a failed drizzle query is logged by its driver error: code, errno, SQL state, never the query's values", async (t) => {
  const cause = Object.assign(new Error("Duplicate entry '" + KEY + "' for key 'streams_stream_key_unique'"), {
    code: 'ER_DUP_ENTRY',
    errno: 1062,
    sqlState: '23000'
  })
  const err = new DrizzleQueryError('select `id` from `streams` where `stream_key` = ?', [KEY], cause)
  t.match(err.message, KEY, 'drizzle itself puts the key in its message')
  const logged = errorForLog(err)
  t.same(logged, { type: 'Error', code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000', message: "Duplicate entry '…' for key '…'" })
  t.notMatch(JSON.stringify(logged), KEY)
})

t.test('a connection failure keeps its code and message', async (t) => {
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', errno: -111 })
  const logged = errorForLog(new DrizzleQueryError('select 1', [KEY], cause))
  t.same(logged, { type: 'Error', code: 'ECONNREFUSED', errno: -111, message: 'connect ECONNREFUSED 127.0.0.1:1' })
})

t.test('errors that are not drizzle errors lose any params tail and quoted values too', async (t) => {
  t.same(errorForLog(new Error(`Failed query: select ?\nparams: ${KEY}`)), { type: 'Error', message: 'Failed query: select ?' })
  t.same(errorForLog('boom'), { type: 'Error', message: 'boom' })
  t.same(errorForLog(new DrizzleQueryError('select 1', [KEY], undefined as unknown as Error)), { type: 'DatabaseError', message: 'query failed' })
})
