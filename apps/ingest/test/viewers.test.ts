import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { loadConfig } from '../src/config.js'
import type { EventDraft } from '../src/events-producer.js'
import { addressGroup, clientAddress, ViewerCounter } from '../src/viewers.js'
import { ViewerReporter } from '../src/viewer-reports.js'

const token = (i: number) => `player-token-${String(i).padStart(6, '0')}`

function counter(opts: Partial<ConstructorParameters<typeof ViewerCounter>[0]> & { liveIds?: Set<string> } = {}) {
  let now = 1_000_000
  const liveIds = opts.liveIds ?? new Set(['pb1', 'pb2'])
  const c = new ViewerCounter({
    windowMs: 10_000,
    perAddress: 32,
    maxPerStream: 50_000,
    maxSessions: 200_000,
    live: (id) => liveIds.has(id),
    now: () => now,
    ...opts
  })
  return { c, liveIds, advance: (ms: number) => (now += ms) }
}

t.test('one player is one viewer however many requests it makes; each token is its own player', async (t) => {
  const { c } = counter()
  for (let i = 0; i < 50; i++) c.seen('pb1', token(1), '10.0.0.1', 'hls.js')
  t.equal(c.count('pb1'), 1)
  c.seen('pb1', token(2), '10.0.0.1', 'hls.js')
  t.equal(c.count('pb1'), 2, 'a second token from the same address and browser is a second player (two tabs)')
  t.equal(c.count('pb2'), 0, 'per stream')
  t.equal(c.total(), 2)
})

t.test('without a token, a player is its address and user agent', async (t) => {
  const { c } = counter()
  c.seen('pb1', null, '10.0.0.1', 'VLC/3.0')
  c.seen('pb1', null, '10.0.0.1', 'VLC/3.0')
  t.equal(c.count('pb1'), 1)
  c.seen('pb1', null, '10.0.0.1', 'Safari')
  c.seen('pb1', null, '10.0.0.2', 'VLC/3.0')
  t.equal(c.count('pb1'), 3, 'another user agent or another address is another player')
  c.seen('pb1', 'short', '10.0.0.1', 'VLC/3.0')
  c.seen('pb1', 'x'.repeat(65), '10.0.0.1', 'VLC/3.0')
  c.seen('pb1', 'has spaces in it, sixteen+', '10.0.0.1', 'VLC/3.0')
  t.equal(c.count('pb1'), 3, 'a malformed token counts the player by address and user agent, the session it already has')
})

t.test('a player stops counting once it has not asked for anything within the window (sliding)', async (t) => {
  const { c, advance } = counter()
  c.seen('pb1', token(1), '10.0.0.1', 'a')
  c.seen('pb1', token(2), '10.0.0.2', 'a')
  advance(6_000)
  c.seen('pb1', token(1), '10.0.0.1', 'a')
  advance(6_000)
  c.sweep()
  t.equal(c.count('pb1'), 1, 'the one seen 6 s ago stays, the one seen 12 s ago left')
  advance(10_001)
  c.sweep()
  t.equal(c.count('pb1'), 0)
  t.equal(c.total(), 0)
})

t.test('only streams live here are counted; an ended stream loses its viewers at the next sweep', async (t) => {
  const { c, liveIds } = counter()
  c.seen('nope', token(1), '10.0.0.1', 'a')
  t.equal(c.count('nope'), 0, 'an unknown playback id creates nothing')
  c.seen('pb1', token(1), '10.0.0.1', 'a')
  liveIds.delete('pb1')
  c.seen('pb1', token(2), '10.0.0.2', 'a')
  t.equal(c.count('pb1'), 1, 'no new session once the stream ended')
  c.sweep()
  t.equal(c.count('pb1'), 0)
  t.equal(c.total(), 0)
})

t.test('one address holds at most VIEWER_SESSIONS_PER_ADDRESS players of a stream, tokens or not', async (t) => {
  const { c, advance } = counter({ perAddress: 5 })
  for (let i = 0; i < 100; i++) c.seen('pb1', token(i), '203.0.113.7', 'bot')
  for (let i = 0; i < 10; i++) c.seen('pb1', null, '203.0.113.7', `bot/${i}`)
  t.equal(c.count('pb1'), 5, 'faked tokens and user agents from one address count 5')
  t.equal(c.stats.refusedByAddress, 105)
  c.seen('pb1', token(500), '203.0.113.8', 'bot')
  t.equal(c.count('pb1'), 6, 'another address still counts')
  for (let i = 0; i < 5; i++) c.seen('pb2', token(i), '203.0.113.7', 'bot')
  t.equal(c.count('pb2'), 5, 'the cap is per stream')
  // The five counted stop; a new one from that address counts again.
  advance(10_001)
  c.sweep()
  c.seen('pb1', token(999), '203.0.113.7', 'bot')
  t.equal(c.count('pb1'), 1, 'the address has room again once its sessions expired (and were swept)')
})

t.test('IPv6 addresses share the cap of their /64; IPv4-mapped addresses are their IPv4', async (t) => {
  t.equal(addressGroup('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  t.equal(addressGroup('2001:db8:1:2::ffff'), '2001:db8:1:2::/64')
  t.equal(addressGroup('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(addressGroup('::1'), '0:0:0:0::/64')
  t.equal(addressGroup('fe80::1%eth0'), 'fe80:0:0:0::/64')
  t.equal(addressGroup('::ffff:192.0.2.1'), '192.0.2.1')
  t.equal(addressGroup('192.0.2.1'), '192.0.2.1')
  const { c } = counter({ perAddress: 3 })
  for (let i = 0; i < 50; i++) c.seen('pb1', token(i), `2001:db8:1:2::${i.toString(16)}`, 'a')
  t.equal(c.count('pb1'), 3, 'rotating addresses inside one /64 gains nothing')
  c.seen('pb1', token(100), '2001:db8:1:3::1', 'a')
  t.equal(c.count('pb1'), 4, 'the next /64 is another subscriber')
})

t.test('memory is bounded: per stream and per node, new sessions beyond the bound are not counted', async (t) => {
  const { c } = counter({ maxPerStream: 100, maxSessions: 150, perAddress: 1 })
  for (let i = 0; i < 1_000; i++) c.seen('pb1', token(i), `10.1.${i >> 8}.${i & 255}`, 'a')
  t.equal(c.count('pb1'), 100)
  for (let i = 0; i < 1_000; i++) c.seen('pb2', token(i), `10.2.${i >> 8}.${i & 255}`, 'a')
  t.equal(c.count('pb2'), 50, 'the node bound takes what is left')
  t.equal(c.total(), 150)
  t.equal(c.stats.refusedByBound, 1_850)
})

t.test('X-Forwarded-For counts only behind trusted proxies, taken that many entries from the right', async (t) => {
  const req = (xff?: string) => ({ socket: { remoteAddress: '10.9.9.9' }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as unknown as IncomingMessage
  t.equal(clientAddress(req('1.2.3.4'), 0), '10.9.9.9', 'ignored by default: anyone can write it')
  t.equal(clientAddress(req('6.6.6.6, 1.2.3.4'), 1), '1.2.3.4', 'one proxy: the address it saw')
  t.equal(clientAddress(req('6.6.6.6, 1.2.3.4, 10.0.0.2'), 2), '1.2.3.4', 'two proxies')
  t.equal(clientAddress(req(), 1), '10.9.9.9', 'no header: the peer')
})

t.test('reports: a changed count once per interval, an unchanged one again after the refresh, nothing for an idle stream', async (t) => {
  let now = 0
  const { c } = counter()
  const sent: EventDraft[] = []
  const streams = [
    { streamId: 1, playbackId: 'pb1', sessionId: 's1' },
    { streamId: 2, playbackId: 'pb2', sessionId: 's2' }
  ]
  const r = new ViewerReporter({ counter: c, streams: () => streams, send: (d) => sent.push(d), intervalMs: 5_000, refreshMs: 10_000, now: () => now })
  t.equal(r.tick(), 0, 'no viewers anywhere: nothing to say')
  c.seen('pb1', token(1), '10.0.0.1', 'a')
  c.seen('pb1', token(2), '10.0.0.2', 'a')
  now += 5_000
  t.equal(r.tick(), 1)
  t.same(sent.at(-1), { type: 'stream.viewers', streamId: 1, sessionId: 's1', viewers: 2 })
  now += 5_000
  t.equal(r.tick(), 0, 'unchanged within the refresh')
  now += 5_000
  t.equal(r.tick(), 1, 'unchanged but due for a refresh')
  t.same(sent.at(-1), { type: 'stream.viewers', streamId: 1, sessionId: 's1', viewers: 2 })
  streams.pop()
  now += 1_000
  c.seen('pb1', token(3), '10.0.0.3', 'a')
  t.equal(r.tick(), 1, 'a change goes out at the next tick')
  t.equal((sent.at(-1) as { viewers: number }).viewers, 3)
})

t.test('reports: a count that falls to zero is reported once', async (t) => {
  let now = 0
  const { c, advance } = counter()
  const sent: EventDraft[] = []
  const r = new ViewerReporter({
    counter: c,
    streams: () => [{ streamId: 7, playbackId: 'pb1', sessionId: 's' }],
    send: (d) => sent.push(d),
    intervalMs: 5_000,
    refreshMs: 10_000,
    now: () => now
  })
  c.seen('pb1', token(1), '10.0.0.1', 'a')
  r.tick()
  advance(20_000)
  c.sweep()
  now += 20_000
  t.equal(r.tick(), 1)
  t.equal((sent.at(-1) as { viewers: number }).viewers, 0)
  now += 20_000
  t.equal(r.tick(), 0, 'zero is not refreshed')
})

t.test('config: counting on by default with its documented settings; off by VIEWER_COUNTING=false; a window shorter than two segments is refused', async (t) => {
  t.same(loadConfig({}).viewers, {
    windowMs: 10_000,
    reportMs: 5_000,
    refreshMs: 10_000,
    perAddress: 32,
    maxPerStream: 50_000,
    maxSessions: 200_000,
    trustProxyHops: 0
  })
  t.equal(loadConfig({ VIEWER_COUNTING: 'false' }).viewers, null)
  t.throws(() => loadConfig({ HLS_SEGMENT_SECONDS: '6', VIEWER_WINDOW_MS: '10000' }), /VIEWER_WINDOW_MS/)
})
