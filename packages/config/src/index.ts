export { ConfigError, invalidVariable, loadEnv, loadOrExit, type EnvSource } from './load-env.js'
export { Flag, Int, LogLevel } from './env-types.js'
export { bitsPerChar, HOW_TO_MAKE_ONE, MIN_SECRET_LENGTH, SHIPPED_PLACEHOLDERS, weakSecretReason } from './secret-strength.js'
