import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import type { Logger } from './logger.js'
import { claimMediaFolders } from './media-folders.js'

const require = createRequire(import.meta.url)
const Context = require('node-media-server/src/core/context.js') as {
  broadcasts: Map<string, Broadcast>
}

interface Subscriber {
  id: string
  ip: string
  protocol: 'flv'
  streamPath: string
  endTime: number
  sendBuffer: (buf: Buffer) => void
}
interface Broadcast {
  postPlay(session: Subscriber): string | null
  donePlay(session: Subscriber): void
}

export interface PackagerOptions {
  ffmpegPath: string
  mediaRoot: string
  /** This node: the owner written into the media folders. */
  nodeId: string
  /** The public id: the only name that reaches the file system. */
  playbackId: string
  /** node-media-server's path for the publish (`/live/<key>`); used in memory only, never logged. */
  streamPath: string
  segmentSeconds: number
  log: Logger
}

/** Above this much unwritten FLV, ffmpeg is stuck: restart it rather than grow without bound. */
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024
let subscriberSeq = 0

/**
 * One ffmpeg per live stream: FLV from an internal node-media-server subscriber on stdin, `-c copy` into HLS and DASH
 * in one process. Restarted with backoff if it dies while the publish lasts; a restart appends to the same playlist.
 */
export class Packager {
  private child: ChildProcess | null = null
  private subscriber: Subscriber | null = null
  private stopping = false
  private started = false
  private restartTimer: NodeJS.Timeout | null = null
  private backoffMs = 250
  restarts = 0

  constructor(private readonly opts: PackagerOptions) {}

  get hlsDir(): string {
    return path.join(this.opts.mediaRoot, 'hls', this.opts.playbackId)
  }
  get dashDir(): string {
    return path.join(this.opts.mediaRoot, 'dash', this.opts.playbackId)
  }
  get pid(): number | undefined {
    return this.child?.pid
  }
  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null
  }

  async start(): Promise<void> {
    await claimMediaFolders(this.opts.mediaRoot, this.opts.playbackId, this.opts.nodeId)
    this.spawn()
  }

  private args(append: boolean): string[] {
    const s = String(this.opts.segmentSeconds)
    const hlsFlags = ['delete_segments', 'independent_segments', 'temp_file', 'program_date_time']
    if (append) hlsFlags.push('append_list', 'discont_start')
    return [
      '-hide_banner', '-loglevel', 'error', '-nostdin',
      '-f', 'flv', '-i', 'pipe:0',
      '-map', '0:v?', '-map', '0:a?', '-c', 'copy',
      '-f', 'hls', '-hls_time', s, '-hls_list_size', '6', '-hls_delete_threshold', '3',
      '-hls_flags', hlsFlags.join('+'),
      '-hls_segment_filename', path.join(this.hlsDir, 'seg_%06d.ts'),
      path.join(this.hlsDir, 'index.m3u8'),
      '-map', '0:v?', '-map', '0:a?', '-c', 'copy',
      '-f', 'dash', '-seg_duration', s, '-window_size', '6', '-extra_window_size', '3', '-remove_at_exit', '0',
      '-use_template', '1', '-use_timeline', '1', '-streaming', '0',
      '-init_seg_name', 'init-$RepresentationID$.m4s',
      '-media_seg_name', 'chunk-$RepresentationID$-$Number%06d$.m4s',
      path.join(this.dashDir, 'index.mpd')
    ]
  }

  private spawn(): void {
    const append = this.started
    this.started = true
    const child = spawn(this.opts.ffmpegPath, ['-y', ...this.args(append)], { stdio: ['pipe', 'ignore', 'pipe'] })
    this.child = child
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2_000)
    })
    child.stdin?.on('error', () => {
      // ffmpeg went away mid-write; the exit handler restarts it
    })
    child.on('error', (err) => this.opts.log.error({ err: { message: err.message } }, 'packager could not run ffmpeg'))
    child.on('exit', (code, signal) => {
      this.detach()
      if (this.child === child) this.child = null
      if (this.stopping) return
      this.restarts++
      this.opts.log.warn({ code, signal, restarts: this.restarts, stderr: stderr.trim().slice(-500) }, 'packager ffmpeg exited; restarting')
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null
        if (!this.stopping) this.spawn()
      }, this.backoffMs)
      this.backoffMs = Math.min(this.backoffMs * 2, 5_000)
    })
    child.on('spawn', () => {
      this.opts.log.info({ pid: child.pid, append }, 'packager ffmpeg started')
      // A healthy run resets the backoff.
      setTimeout(() => {
        if (this.child === child) this.backoffMs = 250
      }, 10_000).unref()
    })
    this.attach(child)
  }

  /** Subscribes to the live broadcast like a player with no address (an internal session), writing FLV to stdin. */
  private attach(child: ChildProcess): void {
    const broadcast = Context.broadcasts.get(this.opts.streamPath)
    if (!broadcast || !child.stdin) return
    const stdin = child.stdin
    const sub: Subscriber = {
      id: `packager-${++subscriberSeq}`,
      ip: '',
      protocol: 'flv',
      streamPath: this.opts.streamPath,
      endTime: 0,
      sendBuffer: (buf) => {
        if (stdin.destroyed || !stdin.writable) return
        if (stdin.writableLength > MAX_BACKLOG_BYTES) {
          this.opts.log.warn({ backlog: stdin.writableLength }, 'packager cannot keep up; restarting ffmpeg')
          child.kill('SIGKILL')
          return
        }
        stdin.write(buf)
      }
    }
    this.subscriber = sub
    broadcast.postPlay(sub)
  }

  private detach(): void {
    const sub = this.subscriber
    if (!sub) return
    this.subscriber = null
    Context.broadcasts.get(this.opts.streamPath)?.donePlay(sub)
  }

  /** Stops packaging: ffmpeg gets end of input (it finishes the playlist), then SIGTERM, then SIGKILL. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.restartTimer) clearTimeout(this.restartTimer)
    this.detach()
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.stdin?.end()
    const term = setTimeout(() => child.kill('SIGTERM'), 3_000)
    const kill = setTimeout(() => child.kill('SIGKILL'), 6_000)
    await exited
    clearTimeout(term)
    clearTimeout(kill)
  }
}
