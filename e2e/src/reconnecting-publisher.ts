import { publishClipLoop } from './ffmpeg.js'
import type { Managed } from './process.js'

/**
 * An encoder that reconnects when its connection drops, as OBS does: a looped clip published in real time to
 * `rtmpUrl` (a load balancer in front of several ingest nodes), started again `retryMs` after each exit until
 * `stop()`. Every run is one RTMP connection, so `runs` counts connections.
 */
export class ReconnectingPublisher {
  private current: Managed | null = null
  private stopped = false
  private timer: NodeJS.Timeout | null = null
  runs = 0

  constructor(
    private readonly rtmpUrl: string,
    readonly name: string,
    private readonly retryMs = 500
  ) {}

  async start(): Promise<void> {
    if (this.stopped) return
    this.runs++
    const proc = await publishClipLoop(this.rtmpUrl, 600, `${this.name}-${this.runs}`)
    this.current = proc
    void proc.exited.then(() => {
      void proc.stop() // reaps what is left of its process group
      if (this.stopped || this.current !== proc) return
      this.timer = setTimeout(() => void this.start(), this.retryMs)
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    await this.current?.stop()
  }
}
