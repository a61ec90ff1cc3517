/** AAC AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1): what the init segment and the playlists need. */
import { UnsupportedMediaError } from './flv.js'

const RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]
const CHANNELS = [0, 1, 2, 3, 4, 5, 6, 8]

export interface AacConfig {
  /** Audio object type: 2 AAC-LC, 5 HE-AAC (SBR), 29 HE-AAC v2 (PS). */
  objectType: number
  /** The core sampling rate: one AAC frame is 1024 samples of it, so it is the track's timescale. */
  sampleRate: number
  channels: number
  /** RFC 6381: `mp4a.40.<object type>`. */
  codec: string
}

export function parseAudioSpecificConfig(asc: Buffer): AacConfig {
  if (asc.length < 2) throw new UnsupportedMediaError('malformed AAC AudioSpecificConfig')
  let bitPos = 0
  const bits = (n: number): number => {
    let v = 0
    for (let i = 0; i < n; i++, bitPos++) {
      const byte = asc[bitPos >> 3]
      if (byte === undefined) throw new UnsupportedMediaError('malformed AAC AudioSpecificConfig')
      v = v * 2 + ((byte >> (7 - (bitPos & 7))) & 1)
    }
    return v
  }
  let objectType = bits(5)
  if (objectType === 31) objectType = 32 + bits(6)
  const rateIndex = bits(4)
  const sampleRate = rateIndex === 15 ? bits(24) : RATES[rateIndex]
  const channelConfig = bits(4)
  if (!sampleRate) throw new UnsupportedMediaError(`AAC sampling frequency index ${rateIndex}`)
  // Channel configuration 0 means a program config element defines the layout: rare from RTMP encoders, stereo is
  // the usual truth and only the sample entry's informative channel count depends on it.
  const channels = CHANNELS[channelConfig] ?? 2
  return { objectType, sampleRate, channels: channels || 2, codec: `mp4a.40.${objectType}` }
}
