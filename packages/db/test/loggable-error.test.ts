import t from 'tap'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { loggableError } from '../src/loggable-error.js'

const KEY = '3b241101-e2bb-4255-8caf-4136c566a962'

t.test("a failed query is logged by its SQL text and its driver's codes, never the query's values", async (t) => {
  const cause = Object.assign(new Error(`Duplicate entry '${KEY}' for key 'streams_stream_key_unique'`), {
    code: 'ER_DUP_ENTRY',
    errno: 1062,
    sqlState: '23000',
    sqlMessage: `Duplicate entry '${KEY}' for key 'streams_stream_key_unique'`,
    sql: `select \`id\` from \`streams\` where \`stream_key\` = '${KEY}'`
  })
  const err = new DrizzleQueryError('select `id` from `streams` where `stream_key` = ?', [KEY], cause)
  t.match(err.message, KEY, 'drizzle itself puts the key in its message')
  const logged = loggableError(err)
  t.notMatch(JSON.stringify(logged), KEY, 'no key anywhere in what is logged')
  t.equal(logged.type, 'DrizzleQueryError')
  t.equal(logged.message, 'Failed query: select `id` from `streams` where `stream_key` = ?')
  t.equal(logged.query, 'select `id` from `streams` where `stream_key` = ?')
  t.match(logged.cause, { code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000', message: "Duplicate entry '…' for key '…'" })
  t.notOk('sql' in (logged.cause ?? {}), "mysql2's sql (values inlined) is left out")
})

t.test('a connection failure keeps its code and message', async (t) => {
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', errno: -111 })
  const logged = loggableError(new DrizzleQueryError('select 1', [KEY], cause))
  t.match(logged.cause, { code: 'ECONNREFUSED', errno: -111, message: 'connect ECONNREFUSED 127.0.0.1:1' })
  t.notMatch(JSON.stringify(logged), KEY)
})

t.test('errors that are not drizzle errors lose any params tail; values that are not errors are logged as text', async (t) => {
  t.equal(loggableError(new Error(`Failed query: select ?\nparams: ${KEY}`)).message, 'Failed query: select ?')
  t.match(loggableError('boom'), { type: 'string', message: 'boom' })
  t.notMatch(JSON.stringify(loggableError(new DrizzleQueryError('select 1', [KEY], undefined as unknown as Error))), KEY)
})

t.test('an error already made safe passes through unchanged (a logger whose serializer is loggableError)', async (t) => {
  const safe = loggableError(new DrizzleQueryError('select ?', [KEY], new Error('boom')))
  t.equal(loggableError(safe), safe)
})
