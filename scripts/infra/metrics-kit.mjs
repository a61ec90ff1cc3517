// What the operations kit (alerts, dashboard, HPA) may query, against what an app exports: both apps' metric tests
// check their /metrics text with this, so the kit and the code cannot drift apart.
import { readFileSync } from 'node:fs'

/** infra/metrics.json: the names, types and labels the alerts, the dashboard and the HPA query. */
export const kit = JSON.parse(readFileSync(new URL('../../infra/metrics.json', import.meta.url), 'utf8'))

/**
 * Every name the kit may query for `app` (`api` or `ingest`), and prom-client's defaults, is exported in the Prometheus
 * `text` with its type, exactly its labels (plus `ownLabels`), and the label values the kit names. Returns what is
 * wrong, one line each; empty when the text satisfies the kit.
 */
export function kitProblems(text, app, ownLabels = []) {
  const problems = []
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]))
  const expected = { ...kit[app].metrics, ...kit.promClientDefaults.metrics }
  for (const [name, spec] of Object.entries(expected)) {
    if (types.get(name) !== spec.type) problems.push(`${name}: a ${types.get(name) ?? 'missing metric'}, not a ${spec.type}`)
    const sampleName = spec.type === 'histogram' ? `${name}_count` : name
    const samples = [...text.matchAll(new RegExp(`^${sampleName}(?:\\{(.*)\\})? `, 'gm'))].map((m) =>
      Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    )
    if (samples.length === 0) problems.push(`${name}: no samples`)
    const want = [...spec.labels, ...ownLabels].sort().join(',')
    for (const labels of samples) {
      const got = Object.keys(labels).sort().join(',')
      if (got !== want) problems.push(`${name}: labels ${got || '(none)'}, not ${want || '(none)'}`)
    }
    for (const [label, values] of Object.entries(spec.values ?? {})) {
      for (const value of values) if (!samples.some((l) => l[label] === value)) problems.push(`${name}{${label}="${value}"}: not exported`)
    }
  }
  return [...new Set(problems)]
}
