import { ApiUser } from './api-client.js'
import { publishClipLoop } from './ffmpeg.js'
import type { Managed } from './process.js'
import { createStackEnv, startApi, startIngest, type ApiHandle, type IngestHandle, type StackEnv } from './stack.js'
import { waitFor } from './wait.js'

export interface LiveStack {
  stack: StackEnv
  api: ApiHandle
  ingest: IngestHandle
  owner: ApiUser
  /** The legitimate stream, as created (its key included). */
  legit: Awaited<ReturnType<ApiUser['createStream']>>
  /** Its publisher: a pre-encoded clip looped in real time. */
  publisher: Managed
  /** The stream's view once the api shows it live and its playlist is served. */
  live: Awaited<ReturnType<ApiUser['stream']>>
  /** Stops the publisher, ingest and api, then drops the stack's database, media and Redis keys. */
  close(): Promise<void>
}

/**
 * A stack with one stream live and served, for tests that attack ingest and check that this stream keeps going.
 * `ingestEnv` is passed to ingest; the publisher runs `seconds` of looped clip.
 */
export async function startLiveStack(name: string, ingestEnv: Record<string, string>, seconds = 120): Promise<LiveStack> {
  const stack = await createStackEnv(name)
  const api = await startApi(stack)
  const ingest = await startIngest(stack, ingestEnv)
  const owner = await ApiUser.register(api.url, name)
  const legit = await owner.createStream('keeps going')
  const publisher = await publishClipLoop(ingest.rtmpUrl(legit.stream_key), seconds, 'legit')
  const close = async () => {
    await publisher.stop()
    await ingest.stop()
    await api.stop()
    await stack.cleanup()
  }
  try {
    const live = await waitFor('legit stream live', async () => {
      const v = await owner.stream(legit.id)
      return v.status === 'live' ? v : null
    })
    await waitFor('legit playlist', async () => (await fetch(live.playback_url)).ok)
    return { stack, api, ingest, owner, legit, publisher, live, close }
  } catch (err) {
    await close()
    throw err
  }
}
