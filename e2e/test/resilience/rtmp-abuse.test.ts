import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import net from 'node:net'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { ApiUser } from '../../src/api-client.js'
import { publishClipLoop } from '../../src/ffmpeg.js'
import { linesLeaking } from '../../src/log-scan.js'
import { RawRtmpClient } from '../../src/raw-rtmp.js'
import { startLiveStack } from '../../src/live-stack.js'
import { waitFor } from '../../src/wait.js'

const PUBLISH_DEADLINE_MS = 2_000
const { stack, api, ingest, owner, legit, publisher, live, close } = await startLiveStack('abuse', {
  PUBLISH_FAIL_LIMIT: '1000',
  RTMP_PUBLISH_DEADLINE_MS: String(PUBLISH_DEADLINE_MS)
})
t.teardown(close)
/** Every key this file hands to the api or ingest, scanned for in their logs at the end. */
const keysUsed: string[] = [legit.stream_key]
const parentBefore = await readdir(path.dirname(stack.mediaRoot))

async function rawConnect(payload: Buffer | null, closeAfterMs = 0): Promise<void> {
  const socket = net.connect(ingest.rtmpPort, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  if (payload) socket.write(payload)
  if (closeAfterMs) await new Promise((r) => setTimeout(r, closeAfterMs))
  socket.destroy()
}

async function stillServing(t: Test, what: string) {
  const health = await fetch(`${ingest.publicUrl}/healthz`)
  t.equal(health.status, 200, `${what}: ingest answers`)
  t.equal(ingest.child.exitCode, null, `${what}: ingest still running`)
  const res = await fetch(live.playback_url)
  t.equal(res.status, 200, `${what}: the live stream's playlist is still served`)
}

t.test('garbage bytes and truncated handshakes do not take ingest down', async (t) => {
  await rawConnect(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 50)
  await rawConnect(Buffer.alloc(5000, 0xff), 50)
  await rawConnect(Buffer.from([0x03]), 50)
  await rawConnect(Buffer.concat([Buffer.from([0x03]), Buffer.alloc(700, 1)]), 50)
  await rawConnect(Buffer.concat([Buffer.from([0x06]), Buffer.alloc(1536, 7)]), 50)
  for (let i = 0; i < 20; i++) {
    const junk = Buffer.alloc(1 + Math.floor(Math.random() * 4000))
    for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(Math.random() * 256)
    await rawConnect(junk, 10)
  }
  await stillServing(t, 'after garbage')
})

t.test('1,000 connections opened and dropped', async (t) => {
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(Array.from({ length: 100 }, () => rawConnect(null)))
  }
  await stillServing(t, 'after 1,000 connections')
})

t.test('a connection that does not ask to publish is cut: idle past the deadline, or sending too much first', async (t) => {
  const idle = await RawRtmpClient.open(ingest.rtmpPort)
  const connected = await RawRtmpClient.open(ingest.rtmpPort)
  t.match(await connected.connect('live', `rtmp://127.0.0.1:${ingest.rtmpPort}/live`), ['_result'], 'an application connect is answered')
  t.notOk(idle.isClosed || connected.isClosed, 'both are open at first')
  t.ok(await idle.closedWithin(PUBLISH_DEADLINE_MS * 4), 'ingest closed the connection that only did the handshake')
  t.ok(await connected.closedWithin(PUBLISH_DEADLINE_MS * 4), 'and the one that connected to the application but never published')
  t.ok(await waitFor('the deadline log line', async () => /no publish within the deadline/.test(ingest.output())), 'and said why')

  // A 16 MB audio message declared on chunk stream 3, then its body in 128-byte chunks: node-media-server alone
  // would take it all (and hold up to 16 MB for each chunk stream so declared).
  const flood = await RawRtmpClient.open(ingest.rtmpPort)
  const header = Buffer.alloc(12)
  header[0] = 3
  header.writeUIntBE(0xffffff, 4, 3)
  header[7] = 8
  const parts: Buffer[] = [header, Buffer.alloc(128, 1)]
  for (let i = 0; i < 2_000; i++) parts.push(Buffer.from([0xc3]), Buffer.alloc(128, 1))
  flood.writeRaw(Buffer.concat(parts))
  t.ok(await flood.closedWithin(PUBLISH_DEADLINE_MS / 2), 'a connection sending 250 KB before any publish is closed before its deadline')
  // Whichever check sees it first: the byte budget (a read of more than 64 KB) or the parser cap (the 16 MB header).
  t.ok(await waitFor('the flood log line', async () => /too much data before a publish|over a parser limit/.test(ingest.output())), 'and ingest said why')
  t.equal(publisher.child.exitCode, null, 'the legit publisher, past the same deadline, is still publishing')
  await stillServing(t, 'after the cut connections')
})

t.test('hostile stream names are refused and write nothing, inside MEDIA_ROOT or beside it', async (t) => {
  const names = ['..%2F..%2Fescape', '../../escape', 'a%00b', 'x'.repeat(10_240), '%2Fetc%2Fpasswd', 'live%2F..%2F..']
  for (const name of names) {
    const p = await publishClipLoop(`rtmp://127.0.0.1:${ingest.rtmpPort}/live/${name}`, 3, 'hostile')
    const exit = await p.exited
    t.not(exit.code, 0, `refused: ${name.slice(0, 30)}`)
  }
  t.same(await readdir(path.dirname(stack.mediaRoot)), parentBefore, 'nothing new beside MEDIA_ROOT')
  t.same((await readdir(stack.mediaRoot)).filter((k) => !k.startsWith('.')), [], 'and nothing in it but the node store: media lives in memory')
  await stillServing(t, 'after hostile names')
})

t.test('the routes and publishes that carry a key answer without showing it to anyone but its owner', async (t) => {
  const stranger = await ApiUser.register(api.url, 'curious')
  const byKey = (user: ApiUser, key: string) =>
    user.call<{ id: number; stream_key?: string }>('GET', `/livestream/streams/key?streamKey=${encodeURIComponent(key)}`)

  const mine = await byKey(owner, legit.stream_key)
  t.equal(mine.status, 200, 'the owner finds their stream by its key')
  t.equal(mine.body.data.id, legit.id)
  const theirs = await byKey(stranger, legit.stream_key)
  t.equal(theirs.status, 404, "someone else's key answers like an unknown one")
  t.notMatch(JSON.stringify(theirs.body), legit.stream_key, 'and does not echo it')
  for (const url of [`/livestream/streams/${legit.id}`, '/livestream/streams?status=live']) {
    const res = await stranger.call('GET', url)
    t.equal(res.status, 200)
    t.notMatch(JSON.stringify(res.body), legit.stream_key, `GET ${url} shows a stranger no key`)
  }

  const rotating = await owner.createStream('rotated')
  keysUsed.push(rotating.stream_key)
  const rotated = await owner.call<{ stream_key: string }>('POST', `/livestream/streams/${rotating.id}/key/rotate`)
  t.equal(rotated.status, 200, 'the owner rotates the key')
  t.not(rotated.body.data.stream_key, rotating.stream_key, 'and gets a new one')
  keysUsed.push(rotated.body.data.stream_key)
  const strangerRotates = await stranger.call('POST', `/livestream/streams/${rotating.id}/key/rotate`)
  t.equal(strangerRotates.status, 403, 'a stranger may not rotate it')
  t.notMatch(JSON.stringify(strangerRotates.body), rotated.body.data.stream_key, 'nor learns it from the refusal')

  const ended = await owner.createStream('ended')
  keysUsed.push(ended.stream_key)
  t.equal((await owner.call('POST', `/livestream/streams/${ended.id}/end`)).status, 200)
  const wrong = randomUUID()
  keysUsed.push(wrong)
  for (const [what, key] of [['the rotated-away key', rotating.stream_key], ["an ended stream's key", ended.stream_key], ['a wrong key', wrong]] as const) {
    const p = await publishClipLoop(ingest.rtmpUrl(key), 3, 'bad-key')
    t.not((await p.exited).code, 0, `a publish with ${what} is refused`)
  }
  await stillServing(t, 'after the refused publishes')
})

t.test('no log line of api or ingest carries a stream key', async (t) => {
  t.ok(ingest.output().length > 0 && api.output().length > 0, 'there were logs to scan')
  t.same(linesLeaking(api.output(), keysUsed), [], `no api log line shows any of the ${keysUsed.length} keys used`)
  t.same(linesLeaking(ingest.output(), keysUsed), [], `no ingest log line shows any of the ${keysUsed.length} keys used`)
})
