import { defineConfig } from 'drizzle-kit'

// Used only by `pnpm generate` to write SQL migrations from the schema;
// migrations are applied by our own migrator (src/migrator.ts), which also knows how to roll back.
export default defineConfig({
  dialect: 'mysql',
  schema: './src/schema/index.ts',
  out: './migrations',
  casing: 'snake_case'
})
