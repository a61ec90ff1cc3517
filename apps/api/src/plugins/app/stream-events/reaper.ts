import fp from 'fastify-plugin'
import { reapLostStreams } from '../../../workers/reap-lost-streams.js'

export interface ReaperOptions {
  queuePrefix: string
  nodeTimeoutMs: number
  intervalMs: number
}

/** Every `intervalMs`, ends live streams whose ingest node stopped heartbeating (or no longer holds them). */
export default fp(
  async (app, opts: ReaperOptions) => {
    let timer: NodeJS.Timeout | undefined
    let running: Promise<void> | undefined
    const tick = async () => {
      try {
        const reaped = await reapLostStreams({
          db: app.db,
          streams: app.streams,
          redis: app.redis,
          queuePrefix: opts.queuePrefix,
          nodeTimeoutMs: opts.nodeTimeoutMs
        })
        for (const r of reaped) app.log.warn(r, 'ended a stream its ingest node lost')
      } catch (err) {
        // MySQL or Redis down: try again next round.
        app.log.warn({ err }, 'reaper round failed')
      }
    }
    app.addHook('onReady', () => {
      timer = setInterval(() => {
        running ??= tick().finally(() => (running = undefined))
      }, opts.intervalMs)
    })
    app.addHook('preClose', async () => {
      clearInterval(timer)
      await running
    })
  },
  { name: 'reaper', dependencies: ['services', 'redis'] }
)
