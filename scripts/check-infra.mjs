// `pnpm lint` runs this: the infra/ folder checked against the schemas and tools it is written for.
//   infra/k8s/*.yaml          every document against the Kubernetes schemas of its apiVersion and kind, no unknown field
//   infra/compose.yaml        against the Compose Specification's JSON schema
//   infra/prometheus/         promtool check config / check rules / test rules (Debian's prometheus package)
//   PromQL everywhere         parsed with Prometheus's grammar; metrics and labels only from infra/metrics.json
//   infra/grafana/            the dashboard's data source binding and panel grid
// It first feeds each checker inputs it must refuse (scripts/infra/self-test.mjs). Nothing here runs a container:
// CI has no container engine.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkComposeFile } from './infra/compose.mjs'
import { checkDashboard } from './infra/grafana.mjs'
import { checkKubernetes } from './infra/kubernetes.mjs'
import { checkPromql, metricCatalog } from './infra/promql.mjs'
import { checkPrometheusConfig, checkRules, promtoolAvailable, testRules } from './infra/promtool.mjs'
import { alertQueries, dashboardQueries, kubernetesQueries } from './infra/queries.mjs'
import { selfTest } from './infra/self-test.mjs'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const rel = (p) => path.relative(root, p)
const at = (...p) => path.join(root, 'infra', ...p)
const read = (p) => readFileSync(p, 'utf8')

const problems = []
const catalog = metricCatalog(JSON.parse(read(at('metrics.json'))))

const promtool = promtoolAvailable()
if (!promtool) {
  const hint = "promtool is missing: install Debian's prometheus package (apt-get install --no-install-recommends prometheus; scripts/bootstrap.sh does)"
  if (process.env.CI) problems.push(hint)
  else console.warn(`check-infra: ${hint}; skipping the promtool checks here (CI runs them)`)
}

const self = await selfTest(catalog, { promtool })
for (const name of self.missed) problems.push(`self-test: the checkers accepted ${name}`)

const k8sFiles = readdirSync(at('k8s')).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => at('k8s', f))
const k8sSources = k8sFiles.map((f) => ({ text: read(f), file: rel(f) }))
const k8s = await checkKubernetes(k8sSources)
problems.push(...k8s.problems)
const queries = k8sSources.flatMap(({ text, file }) => kubernetesQueries(text, file))

problems.push(...checkComposeFile(at('compose.yaml'), 'infra/compose.yaml'))

queries.push(...alertQueries(read(at('prometheus', 'alerts.yml')), 'infra/prometheus/alerts.yml'))
const dashboardFile = at('grafana', 'livestream-dashboard.json')
let dashboard = {}
try {
  dashboard = JSON.parse(read(dashboardFile))
} catch (err) {
  problems.push(`${rel(dashboardFile)}: not JSON: ${err.message}`)
}
problems.push(...checkDashboard(dashboard, rel(dashboardFile)))
const fromDashboard = dashboardQueries(dashboard, rel(dashboardFile))
problems.push(...fromDashboard.problems)
queries.push(...fromDashboard.queries)
for (const q of queries) problems.push(...checkPromql(q.expr, catalog, q.where))

const prometheusConfigs = ['prometheus.yml', 'prometheus.compose.yml'].map((f) => at('prometheus', f)).filter(existsSync)
if (promtool) {
  for (const f of prometheusConfigs) problems.push(...checkPrometheusConfig(f, rel(f)))
  problems.push(...checkRules(at('prometheus', 'alerts.yml'), 'infra/prometheus/alerts.yml'))
  problems.push(...testRules(at('prometheus', 'alerts.test.yml'), 'infra/prometheus/alerts.test.yml'))
}

if (problems.length > 0) {
  console.error(`infra checks failed:\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log(
  `infra: ${k8s.documents} Kubernetes documents, infra/compose.yaml, ${queries.length} PromQL queries` +
    (promtool ? `, ${prometheusConfigs.length} Prometheus configs, alert rules and their unit tests (promtool)` : '') +
    ` all valid; self-test: ${self.refused} bad inputs refused`
)
