import t, { type Test } from 'tap'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { claimMediaFolders, OWNER_FILE, removeLeftoverMedia, removeOwnMedia } from '../src/media-folders.js'

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
