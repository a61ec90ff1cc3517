/**
 * What makes a secret unusable (JWT_SECRET, OPERATOR_TOKEN, METRICS_TOKEN). Anyone holding the JWT secret mints tokens
 * for any user, anyone holding the operator token retries and deletes jobs: a secret copied from our own examples, or
 * one a person typed, must stop the start rather than run.
 */
import { invalidVariable, type ConfigError } from './load-env.js'

/** Every placeholder this repository has shipped for its secrets (env.example, k8s manifests, docs), in any case. */
export const SHIPPED_PLACEHOLDERS = [
  'change-me-to-at-least-32-random-characters',
  'CHANGE_ME_TO_32_OR_MORE_RANDOM_CHARACTERS'
]
// Words that mark a value as an example to replace, whatever its exact spelling. Seven letters or more: random base64
// spells a five-letter word ("DumMY") about once in a million secrets, a seven-letter one about once in 10^9.
const PLACEHOLDER_WORDS = /change[\W_]*me|replace[\W_]*me|placeholder|your[\W_]*secret|example/i

export const MIN_SECRET_LENGTH = 32
// Per character, over the secret's own characters: 32 random hex digits measure ~3.5-3.9 bits (under 3 about once in
// 6,500 draws, so 3 refused real secrets; under 2.5 never in 800,000), base64 ~4.5-5; "aaaa…" 0, a short word
// repeated about 2-3 (and caught as a repetition).
const MIN_BITS_PER_CHAR = 2.5
// 32 random hex digits show under 10 distinct ones about once in 10,000 draws, under 8 never in 2.4 million.
const MIN_DISTINCT_CHARS = 8

export const HOW_TO_MAKE_ONE = 'make one with `openssl rand -base64 48`'

/** Shannon entropy of the secret's character distribution, in bits per character. */
export function bitsPerChar(text: string): number {
  const counts = new Map<string, number>()
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  const n = [...text].length
  let bits = 0
  for (const c of counts.values()) bits -= (c / n) * Math.log2(c / n)
  return bits
}

/** True when the text is a shorter string written out again and again ("abcabcabc…"). */
function isRepetition(text: string): boolean {
  for (let period = 1; period <= text.length / 2; period++) {
    if (text.length % period === 0 && text.slice(period) === text.slice(0, -period)) return true
  }
  return false
}

/** Why `secret` must not sign tokens, or null when it will do. */
export function weakSecretReason(secret: string): string | null {
  if (secret.length < MIN_SECRET_LENGTH) return `shorter than ${MIN_SECRET_LENGTH} characters`
  const lower = secret.toLowerCase()
  if (SHIPPED_PLACEHOLDERS.some((p) => p.toLowerCase() === lower) || PLACEHOLDER_WORDS.test(secret)) {
    return 'it is a placeholder from the examples'
  }
  if (new Set(secret).size < MIN_DISTINCT_CHARS || bitsPerChar(secret) < MIN_BITS_PER_CHAR || isRepetition(secret)) {
    return 'too predictable (too few distinct characters, or a pattern)'
  }
  return null
}

/** For an optional secret variable: null when unset or strong, else the ConfigError naming it. */
export function weakSecretError(name: string, value: string | undefined): ConfigError | null {
  if (value === undefined) return null
  const weak = weakSecretReason(value)
  return weak ? invalidVariable(name, `${weak}; ${HOW_TO_MAKE_ONE}`) : null
}
