import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { launchBrowser } from '../src/browser.js'
import { recordClock } from '../src/ffmpeg.js'

// No stack here: a clip recorded on this machine, played from the harness's own server, checks the page's decoder.
const dir = await mkdtemp(path.join(tmpdir(), 'ls-bit-clock-'))
const browser = await launchBrowser()
t.teardown(async () => {
  await browser.close()
  await rm(dir, { recursive: true, force: true })
})

for (const size of ['640x360', '320x240']) {
  t.test(`the page reads back the capture times burned into a ${size} clip`, async (t) => {
    const file = path.join(dir, `clock-${size}.mp4`)
    const before = Date.now()
    await recordClock(file, { seconds: 4, size })
    const after = Date.now()

    const player = await browser.openPlayer({ kind: 'file', url: browser.serveFile(file), clockWidth: Number(size.split('x')[0]) })
    t.teardown(() => player.close())
    await player.waitForAdvance(3, 20_000)
    const samples = await player.clockSamples()
    const stats = await player.clockStats()
    t.comment(`${stats.read} frames read (${stats.timer} by the fallback timer), ${stats.unreadable} unreadable`)
    t.ok(samples.length >= 10, `at least 10 frames read (${samples.length})`)
    t.ok(stats.unreadable <= stats.read / 10, `few frames unreadable (${stats.unreadable} of ${stats.read + stats.unreadable})`)

    const captured = samples.map((s) => s.at - s.latencyMs)
    t.ok(captured.every((c) => c >= before && c <= after), 'every capture time lies within the recording')
    // Frames are captured in order: a misread bit would break the order or land far off.
    const ordered = captured.every((c, i) => i === 0 || c > (captured[i - 1] as number))
    t.ok(ordered, 'capture times increase frame by frame')
    // -re: frame N is captured about N/25 s after the first, so capture time minus media time stays nearly constant
    // (a busy machine delays some frames: the bound is loose, the spread is logged).
    const offsets = samples.map((s, i) => (captured[i] as number) - s.mediaTime * 1000)
    const spread = Math.max(...offsets) - Math.min(...offsets)
    t.ok(spread < 1000, `capture time follows media time (spread ${spread.toFixed(0)} ms)`)
  })
}
