/**
 * The one classifier of MySQL errors for both apps: drizzle wraps the driver's error in `cause`, so the code is looked
 * for down the chain.
 */
export function mysqlErrorCode(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('ER_')) return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/** A unique index refused the row. */
export const isDuplicateEntry = (err: unknown) => mysqlErrorCode(err) === 'ER_DUP_ENTRY'

/** A foreign key names a row that does not exist (or no longer does): for us, a user deleted under a valid token. */
export const isMissingReference = (err: unknown) => {
  const code = mysqlErrorCode(err)
  return code === 'ER_NO_REFERENCED_ROW_2' || code === 'ER_NO_REFERENCED_ROW'
}
