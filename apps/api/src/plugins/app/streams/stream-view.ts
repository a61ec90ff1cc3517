import type { streams, users } from '@livestream/db'

export type StreamRow = typeof streams.$inferSelect
export type Owner = Pick<typeof users.$inferSelect, 'id' | 'displayName'>

export interface UrlConfig {
  /** Where players fetch every stream: `PLAYBACK_BASE_URL` (a CDN) or `STREAM_SERVER_URL` (the ingest nodes' balancer). */
  playbackBaseUrl: string
  rtmpPublicUrl: string
}

/**
 * One playback URL per stream, whatever node holds it: any ingest node answers any playback id (it proxies to the
 * holder), so the URL never names a node and survives a drain or a reconnect through another node. Built from the
 * public playback id only.
 */
export function playbackUrls(row: Pick<StreamRow, 'playbackId'>, urls: UrlConfig) {
  const base = urls.playbackBaseUrl
  return {
    playback_url: `${base}/hls/${row.playbackId}/index.m3u8`,
    dash_url: `${base}/dash/${row.playbackId}/index.mpd`
  }
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)

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
