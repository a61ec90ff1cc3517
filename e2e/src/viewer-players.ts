import { randomBytes } from 'node:crypto'
import http from 'node:http'

/**
 * Simulated HLS players for viewer counting: plain HTTP pollers, each on its own keep-alive connection from its own
 * loopback address (127.0.x.y: Linux routes all of 127/8 to lo), each with its own `vs` token as the watch page's hls.js
 * sends it. A player asks for the media playlist, then for the newest part it lists, every `intervalMs` (a player
 * without LL-HLS reloads about once a segment); its first request is spread over the first interval.
 */

export interface PlayerLoadOptions {
  /** `http://host:port` of the node to play from. */
  baseUrl: string
  playbackId: string
  players: number
  intervalMs: number
  /** Index of the first player's address, so that two loads use different addresses. */
  firstAddress?: number
  /** Ask for the newest part too (two requests a round); default true. */
  parts?: boolean
}

export interface PlayerLoad {
  /** Requests answered so far, by any status. */
  readonly requests: number
  /** Requests that failed (connection error) or got a status of 400 or more. */
  readonly errors: number
  /** Stops every player (and closes their connections) after its current request. */
  stop(): Promise<void>
}

/** The loopback address of player `i`. */
export const playerAddress = (i: number): string => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`

export function startPlayers(opts: PlayerLoadOptions): PlayerLoad {
  const url = new URL(opts.baseUrl)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const stats = { requests: 0, errors: 0 }
  let stopped = false
  const get = (path: string, localAddress: string): Promise<string> =>
    new Promise((resolve) => {
      const req = http.get({ host: url.hostname, port: url.port, path, localAddress, agent, headers: { 'user-agent': 'sim-player/1' } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          stats.requests++
          if ((res.statusCode ?? 500) >= 400) stats.errors++
          resolve(Buffer.concat(chunks).toString('latin1'))
        })
      })
      req.on('error', () => {
        stats.errors++
        resolve('')
      })
    })
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  const playlist = `/hls/${opts.playbackId}/video.m3u8`
  const one = async (i: number) => {
    const address = playerAddress((opts.firstAddress ?? 0) + i)
    const q = `?vs=${randomBytes(12).toString('base64url')}`
    await sleep(Math.floor((opts.intervalMs * i) / opts.players))
    while (!stopped) {
      const started = Date.now()
      const text = await get(playlist + q, address)
      if (opts.parts !== false) {
        const at = text.lastIndexOf('#EXT-X-PART:')
        const uri = at === -1 ? null : /URI="([^"]+)"/.exec(text.slice(at))?.[1]
        if (uri) await get(`/hls/${opts.playbackId}/${uri}${q}`, address)
      }
      await sleep(Math.max(0, opts.intervalMs - (Date.now() - started)))
    }
  }
  const running = Promise.all(Array.from({ length: opts.players }, (_, i) => one(i)))
  return {
    get requests() {
      return stats.requests
    },
    get errors() {
      return stats.errors
    },
    async stop() {
      stopped = true
      await running
      agent.destroy()
    }
  }
}
