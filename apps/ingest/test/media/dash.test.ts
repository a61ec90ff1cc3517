import t from 'tap'
import { DashManifests, latencyTargetMs, PERIOD_GAP_MS } from '../../src/media/dash.js'
import { fakeWindow, T0, writeSegment } from '../helper.js'

interface XmlNode {
  name: string
  attrs: Record<string, string>
  children: XmlNode[]
}

/** A strict little XML reader: enough to prove the MPD well-formed (every tag closed, in order) and to walk it. */
function parseXml(text: string): XmlNode {
  const root: XmlNode = { name: '#document', attrs: {}, children: [] }
  const stack = [root]
  const token = /<\?[^?]*\?>|<\/([A-Za-z][\w:.-]*)\s*>|<([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy
  let m: RegExpExecArray | null
  let pos = 0
  while (pos < text.length && (m = token.exec(text))) {
    pos = token.lastIndex
    const [, close, open, attrs, selfClose, textNode] = m
    if (textNode !== undefined) {
      if (textNode.trim() !== '') throw new Error(`unexpected text ${textNode.trim().slice(0, 20)}`)
    } else if (close) {
      const top = stack.pop()
      if (top?.name !== close) throw new Error(`</${close}> closes <${top?.name}>`)
    } else if (open) {
      const node: XmlNode = { name: open, attrs: {}, children: [] }
      for (const a of (attrs ?? '').matchAll(/([\w:.-]+)="([^"]*)"/g)) node.attrs[a[1] as string] = a[2] as string
      ;(stack.at(-1) as XmlNode).children.push(node)
      if (!selfClose) stack.push(node)
    }
  }
  if (pos !== text.length) throw new Error(`not XML at ${pos}`)
  if (stack.length !== 1) throw new Error(`<${stack.at(-1)?.name}> never closed`)
  return root.children[0] as XmlNode
}

const all = (n: XmlNode, name: string): XmlNode[] => [...(n.name === name ? [n] : []), ...n.children.flatMap((c) => all(c, name))]
const one = (n: XmlNode, name: string): XmlNode => {
  const found = all(n, name)
  if (found.length !== 1) throw new Error(`${found.length} <${name}>`)
  return found[0] as XmlNode
}
const seconds = (iso: string | undefined) => Number(/^PT([\d.]+)S$/.exec(iso ?? '')?.[1])

t.test('a dynamic MPD with one AdaptationSet per track over the same segments', async (t) => {
  const w = fakeWindow()
  for (let i = 0; i < 3; i++) writeSegment(w, { partBytes: 5_000 })
  writeSegment(w, { complete: false, parts: 2 })
  const text = new DashManifests().mpd(w)?.toString() as string
  t.match(text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<MPD /)
  const mpd = parseXml(text)
  t.equal(mpd.name, 'MPD')
  t.equal(mpd.attrs.type, 'dynamic')
  t.equal(mpd.attrs.xmlns, 'urn:mpeg:dash:schema:mpd:2011')
  t.equal(Date.parse(mpd.attrs.availabilityStartTime as string), T0)
  t.ok(Date.parse(mpd.attrs.publishTime as string) > T0)
  t.ok(seconds(mpd.attrs.minimumUpdatePeriod) > 0)
  t.equal(seconds(mpd.attrs.timeShiftBufferDepth), 12, 'the window: 6 segments of 2 s')
  t.equal(seconds(mpd.attrs.suggestedPresentationDelay), 3)

  const utc = one(mpd, 'UTCTiming')
  t.equal(utc.attrs.schemeIdUri, 'urn:mpeg:dash:utc:http-iso:2014')
  t.equal(new URL(utc.attrs.value as string, 'http://node/dash/pb1/index.mpd').pathname, '/time', 'the node\'s own clock')

  const latency = one(mpd, 'Latency')
  t.equal(Number(latency.attrs.target), 3000)
  t.equal(latencyTargetMs(w), 3000)
  t.ok(Number(latency.attrs.min) < 3000 && Number(latency.attrs.max) > 3000)
  const rate = one(mpd, 'PlaybackRate')
  t.ok(Number(rate.attrs.min) < 1 && Number(rate.attrs.max) > 1)

  const period = one(mpd, 'Period')
  t.equal(seconds(period.attrs.start), 0)
  const sets = all(mpd, 'AdaptationSet')
  t.same(sets.map((s) => s.attrs.contentType), ['video', 'audio'])
  const [video, audio] = sets.map((s) => one(s, 'Representation')) as [XmlNode, XmlNode]
  t.match(video.attrs, { codecs: 'avc1.64001f', width: '1280', height: '720', frameRate: '30', bandwidth: '80000' })
  t.match(audio.attrs, { codecs: 'mp4a.40.2', audioSamplingRate: '48000' })
  t.equal(one(audio, 'AudioChannelConfiguration').attrs.value, '2')

  for (const [rep, dir, ts] of [[video, 'v', 90_000], [audio, 'a', 48_000]] as const) {
    const tpl = one(rep, 'SegmentTemplate')
    t.equal(Number(tpl.attrs.timescale), ts)
    t.equal(tpl.attrs.startNumber, '0')
    t.equal(tpl.attrs.presentationTimeOffset, '0')
    t.equal(new URL(tpl.attrs.media as string, 'http://node/dash/pb1/index.mpd').pathname, `/hls/pb1/${dir}/$Number$.m4s`)
    t.equal(new URL(tpl.attrs.initialization as string, 'http://node/dash/pb1/index.mpd').pathname, `/hls/pb1/${dir}/init-0.mp4`)
    t.equal(Number(tpl.attrs.availabilityTimeOffset), 1.5, 'segment target minus part target')
    t.equal(tpl.attrs.availabilityTimeComplete, 'false')
    const kind = dir === 'v' ? 'video' : 'audio'
    const segs = w.track(kind).segments
    const timeline = all(tpl, 'S').map((s) => ({ t: Number(s.attrs.t), d: Number(s.attrs.d) }))
    t.same(
      timeline.map((s) => s.t),
      segs.map((s) => s.baseMediaDecodeTime),
      `${kind}: one S per segment, t = baseMediaDecodeTime`
    )
    t.same(timeline.map((s) => s.d), [2 * ts, 2 * ts, 2 * ts, 2 * ts], `${kind}: d = duration (the open one: the target)`)
  }
})

t.test('a discontinuity opens a new Period whose start stays put as the window slides', async (t) => {
  const w = fakeWindow({ keep: 3 })
  const manifests = new DashManifests()
  writeSegment(w)
  writeSegment(w)
  // A reconnect 10 s later, decode times restarting from 0.
  for (const track of w.tracks.values()) {
    track.openSegment({ msn: 2, baseMediaDecodeTime: 0, programDateTime: T0 + 14_000, discontinuity: true, initVersion: 0 })
    for (let i = 0; i < 4; i++) track.addPart({ duration: 0.5, independent: true, bytes: Buffer.alloc(10) })
    track.closeSegment()
  }
  const first = parseXml(manifests.mpd(w)?.toString() as string)
  const periods = all(first, 'Period')
  t.same(periods.map((p) => p.attrs.id), ['p0', 'p1'])
  t.same(periods.map((p) => seconds(p.attrs.start)), [0, 14])
  t.same(all(periods[1] as XmlNode, 'SegmentTemplate').map((s) => s.attrs.startNumber), ['2', '2'])
  for (let i = 0; i < 4; i++) writeSegment(w)
  const later = parseXml(manifests.mpd(w)?.toString() as string)
  t.same(all(later, 'Period').map((p) => [p.attrs.id, seconds(p.attrs.start)]), [['p1', 14]], 'p0 slid out; p1 did not move')
  t.same(all(later, 'SegmentTemplate').map((s) => s.attrs.presentationTimeOffset), ['0', '0'])
})

t.test('the MPD is rendered once per window change', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  const manifests = new DashManifests()
  const a = manifests.mpd(w)
  t.equal(manifests.mpd(w), a)
  writeSegment(w)
  t.not(manifests.mpd(w), a)
})

t.test('an ended broadcast states its duration and stops asking for updates', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w)
  for (const track of w.tracks.values()) track.end()
  const mpd = parseXml(new DashManifests().mpd(w)?.toString() as string)
  t.equal(mpd.attrs.minimumUpdatePeriod, undefined)
  t.equal(seconds(mpd.attrs.mediaPresentationDuration), 4)
})

t.test('no MPD before the first segment', async (t) => {
  t.equal(new DashManifests().mpd(fakeWindow()), null)
})

t.test('a Period after an init change or a short reconnect follows its predecessor on the media timeline, whatever the arrival dates say', async (t) => {
  // Segments of 2 s on one timeline; the third starts a new Period. Its first sample arrived `skewMs` after (or, with
  // the encoder's first-second burst behind the first Period, before) where the media timeline puts it.
  const cases: Array<[string, number, number]> = [
    ['dated 500 ms early (the burst)', -500, 4],
    ['dated 300 ms late (jitter, a quick reconnect)', 300, 4],
    [`dated ${PERIOD_GAP_MS} ms late`, PERIOD_GAP_MS, 4],
    ['dated 3 s late (a publisher away for 3 s)', 3000, 7]
  ]
  for (const [name, skewMs, start] of cases) {
    const w = fakeWindow()
    writeSegment(w)
    writeSegment(w)
    for (const track of w.tracks.values()) {
      const ts = track.info?.timescale as number
      // Audio starts its segment 10 ms after the video keyframe, as the follower does.
      const lead = track.kind === 'audio' ? Math.round(0.01 * ts) : 0
      track.openSegment({ msn: 2, baseMediaDecodeTime: 4 * ts + lead, programDateTime: T0 + 4000 + skewMs + (lead ? 10 : 0), discontinuity: true, initVersion: 0 })
      for (let i = 0; i < 4; i++) track.addPart({ duration: 0.5, independent: true, bytes: Buffer.alloc(10) })
      track.closeSegment()
    }
    const mpd = parseXml(new DashManifests().mpd(w)?.toString() as string)
    const periods = all(mpd, 'Period')
    t.same(periods.map((p) => seconds(p.attrs.start)), [0, start], `${name}: the second Period starts at ${start} s`)
    const ptos = all(periods[1] as XmlNode, 'SegmentTemplate').map((s) => Number(s.attrs.presentationTimeOffset))
    t.same(ptos, [4 * 90_000, 4 * 48_000], `${name}: each track's offset is the Period's media start in its timescale (audio keeps its 10 ms)`)
  }
})
