import type { streams, users } from '@livestream/db'
import type { ParticipantRow } from './stream-store.js'

export type StreamRow = typeof streams.$inferSelect
export type Owner = Pick<typeof users.$inferSelect, 'id' | 'displayName'>

export interface UrlConfig {
  /** Where players fetch every stream: `PLAYBACK_BASE_URL` (a CDN) or `STREAM_SERVER_URL` (the ingest nodes' balancer). */
  streamServerUrl: string
  rtmpPublicUrl: string
}

/**
 * One playback URL per stream, whatever node holds it: any ingest node answers any playback id (it proxies to the
 * holder), so the URL never names a node and survives a drain or a reconnect through another node. Built from the
 * public playback id only.
 */
export function playbackUrls(row: Pick<StreamRow, 'playbackId'>, urls: UrlConfig) {
  const base = urls.streamServerUrl
  return {
    playback_url: `${base}/hls/${row.playbackId}/index.m3u8`,
    dash_url: `${base}/dash/${row.playbackId}/index.mpd`
  }
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)

/** What a live stream's publisher is doing, as shown beside `status` (null unless live). */
export type StreamConnection = 'connected' | 'reconnecting' | 'awaiting-publisher' | null

/**
 * `connected` / `reconnecting` as the holding node last reported; `awaiting-publisher` for a stream made live by hand
 * (`POST /start`) that no publisher has reached yet (no node holds it: it ends as `no-publisher` after
 * `NO_PUBLISHER_TIMEOUT_MS`). A stream live on a node from before the column existed has no report: `connected`.
 */
export function connectionOf(row: Pick<StreamRow, 'status' | 'connection' | 'ingestNodeId'>): StreamConnection {
  if (row.status !== 'live') return null
  return row.connection ?? (row.ingestNodeId === null ? 'awaiting-publisher' : 'connected')
}

/**
 * The one place a stream row becomes JSON. `stream_key` and `rtmp_url` only when `forOwner` is set by a route that
 * has checked ownership; lists never set it.
 */
export function streamView(row: StreamRow, urls: UrlConfig, opts: { owner?: Owner | undefined; forOwner?: boolean } = {}) {
  return {
    id: row.id,
    ref_no: row.refNo,
    title: row.title,
    status: row.status,
    connection: connectionOf(row),
    viewer_count: row.viewerCount,
    peak_viewer_count: row.peakViewerCount,
    user_id: row.userId,
    playback_id: row.playbackId,
    ...playbackUrls(row, urls),
    ingest_node_id: row.ingestNodeId,
    ended_reason: row.endedReason,
    started_at: iso(row.startedAt),
    ended_at: iso(row.endedAt),
    created_at: iso(row.createdAt) as string,
    updated_at: iso(row.updatedAt) as string,
    ...(opts.owner ? { owner: { id: opts.owner.id, display_name: opts.owner.displayName } } : {}),
    ...(opts.forOwner ? { stream_key: row.streamKey, rtmp_url: `${urls.rtmpPublicUrl}/live` } : {})
  }
}
export type StreamView = ReturnType<typeof streamView>

/** A participation as JSON. */
export const participantView = (p: ParticipantRow) => ({
  id: p.id,
  stream_id: p.streamId,
  user_id: p.userId,
  display_name: p.displayName,
  role: p.role,
  joined_at: p.joinedAt.toISOString(),
  left_at: p.leftAt ? p.leftAt.toISOString() : null
})
export type ParticipantView = ReturnType<typeof participantView>
