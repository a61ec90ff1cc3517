import { readdir, readFile } from 'node:fs/promises'

/** Direct children of `pid` whose command line starts with `name` (from /proc; Linux only). */
export async function childrenNamed(pid: number, name: string): Promise<number[]> {
  const out: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== pid) continue
      const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0')[0] ?? ''
      if (cmd.endsWith(name)) out.push(Number(entry))
    } catch {
      // the process ended while we looked
    }
  }
  return out
}
