// Part of the api's build: the watch page's assets, content-hashed (served with a year's cache, never stale), each
// with gzip and brotli copies, and a manifest the api reads at start. hls.js comes from our node_modules: the page
// loads nothing from a CDN.
import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const here = path.dirname(fileURLToPath(import.meta.url))
const out = path.join(here, '../dist/watch-assets')
const require = createRequire(import.meta.url)

const sources = [
  { name: 'watch.js', file: path.join(here, '../watch/watch.js'), type: 'text/javascript; charset=utf-8' },
  { name: 'watch.css', file: path.join(here, '../watch/watch.css'), type: 'text/css; charset=utf-8' },
  // The full build: the light one has no alternate audio renditions, and ingest's playlists carry audio as one.
  { name: 'hls.js', file: require.resolve('hls.js/dist/hls.min.js'), type: 'text/javascript; charset=utf-8' }
]

await rm(out, { recursive: true, force: true })
await mkdir(out, { recursive: true })
const manifest = {}
for (const { name, file, type } of sources) {
  // The source map is not shipped: its comment would only make devtools ask for a 404.
  const body = Buffer.from((await readFile(file, 'utf8')).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'))
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 12)
  const ext = path.extname(name)
  const hashed = `${path.basename(name, ext)}.${hash}${ext}`
  await writeFile(path.join(out, hashed), body)
  await writeFile(path.join(out, `${hashed}.gz`), gzipSync(body, { level: 9 }))
  await writeFile(path.join(out, `${hashed}.br`), brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
  manifest[name] = { file: hashed, type }
}
await writeFile(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
console.log(`watch assets: ${Object.values(manifest).map((m) => m.file).join(', ')}`)
