// Shared bench helpers: ports, processes we own (stopped by process group, never by name), CPU/RSS sampling, stats.
import { spawn, execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const WORK = path.join(ROOT, 'bench', '.work')
mkdirSync(WORK, { recursive: true })
export const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg'
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function tail(file, bytes = 500_000) {
  try {
    const size = statSync(file).size
    const text = readFileSync(file, 'utf8')
    return size > bytes ? text.slice(-bytes) : text
  } catch {
    return ''
  }
}

/** A child in its own process group; `stop()` signals the group and waits. */
export function start(name, cmd, args, env = {}, opts = {}) {
  // `logTo`: stdout and stderr go to that file under bench/.work (as a service's logs go to a file or journald), so
  // a chatty server at its default log level is not also paying for this process reading its pipe.
  const { logTo, ...spawnOpts } = opts
  const logFile = logTo ? path.join(WORK, logTo) : null
  const fd = logFile ? openSync(logFile, 'w') : null
  const child = spawn(cmd, args, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    detached: true,
    stdio: fd === null ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
    ...spawnOpts
  })
  if (fd !== null) closeSync(fd)
  let out = ''
  const keep = (d) => {
    out += d
    if (out.length > 1_000_000) out = out.slice(-500_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = once(child, 'exit')
  const group = (sig) => {
    try {
      process.kill(-child.pid, sig)
    } catch {}
  }
  return {
    name,
    child,
    pid: child.pid,
    output: () => (logFile ? tail(logFile) : out),
    exited,
    async stop(sig = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        group(sig)
        const t = setTimeout(() => group('SIGKILL'), 10_000)
        await exited
        clearTimeout(t)
      }
      group('SIGKILL')
    }
  }
}

export async function waitFor(what, fn, timeoutMs = 30_000, every = 50) {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch {}
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(every)
  }
}

const TICK = 100 // CLK_TCK on Linux
function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]) }
  } catch {
    return null
  }
}
/** pid and all its descendants, now. */
export function tree(pid) {
  const kids = new Map()
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    const st = procStat(e)
    if (!st) continue
    if (!kids.has(st.ppid)) kids.set(st.ppid, [])
    kids.get(st.ppid).push(Number(e))
  }
  const out = []
  const stack = [pid]
  while (stack.length) {
    const p = stack.pop()
    out.push(p)
    stack.push(...(kids.get(p) ?? []))
  }
  return out
}
const PAGE = 4096
/**
 * Proportional set size in bytes: private pages plus each shared page divided among the processes that map it. Summed
 * over many ffmpeg processes it is the memory they really take (RSS counts the shared libraries once per process).
 */
function pss(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}
/** CPU ticks, RSS and PSS of a set of pids, split into the root process and the rest. */
export function usage(rootPid, { withPss = false } = {}) {
  const pids = tree(rootPid)
  let rootTicks = 0, childTicks = 0, rootRss = 0, childRss = 0, totalPss = 0
  for (const p of pids) {
    const st = procStat(p)
    if (!st) continue
    if (withPss) totalPss += pss(p)
    if (p === rootPid) {
      rootTicks += st.ticks
      rootRss += st.rssPages * PAGE
    } else {
      childTicks += st.ticks
      childRss += st.rssPages * PAGE
    }
  }
  return { rootTicks, childTicks, rootRss, childRss, totalPss, count: pids.length }
}
/** CPU % (100 = one core) of a process tree over `ms`, and its RSS and PSS at the end. */
export async function measureTree(rootPid, ms) {
  const a = usage(rootPid)
  const t0 = Date.now()
  await sleep(ms)
  const b = usage(rootPid)
  const secs = (Date.now() - t0) / 1000
  const { totalPss } = usage(rootPid, { withPss: true })
  return {
    rootCpu: ((b.rootTicks - a.rootTicks) / TICK / secs) * 100,
    childCpu: ((b.childTicks - a.childTicks) / TICK / secs) * 100,
    rootRss: b.rootRss,
    childRss: b.childRss,
    totalPss
  }
}
/** Summed CPU % of many independent processes over the same window. */
export async function measureMany(pids, ms) {
  const sum = () => pids.reduce((n, p) => n + (procStat(p)?.ticks ?? 0), 0)
  const a = sum()
  const t0 = Date.now()
  await sleep(ms)
  return ((sum() - a) / TICK / ((Date.now() - t0) / 1000)) * 100
}

export function pct(values, p) {
  if (!values.length) return NaN
  const s = [...values].sort((x, y) => x - y)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}

export function table(rows) {
  const cols = Object.keys(rows[0])
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)))
  const line = (cells) => '| ' + cells.map((c, i) => String(c).padEnd(w[i])).join(' | ') + ' |'
  return [line(cols), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n')
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown'
  let ff = 'ffmpeg ?'
  try {
    ff = execFileSync(FFMPEG, ['-version']).toString().split('\n')[0]
  } catch {}
  return `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}, ${ff}`
}

/** Writes a section of bench/RESULTS.md between markers, keeping the others. */
export function writeResults(section, body) {
  const file = path.join(ROOT, 'bench', 'RESULTS.md')
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n\nLatest figures of `pnpm bench`. Shared 2-core machines are noisy: compare the ratios measured in the same run, not absolutes.\n'
  const start = `<!-- ${section}:start -->`
  const end = `<!-- ${section}:end -->`
  const block = `${start}\n${body.trim()}\n${end}`
  if (text.includes(start)) text = text.slice(0, text.indexOf(start)) + block + text.slice(text.indexOf(end) + end.length)
  else text = `${text.trimEnd()}\n\n${block}\n`
  writeFileSync(file, text)
  return text
}
