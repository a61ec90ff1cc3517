import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTestDatabase, type TestDatabase } from '@livestream/db/testing'
import { dropTestPrefix, testQueuePrefix } from '@livestream/events/testing'
import { Redis } from 'ioredis'
import { freePort } from './ports.js'
import { startProcess, type Managed } from './process.js'
import { waitFor } from './wait.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const API_ENTRY = path.join(ROOT, 'apps/api/dist/server.js')
export const INGEST_ENTRY = path.join(ROOT, 'apps/ingest/dist/server.js')
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface ApiHandle extends Managed {
  port: number
  url: string
}

export interface IngestHandle extends Managed {
  rtmpPort: number
  httpPort: number
  nodeId: string
  publicUrl: string
  rtmpUrl: (key: string) => string
}

/** The shared settings of one test stack: its own database, queue prefix and JWT secret. */
export interface StackEnv {
  db: TestDatabase
  queuePrefix: string
  jwtSecret: string
  redisUrl: string
  mediaRoot: string
  /**
   * The stack's one playback base (the api's STREAM_SERVER_URL): the HTTP port the first running ingest node of the
   * stack listens on. Any node answers any playback id, so it serves streams held by the stack's other nodes too.
   */
  playbackUrl: string
  playbackPort: number
  /** True while an ingest node of the stack listens on `playbackPort`. */
  playbackPortTaken: boolean
  cleanup(): Promise<void>
}

export async function createStackEnv(name: string): Promise<StackEnv> {
  const db = await createTestDatabase(`ls_e2e_${name}`.slice(0, 24))
  // MEDIA_ROOT inside a folder of its own: tests that check nothing is written beside it see only this stack's files,
  // not those of whatever else runs on the machine.
  const base = await mkdtemp(path.join(tmpdir(), `ls-stack-${name}-`))
  const mediaRoot = path.join(base, 'media')
  await mkdir(mediaRoot)
  const queuePrefix = testQueuePrefix(name)
  const playbackPort = await freePort()
  return {
    db,
    queuePrefix,
    playbackPort,
    playbackUrl: `http://127.0.0.1:${playbackPort}`,
    playbackPortTaken: false,
    jwtSecret: randomBytes(32).toString('hex'),
    redisUrl: REDIS_URL,
    mediaRoot,
    /** Call once the stack's processes are stopped: its database, media and Redis keys (queue, heartbeats) go. */
    async cleanup() {
      await db.drop()
      await rm(base, { recursive: true, force: true })
      const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
      // A test that left Redis down cannot have its keys dropped; that is all it costs.
      await redis
        .connect()
        .then(() => dropTestPrefix(redis, queuePrefix))
        .catch(() => {})
        .finally(() => redis.disconnect())
    }
  }
}

function baseEnv(): NodeJS.ProcessEnv {
  // Only what a process needs to run; no settings leak in from the developer's shell.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test' }
  if (process.env.FFMPEG_PATH) env.FFMPEG_PATH = process.env.FFMPEG_PATH
  return env
}

export async function startApi(stack: StackEnv, extra: Record<string, string> = {}): Promise<ApiHandle> {
  const port = Number(extra.PORT ?? (await freePort()))
  const env = {
    ...baseEnv(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: stack.db.url,
    REDIS_URL: stack.redisUrl,
    JWT_SECRET: stack.jwtSecret,
    QUEUE_PREFIX: stack.queuePrefix,
    LOG_LEVEL: 'info',
    STREAM_SERVER_URL: stack.playbackUrl,
    REAPER_INTERVAL_MS: '500',
    ...extra
  }
  const proc = startProcess('api', process.execPath, [API_ENTRY], env)
  const url = `http://127.0.0.1:${port}`
  await waitFor('api /healthz', async () => {
    if (proc.child.exitCode !== null) throw new Error(`api exited early:\n${proc.output()}`)
    const res = await fetch(`${url}/healthz`)
    return res.ok
  })
  return Object.assign(proc, { port, url })
}

export async function startIngest(stack: StackEnv, extra: Record<string, string> = {}): Promise<IngestHandle> {
  const rtmpPort = Number(extra.RTMP_PORT ?? (await freePort()))
  const onPlaybackPort = extra.HTTP_PORT === undefined ? !stack.playbackPortTaken : Number(extra.HTTP_PORT) === stack.playbackPort
  const httpPort = Number(extra.HTTP_PORT ?? (onPlaybackPort ? stack.playbackPort : await freePort()))
  if (onPlaybackPort) stack.playbackPortTaken = true
  const nodeId = extra.INGEST_NODE_ID ?? `node-${randomBytes(3).toString('hex')}`
  const publicUrl = `http://127.0.0.1:${httpPort}`
  const env = {
    ...baseEnv(),
    RTMP_PORT: String(rtmpPort),
    HTTP_PORT: String(httpPort),
    HOST: '127.0.0.1',
    DATABASE_URL: stack.db.url,
    REDIS_URL: stack.redisUrl,
    QUEUE_PREFIX: stack.queuePrefix,
    JWT_SECRET: stack.jwtSecret,
    INGEST_NODE_ID: nodeId,
    INGEST_PUBLIC_URL: publicUrl,
    MEDIA_ROOT: stack.mediaRoot,
    RECONNECT_WINDOW_MS: '2000',
    // SIGTERM ends the streams at once, as most tests expect; the drain tests set their own.
    DRAIN_SECONDS: '0',
    HEARTBEAT_INTERVAL_MS: '500',
    HLS_SEGMENT_SECONDS: '1',
    MEDIA_RETENTION_MS: '2000',
    AUTH_CACHE_MS: '200',
    KEY_RECHECK_MS: '500',
    LOG_LEVEL: 'info',
    // As every launcher of ingest sets it (package.json, scripts/start.sh, the image): ALLOCATOR_ENV in rtmp-limits.ts.
    MALLOC_MMAP_THRESHOLD_: '131072',
    ...extra
  }
  const proc = startProcess(`ingest-${nodeId}`, process.execPath, [INGEST_ENTRY], env)
  if (onPlaybackPort) void proc.exited.then(() => (stack.playbackPortTaken = false))
  await waitFor('ingest /healthz', async () => {
    if (proc.child.exitCode !== null) throw new Error(`ingest exited early:\n${proc.output()}`)
    const res = await fetch(`${publicUrl}/healthz`)
    return res.ok
  })
  return Object.assign(proc, {
    rtmpPort,
    httpPort,
    nodeId,
    publicUrl,
    rtmpUrl: (key: string) => `rtmp://127.0.0.1:${rtmpPort}/live/${key}`
  })
}
