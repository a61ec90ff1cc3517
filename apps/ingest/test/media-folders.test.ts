import t, { type Test } from 'tap'
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { claimMediaFolders, OWNER_FILE, removeLeftoverMedia, removeOrphanMedia, removeOwnMedia } from '../src/media-folders.js'

const log = pino({ level: 'silent' })

async function root(t: Test) {
  const dir = await mkdtemp(path.join(tmpdir(), 'ls-folders-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}
const list = async (dir: string) => (await readdir(dir)).sort()

t.test('a node claims its folders: created under hls/ and dash/ by playback id, marked with its node id', async (t) => {
  const dir = await root(t)
  await claimMediaFolders(dir, 'pbA', 'node-a')
  for (const kind of ['hls', 'dash']) {
    t.same(await list(path.join(dir, kind)), ['pbA'], `${kind}/<playback_id>: URLs unchanged`)
    t.equal(await readFile(path.join(dir, kind, 'pbA', OWNER_FILE), 'utf8'), 'node-a')
  }
})

t.test("at start a node removes its own leftovers only: another node's folders and unmarked ones stay", async (t) => {
  const dir = await root(t)
  await claimMediaFolders(dir, 'mine1', 'node-a')
  await claimMediaFolders(dir, 'mine2', 'node-a')
  await claimMediaFolders(dir, 'theirs', 'node-b')
  await writeFile(path.join(dir, 'hls', 'theirs', 'index.m3u8'), '#EXTM3U\n')
  // Another node between its mkdir and its owner file.
  await mkdir(path.join(dir, 'hls', 'fresh'), { recursive: true })
  await removeLeftoverMedia(dir, 'node-a', log)
  t.same(await list(path.join(dir, 'hls')), ['fresh', 'theirs'])
  t.same(await list(path.join(dir, 'dash')), ['theirs'])
  t.equal(await readFile(path.join(dir, 'hls', 'theirs', 'index.m3u8'), 'utf8'), '#EXTM3U\n', "the other node's playlist is untouched")
})

t.test('a stream taken over by another node keeps its media when the first node’s retention ends', async (t) => {
  const dir = await root(t)
  await claimMediaFolders(dir, 'pbM', 'node-a')
  await claimMediaFolders(dir, 'pbM', 'node-b')
  await removeOwnMedia(dir, 'pbM', 'node-a')
  t.same(await list(path.join(dir, 'hls')), ['pbM'], 'node-a does not remove what node-b writes now')
  await removeOwnMedia(dir, 'pbM', 'node-b')
  t.same(await list(path.join(dir, 'hls')), [], 'its owner does')
  t.same(await list(path.join(dir, 'dash')), [])
})

t.test('a fresh MEDIA_ROOT gets its hls and dash folders', async (t) => {
  const dir = await root(t)
  await removeLeftoverMedia(path.join(dir, 'new'), 'node-a', log)
  t.same(await list(path.join(dir, 'new')), ['dash', 'hls'])
})

t.test("folders of a node gone for good are swept by the others once untouched for the orphan time; nothing else is", async (t) => {
  const dir = await root(t)
  const ORPHAN_MS = 60_000
  const age = async (id: string, ms: number) => {
    const when = new Date(Date.now() - ms)
    for (const kind of ['hls', 'dash']) await utimes(path.join(dir, kind, id), when, when)
  }
  await claimMediaFolders(dir, 'deadOld', 'node-dead')
  await age('deadOld', ORPHAN_MS * 2)
  await claimMediaFolders(dir, 'deadRecent', 'node-dead') // written into a moment ago: maybe still being served
  await claimMediaFolders(dir, 'aliveOld', 'node-alive') // its node still beats: retention is its business
  await age('aliveOld', ORPHAN_MS * 2)
  await claimMediaFolders(dir, 'mineOld', 'node-a') // the sweeping node's own: left to its retention timers
  await age('mineOld', ORPHAN_MS * 2)
  await mkdir(path.join(dir, 'hls', 'unownedOld'))
  await utimes(path.join(dir, 'hls', 'unownedOld'), new Date(0), new Date(0))
  await mkdir(path.join(dir, 'hls', 'unownedFresh')) // another node between its mkdir and its owner file
  await mkdir(path.join(dir, 'hls', '..bad name'))
  await utimes(path.join(dir, 'hls', '..bad name'), new Date(0), new Date(0))

  const removed = await removeOrphanMedia(dir, 'node-a', new Set(['node-a', 'node-alive']), ORPHAN_MS, log)
  t.equal(removed, 3, 'both folders of the dead node, and the old unowned one')
  t.same(await list(path.join(dir, 'hls')), ['..bad name', 'aliveOld', 'deadRecent', 'mineOld', 'unownedFresh'])
  t.same(await list(path.join(dir, 'dash')), ['aliveOld', 'deadRecent', 'mineOld'])
  t.equal(await removeOrphanMedia(path.join(dir, 'missing'), 'node-a', new Set(), ORPHAN_MS, log), 0, 'a MEDIA_ROOT not there yet is no error')
})
