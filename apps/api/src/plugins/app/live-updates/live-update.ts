import type { PlatformEvent, PlatformEventType } from '../platform-events.js'
import type { StreamView } from '../streams/stream-view.js'

/**
 * The SSE event names. Every event carries the stream's whole state as read after the change (the last one received
 * is the truth, so a client needs one handler); the name says what changed, for clients that care about one thing:
 * - `snapshot`: the state when the connection opens (or after the server lost track of what the client missed);
 * - `status`: went live, reconnecting, connected again, ended (`status`, `connection`, `ended_reason`);
 * - `participants`: someone joined or left (`participant_count`; members only);
 * - `viewers`: the audience figures changed (`viewer_count`, `peak_viewer_count`).
 */
export type LiveEventName = 'snapshot' | 'status' | 'participants' | 'viewers'

/** Which platform events reach live updates, under which name. Creation and key rotations do not. */
const EVENT_NAMES: Partial<Record<PlatformEventType, LiveEventName>> = {
  'stream.live': 'status',
  'stream.reconnecting': 'status',
  'stream.ended': 'status',
  'participant.joined': 'participants',
  'participant.left': 'participants',
  'stream.viewers': 'viewers'
}

export const liveEventNameOf = (type: PlatformEventType): LiveEventName | undefined => EVENT_NAMES[type]

/** What a logged-in user's live updates carry: the stream as any member sees it (never a key) and who is in it. */
export interface MemberState {
  /** The platform event that caused it (`stream.live`, ...), or `snapshot`. */
  type: PlatformEventType | 'snapshot'
  /** When it happened (ISO 8601). */
  timestamp: string
  stream: StreamView
  participant_count: number
}

/** The fields of a stream anyone holding its playback id may see: nothing about its owner, node or key. */
export const PUBLIC_STREAM_FIELDS = [
  'playback_id',
  'title',
  'status',
  'connection',
  'viewer_count',
  'peak_viewer_count',
  'playback_url',
  'dash_url',
  'started_at',
  'ended_at'
] as const
export type PublicStream = Pick<StreamView, (typeof PUBLIC_STREAM_FIELDS)[number]>

/** What the public live updates carry: the same shape, minus anything only members see. */
export interface PublicState {
  type: MemberState['type']
  timestamp: string
  stream: PublicStream
}

export function publicStream(view: StreamView): PublicStream {
  const out = {} as Record<string, unknown>
  for (const k of PUBLIC_STREAM_FIELDS) out[k] = view[k]
  return out as PublicStream
}

export const publicState = (s: MemberState): PublicState => ({ type: s.type, timestamp: s.timestamp, stream: publicStream(s.stream) })

/**
 * One update as it travels (Redis) and is kept for replay: both renderings serialized once, where the change was
 * committed; every api process then writes the same bytes to each of its clients. `publicData` is empty for
 * updates the public does not get (`participants`).
 */
export interface LiveUpdate {
  streamId: number
  /** The id of its entry in the stream's update log: the SSE `id:`, what `Last-Event-ID` names. */
  id: string
  event: LiveEventName
  memberData: string
  publicData: string
}

/** The update a platform event makes, without its id (the log gives it one); undefined when it makes none. */
export function updateOf(event: PlatformEvent, participantCount: number): Omit<LiveUpdate, 'id'> | undefined {
  const name = liveEventNameOf(event.type)
  if (!name) return undefined
  const member: MemberState = { type: event.type, timestamp: event.timestamp, stream: event.data.stream, participant_count: participantCount }
  return {
    streamId: event.streamId,
    event: name,
    memberData: JSON.stringify(member),
    publicData: name === 'participants' ? '' : JSON.stringify(publicState(member))
  }
}

/** One SSE event, as bytes (`data` is one line of JSON: JSON.stringify never writes a raw newline). */
export function sseFrame(event: LiveEventName, data: string, id?: string): Buffer {
  return Buffer.from(`${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${data}\n\n`)
}

/** Redis stream entry ids (`<ms>-<seq>`), as `Last-Event-ID` must look to be replayed from. */
export const ENTRY_ID = /^\d{1,15}-\d{1,15}$/

/** Orders two entry ids: negative when `a` came first. */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}
