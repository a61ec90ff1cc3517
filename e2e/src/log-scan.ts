/**
 * The lines of a process's output that contain any of `secrets` (stream keys), for a test that proves none do.
 * Each secret is masked in what comes back, so a failing test's report does not spread the key further; lines are
 * cut to 300 characters.
 */
export function linesLeaking(output: string, secrets: readonly string[]): string[] {
  const present = secrets.filter((s) => s.length > 0)
  return output
    .split('\n')
    .filter((line) => present.some((s) => line.includes(s)))
    .map((line) => present.reduce((l, s, i) => l.replaceAll(s, `<key #${i}>`), line).slice(0, 300))
}
