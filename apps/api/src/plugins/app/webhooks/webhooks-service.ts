import type { FastifyBaseLogger } from 'fastify'
import type { JobsOptions } from 'bullmq'
import type { DbClient } from '@livestream/db'
import { DomainError } from '../domain-errors.js'
import { platformEventId, PLATFORM_EVENT_TYPES, type PlatformEvent } from '../platform-events.js'
import { checkUrlShape, resolveAllowed, type Resolver, type SsrfPolicy } from './ssrf-guard.js'
import { newWebhookSecret } from './signing.js'
import { createWebhookStore, type AttemptOutcome, type EndpointRow } from './webhook-store.js'
import type { AttemptResult, WebhookSender } from './webhook-sender.js'

/** The BullMQ queue of deliveries, under the deployment's QUEUE_PREFIX: one job per (event, endpoint). */
export const WEBHOOK_DELIVERIES_QUEUE = 'webhook-deliveries'
/** The custom backoff of delivery jobs (the worker registers the strategy). */
export const WEBHOOK_BACKOFF = 'webhook-jitter'
/** A rotated secret still signs for this long, so receivers can switch without missing a delivery. */
export const SECRET_OVERLAP_MS = 24 * 3600_000
export const PING_EVENT_TYPE = 'webhook.ping'

/** What a delivery job carries: the body serialized once at fan-out, signed anew at each attempt. */
export interface DeliveryJobData {
  endpointId: number
  eventId: string
  eventType: string
  body: string
}

/** Standard Webhooks job ids may not hold `:`; event ids are `evt_` + base64url or hex. */
export const deliveryJobId = (eventId: string, endpointId: number) => `whd_${endpointId}_${eventId}`

/**
 * The wait before retry number `attemptsMade` (1 after the first failure): a random time between half and all of the
 * schedule's step ("equal jitter"). Full jitter could draw ~0 several times running and spend the retries within
 * seconds; this keeps them spread over at least half the schedule (11 h of the default 22 h) while receivers coming
 * back from an outage are not hit by every sender at the same instant.
 */
export function webhookBackoff(delaysMs: readonly number[], random = Math.random) {
  return (attemptsMade: number): number => {
    const step = delaysMs[Math.min(Math.max(attemptsMade, 1), delaysMs.length) - 1] ?? 0
    return Math.round(step / 2 + random() * (step / 2))
  }
}

export interface WebhooksServiceOptions {
  sender: Pick<WebhookSender, 'send'>
  /** Where deliveries are queued; `addBulk` of BullMQ's Queue. */
  queue: { addBulk(jobs: Array<{ name: string; data: DeliveryJobData; opts: JobsOptions }>): Promise<unknown> }
  policy: SsrfPolicy
  retryDelaysMs: readonly number[]
  disableAfterFailedEvents: number
  maxEndpointsPerUser: number
  logRowsPerEndpoint: number
  log: Pick<FastifyBaseLogger, 'warn' | 'info'>
  resolve?: Resolver
}

export interface EndpointInput {
  url: string
  description?: string | null | undefined
  /** Absent or null: every type. */
  eventTypes?: readonly string[] | null | undefined
}

/**
 * Whether an attempt changes its endpoint's record: a streak to reset or to grow, or a last success or failure a second
 * old or more. Most successes change nothing, so deliveries to one endpoint need not queue up on its row.
 */
function changesRecord(e: EndpointRow, outcome: AttemptOutcome, now: number): boolean {
  const stale = (d: Date | null) => d === null || now - d.getTime() >= 1_000
  if (outcome === 'delivered') return e.failureStreak > 0 || stale(e.lastSuccessAt)
  if (outcome === 'will-retry') return stale(e.lastFailureAt)
  return outcome === 'exhausted'
}

const notFound = () => new DomainError('not-found', 'webhook endpoint not found')
const KNOWN_TYPES = new Set<string>(PLATFORM_EVENT_TYPES)

/**
 * Webhook endpoints and their deliveries: registration (with the SSRF check), the fan-out of platform events to the
 * owner's matching endpoints (one queued job per event and endpoint), one delivery attempt as the worker runs it, and
 * the rule that disables an endpoint that keeps failing. Routes and the worker come through here.
 */
export function createWebhooksService(client: Pick<DbClient, 'pool'>, opts: WebhooksServiceOptions) {
  const store = createWebhookStore(client.pool)
  const attempts = opts.retryDelaysMs.length + 1
  const jobOptions: JobsOptions = {
    attempts,
    backoff: { type: WEBHOOK_BACKOFF },
    // Kept a day after success: the same (event, endpoint) queued again within it (a redelivered ingest event) is
    // dropped by its job id. Failed ones stay a week for inspection.
    removeOnComplete: { age: 24 * 3600, count: 50_000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 50_000 }
  }
  const disabledReason = `${opts.disableAfterFailedEvents} event(s) in a row could not be delivered after ${attempts} attempts each`

  async function mustOwn(userId: number, id: number): Promise<EndpointRow> {
    const row = await store.byId(id, userId)
    if (!row) throw notFound()
    return row
  }

  function checkEventTypes(types: readonly string[] | null | undefined): string[] | null {
    if (types === null || types === undefined) return null
    if (types.length === 0) throw new DomainError('invalid', 'event_types: give at least one event type, or null for all of them')
    if (types.length > PLATFORM_EVENT_TYPES.length) throw new DomainError('invalid', `event_types: at most ${PLATFORM_EVENT_TYPES.length} types`)
    const unknown = types.findIndex((t) => !KNOWN_TYPES.has(t))
    if (unknown >= 0) throw new DomainError('invalid', `event_types.${unknown}: unknown event type; known types: ${PLATFORM_EVENT_TYPES.join(', ')}`)
    return [...new Set(types)]
  }

  /** One attempt, logged; the secrets are read now, so a rotation or a deletion since the event was queued counts. */
  async function attempt(endpoint: EndpointRow, job: DeliveryJobData, n: number, ifFailed: Exclude<AttemptOutcome, 'delivered'>) {
    const now = Date.now()
    const secrets = [endpoint.secret]
    if (endpoint.previousSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt.getTime() > now) secrets.push(endpoint.previousSecret)
    const result = await opts.sender.send({ url: endpoint.url, id: job.eventId, body: job.body, secrets })
    const outcome: AttemptOutcome = ifFailed === 'ping' ? 'ping' : result.ok ? 'delivered' : ifFailed
    const at = new Date()
    const disabled = await store.recordAttempt(
      { endpointId: endpoint.id, eventId: job.eventId, eventType: job.eventType, attempt: n, ...result, outcome, at },
      { disableAfter: opts.disableAfterFailedEvents, keepRows: opts.logRowsPerEndpoint, disabledReason, touchEndpoint: changesRecord(endpoint, outcome, at.getTime()) }
    )
    if (disabled) {
      // There is no mail here to tell the owner: the endpoint says so in its GET (disabled_at, disabled_reason).
      opts.log.warn({ endpointId: endpoint.id, userId: endpoint.userId, reason: disabledReason }, 'webhook endpoint disabled: it keeps failing')
    }
    return { result, outcome, disabled }
  }

  return {
    attempts,

    async create(userId: number, input: EndpointInput): Promise<{ endpoint: EndpointRow; secret: string }> {
      const eventTypes = checkEventTypes(input.eventTypes)
      const url = checkUrlShape(input.url, opts.policy)
      await resolveAllowed(url, opts.policy, opts.resolve)
      const secret = newWebhookSecret()
      const id = await store.insert(
        { userId, url: url.href, description: input.description ?? null, eventTypes, secret },
        opts.maxEndpointsPerUser
      )
      if (id === null) throw new DomainError('conflict', `at most ${opts.maxEndpointsPerUser} webhook endpoints per user: delete one first`)
      return { endpoint: await mustOwn(userId, id), secret }
    },

    /**
     * Changes an endpoint's url, description or filter, as given (absent: kept); a new url passes the same checks as
     * at creation. Its secret, state and delivery log stay; deliveries still queued go to the new url at their next
     * attempt (each attempt reads the endpoint as it is then).
     */
    async update(userId: number, id: number, input: Partial<EndpointInput>): Promise<EndpointRow> {
      const change: { url?: string; description?: string | null; eventTypes?: string[] | null } = {}
      if (input.eventTypes !== undefined) change.eventTypes = checkEventTypes(input.eventTypes)
      if (input.description !== undefined) change.description = input.description
      if (input.url !== undefined) {
        const url = checkUrlShape(input.url, opts.policy)
        await resolveAllowed(url, opts.policy, opts.resolve)
        change.url = url.href
      }
      if (Object.keys(change).length === 0) return mustOwn(userId, id)
      if ((await store.update(id, userId, change)) === 0) throw notFound()
      return mustOwn(userId, id)
    },

    list: (userId: number) => store.list(userId),
    get: (userId: number, id: number) => mustOwn(userId, id),

    async remove(userId: number, id: number): Promise<void> {
      if ((await store.remove(id, userId)) === 0) throw notFound()
    },

    /** A new secret (shown once); the old one keeps signing, beside it, for SECRET_OVERLAP_MS. */
    async rotateSecret(userId: number, id: number): Promise<{ endpoint: EndpointRow; secret: string }> {
      const secret = newWebhookSecret()
      if ((await store.rotate(id, userId, secret, new Date(Date.now() + SECRET_OVERLAP_MS))) === 0) throw notFound()
      return { endpoint: await mustOwn(userId, id), secret }
    },

    /** Takes deliveries again (after its owner fixed it); the failure streak starts over. */
    async enable(userId: number, id: number): Promise<EndpointRow> {
      if ((await store.enable(id, userId)) === 0) throw notFound()
      return mustOwn(userId, id)
    },

    /** A `webhook.ping` sent now, outside the queue (disabled endpoints too: that is how one checks a fix), logged. */
    async ping(userId: number, id: number): Promise<AttemptResult & { eventId: string }> {
      const endpoint = await mustOwn(userId, id)
      const eventId = platformEventId()
      const body = JSON.stringify({
        type: PING_EVENT_TYPE,
        timestamp: new Date().toISOString(),
        data: { endpoint_id: endpoint.id, message: 'a test delivery from circle-livestream' }
      })
      const { result } = await attempt(endpoint, { endpointId: endpoint.id, eventId, eventType: PING_EVENT_TYPE, body }, 1, 'ping')
      return { ...result, eventId }
    },

    async deliveries(userId: number, id: number, page: { page: number; limit: number }) {
      await mustOwn(userId, id)
      return store.deliveries(id, page)
    },

    /**
     * The platform events sink: one job per enabled endpoint of the owner whose filter takes the event. The body is
     * serialized once, Standard Webhooks' `{ type, timestamp, data }`; the job id (event, endpoint) makes a second
     * fan-out of the same event a no-op while the first job is kept.
     */
    async fanOut(event: PlatformEvent): Promise<number> {
      const targets = (await store.enabledOf(event.ownerId)).filter((e) => e.eventTypes === null || e.eventTypes.includes(event.type))
      if (targets.length === 0) return 0
      // The announced views never carry the key; dropped here too, should one ever be handed in by mistake.
      const { stream_key: _key, rtmp_url: _rtmp, ...stream } = event.data.stream as typeof event.data.stream & { stream_key?: string; rtmp_url?: string }
      const body = JSON.stringify({ type: event.type, timestamp: event.timestamp, data: { ...event.data, stream } })
      await opts.queue.addBulk(
        targets.map((t) => ({
          name: event.type,
          data: { endpointId: t.id, eventId: event.id, eventType: event.type, body },
          opts: { ...jobOptions, jobId: deliveryJobId(event.id, t.id) }
        }))
      )
      return targets.length
    },

    /**
     * One attempt of a queued delivery, as the worker runs it (`n` from 1). An endpoint deleted or disabled since is
     * skipped. A failure is thrown back to the worker to be retried, except after the last attempt: then the event
     * counts against the endpoint and may disable it.
     */
    async deliver(job: DeliveryJobData, n: number): Promise<{ status: 'delivered' | 'endpoint-gone' | 'endpoint-disabled' | 'failed'; result?: AttemptResult; disabled?: boolean }> {
      const endpoint = await store.forDelivery(job.endpointId)
      if (!endpoint) return { status: 'endpoint-gone' }
      if (endpoint.disabledAt) return { status: 'endpoint-disabled' }
      const { result, disabled } = await attempt(endpoint, job, n, n >= attempts ? 'exhausted' : 'will-retry')
      return { status: result.ok ? 'delivered' : 'failed', result, disabled }
    }
  }
}

export type WebhooksService = ReturnType<typeof createWebhooksService>
