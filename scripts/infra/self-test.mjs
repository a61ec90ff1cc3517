// Bad inputs every checker must refuse, run before the real files: a checker that lets these through would pass
// anything, and a green `pnpm lint` would prove nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { checkComposeFile } from './compose.mjs'
import { checkDashboard } from './grafana.mjs'
import { checkKubernetes } from './kubernetes.mjs'
import { checkPromql } from './promql.mjs'
import { checkPrometheusConfig, checkRules } from './promtool.mjs'

const DEPLOYMENT = (replicas, kind = 'Deployment') => `apiVersion: apps/v1
kind: ${kind}
metadata: { name: bad }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: bad } }
  template: { metadata: { labels: { app: bad } }, spec: { containers: [{ name: c, image: i }] } }
`

const BAD_DASHBOARD = {
  uid: 'bad',
  title: 'bad',
  schemaVersion: 39,
  templating: { list: [{ name: 'DS_PROMETHEUS', type: 'datasource', query: 'prometheus' }] },
  panels: [{ id: 1, type: 'stat', title: 'a', datasource: { type: 'prometheus', uid: 'abc123' }, gridPos: { x: 0, y: 0, w: 4, h: 4 }, targets: [] }]
}

/** @returns {Promise<{ refused: number, missed: string[] }>} */
export async function selfTest(catalog, { promtool }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'check-infra-'))
  const file = (name, text) => {
    const p = path.join(dir, name)
    writeFileSync(p, text)
    return p
  }
  const cases = [
    ['a Deployment with replicas: two', () => kubernetesCase('replicas-two')],
    ['a kind Kubernetes does not have', () => kubernetesCase('unknown-kind')],
    ['a container without a name', () => kubernetesCase('nameless-container')],
    ['a misspelt field (replica)', () => kubernetesCase('misspelt-field')],
    ['a compose service with a misspelt key', () => checkComposeFile(file('compose.yaml', 'services:\n  a: { image: x, stop_grace_periods: 40s }\n'))],
    ['a compose healthcheck interval as a number', () => checkComposeFile(file('compose2.yaml', 'services:\n  a: { image: x, healthcheck: { test: [CMD, true], interval: 5 } }\n'))],
    ['PromQL with an unclosed bracket', () => checkPromql('sum(rate(livestream_ingest_received_bytes_total[5m])', catalog, 'q')],
    ['a metric name not in metrics.json', () => checkPromql('sum(livestream_ingest_live_stream)', catalog, 'q')],
    ['a label the metric does not have', () => checkPromql('http_request_duration_seconds_count{status="500"}', catalog, 'q')],
    ['a label value never exported', () => checkPromql('livestream_ingest_nodes{state="dead"}', catalog, 'q')],
    ['a dashboard panel bound to a fixed data source', () => checkDashboard(BAD_DASHBOARD, 'dash.json')]
  ]
  if (promtool) {
    cases.push(
      ['an alert rule that does not parse', () => checkRules(file('rules.yml', 'groups: [{ name: g, rules: [{ alert: A, expr: "rate(up[5m]" }] }]\n'))],
      ['a scrape interval that is not a duration', () => checkPrometheusConfig(file('prom.yml', 'global: { scrape_interval: 15 parsecs }\n'))]
    )
  }
  // The Kubernetes cases in one run (the unknown-field pass compiles them together), told apart by file name.
  const kubernetes = await checkKubernetes([
    { file: 'replicas-two', text: DEPLOYMENT('two') },
    { file: 'unknown-kind', text: DEPLOYMENT(1, 'Deploymnet') },
    { file: 'nameless-container', text: DEPLOYMENT(1).replace('name: c, ', '') },
    { file: 'misspelt-field', text: DEPLOYMENT(1).replace('replicas:', 'replica:') }
  ])
  const kubernetesCase = (file) => kubernetes.problems.filter((p) => p.startsWith(`${file}#`))
  const missed = []
  try {
    for (const [name, check] of cases) {
      if ((await check()).length === 0) missed.push(name)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return { refused: cases.length - missed.length, missed }
}
