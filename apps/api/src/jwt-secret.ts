// The rule lives in @livestream/config (secret-strength.ts) so every app that takes a secret applies the same one.
export { HOW_TO_MAKE_ONE, MIN_SECRET_LENGTH, SHIPPED_PLACEHOLDERS, bitsPerChar, weakSecretReason } from '@livestream/config'
