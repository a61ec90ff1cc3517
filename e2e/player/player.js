// The player page of the browser harness (e2e/src/browser.ts drives it with playwright): one player per page, hls.js
// or dash.js from our own node_modules (nothing from a CDN), and a reader of the burned-in clock (e2e/src/bit-clock.ts
// draws it; the layout comes from there in `open`, so this file knows no positions of its own).
import Hls from '/vendor/hls.mjs'
import * as dashjs from '/vendor/dash.mjs'

const video = document.getElementById('video')
/** Fatal player errors: what makes `waitForAdvance` fail. */
const errors = []
/** Non-fatal ones, for the report when something goes wrong. */
const warnings = []
/** `{ at, latencyMs, mediaTime }` per decoded frame, at most ~10 per second. */
const clockSamples = []
/** `timer`: readings taken by the fallback timer, not at a requestVideoFrameCallback. */
const clockStats = { read: 0, unreadable: 0, timer: 0 }
let hls = null
let dash = null
let stopClock = () => {}

const describe = (err) => (err instanceof Error ? err.message : String(err))

video.addEventListener('error', () => {
  const e = video.error
  errors.push({ source: 'video', type: `MediaError ${e?.code ?? '?'}`, details: e?.message ?? '' })
})

function openHls(url, lowLatency) {
  if (!Hls.isSupported()) throw new Error('hls.js: MediaSource is not supported in this browser')
  hls = new Hls({
    lowLatencyMode: lowLatency,
    // Catch up (up to 1.5x) rather than drift behind when a stall pushed the playhead back.
    maxLiveSyncPlaybackRate: lowLatency ? 1.5 : 1,
    backBufferLength: 30
  })
  hls.on(Hls.Events.ERROR, (_event, data) => {
    const entry = { source: 'hls.js', type: data.type, details: data.details, reason: data.reason ?? data.error?.message ?? '' }
    ;(data.fatal ? errors : warnings).push(entry)
  })
  hls.loadSource(url)
  hls.attachMedia(video)
}

function openDash(url, lowLatency, utcUrl) {
  dash = dashjs.MediaPlayer().create()
  dash.updateSettings({
    debug: { logLevel: dashjs.Debug.LOG_LEVEL_INFO },
    streaming: {
      // The MPD's own UTCTiming first; our harness server (same machine, same clock) instead of time.akamai.com,
      // which a test machine cannot reach, as the fallback.
      utcSynchronization: {
        enabled: true,
        useManifestDateHeaderTimeSource: true,
        defaultTimingSource: { scheme: 'urn:mpeg:dash:utc:http-iso:2014', value: utcUrl }
      },
      // The target latency comes from the MPD (ServiceDescription) when it has one; catch-up holds it.
      liveCatchup: lowLatency ? { enabled: true, mode: 'liveCatchupModeDefault', playbackRate: { min: -0.3, max: 0.5 } } : { enabled: false }
    }
  })
  dash.on(dashjs.MediaPlayer.events.ERROR, (e) => {
    const err = e.error ?? {}
    errors.push({ source: 'dash.js', type: String(err.code ?? e.type), details: err.message ?? '' })
  })
  dash.on(dashjs.MediaPlayer.events.PLAYBACK_ERROR, (e) => {
    errors.push({ source: 'dash.js', type: 'playback', details: describe(e.error) })
  })
  dash.initialize(video, url, true)
}

/** Reads the clock strip of the frame on screen; null when a sync cell, the parity or a block's level is off. */
function makeClockReader(layout) {
  const canvas = document.createElement('canvas')
  const ctx = canvas.getContext('2d', { willReadFrequently: true })
  const cells = layout.columns * layout.rows
  return () => {
    const w = video.videoWidth
    if (!w) return null
    const scale = w / layout.width
    const block = layout.block * scale
    canvas.width = w
    canvas.height = Math.ceil(block * layout.rows)
    ctx.drawImage(video, 0, 0, w, canvas.height, 0, 0, w, canvas.height)
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height)
    const bits = []
    for (let cell = 0; cell < cells; cell++) {
      // The inner half of the block: its edges are where compression smears.
      const x0 = Math.round(((cell % layout.columns) + 0.25) * block)
      const y0 = Math.round((Math.floor(cell / layout.columns) + 0.25) * block)
      const side = Math.max(1, Math.round(block / 2))
      let sum = 0
      for (let y = y0; y < y0 + side; y++) {
        for (let x = x0; x < x0 + side; x++) {
          const i = (y * canvas.width + x) * 4
          sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]
        }
      }
      const level = sum / (side * side)
      if (level > 64 && level < 192) return null
      bits.push(level >= 128 ? 1 : 0)
    }
    for (const [cell, bit] of Object.entries(layout.sync)) if (bits[Number(cell)] !== bit) return null
    let value = 0
    let ones = 0
    for (let i = 0; i < layout.dataBits; i++) {
      const bit = bits[layout.firstDataCell + i]
      value = value * 2 + bit
      ones += bit
    }
    if ((ones + bits[layout.parityCell]) % 2 !== 0) return null
    return value
  }
}

function startClock(layout) {
  const read = makeClockReader(layout)
  const modulus = 2 ** layout.dataBits
  let last = 0
  const sample = (displayedAt, mediaTime, byTimer) => {
    if (displayedAt - last < 100 || video.readyState < 2) return
    last = displayedAt
    if (byTimer) clockStats.timer++
    const value = read()
    if (value === null) {
      clockStats.unreadable++
      return
    }
    clockStats.read++
    // The value is the capture time modulo 2^40: take the capture time nearest before the display.
    const captured = displayedAt - ((((displayedAt - value) % modulus) + modulus) % modulus)
    clockSamples.push({ at: displayedAt, latencyMs: displayedAt - captured, mediaTime })
    if (clockSamples.length > 20_000) clockSamples.splice(0, 10_000)
  }
  let stopped = false
  let frameSeen = 0
  // requestVideoFrameCallback gives the moment the frame goes on screen; the 10 Hz timer covers a browser that calls
  // it rarely or never (then a sample may be up to one frame late).
  const onFrame = (_now, meta) => {
    if (stopped) return
    frameSeen = Date.now()
    sample(performance.timeOrigin + meta.expectedDisplayTime, meta.mediaTime, false)
    video.requestVideoFrameCallback(onFrame)
  }
  if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(onFrame)
  const timer = setInterval(() => {
    if (Date.now() - frameSeen > 500) sample(Date.now(), video.currentTime, true)
  }, 100)
  stopClock = () => {
    stopped = true
    clearInterval(timer)
  }
}

window.harness = {
  /** `{ kind: 'hls' | 'dash' | 'file', url, lowLatency, clock: BitClockLayout | null, utcUrl }` */
  open(config) {
    const play = () => video.play().catch((err) => warnings.push({ source: 'video', type: 'play()', details: describe(err) }))
    if (config.clock) startClock(config.clock)
    // dash.js starts playback itself: a play() before it listens leaves its manifest refresh waiting for a "play"
    // event that never comes (the stream stalls after the first segments).
    if (config.kind === 'dash') openDash(config.url, config.lowLatency, config.utcUrl)
    else if (config.kind === 'hls') {
      openHls(config.url, config.lowLatency)
      play()
    } else {
      video.src = config.url
      play()
    }
  },
  state() {
    let playerLatencyMs = null
    if (hls && Number.isFinite(hls.latency)) playerLatencyMs = hls.latency * 1000
    if (dash) {
      const l = dash.getCurrentLiveLatency()
      if (Number.isFinite(l) && l > 0) playerLatencyMs = l * 1000
    }
    const lastClock = clockSamples.at(-1) ?? null
    return {
      currentTime: video.currentTime,
      readyState: video.readyState,
      paused: video.paused,
      errors: errors.slice(),
      warnings: warnings.slice(-20),
      playerLatencyMs,
      clockLatencyMs: lastClock ? lastClock.latencyMs : null,
      clockSampleAt: lastClock ? lastClock.at : null,
      clockStats: { ...clockStats }
    }
  },
  clockSamples(from = 0) {
    return clockSamples.slice(from)
  },
  close() {
    stopClock()
    hls?.destroy()
    dash?.destroy()
    video.removeAttribute('src')
    video.load()
  }
}
