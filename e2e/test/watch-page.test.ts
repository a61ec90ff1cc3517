import t from 'tap'
import type { Page } from 'playwright-core'
import { ApiUser } from '../src/api-client.js'
import { launchBrowser } from '../src/browser.js'
import { publishTestClip } from '../src/ffmpeg.js'
import type { Managed } from '../src/process.js'
import { createStackEnv, startApi, startIngest } from '../src/stack.js'
import { waitFor } from '../src/wait.js'

// The api's watch page in headless Chromium against the real stack: opened on a phone-sized screen before the stream
// starts, it says so; once a real ffmpeg publishes it plays (currentTime advances) with the live state and a viewer
// count; when the owner ends the stream it says so and stops. Its state comes from the public events, or from polling
// the public JSON when those fail: either is the page's own choice, the test watches only what a viewer sees.
const stack = await createStackEnv('watchpage')
const api = await startApi(stack)
const ingest = await startIngest(stack)
const browser = await launchBrowser()
const owner = await ApiUser.register(api.url, 'watchpage')
// Markup in the title must arrive as text.
const TITLE = 'Friday <b>show</b> & "friends"'
const stream = await owner.createStream(TITLE)
let publisher: Managed | null = null

t.teardown(async () => {
  await browser.close()
  await publisher?.stop()
  await ingest.stop()
  await api.stop()
  await stack.cleanup()
})

const page: Page = await browser.newPage()
await page.setViewportSize({ width: 390, height: 844 })
/** Requests of the current document (a reload starts the list again), console CSP reports and uncaught errors. */
let requests: string[] = []
const cspReports: string[] = []
const pageErrors: string[] = []
let loads = 0
page.on('framenavigated', (frame) => {
  if (frame !== page.mainFrame()) return
  requests = []
  loads++
})
page.on('request', (r) => requests.push(r.url()))
page.on('console', (m) => {
  if (/Content Security Policy|Refused to/i.test(m.text())) cspReports.push(m.text())
})
page.on('pageerror', (err) => pageErrors.push(err.message))

/** The little of the DOM these checks read (this project compiles without the DOM lib). */
interface El {
  dataset: Record<string, string | undefined>
  hidden: boolean
  textContent: string | null
  currentTime: number
  muted: boolean
  classList: { contains(name: string): boolean }
  getAttribute(name: string): string | null
  getBoundingClientRect(): { width: number; height: number }
  appendChild(child: El): void
  src: string
  width: string
  height: string
}
interface Win {
  document: {
    getElementById(id: string): El | null
    querySelector(selector: string): El | null
    createElement(tag: string): El
    body: El
    documentElement: { scrollWidth: number }
  }
  innerWidth: number
  getComputedStyle(e: El | null): { display: string }
  watchPage?: { playing(): boolean; session: string }
}

/** What a viewer sees, read from the page (undefined fields while a reload is under way). */
interface Seen {
  status: string | undefined
  overlay: string | null
  viewers: string | undefined
  currentTime: number
  src: string | null
  playing: boolean
  session: string
  muted: boolean
  unmuteHidden: boolean
}
const seen = (): Promise<Seen> =>
  page.evaluate(() => {
    const w = globalThis as unknown as Win
    const d = w.document
    const overlay = d.getElementById('overlay')
    const video = d.getElementById('video')
    return {
      status: d.getElementById('status')?.dataset.status,
      overlay: overlay && !overlay.hidden ? overlay.textContent : null,
      viewers: d.getElementById('viewer-count')?.textContent ?? undefined,
      currentTime: video?.currentTime ?? 0,
      src: video?.getAttribute('src') ?? null,
      playing: w.watchPage?.playing() ?? false,
      session: w.watchPage?.session ?? '',
      muted: video?.muted ?? true,
      unmuteHidden: d.getElementById('unmute')?.hidden ?? true
    }
  })

t.test('opened before the stream starts, on a phone screen: the title as text, and "not started yet"', async (t) => {
  const res = await page.goto(`${api.url}/watch/${stream.playback_id}`)
  t.equal(res?.status(), 200)
  t.equal(await page.title(), TITLE, 'the title is the text given, markup included as text')
  t.equal(await page.textContent('#title'), TITLE)
  t.equal(await page.locator('#title b').count(), 0, 'no element made from the title')
  const s = await waitFor('the page script ran', async () => {
    const v = await seen()
    return v.session ? v : null
  })
  t.equal(s.status, 'pending')
  t.match(s.overlay, 'This stream has not started yet')
  t.match(s.viewers, /^\d+$/, 'a viewer count is shown')
  t.equal(s.playing, false, 'nothing to play yet')
  const layout = await page.evaluate(() => {
    const g = globalThis as unknown as Win
    const r = (g.document.getElementById('video') as El).getBoundingClientRect()
    return { viewport: g.innerWidth, scroll: g.document.documentElement.scrollWidth, width: r.width, height: r.height }
  })
  t.equal(layout.scroll, layout.viewport, 'no horizontal scrolling on a 390 px screen')
  t.equal(layout.width, layout.viewport, 'the video spans the screen')
  t.ok(Math.abs(layout.height - (layout.width * 9) / 16) <= 1, `16:9 (${layout.width} x ${layout.height})`)
  const snippet = await page.inputValue('#embed-code')
  t.match(snippet, `<iframe src="${api.url}/watch/${stream.playback_id}?embed=1"`, 'an embed snippet with the absolute page URL')
})

t.test('once a publisher goes live the page plays it, shows it live with a viewer count, every media request carries the session', async (t) => {
  publisher = publishTestClip(ingest.rtmpUrl(stream.stream_key), 120, 'watch-publisher')
  // The page learns of the start by itself (events or polling); it may reload once to get a policy for the node.
  let start = -1
  const played = await waitFor(
    'the page to play 2 s of the stream',
    async () => {
      const s = await seen()
      if (start < 0 && s.currentTime > 0) start = s.currentTime
      return start >= 0 && s.currentTime >= start + 2 ? s : null
    },
    45_000,
    250
  )
  t.comment(`page loads: ${loads}; playback from ${start.toFixed(2)} s to ${played.currentTime.toFixed(2)} s`)
  t.equal(played.status, 'live')
  t.equal(played.overlay, null, 'no message over a playing video')
  t.match(played.viewers, /^\d+$/, `a viewer count is shown (${played.viewers})`)
  t.match(played.session, /^[A-Za-z0-9_-]{16,64}$/, 'a url-safe viewer session')
  const ingestOrigin = new URL(ingest.publicUrl).origin
  const media = requests.filter((u) => u.startsWith(`${ingestOrigin}/`))
  t.ok(media.some((u) => /\/hls\/[^/]+\/index\.m3u8/.test(u)), 'the playlist came from ingest')
  t.ok(media.length >= 3, `media requests made (${media.length})`)
  const withoutSession = media.filter((u) => new URL(u).searchParams.get('vs') !== played.session)
  t.same(withoutSession, [], 'every media request carries ?vs=<this page load session>')
  const apiOrigin = new URL(api.url).origin
  const foreign = requests.filter((u) => !u.startsWith(`${apiOrigin}/`) && !u.startsWith(`${ingestOrigin}/`) && !/^(blob|data):/.test(u))
  t.same(foreign, [], 'nothing loaded from anywhere else (no CDN)')
  t.equal(played.muted, true, 'muted autoplay')
  t.equal(played.unmuteHidden, false, 'with an unmute button')
  await page.click('#unmute')
  const unmuted = await seen()
  t.equal(unmuted.muted, false, 'the button unmutes')
  t.equal(unmuted.unmuteHidden, true, 'and goes away')
})

t.test('when the owner ends the stream the page says so and stops the player', async (t) => {
  const res = await owner.call('POST', `/livestream/streams/${stream.id}/end`)
  t.equal(res.status, 200)
  const ended = await waitFor(
    'the page to show the end',
    async () => {
      const s = await seen()
      return s.status === 'ended' ? s : null
    },
    30_000,
    250
  )
  t.match(ended.overlay, 'This stream has ended')
  t.equal(await page.textContent('#status'), 'Ended')
  t.equal(ended.playing, false, 'the player is stopped')
  t.equal(ended.src, null, 'the video has let go of its source')
  t.match(ended.viewers, /^\d+$/, `the viewer count is still a number (${ended.viewers})`)
})

t.test('the page embeds in an iframe on another site, showing the video alone', async (t) => {
  const host = await browser.newPage()
  t.teardown(() => host.close())
  await host.goto(`${browser.origin}/`)
  const src = `${api.url}/watch/${stream.playback_id}?embed=1`
  await host.evaluate((url) => {
    const d = (globalThis as unknown as Win).document
    const f = d.createElement('iframe')
    f.src = url
    f.width = '640'
    f.height = '360'
    d.body.appendChild(f)
  }, src)
  const frame = await waitFor('the embedded page', async () => host.frames().find((f) => f.url() === src) ?? null)
  await frame.waitForSelector('#status')
  const inFrame = await frame.evaluate(() => {
    const g = globalThis as unknown as Win
    const d = g.document
    return {
      embed: d.body.classList.contains('embed'),
      header: g.getComputedStyle(d.querySelector('header')).display,
      embedBox: g.getComputedStyle(d.querySelector('.embed-box')).display,
      status: d.getElementById('status')?.dataset.status
    }
  })
  t.same(inFrame, { embed: true, header: 'none', embedBox: 'none', status: 'ended' }, 'framed (frame-ancestors allows it), chrome hidden')
})

t.test('no policy violation and no script error on the way', async (t) => {
  t.same(cspReports, [], 'no Content-Security-Policy report')
  t.same(pageErrors, [], 'no uncaught error')
})
