// Compose files against the Compose Specification's JSON schema, through dclint (which carries the schema and
// resolves anchors and merge keys before validating). Only its two mandatory checks count here, invalid YAML and
// invalid schema: its style rules are opinions we have not adopted.
import { DCLinter } from 'dclint'

const SPEC_CHECKS = new Set(['invalid-yaml', 'invalid-schema'])

/** @returns {string[]} one message per problem */
export function checkComposeFile(file, shownAs = file) {
  const linter = new DCLinter({ rules: {}, quiet: true, debug: false, exclude: [] })
  const [result] = linter.lintFiles([file], false)
  if (!result) return [`${shownAs}: not linted`]
  return result.messages
    .filter((m) => SPEC_CHECKS.has(m.rule))
    .map((m) => `${shownAs}:${m.line}: ${m.message}`)
}
