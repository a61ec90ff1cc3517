export { ConfigError, invalidVariable, loadEnv, loadOrExit, type EnvSource } from './load-env.js'
export { Flag, Int, LogLevel } from './env-types.js'
export {
  HOW_TO_MAKE_ONE,
  MIN_SECRET_LENGTH,
  SHIPPED_PLACEHOLDERS,
  bitsPerChar,
  weakSecretError,
  weakSecretReason
} from './secret-strength.js'
