// Kubernetes manifests against the API's own schemas, in two passes over kubernetes-models (Kubernetes 1.31), both
// generated from the API's OpenAPI document:
//   1. its JSON-schema validators, one per apiVersion and kind: types, required fields, enums and formats;
//   2. its TypeScript types, through the TypeScript compiler: the schemas allow unknown fields, the types do not, so
//      a misspelt field (`behaviour:`, `stabilisationWindowSeconds:`) fails here instead of being ignored by the API.
// A kind it does not know is an error, not a pass.
import path from 'node:path'
import ts from 'typescript'
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

/** Pass 2: one generated module with each document as a literal of its kubernetes-models interface. */
function unknownFields(documents) {
  if (documents.length === 0) return []
  const fileName = path.join(import.meta.dirname, '__manifests__.ts') // never written: served from memory
  // One line per document, so a diagnostic's line names its document.
  const source = documents
    .map((d, i) => `import type { I${d.kind} as T${i} } from ${JSON.stringify(`kubernetes-models/${d.apiVersion}/${d.kind}`)}; export const d${i}: T${i} = ${JSON.stringify(d.data)}`)
    .join('\n')
  const host = ts.createCompilerHost({})
  const { getSourceFile, fileExists } = host
  host.getSourceFile = (name, lang, ...rest) => (name === fileName ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest))
  host.fileExists = (name) => name === fileName || fileExists(name)
  const options = { strict: true, noEmit: true, skipLibCheck: true, types: [], target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }
  const program = ts.createProgram([fileName], options, host)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, ' ')
    if (d.file?.fileName !== fileName || d.start === undefined) return `kubernetes types: ${text}`
    const { line } = d.file.getLineAndCharacterOfPosition(d.start)
    return `${documents[line]?.label ?? '?'}: ${text}`
  })
}

/**
 * Every document of each multi-document YAML text, checked: YAML errors, the schema of its apiVersion and kind, then
 * unknown fields (one compiler run for all documents).
 * @param {Array<{ text: string, file: string }>} sources
 * @returns {Promise<{ problems: string[], documents: number }>} messages name the document (`file#index kind/name`)
 */
export async function checkKubernetes(sources) {
  const problems = []
  const typed = []
  let documents = 0
  for (const { text, file } of sources) {
    for (const [i, doc] of parseAllDocuments(text).entries()) {
      const where = `${file}#${i + 1}`
      if (doc.errors.length > 0) {
        problems.push(...doc.errors.map((e) => `${where}: ${e.message}`))
        continue
      }
      const data = doc.toJS()
      if (data === null || data === undefined) continue // an empty document (a trailing ---)
      documents++
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
      typed.push({ label, apiVersion: data.apiVersion, kind: data.kind, data })
    }
  }
  problems.push(...unknownFields(typed))
  return { problems, documents }
}
