import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/**
 * Checks an `Authorization` header against the operators' token (`OPERATOR_TOKEN`): `ok`, `missing` (no bearer
 * credentials at all) or `wrong`. Both sides are hashed first, so the comparison takes the same time whatever the
 * length or the first differing byte of what was sent.
 */
export function checkOperatorBearer(header: string | undefined, token: string): 'ok' | 'missing' | 'wrong' {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? '')
  if (!m) return 'missing'
  return timingSafeEqual(digest(m[1] as string), digest(token)) ? 'ok' : 'wrong'
}
