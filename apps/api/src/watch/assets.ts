import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The watch page's files, as `scripts/build-watch-assets.mjs` names them in its manifest. */
export type AssetName = 'watch.js' | 'watch.css' | 'hls.js'

export interface Asset {
  type: string
  /** Identity, gzip and brotli bodies, built ahead (no compression per request). */
  identity: Buffer
  gzip: Buffer
  br: Buffer
}

export interface WatchAssets {
  /** `/watch/assets/<hashed name>` of each file, for the page's markup. */
  url(name: AssetName): string
  /** An asset by its hashed file name; undefined for anything else. */
  byFile(file: string): Asset | undefined
  /** hls.js under its plain name, for pages of other sites that want our copy rather than a CDN's. */
  hls: Asset
}

/**
 * Built by the api's build into `dist/watch-assets/` (the same folder seen from `src/watch` under tap and from
 * `dist/watch` in production). Read once at start and served from memory: three files, ~0.6 MB with their
 * compressed copies.
 */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('../../dist/watch-assets/', import.meta.url))

/** The assets in `dir`, or null when they were not built (the caller says so and answers 503 on the page). */
export function loadWatchAssets(dir = DEFAULT_ASSETS_DIR): WatchAssets | null {
  const manifestFile = path.join(dir, 'manifest.json')
  if (!existsSync(manifestFile)) return null
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<AssetName, { file: string; type: string }>
  const files = new Map<string, Asset>()
  for (const { file, type } of Object.values(manifest)) {
    const read = (suffix: string) => readFileSync(path.join(dir, file + suffix))
    files.set(file, { type, identity: read(''), gzip: read('.gz'), br: read('.br') })
  }
  return {
    url: (name) => `/watch/assets/${manifest[name].file}`,
    byFile: (file) => files.get(file),
    hls: files.get(manifest['hls.js'].file) as Asset
  }
}
