// What Grafana would take without complaint but show wrong: a panel or query bound to a data source other than the
// dashboard's DS_PROMETHEUS variable (it breaks on import into another Grafana), panels that overlap or leave the
// 24-column grid, and duplicate panel ids.
const DS = '${DS_PROMETHEUS}'

/** @returns {string[]} one message per problem */
export function checkDashboard(dashboard, file) {
  const problems = []
  if (typeof dashboard.uid !== 'string' || typeof dashboard.title !== 'string') problems.push(`${file}: uid and title are required`)
  if (!Number.isInteger(dashboard.schemaVersion)) problems.push(`${file}: schemaVersion is missing`)
  if (!(dashboard.templating?.list ?? []).some((v) => v.name === 'DS_PROMETHEUS' && v.type === 'datasource' && v.query === 'prometheus')) {
    problems.push(`${file}: no DS_PROMETHEUS data source variable (type datasource, query prometheus)`)
  }
  const panels = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])])
  const ids = new Set()
  const boxes = []
  for (const p of panels) {
    const where = `${file} panel ${JSON.stringify(p.title)}`
    if (ids.has(p.id)) problems.push(`${where}: duplicate id ${p.id}`)
    ids.add(p.id)
    if (p.type !== 'row') {
      for (const ds of [p.datasource, ...(p.targets ?? []).map((t) => t.datasource)]) {
        if (ds?.uid !== DS) problems.push(`${where}: data source ${JSON.stringify(ds)} is not ${DS}`)
      }
    }
    const g = p.gridPos
    if (!g || ![g.x, g.y, g.w, g.h].every(Number.isInteger) || g.x < 0 || g.w < 1 || g.x + g.w > 24) {
      problems.push(`${where}: gridPos ${JSON.stringify(g)} is not on the 24-column grid`)
      continue
    }
    const clash = boxes.find((b) => g.x < b.x + b.w && b.x < g.x + g.w && g.y < b.y + b.h && b.y < g.y + g.h)
    if (clash) problems.push(`${where}: overlaps panel ${JSON.stringify(clash.title)}`)
    boxes.push({ ...g, title: p.title })
  }
  return problems
}
