import type { DeliveryRow, EndpointRow } from './webhook-store.js'

const iso = (d: Date | null) => (d ? d.toISOString() : null)

/** An endpoint as its owner sees it: never its secret (that is shown once, by the answers that make one). */
export function endpointView(row: EndpointRow, now = Date.now()) {
  const previousValid = row.previousSecret !== null && row.previousSecretExpiresAt !== null && row.previousSecretExpiresAt.getTime() > now
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    event_types: row.eventTypes,
    enabled: row.disabledAt === null,
    disabled_at: iso(row.disabledAt),
    disabled_reason: row.disabledReason,
    failure_streak: row.failureStreak,
    last_success_at: iso(row.lastSuccessAt),
    last_failure_at: iso(row.lastFailureAt),
    previous_secret_expires_at: previousValid ? iso(row.previousSecretExpiresAt) : null,
    created_at: iso(row.createdAt) as string,
    updated_at: iso(row.updatedAt) as string
  }
}
export type EndpointView = ReturnType<typeof endpointView>

export const deliveryView = (d: DeliveryRow) => ({
  id: d.id,
  event_id: d.eventId,
  event_type: d.eventType,
  attempt: d.attempt,
  status: d.status,
  http_status: d.httpStatus,
  error: d.error,
  response_excerpt: d.responseExcerpt,
  duration_ms: d.durationMs,
  created_at: d.createdAt.toISOString()
})
