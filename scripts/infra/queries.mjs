// Where the operations kit keeps PromQL, and each query with a name for messages: the alert rules, the Grafana
// dashboard (panel targets and the variables' label_values), prometheus-adapter's series query, and the custom
// metrics the HPAs scale on (checked as bare selectors).
import { parse, parseAllDocuments } from 'yaml'

/** @returns {Array<{ where: string, expr: string }>} */
export function alertQueries(text, file) {
  const rules = parse(text)?.groups?.flatMap((g) => g.rules ?? []) ?? []
  return rules.map((r, i) => ({ where: `${file} ${r.alert ?? r.record ?? `rule ${i + 1}`}`, expr: String(r.expr) }))
}

function panelsOf(dashboard) {
  return (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])])
}

/** The dashboard's queries; also fails the panels Grafana would draw empty (no target, or a target with no expr). */
export function dashboardQueries(dashboard, file) {
  const out = []
  const problems = []
  for (const panel of panelsOf(dashboard)) {
    if (panel.type === 'row') continue
    const where = `${file} panel ${JSON.stringify(panel.title)}`
    if (!Array.isArray(panel.targets) || panel.targets.length === 0) problems.push(`${where}: no query`)
    for (const t of panel.targets ?? []) {
      if (typeof t.expr !== 'string' || t.expr.trim() === '') problems.push(`${where}: target ${t.refId} has no expr`)
      else out.push({ where: `${where} ${t.refId}`, expr: t.expr })
    }
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue
    const q = typeof v.query === 'string' ? v.query : v.query?.query
    const m = /^label_values\((.+),\s*\w+\)$/.exec(q ?? '')
    if (m) out.push({ where: `${file} variable ${v.name}`, expr: m[1] })
    else problems.push(`${file} variable ${v.name}: query ${JSON.stringify(q)} is not label_values(selector, label)`)
  }
  return { queries: out, problems }
}

/** prometheus-adapter rules inside a ConfigMap's config.yaml, and the Pods/Object metrics of HPAs. */
export function kubernetesQueries(text, file) {
  const out = []
  for (const doc of parseAllDocuments(text)) {
    const data = doc.toJS()
    if (data?.kind === 'ConfigMap' && typeof data.data?.['config.yaml'] === 'string') {
      const adapter = parse(data.data['config.yaml'])
      for (const [i, rule] of (adapter?.rules ?? []).entries()) {
        out.push({ where: `${file} adapter rule ${i + 1} seriesQuery`, expr: rule.seriesQuery })
      }
    }
    if (data?.kind === 'HorizontalPodAutoscaler') {
      for (const m of data.spec?.metrics ?? []) {
        const name = m.pods?.metric?.name ?? m.object?.metric?.name
        if (name) out.push({ where: `${file} HPA ${data.metadata?.name} ${m.type} metric`, expr: name })
      }
    }
  }
  return out
}
