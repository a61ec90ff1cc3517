import type { EventsProducer } from './events-producer.js'
import type { LiveStreams } from './live-streams.js'
import type { MediaWindows } from './media/window.js'
import type { PublishAuth } from './publish-auth.js'

/** Bytes the live windows hold in memory: init segments and every part kept. */
export function windowBytes(windows: MediaWindows): number {
  let n = 0
  for (const w of windows.values()) {
    for (const track of w.tracks.values()) {
      for (const init of track.inits.values()) n += init.bytes.length
      for (const seg of track.segments) for (const part of seg.parts) n += part.bytes.length
    }
  }
  return n
}

/** Prometheus text exposition of the node's counters. */
export function renderMetrics(
  nodeId: string,
  live: LiveStreams,
  windows: MediaWindows,
  auth: PublishAuth,
  producer: EventsProducer,
  viewers?: { total(): number }
): string {
  const label = `{node="${nodeId.replace(/"/g, '')}"}`
  const lines: Array<[string, string, number]> = [
    ['livestream_ingest_live_streams', 'gauge', live.size],
    ['livestream_ingest_media_window_bytes', 'gauge', windowBytes(windows)],
    ['livestream_ingest_publishes_accepted_total', 'counter', auth.stats.accepted],
    ['livestream_ingest_publishes_refused_total', 'counter', auth.stats.refused],
    ['livestream_ingest_publishes_throttled_total', 'counter', auth.stats.throttled],
    ['livestream_ingest_publishes_unpackageable_total', 'counter', live.stats.refusedMedia],
    ['livestream_ingest_auth_unavailable_total', 'counter', auth.stats.unavailable],
    ['livestream_ingest_events_queued_total', 'counter', producer.stats.queued],
    ['livestream_ingest_events_sent_total', 'counter', producer.stats.sent],
    ['livestream_ingest_events_pending', 'gauge', producer.stats.pending]
  ]
  // HLS/DASH viewers of every stream here (no per-stream label: playback ids are unbounded); absent when counting is off.
  if (viewers) lines.push(['livestream_ingest_viewers', 'gauge', viewers.total()])
  return lines.map(([name, type, v]) => `# TYPE ${name} ${type}\n${name}${label} ${v}`).join('\n') + '\n'
}
