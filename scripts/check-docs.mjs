// `pnpm lint` runs this: every test file the README names (a path ending in .test.ts) must exist, so the
// Guarantees table cannot promise a proof that is not there.
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const readme = readFileSync(path.join(root, 'README.md'), 'utf8')
const cited = new Set(readme.match(/[\w./-]+\.test\.ts/g) ?? [])
const missing = [...cited].filter((file) => !file.includes('/') || !existsSync(path.join(root, file)))
if (missing.length > 0) {
  console.error(`README.md cites test files that do not exist (cite them by their path from the repository root):\n  ${missing.join('\n  ')}`)
  process.exit(1)
}
console.log(`README.md: ${cited.size} cited test files, all present`)
