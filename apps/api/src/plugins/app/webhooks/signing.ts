import { createHmac, randomBytes } from 'node:crypto'

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): a secret is `whsec_` + base64 of random bytes; the
 * signature of a message is `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)), where the key is the secret's
 * base64 part decoded. Several signatures (a rotation's overlap) go in one header, separated by spaces.
 */
export const SECRET_PREFIX = 'whsec_'

/** A new secret: 32 random bytes (the spec asks for 24 to 64). */
export const newWebhookSecret = (): string => `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`

/** The key bytes of a `whsec_` secret. */
function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64')
}

/** One `v1,<base64>` signature of `${id}.${timestamp}.${body}`; `timestamp` in whole seconds since the epoch. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.`).update(body).digest('base64')
  return `v1,${mac}`
}

/** The three headers of one delivery attempt, signed with every secret given (the current one first). */
export function webhookHeaders(secrets: readonly string[], id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000)
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => signWebhook(s, id, timestamp, body)).join(' ')
  }
}
