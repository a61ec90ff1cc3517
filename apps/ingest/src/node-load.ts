/** What an autoscaler reads from one ingest node (the metrics module exports it; `/healthz` shows it too). */
export interface NodeLoad {
  /** Streams held: publishing, or waiting for their publisher within the reconnect window. */
  liveStreams: number
  /** Media received over RTMP, bits per second, averaged since the previous sample. */
  ingestBitsPerSecond: number
  /** CPU time of this process per second of wall time since the previous sample: 1 = one core busy. */
  cpuCores: number
  /** The node is draining: an autoscaler must not count it as capacity. */
  draining: boolean
}

/** Samples at most this often: every scrape in between gets the same figures. */
const MIN_SAMPLE_MS = 1_000

/**
 * The ingest side of the autoscaling signal: live streams, ingest bitrate and CPU, as plain numbers for whoever
 * exports them (prom-client gauges, the HPA's custom metric). Rates are measured between two reads, at least a
 * second apart.
 */
export function nodeLoadMeter(source: { liveStreams: () => number; bytesIn: () => number; draining: () => boolean }): () => NodeLoad {
  let last = { at: performance.now(), bytes: source.bytesIn(), cpu: process.cpuUsage() }
  let rates = { ingestBitsPerSecond: 0, cpuCores: 0 }
  return () => {
    const now = performance.now()
    const elapsedMs = now - last.at
    if (elapsedMs >= MIN_SAMPLE_MS) {
      const bytes = source.bytesIn()
      const cpu = process.cpuUsage()
      const cpuUs = cpu.user - last.cpu.user + (cpu.system - last.cpu.system)
      rates = {
        ingestBitsPerSecond: Math.round(((bytes - last.bytes) * 8 * 1000) / elapsedMs),
        cpuCores: Number((cpuUs / 1000 / elapsedMs).toFixed(3))
      }
      last = { at: now, bytes, cpu }
    }
    return { liveStreams: source.liveStreams(), ...rates, draining: source.draining() }
  }
}
