// The rule lives in packages/config (ingest's OPERATOR_TOKEN follows it too); the api's imports stay as they were.
export { bitsPerChar, HOW_TO_MAKE_ONE, MIN_SECRET_LENGTH, SHIPPED_PLACEHOLDERS, weakSecretReason } from '@livestream/config'
