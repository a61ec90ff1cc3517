// What unauthenticated RTMP connections make ingest hold (issue 13, item 2): RSS before, at its peak and after, for
// two shapes. Prints a table.
//   node bench/rtmp-memory.mjs
import net from 'node:net'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { sleep, table } from './lib.mjs'
import { benchStack } from './stack.mjs'

const MB = 1024 * 1024
const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024

/** TCP connect and the plain handshake; the socket is left open. */
async function handshake(port) {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)]))
  let got = 0
  while (got < 1 + 1536 * 2) got += (await once(socket, 'data'))[0].length
  socket.write(Buffer.alloc(1536))
  return socket
}

/** Chunk headers (fmt 0, 2-byte chunk stream ids) each declaring `length`, with 128 bytes of payload. */
function declaring(length, streams) {
  const parts = []
  for (let i = 0; i < streams; i++) {
    const header = Buffer.alloc(13)
    header[1] = i
    header.writeUIntBE(length, 5, 3)
    header[8] = 4
    parts.push(header, Buffer.alloc(128, 0x42))
  }
  return Buffer.concat(parts)
}

async function wave(pid, port, n, bytes) {
  let peak = rss(pid)
  const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 50)
  const sockets = await Promise.all(Array.from({ length: n }, () => handshake(port)))
  for (const s of sockets) s.write(bytes)
  await Promise.all(sockets.map((s) => (s.destroyed ? null : Promise.race([once(s, 'close'), sleep(15_000)]))))
  for (const s of sockets) s.destroy()
  clearInterval(sampler)
  return Math.max(peak, rss(pid))
}

async function settle(pid, baseline) {
  const started = Date.now()
  while (Date.now() - started < 60_000 && rss(pid) - baseline > 16 * MB) await sleep(500)
  return { after: rss(pid), seconds: (Date.now() - started) / 1000 }
}

const shapes = [
  ['2 waves x 250: handshake + 60 KB of 0x41', async (pid, port) => Math.max(await wave(pid, port, 250, Buffer.alloc(60 * 1024, 0x41)), await wave(pid, port, 250, Buffer.alloc(60 * 1024, 0x41)))],
  ['500 x (handshake + 100 chunk streams declaring 16 MB)', (pid, port) => wave(pid, port, 500, declaring(0xffffff, 100))]
]

const stack = await benchStack('rtmpmem')
try {
  const ingest = await stack.ingest({ RTMP_PUBLISH_DEADLINE_MS: '3000' })
  const pid = ingest.pid
  await sleep(1_000)
  const rows = []
  for (const [name, run] of shapes) {
    const before = rss(pid)
    const peak = await run(pid, ingest.rtmpPort)
    const { after, seconds } = await settle(pid, before)
    rows.push({ shape: name, before: `${(before / MB).toFixed(1)} MB`, peak: `${(peak / MB).toFixed(1)} MB (+${((peak - before) / MB).toFixed(1)})`, after: `${(after / MB).toFixed(1)} MB`, 'back within 16 MB after': `${seconds.toFixed(1)} s` })
  }
  console.log(table(rows))
} finally {
  await stack.close()
}
