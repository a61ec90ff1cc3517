import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from './logger.js'

/**
 * Several ingest nodes may share one MEDIA_ROOT (one host, or one shared volume behind a web server), and the
 * playback URLs stay `/hls/<playback_id>/…`. So each media folder names the node that writes it, in a file the media
 * HTTP never serves, and a node removes only folders it owns: at start (leftovers of its own earlier run) and after
 * a stream's retention (unless another node has taken the stream over meanwhile). The one exception: folders of a node
 * that is gone for good (killed, never restarted) are swept by the nodes still running (`removeOrphanMedia`).
 */
export const OWNER_FILE = '.ingest-node'
const KINDS = ['hls', 'dash'] as const
const PLAYBACK_ID = /^[A-Za-z0-9_-]{1,64}$/

export const mediaDirs = (mediaRoot: string, playbackId: string) => KINDS.map((kind) => path.join(mediaRoot, kind, playbackId))

/** Creates a stream's HLS and DASH folders and marks them as this node's. */
export async function claimMediaFolders(mediaRoot: string, playbackId: string, nodeId: string): Promise<void> {
  for (const dir of mediaDirs(mediaRoot, playbackId)) {
    await mkdir(dir, { recursive: true })
    await writeFile(path.join(dir, OWNER_FILE), nodeId)
  }
}

async function ownerOf(dir: string): Promise<string | null> {
  try {
    return (await readFile(path.join(dir, OWNER_FILE), 'utf8')).trim()
  } catch {
    return null
  }
}

/** Removes a stream's folders, each only if this node still owns it. */
export async function removeOwnMedia(mediaRoot: string, playbackId: string, nodeId: string): Promise<void> {
  if (!PLAYBACK_ID.test(playbackId)) return
  for (const dir of mediaDirs(mediaRoot, playbackId)) {
    if ((await ownerOf(dir)) === nodeId) await rm(dir, { recursive: true, force: true })
  }
}

/**
 * A fresh node holds no streams: the folders its earlier run left behind go. Folders of other nodes, and folders
 * with no owner yet (another node between its mkdir and its owner file), are left alone.
 */
export async function removeLeftoverMedia(mediaRoot: string, nodeId: string, log: Logger): Promise<void> {
  for (const kind of KINDS) {
    const dir = path.join(mediaRoot, kind)
    await mkdir(dir, { recursive: true })
    let removed = 0
    let kept = 0
    for (const id of await readdir(dir)) {
      if (!PLAYBACK_ID.test(id)) continue
      if ((await ownerOf(path.join(dir, id))) === nodeId) {
        await rm(path.join(dir, id), { recursive: true, force: true })
        removed++
      } else kept++
    }
    if (removed || kept) log.info({ kind, removed, keptForOtherNodes: kept }, 'leftover media folders of this node removed')
  }
}

/**
 * Folders whose owner is another node that has not sent a heartbeat for `orphanMs` (killed and never restarted: a
 * scaled-down pod, a retired host), or that have no owner at all, and that nothing has written into for `orphanMs`
 * either: nobody else will ever remove them. A live stream's folder gains a segment every few seconds, so it is never
 * that old; a stream another node has taken over names that node.
 */
export async function removeOrphanMedia(
  mediaRoot: string,
  nodeId: string,
  aliveNodes: ReadonlySet<string>,
  orphanMs: number,
  log: Logger
): Promise<number> {
  let removed = 0
  const before = Date.now() - orphanMs
  for (const kind of KINDS) {
    const dir = path.join(mediaRoot, kind)
    for (const id of await readdir(dir).catch(() => [] as string[])) {
      if (!PLAYBACK_ID.test(id)) continue
      const folder = path.join(dir, id)
      const owner = await ownerOf(folder)
      if (owner === nodeId || (owner !== null && aliveNodes.has(owner))) continue
      const modified = await stat(folder).then((s) => s.mtimeMs, () => Date.now())
      if (modified > before) continue
      await rm(folder, { recursive: true, force: true })
      removed++
    }
  }
  if (removed) log.info({ removed, orphanMs }, 'media folders of nodes gone for good removed')
  return removed
}
