import t from 'tap'
import type { Page } from 'playwright-core'
import { ApiUser } from '../src/api-client.js'
import { launchBrowser } from '../src/browser.js'
import { publishTestClip } from '../src/ffmpeg.js'
import type { Managed } from '../src/process.js'
import { createStackEnv, startApi, startIngest } from '../src/stack.js'
import { waitFor } from '../src/wait.js'

// The api's watch page in headless Chromium against the real stack. Two viewers open it before the stream starts: one
// on a phone-sized screen with the public events (SSE), one whose events request is refused, so that it must poll the
// public JSON. Both say "not started"; once a real ffmpeg publishes both play (currentTime advances) showing the live
// state and a viewer count; when the owner ends the stream both say so and stop. The test reads only what a viewer
// sees, plus the page's own account of how it heard (window.watchPage).
const stack = await createStackEnv('watchpage')
const api = await startApi(stack)
// Viewer counts reported every second rather than every five: the count on the page follows sooner.
const ingest = await startIngest(stack, { VIEWER_REPORT_MS: '1000' })
const browser = await launchBrowser()
const owner = await ApiUser.register(api.url, 'watchpage')
// Markup in the title must arrive as text.
const TITLE = 'Friday <b>show</b> & "friends"'
const stream = await owner.createStream(TITLE)
const pageUrl = `${api.url}/watch/${stream.playback_id}`
const apiOrigin = new URL(api.url).origin
const ingestOrigin = new URL(ingest.publicUrl).origin
let publisher: Managed | null = null

t.teardown(async () => {
  await browser.close()
  await publisher?.stop()
  await ingest.stop()
  await api.stop()
  await stack.cleanup()
})

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
  watchPage?: { playing(): boolean; polling(): boolean; session: string }
}

/** What a viewer sees, read from the page (empty while a reload is under way). */
interface Seen {
  status: string | undefined
  overlay: string | null
  viewers: string | undefined
  currentTime: number
  src: string | null
  playing: boolean
  polling: boolean
  session: string
  muted: boolean
  unmuteHidden: boolean
}

/** A viewer's tab, with what it requested (since its latest load), CSP reports and uncaught errors. */
interface Viewer {
  name: string
  page: Page
  requests: string[]
  cspReports: string[]
  pageErrors: string[]
  loads: number
  seen(): Promise<Seen>
}

async function openViewer(name: string, opts: { phone?: boolean; refuseEvents?: boolean } = {}): Promise<Viewer> {
  const page = await browser.newPage()
  if (opts.phone) await page.setViewportSize({ width: 390, height: 844 })
  if (opts.refuseEvents) await page.route('**/api/public/streams/*/events', (route) => route.fulfill({ status: 404, body: '' }))
  const v: Viewer = {
    name,
    page,
    requests: [],
    cspReports: [],
    pageErrors: [],
    loads: 0,
    seen: () =>
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
          polling: w.watchPage?.polling() ?? false,
          session: w.watchPage?.session ?? '',
          muted: video?.muted ?? true,
          unmuteHidden: d.getElementById('unmute')?.hidden ?? true
        }
      })
  }
  page.on('framenavigated', (frame) => {
    if (frame !== page.mainFrame()) return
    v.requests = []
    v.loads++
  })
  page.on('request', (r) => v.requests.push(r.url()))
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) v.cspReports.push(m.text())
  })
  page.on('pageerror', (err) => v.pageErrors.push(err.message))
  const res = await page.goto(pageUrl)
  if (res?.status() !== 200) throw new Error(`${name}: the page answered ${res?.status()}`)
  await waitFor(`${name}: the page script ran`, async () => (await v.seen()).session !== '')
  return v
}

const phone = await openViewer('phone, events', { phone: true })
const poller = await openViewer('desktop, events refused', { refuseEvents: true })
const viewers = [phone, poller]

t.test('opened before the stream starts: the title as text, "not started yet", a count, and on a phone no sideways scroll', async (t) => {
  const { page } = phone
  t.equal(await page.title(), TITLE, 'the title is the text given, markup included as text')
  t.equal(await page.textContent('#title'), TITLE)
  t.equal(await page.locator('#title b').count(), 0, 'no element made from the title')
  for (const v of viewers) {
    const s = await v.seen()
    t.equal(s.status, 'pending', v.name)
    t.match(s.overlay, 'This stream has not started yet', v.name)
    t.match(s.viewers, /^\d+$/, `${v.name}: a viewer count is shown`)
    t.equal(s.playing, false, `${v.name}: nothing to play yet`)
  }
  const layout = await page.evaluate(() => {
    const g = globalThis as unknown as Win
    const r = (g.document.getElementById('video') as El).getBoundingClientRect()
    return { viewport: g.innerWidth, scroll: g.document.documentElement.scrollWidth, width: r.width, height: r.height }
  })
  t.equal(layout.scroll, layout.viewport, 'no horizontal scrolling on a 390 px screen')
  t.equal(layout.width, layout.viewport, 'the video spans the screen')
  t.ok(Math.abs(layout.height - (layout.width * 9) / 16) <= 1, `16:9 (${layout.width} x ${layout.height})`)
  const snippet = await page.inputValue('#embed-code')
  t.match(snippet, `<iframe src="${pageUrl}?embed=1"`, 'an embed snippet with the absolute page URL')
})

t.test('once a publisher goes live both pages play it, show it live, tag media with their session and count both players', async (t) => {
  publisher = publishTestClip(ingest.rtmpUrl(stream.stream_key), 120, 'watch-publisher')
  // Each page learns of the start by itself; it may reload once to get a policy allowing the node that took the stream.
  const played = await Promise.all(
    viewers.map(async (v) => {
      let start = -1
      const s = await waitFor(
        `${v.name}: 2 s of the stream played`,
        async () => {
          const now = await v.seen()
          if (start < 0 && now.currentTime > 0) start = now.currentTime
          return start >= 0 && now.currentTime >= start + 2 ? now : null
        },
        45_000,
        250
      )
      t.comment(`${v.name}: page loads ${v.loads}, played ${start.toFixed(2)} s -> ${s.currentTime.toFixed(2)} s, polling: ${s.polling}`)
      return s
    })
  )
  for (const [i, v] of viewers.entries()) {
    const s = played[i] as Seen
    t.equal(s.status, 'live', v.name)
    t.equal(s.overlay, null, `${v.name}: no message over a playing video`)
    t.match(s.viewers, /^\d+$/, `${v.name}: a viewer count is shown (${s.viewers})`)
    t.match(s.session, /^[A-Za-z0-9_-]{16,64}$/, `${v.name}: a url-safe viewer session`)
    const media = v.requests.filter((u) => u.startsWith(`${ingestOrigin}/`))
    t.ok(media.some((u) => /\/hls\/[^/]+\/index\.m3u8/.test(u)), `${v.name}: the playlist came from ingest`)
    t.same(
      media.filter((u) => new URL(u).searchParams.get('vs') !== s.session),
      [],
      `${v.name}: every media request (${media.length}) carries ?vs=<this page load's session>`
    )
    const foreign = v.requests.filter((u) => !u.startsWith(`${apiOrigin}/`) && !u.startsWith(`${ingestOrigin}/`) && !/^(blob|data):/.test(u))
    t.same(foreign, [], `${v.name}: nothing loaded from anywhere else (no CDN)`)
  }
  t.not((played[0] as Seen).session, (played[1] as Seen).session, 'each page load has its own session')
  // Two players, two sessions: ingest counts them, the api sums the report, and each page hears it its own way.
  for (const v of viewers) {
    const counted = await waitFor(
      `${v.name}: the count to show both players`,
      async () => {
        const s = await v.seen()
        return s.viewers === '2' ? s : null
      },
      30_000,
      250
    )
    t.equal(counted.viewers, '2', `${v.name}: the viewer count shows the two players`)
  }
  t.equal((played[1] as Seen).polling, true, 'the page whose events were refused polls the public JSON')
  t.equal((played[0] as Seen).muted, true, 'muted autoplay')
  t.equal((played[0] as Seen).unmuteHidden, false, 'with an unmute button')
  await phone.page.click('#unmute')
  const unmuted = await phone.seen()
  t.equal(unmuted.muted, false, 'the button unmutes')
  t.equal(unmuted.unmuteHidden, true, 'and goes away')
})

t.test('when the owner ends the stream both pages say so and stop their player', async (t) => {
  const res = await owner.call('POST', `/livestream/streams/${stream.id}/end`)
  t.equal(res.status, 200)
  for (const v of viewers) {
    const ended = await waitFor(
      `${v.name}: the page to show the end`,
      async () => {
        const s = await v.seen()
        return s.status === 'ended' ? s : null
      },
      30_000,
      250
    )
    t.match(ended.overlay, 'This stream has ended', v.name)
    t.equal(await v.page.textContent('#status'), 'Ended', v.name)
    t.equal(ended.playing, false, `${v.name}: the player is stopped`)
    t.equal(ended.src, null, `${v.name}: the video has let go of its source`)
    // The end clears the audience (the peak stays): the count the page shows goes from 2 to 0.
    t.equal(ended.viewers, '0', `${v.name}: the viewer count shows the ended stream's 0`)
  }
})

t.test('the page embeds in an iframe on another site, showing the video alone', async (t) => {
  const host = await browser.newPage()
  t.teardown(() => host.close())
  await host.goto(`${browser.origin}/`)
  const src = `${pageUrl}?embed=1`
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
  for (const v of viewers) {
    t.same(v.cspReports, [], `${v.name}: no Content-Security-Policy report`)
    t.same(v.pageErrors, [], `${v.name}: no uncaught error`)
  }
})
