import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { migrateUp } from './migrator.js'

/** The server tests use: `TEST_DATABASE_URL`, else the project's local MariaDB user (scripts/ensure-services.sh creates it). */
export function testServerUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'mysql://livestream:livestream@127.0.0.1:3306/'
}

export interface TestDatabase {
  url: string
  name: string
  drop(): Promise<void>
}

/**
 * Creates a fresh, migrated database with a unique name on the test server.
 * `drop()` removes it. Used by every test file that touches MySQL.
 */
export async function createTestDatabase(prefix = 'ls_test', migrate = true): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`
  const server = new URL(testServerUrl())
  server.pathname = '/'
  const admin = await mysql.createConnection({ uri: server.toString() })
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  } finally {
    await admin.end()
  }
  const url = new URL(server.toString())
  url.pathname = `/${name}`
  if (migrate) await migrateUp(url.toString())
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = await mysql.createConnection({ uri: server.toString() })
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${name}\``)
      } finally {
        await c.end()
      }
    }
  }
}
