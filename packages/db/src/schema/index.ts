export * from './users.js'
export * from './streams.js'
export * from './stream-participants.js'
export * from './stream-events.js'
