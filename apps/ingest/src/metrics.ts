import type { EventsProducer } from './events-producer.js'
import type { LiveStreams } from './live-streams.js'
import type { PublishAuth } from './publish-auth.js'

/** Prometheus text exposition of the node's counters. */
export function renderMetrics(nodeId: string, live: LiveStreams, auth: PublishAuth, producer: EventsProducer): string {
  const packagers = live.packagers()
  const label = `{node="${nodeId.replace(/"/g, '')}"}`
  const lines: Array<[string, string, number]> = [
    ['livestream_ingest_live_streams', 'gauge', live.size],
    ['livestream_ingest_packagers_running', 'gauge', packagers.filter((p) => p.running).length],
    ['livestream_ingest_ffmpeg_restarts_total', 'counter', packagers.reduce((n, p) => n + p.restarts, 0)],
    ['livestream_ingest_publishes_accepted_total', 'counter', auth.stats.accepted],
    ['livestream_ingest_publishes_refused_total', 'counter', auth.stats.refused],
    ['livestream_ingest_publishes_throttled_total', 'counter', auth.stats.throttled],
    ['livestream_ingest_auth_unavailable_total', 'counter', auth.stats.unavailable],
    ['livestream_ingest_events_queued_total', 'counter', producer.stats.queued],
    ['livestream_ingest_events_sent_total', 'counter', producer.stats.sent],
    ['livestream_ingest_events_pending', 'gauge', producer.stats.pending]
  ]
  return lines.map(([name, type, v]) => `# TYPE ${name} ${type}\n${name}${label} ${v}`).join('\n') + '\n'
}
