export { ConfigError, invalidVariable, loadEnv, loadOrExit, type EnvSource } from './load-env.js'
export { Flag, Int, LogLevel } from './env-types.js'
