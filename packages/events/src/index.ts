/**
 * @livestream/events: the contract between ingest (producer) and the api (consumer):
 * queue name, event types and their runtime schemas, the job id rule and retry policy.
 */
export * from './events.js'
export * from './queue.js'
export * from './validate.js'
