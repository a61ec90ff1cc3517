/**
 * Real players in a real browser: headless Debian Chromium driven by playwright-core, a local page with hls.js or
 * dash.js served from our node_modules (nothing from a CDN), and the burned-in clock read back frame by frame for
 * glass-to-glass latency. Used by the e2e player tests and by bench/latency.mjs.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { bitClockLayout, type BitClockLayout } from './bit-clock.js'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Without the background-networking, component-update and sync flags Chromium keeps trying hosts an offline test
 * machine cannot reach; QUIC off so every request is the plain HTTP we serve.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

const PLAYER_DIR = fileURLToPath(new URL('../player/', import.meta.url))
/** Files the page loads, by URL path. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(PLAYER_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/player.js': { file: path.join(PLAYER_DIR, 'player.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/hls.mjs': { file: fileURLToPath(import.meta.resolve('hls.js/dist/hls.min.mjs')), type: 'text/javascript; charset=utf-8' },
  // dashjs 5 ships its modern build as ESM only (its `browser` export names a UMD file the package does not contain).
  '/vendor/dash.mjs': { file: fileURLToPath(import.meta.resolve('dashjs')), type: 'text/javascript; charset=utf-8' }
}

export type PlayerKind = 'hls' | 'dash' | 'file'

export interface PlayerOptions {
  kind: PlayerKind
  url: string
  /** hls.js `lowLatencyMode` with catch-up; dash.js live catch-up (the MPD's ServiceDescription sets the target). */
  lowLatency?: boolean
  /** The picture width the publisher burned its clock for (bit-clock.ts); omit when the stream has no clock. */
  clockWidth?: number
}

export interface PlayerError {
  source: string
  type: string
  details: string
  reason?: string
}

export interface Latency {
  /** The player's own estimate: hls.js `hls.latency`, dash.js `getCurrentLiveLatency()`; null until it has one. */
  playerMs: number | null
  /** Display time minus the capture time burned into the newest frame read; null without a readable clock. */
  clockMs: number | null
  /** When that frame was read (ms since the epoch). */
  clockAt: number | null
}

export interface ClockSample {
  /** Display time of the frame, ms since the epoch. */
  at: number
  latencyMs: number
  /** The frame's media time (requestVideoFrameCallback's `mediaTime`; the timer fallback: `currentTime`). */
  mediaTime: number
}

export interface ClockStats {
  /** Frames whose clock was read. */
  read: number
  /** Frames whose strip failed a check (sync, parity, a block neither black nor white). */
  unreadable: number
  /** Readings taken by the 10 Hz fallback timer because requestVideoFrameCallback had not fired for 500 ms. */
  timer: number
}

interface PageState {
  currentTime: number
  readyState: number
  paused: boolean
  errors: PlayerError[]
  warnings: PlayerError[]
  playerLatencyMs: number | null
  clockLatencyMs: number | null
  clockSampleAt: number | null
  clockStats: ClockStats
}

export interface Player {
  readonly page: Page
  currentTime(): Promise<number>
  /**
   * Resolves once the player has played `seconds` of media (currentTime moving forward at no more than twice real
   * time, so a seek to the live edge does not count) with no fatal error; rejects at the first fatal error or at the
   * deadline, with the player's state in the message.
   */
  waitForAdvance(seconds: number, timeoutMs?: number): Promise<void>
  /** Fatal player errors so far (hls.js `fatal`, every dash.js `error`, the video element's `error`). */
  errors(): Promise<PlayerError[]>
  latency(): Promise<Latency>
  /** Every clock reading since `from` (an index into the page's list). */
  clockSamples(from?: number): Promise<ClockSample[]>
  clockStats(): Promise<ClockStats>
  close(): Promise<void>
}

export interface BrowserHarness {
  /** The harness page's origin (a free local port). */
  origin: string
  openPlayer(options: PlayerOptions): Promise<Player>
  /** A blank page in the same browser, for tests that open a page of their own (the api's watch page); closed with it. */
  newPage(): Promise<Page>
  /** Serves a local file (e.g. a recorded clock clip) from the harness origin; returns its URL. */
  serveFile(file: string, type?: string): string
  close(): Promise<void>
}

function startStaticServer(extra: Map<string, { file: string; type: string }>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname
    if (pathname === '/utc') {
      // dash.js's fallback time source (http-iso): this machine's clock, the one the publisher burns in.
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' })
      res.end(new Date().toISOString())
      return
    }
    const entry = STATIC[pathname] ?? extra.get(pathname)
    if (!entry) {
      res.writeHead(404).end()
      return
    }
    readFile(entry.file).then(
      (body) => {
        res.writeHead(200, { 'content-type': entry.type, 'content-length': body.length, 'cache-control': 'no-store' })
        res.end(body)
      },
      () => res.writeHead(500).end()
    )
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    // Port 0: a free port, bound at once (no window for another process to take it).
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

/** Launches Chromium with a fresh profile and the harness server. Throws (never skips) when Chromium is absent. */
export async function launchBrowser(): Promise<BrowserHarness> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is required for the player tests: apt-get install chromium (bootstrap does this); not found at ${CHROMIUM_PATH} (set CHROMIUM_PATH to use another)`
    )
  }
  const extra = new Map<string, { file: string; type: string }>()
  const server = await startStaticServer(extra)
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const profile = await mkdtemp(path.join(tmpdir(), 'ls-chromium-'))
  let context: BrowserContext
  try {
    // A persistent context is how playwright takes a user-data-dir: a fresh one per launch, removed at close.
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS })
  } catch (err) {
    server.close()
    await rm(profile, { recursive: true, force: true })
    throw err
  }
  const players = new Set<Player>()

  return {
    origin,
    newPage: () => context.newPage(),
    serveFile(file, type = 'video/mp4') {
      const urlPath = `/files/${extra.size}/${path.basename(file)}`
      extra.set(urlPath, { file, type })
      return origin + urlPath
    },
    async openPlayer(options) {
      const page = await context.newPage()
      // PLAYER_CONSOLE_LOG=<path prefix>: each player page's console (dash.js logs at info) goes to <prefix>.<kind>,
      // for a player that stalls.
      const consoleLog = process.env.PLAYER_CONSOLE_LOG
      if (consoleLog) {
        const { appendFileSync } = await import('node:fs')
        page.on('console', (m) => appendFileSync(`${consoleLog}.${options.kind}`, `${Date.now()} ${m.type()} ${m.text()}\n`))
      }
      await page.goto(`${origin}/`)
      await page.waitForFunction(() => 'harness' in globalThis)
      const clock: BitClockLayout | null = options.clockWidth === undefined ? null : bitClockLayout(options.clockWidth)
      const config = { kind: options.kind, url: options.url, lowLatency: options.lowLatency ?? true, clock, utcUrl: `${origin}/utc` }
      await page.evaluate((c) => (globalThis as unknown as HarnessWindow).harness.open(c), config)
      const player = makePlayer(page, () => players.delete(player))
      players.add(player)
      return player
    },
    async close() {
      for (const p of [...players]) await p.close()
      await context.close()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
      await rm(profile, { recursive: true, force: true })
    }
  }
}

/** What player.js puts on the page's `window` (`globalThis` there; this project compiles without the DOM lib). */
interface HarnessWindow {
  harness: {
    open(config: unknown): void
    state(): PageState
    clockSamples(from: number): ClockSample[]
    close(): void
  }
}

function makePlayer(page: Page, forget: () => void): Player {
  const state = () => page.evaluate(() => (globalThis as unknown as HarnessWindow).harness.state())
  return {
    page,
    currentTime: async () => (await state()).currentTime,
    errors: async () => (await state()).errors,
    latency: async () => {
      const s = await state()
      return { playerMs: s.playerLatencyMs, clockMs: s.clockLatencyMs, clockAt: s.clockSampleAt }
    },
    clockSamples: (from = 0) => page.evaluate((f) => (globalThis as unknown as HarnessWindow).harness.clockSamples(f), from),
    clockStats: async () => (await state()).clockStats,
    async waitForAdvance(seconds, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      let played = 0
      let last: { time: number; at: number } | null = null
      let s = await state()
      for (;;) {
        if (s.errors.length > 0) throw new Error(`player error after ${played.toFixed(1)} s of play: ${JSON.stringify(s.errors)}`)
        const now = Date.now()
        if (last && s.currentTime > last.time) played += Math.min(s.currentTime - last.time, (2 * (now - last.at)) / 1000)
        last = { time: s.currentTime, at: now }
        if (played >= seconds) return
        if (now > deadline) {
          const { errors: _e, ...rest } = s
          throw new Error(`playback advanced ${played.toFixed(1)} s of the ${seconds} s wanted within ${timeoutMs} ms: ${JSON.stringify(rest)}`)
        }
        await new Promise((r) => setTimeout(r, 250))
        s = await state()
      }
    },
    async close() {
      forget()
      if (page.isClosed()) return
      await page.evaluate(() => (globalThis as unknown as HarnessWindow).harness.close()).catch(() => {})
      await page.close()
    }
  }
}
