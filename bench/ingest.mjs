// Ingest capacity: N publishers of a looped 720p 2.5 Mbps clip (-c copy), into (1) our ingest, packaging HLS + DASH
// per stream in process (CMAF, LL-HLS + DASH, served from memory), (2) a bare node-media-server (no hooks, no packaging), (3) nginx-rtmp with `hls on` (the C peer, when
// installed). Server-side CPU (process tree), RSS and PSS, publishers dropped, segments on time; publishers measured apart.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { FFMPEG, ROOT, freePort, machine, measureMany, measureTree, sleep, start, table, waitFor, writeResults } from './lib.mjs'
import { clip720, publishArgs } from './clip.mjs'
import { benchStack } from './stack.mjs'

const NS = (process.env.BENCH_N ?? '10,25,50,100').split(',').map(Number)
// Which servers to run (ours, bare, nginx): all by default; a subset for a quick before/after of one change.
const SERVERS = new Set((process.env.BENCH_SERVERS ?? 'ours,bare,nginx').split(','))
// Packager settings passed through to our ingest, for before/after runs.
const OURS_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('PACKAGER_')))
const WINDOW = Number(process.env.BENCH_DURATION ?? 15) * 1000
const WARMUP = 6000
const SEG = 2
const NGINX = '/usr/sbin/nginx'
const NGINX_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so'
const file = clip720()

function onTime(dir, names) {
  // nginx-rtmp: a stream is on time when its newest segment file is younger than two segment lengths.
  let ok = 0
  for (const n of names) {
    const d = path.join(dir, n)
    if (!existsSync(d)) continue
    const segs = readdirSync(d).filter((f) => f.endsWith('.ts'))
    const newest = Math.max(0, ...segs.map((f) => statSync(path.join(d, f)).mtimeMs))
    if (Date.now() - newest < SEG * 2000 + 1000) ok++
  }
  return ok
}

/**
 * Ours serves from memory: a stream is on time when its media playlist's live edge (the last program date-time plus
 * the segments and parts after it) is younger than two segment lengths, the same bar as nginx-rtmp's files.
 */
async function onTimeHttp(base, playbackIds) {
  let ok = 0
  await Promise.all(
    playbackIds.map(async (id) => {
      try {
        const mvUrl = `${base}/hls/${id}/index.m3u8`
        const mv = await (await fetch(mvUrl)).text()
        const variant = mv.split('\n').find((l) => l && !l.startsWith('#'))
        if (!variant) return
        const media = await (await fetch(new URL(variant.trim(), mvUrl))).text()
        let edge = NaN
        for (const line of media.split('\n')) {
          if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) edge = Date.parse(line.slice(25))
          else if (line.startsWith('#EXTINF:')) edge += Number.parseFloat(line.slice(8)) * 1000
        }
        // Parts of the segment being written, after the last complete one.
        const tail = media.slice(media.lastIndexOf('#EXTINF:'))
        for (const m of tail.matchAll(/#EXT-X-PART:DURATION=([\d.]+)/g)) edge += Number(m[1]) * 1000
        if (Date.now() - edge < SEG * 2000 + 1000) ok++
      } catch {}
    })
  )
  return ok
}

async function drive(server, n, urlFor, segDir, segNames, windowBytes = null) {
  const pubs = []
  for (let i = 0; i < n; i++) {
    pubs.push(start('pub', FFMPEG, publishArgs(file, urlFor(i))))
    if (i % 10 === 9) await sleep(200)
  }
  await sleep(WARMUP)
  const [srv, pubCpu] = await Promise.all([measureTree(server.pid, WINDOW), measureMany(pubs.map((p) => p.pid), WINDOW)])
  const gone = pubs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null)
  const dropped = gone.length
  for (const p of gone) {
    // Why a publisher stopped: the last words of ffmpeg, and what the server logged (warnings and up).
    console.log(`dropped publisher (exit ${p.child.exitCode ?? p.child.signalCode}): ${p.output().trim().split('\n').slice(-3).join(' | ')}`)
  }
  if (gone.length) console.log(`server log tail:\n${server.output().trim().split('\n').slice(-8).join('\n')}`)
  const timely = typeof segDir === 'function' ? await segDir() : segDir ? onTime(segDir, segNames) : null
  const window = windowBytes ? await windowBytes() : null
  await Promise.all(pubs.map((p) => p.stop()))
  const cpu = srv.rootCpu + srv.childCpu
  return {
    N: n,
    'server CPU %': cpu.toFixed(0),
    'node %': srv.rootCpu.toFixed(0),
    'ffmpeg %': srv.childCpu.toFixed(0),
    'CPU/stream %': (cpu / n).toFixed(2),
    'RSS MB': ((srv.rootRss + srv.childRss) / 2 ** 20).toFixed(0),
    'PSS MB': (srv.totalPss / 2 ** 20).toFixed(0),
    'publishers CPU %': pubCpu.toFixed(0),
    dropped,
    'on time': timely === null ? 'n/a' : `${timely}/${n}`,
    'window MB/stream': window === null ? 'n/a' : (window / n / 2 ** 20).toFixed(2)
  }
}

async function ours(n) {
  const stack = await benchStack(`ingest${n}`)
  try {
    const api = await stack.api({ REAPER_ENABLED: 'false' })
    const ingest = await stack.ingest({ HLS_SEGMENT_SECONDS: String(SEG), PUBLISH_FAIL_LIMIT: '100000', ...OURS_ENV })
    const user = await stack.user(api)
    const streams = []
    for (let i = 0; i < n; i++) streams.push(await stack.createStream(api, user, `cap${i}`))
    return await drive(ingest, n, (i) => `rtmp://127.0.0.1:${ingest.rtmpPort}/live/${streams[i].stream_key}`, () => onTimeHttp(ingest.publicUrl, streams.map((s) => s.playback_id)), [], async () => {
      // The live windows' bytes in memory (init segments and every part kept), from ingest's own gauge.
      const text = await (await fetch(`${ingest.publicUrl}/metrics`)).text()
      return Number(/livestream_ingest_media_window_bytes\{[^}]*\} (\d+)/.exec(text)?.[1] ?? NaN)
    })
  } finally {
    await stack.close()
  }
}

async function bare(n) {
  const port = await freePort()
  const store = mkdtempSync(path.join(tmpdir(), 'ls-bare-'))
  const srv = start('bare-nms', process.execPath, [path.join(ROOT, 'bench/bare-nms.mjs')], { RTMP_PORT: String(port), STORE_PATH: store })
  await sleep(800)
  try {
    return await drive(srv, n, (i) => `rtmp://127.0.0.1:${port}/live/s${i}`, null, [])
  } finally {
    await srv.stop()
    rmSync(store, { recursive: true, force: true })
  }
}

async function nginx(n) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'ls-nginx-'))
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, `load_module ${NGINX_MODULE};
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
rtmp {
  server {
    listen 127.0.0.1:${port};
    chunk_size 60000;
    application live {
      live on;
      hls on;
      hls_path ${dir}/hls;
      hls_fragment ${SEG}s;
      hls_playlist_length 12s;
      hls_nested on;
    }
  }
}
`)
  const srv = start('nginx', NGINX, ['-p', dir, '-c', conf])
  await sleep(800)
  try {
    return await drive(srv, n, (i) => `rtmp://127.0.0.1:${port}/live/s${i}`, path.join(dir, 'hls'), Array.from({ length: n }, (_, i) => `s${i}`))
  } finally {
    await srv.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const haveNginx = existsSync(NGINX) && existsSync(NGINX_MODULE)
const sections = []
const summary = []
for (const n of NS) {
  const rows = []
  let o = null
  let g = null
  if (SERVERS.has('ours')) {
    o = await ours(n)
    rows.push({ server: 'ours (LL-HLS+DASH, in process)', ...o })
  }
  if (SERVERS.has('bare')) rows.push({ server: 'bare node-media-server', ...(await bare(n)) })
  if (SERVERS.has('nginx') && haveNginx) {
    g = await nginx(n)
    rows.push({ server: 'nginx-rtmp (hls on)', ...g })
  }
  const ratio = o && g ? (Number(o['CPU/stream %']) / Math.max(0.01, Number(g['CPU/stream %']))).toFixed(2) : 'n/a'
  summary.push({ N: n, 'ours/nginx CPU per stream': ratio, 'ours dropped': o?.dropped ?? 'n/a', 'ours on time': o?.['on time'] ?? 'n/a' })
  const t = table(rows)
  console.log(`\nN = ${n}\n${t}\nours / nginx-rtmp CPU per stream: ${ratio}x`)
  sections.push(`### N = ${n}\n\n${t}\n\nours / nginx-rtmp CPU per stream: ${ratio}x`)
}
const s = table(summary)
console.log(`\n${s}`)
// A partial run (some servers, or packager settings changed) is a before/after probe, not the record.
if (SERVERS.size === 3 && Object.keys(OURS_ENV).length === 0) writeResults('ingest', `## Ingest capacity\n\n\`pnpm bench:ingest\` (BENCH_N=${NS.join(',')}, ${WINDOW / 1000} s window after ${WARMUP / 1000} s warm-up, 720p 2.5 Mbps clip looped with -c copy, ${SEG} s segments), ${new Date().toISOString().slice(0, 10)}, ${machine()}\n\nCPU: 100 % = one core, server process tree apart from the publishers. RSS sums each process's resident pages (shared libraries counted once per ffmpeg); PSS divides shared pages among the processes that map them: the memory the tree really takes. Targets: >= 100 publishers on 2 cores with none dropped; CPU per stream <= 1.5x nginx-rtmp.\n\n${s}\n\n${sections.join('\n\n')}`)
