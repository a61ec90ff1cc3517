#!/usr/bin/env node
// `pnpm test:livestream`: walks the whole API flow against a running stack (API_URL, default http://localhost:3000/api).
// Prints each step; stops at the first failure. It makes its own two accounts and deletes them at the end, pass or fail
// (their streams and participations go with them), so nothing it made is left behind, live or otherwise.
import { randomBytes } from 'node:crypto'

const API = (process.env.API_URL ?? 'http://localhost:3000/api').replace(/\/+$/, '')
let step = 0

async function call(method, path, { token, body } = {}) {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined
  })
  let json
  try {
    json = await res.json()
  } catch {
    json = null
  }
  return { status: res.status, body: json }
}

async function expect(name, promise, status, check = () => true) {
  step++
  const res = await promise
  const envelope = res.body && typeof res.body.success === 'boolean' && typeof res.body.message === 'string' && 'data' in res.body
  const ok = res.status === status && envelope && check(res.body)
  console.log(`${ok ? 'ok' : 'FAIL'} ${step} - ${name} (${res.status})`)
  if (!ok) throw new StepFailed(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)?.slice(0, 300)}`)
  return res.body
}

class StepFailed extends Error {}

/** Accounts made by this run, by token: deleted at the end whatever happened. */
const made = new Map()

const tag = randomBytes(4).toString('hex')
const password = 'correct horse battery'
try {
  const reg = await expect('register host', call('POST', '/auth/register', { body: { email: `host-${tag}@example.com`, password, display_name: 'Host' } }), 201, (b) => b.data.token)
  made.set('host', reg.data.token)
  const regViewer = await expect('register viewer', call('POST', '/auth/register', { body: { email: `viewer-${tag}@example.com`, password, display_name: 'Viewer' } }), 201)
  made.set('viewer', regViewer.data.token)
  await expect('duplicate email is refused', call('POST', '/auth/register', { body: { email: `host-${tag}@example.com`, password, display_name: 'Again' } }), 409)
  const host = (await expect('login host', call('POST', '/auth/login', { body: { email: `host-${tag}@example.com`, password } }), 200)).data.token
  const viewer = (await expect('login viewer', call('POST', '/auth/login', { body: { email: `viewer-${tag}@example.com`, password } }), 200)).data.token
  await expect('wrong password is 401', call('POST', '/auth/login', { body: { email: `host-${tag}@example.com`, password: 'wrong password' } }), 401)
  await expect('me', call('GET', '/auth/me', { token: host }), 200, (b) => b.data.id === reg.data.user.id)
  await expect('no token is 401', call('GET', '/livestream/streams'), 401)

  const created = await expect('create stream', call('POST', '/livestream/streams', { token: host, body: { title: `walkthrough ${tag}` } }), 201, (b) => b.data.stream_key && b.data.rtmp_url && !b.data.playback_url.includes(b.data.stream_key))
  const { id, stream_key: key } = created.data
  await expect('validation: empty title is 400', call('POST', '/livestream/streams', { token: host, body: { title: '' } }), 400, (b) => /title/.test(b.message))
  await expect('list streams (no keys)', call('GET', '/livestream/streams?limit=5', { token: viewer }), 200, (b) => typeof b.count === 'number' && !JSON.stringify(b).includes(key))
  await expect('get stream as viewer (no key)', call('GET', `/livestream/streams/${id}`, { token: viewer }), 200, (b) => !('stream_key' in b.data))
  await expect('get stream as owner (key)', call('GET', `/livestream/streams/${id}`, { token: host }), 200, (b) => b.data.stream_key === key)
  await expect('get by key as owner', call('GET', `/livestream/streams/key?streamKey=${key}`, { token: host }), 200, (b) => b.data.id === id)
  await expect('get by key as someone else is 404', call('GET', `/livestream/streams/key?streamKey=${key}`, { token: viewer }), 404)
  await expect('bad id is 400', call('GET', '/livestream/streams/abc', { token: host }), 400)
  await expect('viewer joins', call('POST', '/livestream/streams/join', { token: viewer, body: { stream_id: id } }), 200, (b) => b.data.role === 'viewer')
  await expect('participants', call('GET', `/livestream/streams/${id}/participants`, { token: host }), 200, (b) => b.count === 1)
  await expect('viewer leaves', call('POST', `/livestream/streams/${id}/leave`, { token: viewer }), 200, (b) => b.data.left_at)
  await expect('non-owner cannot start', call('POST', `/livestream/streams/${id}/start`, { token: viewer }), 403)
  await expect('status patch pending -> live', call('PATCH', `/livestream/streams/${id}/status`, { token: host, body: { status: 'live' } }), 200, (b) => b.data.status === 'live')
  await expect('refused transition live -> pending is 409', call('PATCH', `/livestream/streams/${id}/status`, { token: host, body: { status: 'pending' } }), 409)
  await expect('end', call('POST', `/livestream/streams/${id}/end`, { token: host }), 200, (b) => b.data.status === 'ended')
  await expect('start after end is 409', call('POST', `/livestream/streams/${id}/start`, { token: host }), 409)
  await expect('join an ended stream is 409', call('POST', '/livestream/streams/join', { token: viewer, body: { stream_id: id } }), 409)
  const second = await expect('create another stream', call('POST', '/livestream/streams', { token: host, body: { title: 'second' } }), 201)
  await expect('start', call('POST', `/livestream/streams/${second.data.id}/start`, { token: host }), 200, (b) => b.data.status === 'live')
  await expect('unknown route is 404', call('GET', '/livestream/nope', { token: host }), 404)
  await expect('end the second stream', call('POST', `/livestream/streams/${second.data.id}/end`, { token: host }), 200, (b) => b.data.status === 'ended')
  await expect('delete the viewer account', call('DELETE', '/auth/me', { token: viewer }), 200)
  made.delete('viewer')
  await expect('delete the host account with its streams', call('DELETE', '/auth/me', { token: host }), 200, (b) => /2 stream/.test(b.message))
  made.delete('host')
  await expect('the deleted host cannot log in', call('POST', '/auth/login', { body: { email: `host-${tag}@example.com`, password } }), 401)
  await expect("the deleted host's token is refused", call('GET', '/auth/me', { token: host }), 401)
  console.log(`all ${step} steps passed against ${API}; the accounts and streams it made are deleted`)
} catch (err) {
  console.log(err instanceof StepFailed ? `   ${err.message}` : `FAIL: cannot reach ${API}: ${err.message}`)
  process.exitCode = 1
} finally {
  for (const [who, token] of made) {
    const res = await call('DELETE', '/auth/me', { token }).catch((err) => ({ status: err.message }))
    console.log(`cleanup: ${who} account ${res.status === 200 ? 'deleted' : `NOT deleted (${res.status})`}`)
  }
}
