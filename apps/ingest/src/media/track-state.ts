/** Per-kind state of the packager and the sequence headers turned into track info and init segments. */
import { parseAudioSpecificConfig } from './aac.js'
import { parseAvcConfig } from './avc.js'
import { audioInitSegment, videoInitSegment } from './boxes.js'
import { FlvClock } from './clock.js'
import type { TrackWriter } from './track-writer.js'
import type { TrackInfo, TrackKind } from './window.js'

const VIDEO_TIMESCALE = 90_000

/** A sample as received, before the track's timescale applies. */
export interface Pending {
  /** On the broadcast's timeline once it started; unwrapped FLV ms while probing. */
  ms: number
  ctsMs: number
  key: boolean
  pos: number
  size: number
  wall: number
}

export interface Config {
  bytes: Buffer
  info: TrackInfo
  init: Buffer
}

/** One kind of media of the broadcast, from its FLV tags to its `TrackWriter`. */
export class Track {
  readonly clock = new FlvClock()
  writer: TrackWriter | null = null
  config: Config | null = null
  /** A changed configuration, applied at the next cut. */
  pending: Config | null = null
  /** Follower samples waiting for the leader's cut decisions. */
  readonly queue: Pending[] = []
  lastMs = -Infinity
  constructor(readonly kind: TrackKind) {}
}

export function videoConfig(body: Buffer): Config {
  const avc = parseAvcConfig(body)
  const info: TrackInfo = { kind: 'video', codec: avc.codec, timescale: VIDEO_TIMESCALE, width: avc.width, height: avc.height }
  if (avc.frameRate) info.frameRate = avc.frameRate
  return { bytes: avc.record, info, init: videoInitSegment({ timescale: VIDEO_TIMESCALE, width: avc.width, height: avc.height, avcC: avc.record }) }
}

export function audioConfig(body: Buffer): Config {
  const aac = parseAudioSpecificConfig(body)
  const info: TrackInfo = { kind: 'audio', codec: aac.codec, timescale: aac.sampleRate, sampleRate: aac.sampleRate, channels: aac.channels }
  const asc = Buffer.from(body)
  return { bytes: asc, info, init: audioInitSegment({ timescale: aac.sampleRate, sampleRate: aac.sampleRate, channels: aac.channels, asc }) }
}
