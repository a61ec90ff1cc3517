// Kubernetes manifests against the API's own schemas, as compiled into kubernetes-models (one validator per
// apiVersion and kind, Kubernetes 1.31). A kind it does not know is an error, not a pass.
import { parseAllDocuments } from 'yaml'

/** `apps/v1` -> `kubernetes-models/apps/v1`; the core group (`v1`) -> `kubernetes-models/v1`. */
async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) return null
  let group
  try {
    group = await import(`kubernetes-models/${apiVersion}`)
  } catch {
    return null
  }
  const Model = group[kind]
  return typeof Model === 'function' && Model.apiVersion === apiVersion && Model.kind === kind ? Model : null
}

/**
 * Every document of a multi-document YAML text, checked: YAML errors, then the schema of its apiVersion and kind.
 * @returns {Promise<string[]>} one message per problem, naming the document (`file#index kind/name`)
 */
export async function checkKubernetesYaml(text, file) {
  const problems = []
  const docs = parseAllDocuments(text)
  for (const [i, doc] of docs.entries()) {
    const where = `${file}#${i + 1}`
    if (doc.errors.length > 0) {
      problems.push(...doc.errors.map((e) => `${where}: ${e.message}`))
      continue
    }
    const data = doc.toJS()
    if (data === null || data === undefined) continue // an empty document (a trailing ---)
    const label = `${where} ${data.kind ?? '?'}/${data.metadata?.name ?? '?'}`
    const Model = await modelFor(data.apiVersion, data.kind)
    if (!Model) {
      problems.push(`${label}: no Kubernetes schema for apiVersion ${JSON.stringify(data.apiVersion)} kind ${JSON.stringify(data.kind)}`)
      continue
    }
    try {
      new Model(data).validate()
    } catch (err) {
      problems.push(`${label}: ${err.message.replace(/^data/, '')}`)
    }
  }
  return problems
}
