import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { SHIPPED_PLACEHOLDERS } from '../src/jwt-secret.js'

const ROOT = new URL('../../../', import.meta.url)
// Where an operator copies a JWT secret from: every value given there must be refused, whatever it is today.
const SHIPPED_FILES = ['envs/env.example', 'infra/k8s/config.yaml', 'infra/compose.yaml', 'README.md']

async function shippedValues(): Promise<string[]> {
  const out = new Set(SHIPPED_PLACEHOLDERS)
  for (const file of SHIPPED_FILES) {
    const text = await readFile(new URL(file, ROOT), 'utf8')
    for (const m of text.matchAll(/^[ \t]*(?:export[ \t]+)?JWT_SECRET[ \t]*[=:][ \t]*([^\s#`'"|]+)/gm)) {
      if (!m[1]!.startsWith('$')) out.add(m[1]!) // `${JWT_SECRET:?...}` asks the operator; it is not a value
    }
  }
  return [...out]
}

const refused = (JWT_SECRET: string) => () => loadConfig({ JWT_SECRET })

t.test('every JWT secret placeholder shipped in the repository stops the start, saying how to make a secret', async (t) => {
  const values = await shippedValues()
  t.ok(values.length >= 2, `placeholders found: ${values.length}`)
  for (const value of values) {
    t.throws(refused(value), /JWT_SECRET: it is a placeholder.*openssl rand -base64 48/, `refused: ${value.slice(0, 12)}…`)
    t.throws(refused(value.toLowerCase()), /JWT_SECRET/, 'in any case')
  }
})

t.test('low-entropy secrets stop the start', async (t) => {
  for (const weak of ['a'.repeat(32), 'ab'.repeat(20), 'password'.repeat(5), '0123456789'.repeat(4), '11111111112222222222333333333344']) {
    t.throws(refused(weak), /invalid environment variable JWT_SECRET: too predictable.*openssl rand -base64 48/, weak)
  }
  t.throws(refused('x7Kq9'), /JWT_SECRET: shorter than 32/)
  t.throws(() => loadConfig({}), /missing environment variable JWT_SECRET: make one with `openssl rand -base64 48`/)
})

t.test('random secrets of the usual shapes are accepted', async (t) => {
  for (let i = 0; i < 200; i++) {
    for (const secret of [randomBytes(48).toString('base64'), randomBytes(16).toString('hex'), randomBytes(32).toString('base64url')]) {
      const config = loadConfig({ JWT_SECRET: secret })
      if (config.jwtSecret !== secret) t.fail(`refused a random secret ${secret}`)
    }
  }
  t.pass('600 random secrets accepted')
})

t.test('the api reads JWT_SECRET only: SECRET (which signs ingest admin tokens) is not a fallback', async (t) => {
  t.throws(() => loadConfig({ SECRET: randomBytes(48).toString('base64') }), /missing environment variable JWT_SECRET/)
  const jwt = randomBytes(48).toString('base64')
  t.equal(loadConfig({ JWT_SECRET: jwt, SECRET: randomBytes(48).toString('base64') }).jwtSecret, jwt)
})
