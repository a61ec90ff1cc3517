// Prometheus's own checker, promtool, from Debian's `prometheus` package (scripts/bootstrap.sh installs it).
// Debian builds Prometheus without Kubernetes service discovery, so its promtool refuses `kubernetes_sd_configs`:
// the Kubernetes config is checked from a copy where each of those blocks is an empty static target list; the rest
// (relabelling, auth, intervals) is promtool's to judge. The discovery blocks are held to a role Prometheus knows.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parse, stringify } from 'yaml'

const SD_ROLES = new Set(['node', 'pod', 'service', 'endpoints', 'endpointslice', 'ingress'])

export function promtoolAvailable() {
  return spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0
}

function run(args, shownAs) {
  const r = spawnSync('promtool', args, { encoding: 'utf8' })
  if (r.status === 0) return []
  const lines = [...new Set(`${r.stdout}${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean))]
  return [`${shownAs}: promtool ${args[0]} ${args[1]} failed:\n    ${lines.join('\n    ')}`]
}

/** `promtool check config --syntax-only`, Kubernetes discovery swapped for static targets first. */
export function checkPrometheusConfig(file, shownAs = file) {
  const config = parse(readFileSync(file, 'utf8'))
  const problems = []
  for (const job of config?.scrape_configs ?? []) {
    if (!job.kubernetes_sd_configs) continue
    for (const sd of job.kubernetes_sd_configs) {
      if (!SD_ROLES.has(sd?.role)) problems.push(`${shownAs}: job ${job.job_name}: kubernetes_sd_configs role ${JSON.stringify(sd?.role)} is not one of ${[...SD_ROLES].join(', ')}`)
    }
    delete job.kubernetes_sd_configs
    job.static_configs = [...(job.static_configs ?? []), { targets: [] }]
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'promtool-'))
  try {
    const copy = path.join(dir, path.basename(file))
    writeFileSync(copy, stringify(config))
    problems.push(...run(['check', 'config', '--syntax-only', copy], shownAs))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return problems
}

export function checkRules(file, shownAs = file) {
  return run(['check', 'rules', file], shownAs)
}

export function testRules(file, shownAs = file) {
  return run(['test', 'rules', file], shownAs)
}
