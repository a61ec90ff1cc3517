/**
 * @livestream/db: the schema, the client factory, migrations and the queries
 * both apps share. Compiled to `dist/`; migrations ship beside it.
 */
export * from './schema/index.js'
export { createDbClient, type Database, type DbClient, type DbClientOptions, type Transaction, type Schema } from './client.js'
export { migrateUp, migrateDown, ensureDatabase, MIGRATIONS_DIR, type MigrationResult } from './migrator.js'
export * from './queries/streams.js'
export { loggableError, type LoggableError } from './loggable-error.js'
export {
  mysqlErrorCode,
  isDuplicateEntry,
  isMissingReference,
  isRetryableConflict,
  isUnavailable,
  inTransaction,
  type TransactionOptions
} from './db-errors.js'
