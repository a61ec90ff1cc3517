import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

export interface Managed {
  name: string
  child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Sends `signal` to the process group we started and waits for it to exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Groups started and not yet stopped: if the test process ends without stopping them (a crash), they go with it. */
const running = new Set<number>()
process.once('exit', () => {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
})

/**
 * Starts a child in its own process group so it and anything it spawns (ffmpeg) can be stopped together,
 * by our own PID: never by name.
 */
export function startProcess(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Managed {
  const child = spawn(command, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const pgid = child.pid
  if (pgid !== undefined) running.add(pgid)
  let out = ''
  const append = (chunk: Buffer) => {
    out += chunk.toString('utf8')
    if (out.length > 4_000_000) out = out.slice(-2_000_000)
  }
  child.stdout?.on('data', append)
  child.stderr?.on('data', append)
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null
  }))
  const killGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return
    try {
      process.kill(-child.pid, signal)
    } catch {
      // the group is already gone
    }
  }
  const kill = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) killGroup(signal)
  }
  return {
    name,
    child,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM', graceMs = 15_000) {
      kill(signal)
      const timer = setTimeout(() => kill('SIGKILL'), graceMs)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
        // members of our group (ffmpeg) that outlived their parent
        killGroup('SIGKILL')
        if (pgid !== undefined) running.delete(pgid)
      }
    }
  }
}
