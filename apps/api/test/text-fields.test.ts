import t from 'tap'
import { assertEnvelope, as, build, register } from './helper.js'

const app = await build(t)
const PASSWORD = 'correct horse battery'
const post = (url: string, payload: Record<string, unknown>) => app.inject({ method: 'POST', url, payload })
const signUp = (email: string, display_name = 'Someone') => post('/api/auth/register', { email, password: PASSWORD, display_name })
const logIn = (email: string, password = PASSWORD) => post('/api/auth/login', { email, password })

t.test('josé@ and jose@ are two accounts: neither logs into the other', async (t) => {
  assertEnvelope(t, await signUp('jose@example.com'), 201)
  assertEnvelope(t, await logIn('josé@example.com'), 401)
  const other = assertEnvelope(t, await signUp('josé@example.com'), 201)
  const jose = assertEnvelope(t, await logIn('jose@example.com'), 200)
  t.not(jose.data.user.id, other.data.user.id)
  t.equal(assertEnvelope(t, await logIn('josé@example.com'), 200).data.user.id, other.data.user.id)
})

t.test('strasse@ and straße@ are two accounts', async (t) => {
  assertEnvelope(t, await signUp('straße@example.com'), 201)
  assertEnvelope(t, await logIn('strasse@example.com'), 401)
  assertEnvelope(t, await signUp('strasse@example.com'), 201)
})

t.test('emails are stored normalized: case and compatibility forms (NFKC) find the same account', async (t) => {
  const made = assertEnvelope(t, await signUp('Ada.Lovelace@Example.COM'), 201)
  t.equal(made.data.user.email, 'ada.lovelace@example.com', 'stored lower-cased')
  t.equal(assertEnvelope(t, await logIn('ada.lovelace@example.com'), 200).data.user.id, made.data.user.id)
  t.equal(assertEnvelope(t, await logIn('ＡＤＡ.lovelace@example.com'), 200).data.user.id, made.data.user.id, 'full-width letters')
  assertEnvelope(t, await signUp('ａda.lovelace@example.com'), 409)
  assertEnvelope(t, await signUp('x＠y@example.com'), 400) // a full-width @ becomes a second @
})

t.test('control and bidi-override characters are refused with a 400 naming the field', async (t) => {
  for (const bad of ['\u0000', '\u202E', '\u2066', '\u200F', '\n', '\u0085', '\uFEFF']) {
    const label = JSON.stringify(bad)
    t.match(assertEnvelope(t, await signUp(`evil${bad}@example.com`), 400).message, /^email: .*control or bidirectional-override/, `email ${label}`)
    t.match(assertEnvelope(t, await logIn(`evil${bad}@example.com`), 400).message, /^email: /, `login email ${label}`)
    t.match(assertEnvelope(t, await signUp(`name-${Math.random()}@example.com`, `Ev${bad}il`), 400).message, /^display_name: .*control or bidirectional-override/, `display name ${label}`)
  }
  const user = await register(app, 'titler')
  for (const bad of ['\u0000', '\u202E', '\u2067']) {
    const res = await as(app, user)('POST', '/api/livestream/streams', { title: `gpj${bad}.exe` })
    t.match(assertEnvelope(t, res, 400).message, /^title: .*control or bidirectional-override/)
  }
  assertEnvelope(t, await as(app, user)('POST', '/api/livestream/streams', { title: 'Café straße — 日本語 🎥' }), 201)
  assertEnvelope(t, await as(app, user)('POST', '/api/livestream/streams', { title: '   ' }), 400)
})
