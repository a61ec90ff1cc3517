#!/usr/bin/env node
// `migrate` / `rollback` entry: node dist/cli.js up|down [steps|all]
import { ensureDatabase, migrateDown, migrateUp } from './migrator.js'

const [command = 'up', stepsArg] = process.argv.slice(2)
const url = process.env.DATABASE_URL
if (!url) {
  process.stderr.write('DATABASE_URL is not set (e.g. mysql://root@127.0.0.1:3306/livestream)\n')
  process.exit(2)
}

try {
  if (command === 'up') {
    await ensureDatabase(url)
    const { applied } = await migrateUp(url)
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n')
  } else if (command === 'down') {
    const steps = stepsArg === 'all' ? 'all' : Number(stepsArg ?? 1)
    if (steps !== 'all' && (!Number.isInteger(steps) || steps < 1)) throw new Error(`steps must be a positive integer or "all", got "${stepsArg}"`)
    const { applied } = await migrateDown(url, steps)
    process.stdout.write(applied.length ? `rolled back: ${applied.join(', ')}\n` : 'nothing to roll back\n')
  } else {
    throw new Error(`unknown command "${command}" (expected up or down)`)
  }
} catch (err) {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`)
  process.exit(1)
}
