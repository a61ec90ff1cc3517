/**
 * A short-lived, in-process read cache of stream rows and list pages, kept coherent across processes.
 *
 * Reads of one stream and of list pages dominate the api's traffic and each one costs database round trips. Every
 * process that changes a stream (api, worker, reaper) calls `changed(id)` after its transaction commits: the local
 * entries go at once (read-your-writes for the caller) and the id is published to the other processes, which drop
 * theirs. Entries also expire after `ttlMs`, which bounds staleness if a message is lost. While the process cannot
 * hear those messages (Redis down), nothing is cached. Concurrent misses of one key share one query.
 */
export interface StreamCache {
  /** What is cached under (`id`, `variant`) of one stream, or `load()`'s answer (kept if nothing changed meanwhile). */
  readStream<T>(id: number, variant: string, load: () => Promise<T>): Promise<T>
  /** The same for a list page: every page goes on any change. */
  readPage<T>(key: string, load: () => Promise<T>): Promise<T>
  /** After a commit that changed stream `id`: drop it and every list page, here and in the other processes. */
  changed(id: number): void
  /** A change announced by another process. */
  dropped(id: number): void
  /** Whether changes can reach us; when false, reads go to the database. */
  setListening(on: boolean): void
  readonly listening: boolean
  readonly size: number
}

export interface StreamCacheOptions {
  ttlMs: number
  maxEntries?: number
  /** Tells the other processes; failures are the caller's to log. */
  announce?: (id: number) => void
  now?: () => number
  /** Told of every read: served from memory (`hit`, a load already under way included), loaded (`miss`), or not cacheable now (`bypass`). */
  onRead?: (result: CacheReadResult) => void
}

export type CacheReadResult = 'hit' | 'miss' | 'bypass'

interface Entry {
  value: unknown
  until: number
}

export function createStreamCache(opts: StreamCacheOptions): StreamCache {
  const max = opts.maxEntries ?? 10_000
  const now = opts.now ?? Date.now
  const onRead = opts.onRead
  // Per stream, its variants (the row, its rendered views); list pages apart, since any change drops them all.
  const streams = new Map<number, Map<string, Entry>>()
  const pages = new Map<string, Entry>()
  const inflight = new Map<string, Promise<unknown>>()
  let listening = false
  // Bumped by every change: a load that started before a change must not store what it read.
  let epoch = 0

  const enabled = () => opts.ttlMs > 0 && listening
  const clear = () => {
    epoch++
    streams.clear()
    pages.clear()
    inflight.clear()
  }
  const drop = (id: number) => {
    epoch++
    streams.delete(id)
    pages.clear()
    inflight.clear()
  }

  function read<T>(flightKey: string, get: () => Entry | undefined, set: (e: Entry) => void, load: () => Promise<T>): Promise<T> {
    if (!enabled()) {
      onRead?.('bypass')
      return load()
    }
    const hit = get()
    if (hit && hit.until > now()) {
      onRead?.('hit')
      return Promise.resolve(hit.value as T)
    }
    const pending = inflight.get(flightKey)
    if (pending) {
      onRead?.('hit')
      return pending as Promise<T>
    }
    onRead?.('miss')
    const started = epoch
    const p: Promise<T> = load().then(
      (value) => {
        if (inflight.get(flightKey) === p) inflight.delete(flightKey)
        if (started === epoch && enabled()) set({ value, until: now() + opts.ttlMs })
        return value
      },
      (err: unknown) => {
        if (inflight.get(flightKey) === p) inflight.delete(flightKey)
        throw err
      }
    )
    inflight.set(flightKey, p)
    return p
  }

  return {
    readStream(id, variant, load) {
      return read(
        `s:${id}:${variant}`,
        () => streams.get(id)?.get(variant),
        (e) => {
          let variants = streams.get(id)
          if (!variants) {
            if (streams.size >= max) streams.delete(streams.keys().next().value as number)
            streams.set(id, (variants = new Map()))
          }
          variants.set(variant, e)
        },
        load
      )
    },
    readPage(key, load) {
      return read(
        `p:${key}`,
        () => pages.get(key),
        (e) => {
          if (pages.size >= max) pages.delete(pages.keys().next().value as string)
          pages.set(key, e)
        },
        load
      )
    },
    changed(id) {
      drop(id)
      opts.announce?.(id)
    },
    dropped(id) {
      drop(id)
    },
    setListening(on) {
      if (on !== listening) clear()
      listening = on
    },
    get listening() {
      return listening
    },
    get size() {
      let n = pages.size
      for (const v of streams.values()) n += v.size
      return n
    }
  }
}

/** A cache that never holds anything: for tests and `STREAM_CACHE_MS=0`. */
export const noStreamCache: StreamCache = createStreamCache({ ttlMs: 0 })
