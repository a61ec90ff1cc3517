import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import path from 'node:path'
import { parseStreamEvent, type StreamEvent } from '@livestream/events'
import type { Logger } from './logger.js'

/** One line of the file: an event to send, or the acknowledgement of one. */
type Line = { event: StreamEvent } | { ack: string }

/** The file of `nodeId` under `dir`: one per node, so two nodes never write the same file. */
export const outboxPath = (dir: string, nodeId: string) => path.join(dir, `${nodeId}.jsonl`)

/**
 * The durable half of the events outbox: an append-only JSON-lines file per node.
 *
 * - `append` writes the event and fdatasyncs before returning, so an event `send()` has returned survives a crash of
 *   the process and of the machine. It blocks the event loop for the sync: measured on this project's 2-core VM
 *   (ext4 on a virtual disk, 500 appends), p50 0.26 ms, p99 5-8 ms, worst 14 ms. Events are a few per publish, so
 *   that is affordable; a node sending hundreds per second would want group commit instead.
 * - `ack` appends an acknowledgement without syncing: the page cache survives a crash of the process, and an ack lost
 *   with the machine only means the event is sent again at the next start, under its own id, which the queue and the
 *   api's ledger drop.
 * - When every event in the file is acknowledged the file is truncated; at open it is rewritten with only the
 *   unacknowledged events (temporary file, sync, rename), so it never grows beyond an outage's worth of events.
 * - A last line cut short by a crash mid-write is skipped: its `send()` never returned.
 */
export class OutboxFile {
  private fd: number
  /** Events appended and not yet acknowledged, by id. */
  private readonly unacked = new Set<string>()

  private constructor(
    private readonly file: string,
    private readonly log: Logger
  ) {
    this.fd = openSync(file, 'a')
  }

  /** Opens (creating) the file of `nodeId` under `dir` and returns it with the events still to send, in order. */
  static open(dir: string, nodeId: string, log: Logger): { outbox: OutboxFile; pending: StreamEvent[] } {
    const file = outboxPath(dir, nodeId)
    try {
      return OutboxFile.openAt(dir, file, log)
    } catch (err) {
      throw new Error(`cannot open the events outbox ${file} (OUTBOX_DIR): ${(err as Error).message}`, { cause: err })
    }
  }

  private static openAt(dir: string, file: string, log: Logger): { outbox: OutboxFile; pending: StreamEvent[] } {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const pending = readPending(file, log)
    // Compact at start: only what is still to send, written beside and renamed over, so a crash leaves one or the other.
    const tmp = `${file}.tmp`
    const fd = openSync(tmp, 'w', 0o600)
    try {
      if (pending.length) writeSync(fd, pending.map((e) => serialize({ event: e })).join(''))
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
    syncDir(dir)
    const outbox = new OutboxFile(file, log)
    for (const e of pending) outbox.unacked.add(e.id)
    return { outbox, pending }
  }

  /** Writes `event` and syncs it to disk. Throws when the disk refuses: the caller must not report it as kept. */
  append(event: StreamEvent): void {
    writeAll(this.fd, serialize({ event }))
    fdatasyncSync(this.fd)
    this.unacked.add(event.id)
  }

  /** Records that the queue holds `id`; empties the file once nothing in it is left to send. */
  ack(id: string): void {
    if (!this.unacked.delete(id)) return
    try {
      if (this.unacked.size === 0) ftruncateSync(this.fd, 0)
      else writeAll(this.fd, serialize({ ack: id }))
    } catch (err) {
      // Harmless beyond a resend at the next start, which the queue drops by id.
      this.log.warn({ eventId: id, err: { message: (err as Error).message } }, 'could not record an acknowledgement in the outbox file')
    }
  }

  close(): void {
    if (this.fd < 0) return
    closeSync(this.fd)
    this.fd = -1
  }

  get path(): string {
    return this.file
  }
}

const serialize = (line: Line) => `${JSON.stringify(line)}\n`

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text)
  let off = 0
  while (off < buf.length) off += writeSync(fd, buf, off)
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** The events of `file` not acknowledged in it, in the order they were written. */
function readPending(file: string, log: Logger): StreamEvent[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const lines = text.split('\n')
  // Text after the last newline is a write the crash cut short (its send() never returned).
  const torn = lines.pop()
  if (torn) log.warn({ file, bytes: Buffer.byteLength(torn) }, 'outbox file ends in a partial line (a crash mid-write); skipped')
  const events = new Map<string, StreamEvent>()
  lines.forEach((text, i) => {
    if (!text) return
    try {
      const line = JSON.parse(text) as Partial<{ event: unknown; ack: unknown }>
      if (typeof line.ack === 'string') events.delete(line.ack)
      else {
        const event = parseStreamEvent(line.event)
        events.set(event.id, event)
      }
    } catch (err) {
      log.error({ file, line: i + 1, err: { message: (err as Error).message } }, 'unreadable line in the outbox file; skipped')
    }
  })
  return [...events.values()]
}
