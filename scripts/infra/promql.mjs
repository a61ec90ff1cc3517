// PromQL in the operations kit, parsed with Prometheus's own grammar (@prometheus-io/lezer-promql, the parser of
// Prometheus's web UI), and every selector held to infra/metrics.json: the metric must be listed, its label matchers
// must name its labels (or a target label), and an equality on a label with listed values must use one of them.
import { parser } from '@prometheus-io/lezer-promql'

/** Labels every scraped series carries from its target (prometheus.yml relabelling). */
const TARGET_LABELS = new Set(['job', 'instance', 'namespace', 'pod'])

/** Grafana's built-in interval variables, replaced by a duration so the query parses as Prometheus will see it. */
const GRAFANA_DURATIONS = /\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}/g

/** metrics.json -> Map(name -> { type, labels, values }), histograms expanded to _bucket, _sum and _count. */
export function metricCatalog(metricsJson) {
  const catalog = new Map()
  for (const section of Object.values(metricsJson)) {
    if (typeof section !== 'object' || section === null || !section.metrics) continue
    for (const [name, spec] of Object.entries(section.metrics)) {
      const entry = { labels: new Set(spec.labels ?? []), values: spec.values ?? {} }
      if (spec.type === 'histogram') {
        catalog.set(`${name}_bucket`, { ...entry, labels: new Set([...entry.labels, 'le']) })
        catalog.set(`${name}_sum`, entry)
        catalog.set(`${name}_count`, entry)
      } else {
        catalog.set(name, entry)
      }
    }
  }
  return catalog
}

function childrenOf(node) {
  const out = []
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c)
  return out
}

/**
 * One PromQL expression checked: it parses, and names only catalogued metrics and labels.
 * @returns {string[]} one message per problem
 */
export function checkPromql(expr, catalog, where) {
  const query = expr.replace(GRAFANA_DURATIONS, '5m')
  const problems = []
  const tree = parser.parse(query)
  const text = (n) => query.slice(n.from, n.to)
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) {
        problems.push(`${where}: PromQL does not parse at ${JSON.stringify(query.slice(ref.from, ref.from + 30) || '(end)')} in ${JSON.stringify(query)}`)
        return false
      }
      if (ref.name !== 'VectorSelector') return undefined
      const parts = childrenOf(ref.node)
      const nameNode = parts.find((c) => c.name === 'Identifier')
      if (!nameNode) {
        problems.push(`${where}: a selector without a metric name (${text(ref.node)}): name the metric`)
        return false
      }
      const name = text(nameNode)
      const metric = catalog.get(name)
      if (!metric) {
        problems.push(`${where}: unknown metric ${name} (not in infra/metrics.json)`)
        return false
      }
      const matchers = parts.find((c) => c.name === 'LabelMatchers')
      for (const m of matchers ? childrenOf(matchers) : []) {
        if (m.name !== 'UnquotedLabelMatcher') {
          problems.push(`${where}: ${name}: unsupported matcher ${text(m)}`)
          continue
        }
        const [labelNode, opNode, valueNode] = childrenOf(m)
        const label = text(labelNode)
        if (!metric.labels.has(label) && !TARGET_LABELS.has(label)) {
          problems.push(`${where}: ${name} has no label ${label} (its labels: ${[...metric.labels].join(', ') || 'none'})`)
          continue
        }
        const allowed = metric.values[label]
        const op = text(opNode)
        if (allowed && (op === '=' || op === '!=')) {
          const value = JSON.parse(text(valueNode).replace(/^'|'$/g, '"'))
          if (!allowed.includes(value)) problems.push(`${where}: ${name}{${label}} is never ${JSON.stringify(value)} (values: ${allowed.join(', ')})`)
        }
      }
      return false
    }
  })
  return problems
}
