import t from 'tap'
import { Type } from '@sinclair/typebox'
import { ConfigError, Flag, Int, loadEnv, LogLevel } from '../src/index.js'

const Schema = Type.Object({
  PORT: Int(3000, 1),
  ENABLED: Flag(true),
  LOG_LEVEL: LogLevel,
  URL: Type.Optional(Type.String({ pattern: '^https?://' }))
})

t.test('unset and empty variables take their defaults; strings become the declared types', async (t) => {
  t.same(loadEnv(Schema, { PORT: '', UNRELATED: 'x' }), { PORT: 3000, ENABLED: true, LOG_LEVEL: 'info' })
  t.same(loadEnv(Schema, { PORT: '8080', ENABLED: '0', LOG_LEVEL: 'warn', URL: 'http://a' }), { PORT: 8080, ENABLED: false, LOG_LEVEL: 'warn', URL: 'http://a' })
})

t.test('the first variable that does not fit stops the load, named in a ConfigError', async (t) => {
  t.throws(() => loadEnv(Schema, { PORT: 'abc' }), { constructor: ConfigError, message: /^invalid environment variable PORT: / })
  t.throws(() => loadEnv(Schema, { PORT: '0' }), /invalid environment variable PORT/)
  t.throws(() => loadEnv(Schema, { URL: 'ftp://a' }), /invalid environment variable URL/)
  t.throws(() => loadEnv(Schema, { LOG_LEVEL: 'loud' }), /invalid environment variable LOG_LEVEL/)
})

t.test('a flag is true, false, 1 or 0, and says so when it is anything else', async (t) => {
  for (const value of ['yes', 'TRUE', 'on']) {
    t.throws(() => loadEnv(Schema, { ENABLED: value }), /^invalid environment variable ENABLED: expected true or false$/, value)
  }
  t.equal(loadEnv(Schema, { ENABLED: '1' }).ENABLED, true)
})
