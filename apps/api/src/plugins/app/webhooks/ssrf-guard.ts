import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { DomainError } from '../domain-errors.js'

/**
 * Where webhooks may not go (SSRF): an api that POSTs wherever a user says is a proxy into its own network. Each rule
 * has a name that the 400 quotes. `internal` rules are lifted by the operator's WEBHOOK_ALLOW_PRIVATE (our tests'
 * receivers listen on 127.0.0.1); the others are never a receiver.
 */
interface Rule {
  name: string
  internal: boolean
  v4?: Array<[string, number]>
  v6?: Array<[string, number]>
}
const RULES: Rule[] = [
  { name: 'loopback', internal: true, v4: [['127.0.0.0', 8]], v6: [['::1', 128]] },
  { name: 'private (RFC 1918)', internal: true, v4: [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16]] },
  { name: 'shared address space (CGNAT, RFC 6598)', internal: true, v4: [['100.64.0.0', 10]] },
  { name: 'unique local (fc00::/7)', internal: true, v6: [['fc00::', 7]] },
  // 169.254.169.254 is the cloud metadata service.
  { name: 'link-local', internal: true, v4: [['169.254.0.0', 16]], v6: [['fe80::', 10]] },
  { name: 'unspecified', internal: false, v4: [['0.0.0.0', 8]], v6: [['::', 128]] },
  { name: 'multicast', internal: false, v4: [['224.0.0.0', 4]], v6: [['ff00::', 8]] },
  {
    name: 'reserved',
    internal: false,
    // IETF protocol assignments, documentation nets, benchmarking, 240/4 with the broadcast address; IPv6 documentation.
    v4: [['192.0.0.0', 24], ['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24], ['198.18.0.0', 15], ['240.0.0.0', 4]],
    v6: [['2001:db8::', 32], ['100::', 64]]
  }
]

const lists = RULES.map((rule) => {
  const list = new BlockList()
  for (const [net, prefix] of rule.v4 ?? []) list.addSubnet(net, prefix, 'ipv4')
  for (const [net, prefix] of rule.v6 ?? []) list.addSubnet(net, prefix, 'ipv6')
  return { rule, list }
})

/** The 16 bytes of an IPv6 address. */
function v6Bytes(address: string): number[] {
  let text = address.toLowerCase().split('%')[0]!
  // A dotted quad at the end (::ffff:1.2.3.4) is the last 32 bits.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number]
    text = text.slice(0, -dotted[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined]
  const h = head ? head.split(':') : []
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl]
  return groups.flatMap((g) => {
    const n = parseInt(g, 16)
    return [n >> 8, n & 0xff]
  })
}

/**
 * The IPv4 address an IPv6 one carries and reaches, if any: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
 * NAT64 (64:ff9b::/96) and 6to4 (2002::/16). Such an address is judged as the IPv4 one.
 */
function embeddedV4(address: string): string | null {
  const b = v6Bytes(address)
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0)
  const quad = (i: number) => b.slice(i, i + 4).join('.')
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return quad(12)
  if (zero(0, 12) && !zero(12, 14)) return quad(12)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return quad(12)
  if (b[0] === 0x20 && b[1] === 0x02) return quad(2)
  return null
}

/** The rule an address breaks, or null when it is a public unicast address. */
export function forbiddenBy(address: string): Rule | null {
  const family = isIP(address)
  if (family === 0) return { name: 'not an IP address', internal: false }
  if (family === 6) {
    const v4 = embeddedV4(address)
    if (v4) return forbiddenBy(v4)
  }
  const type = family === 4 ? 'ipv4' : 'ipv6'
  return lists.find(({ list }) => list.check(address.split('%')[0]!, type))?.rule ?? null
}

export interface SsrfPolicy {
  /** WEBHOOK_ALLOW_HTTP: plain http accepted (development, tests); otherwise https only. */
  allowHttp: boolean
  /** WEBHOOK_ALLOW_PRIVATE: loopback, private, CGNAT, ULA and link-local addresses accepted. */
  allowPrivate: boolean
}

/** A webhook URL refused, with the rule it breaks: a 400. */
export class WebhookUrlError extends DomainError {
  constructor(readonly rule: string, message: string) {
    super('invalid', `url: ${message}`)
    this.name = 'WebhookUrlError'
  }
}

/** What can be told from the URL alone: scheme, credentials, host shape. Returns the parsed URL. */
export function checkUrlShape(raw: string, policy: SsrfPolicy): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new WebhookUrlError('url', 'must be an absolute URL')
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new WebhookUrlError('https', policy.allowHttp ? 'must be http or https' : 'must use https (plain http is refused unless the operator sets WEBHOOK_ALLOW_HTTP)')
  }
  if (url.username || url.password) throw new WebhookUrlError('credentials', 'must not carry a user name or password')
  if (!url.hostname) throw new WebhookUrlError('url', 'must name a host')
  return url
}

/** The host of a URL as the resolver wants it: IPv6 literals without their brackets. */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1')

export type Resolver = (host: string) => Promise<LookupAddress[]>

const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)))
  })

/**
 * Every address the URL's host resolves to, each checked: one forbidden address refuses the URL (a name that resolves to
 * a public and a private address would otherwise reach the private one by chance). The same check runs when a webhook
 * is registered and before each delivery, which then connects to an address checked here (see `pinnedLookup`), so a
 * name that resolves elsewhere between the check and the connection (DNS rebinding) reaches nothing unchecked.
 */
export async function resolveAllowed(url: URL, policy: SsrfPolicy, resolve: Resolver = systemResolver): Promise<LookupAddress[]> {
  const host = bareHost(url)
  let addresses: LookupAddress[]
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }]
  else {
    try {
      addresses = await resolve(host)
    } catch {
      throw new WebhookUrlError('dns', 'its host does not resolve')
    }
    if (addresses.length === 0) throw new WebhookUrlError('dns', 'its host does not resolve')
  }
  for (const { address } of addresses) {
    const rule = forbiddenBy(address)
    if (rule && !(rule.internal && policy.allowPrivate)) {
      // The address itself is not quoted: the answer would otherwise map the internal network for whoever asks.
      throw new WebhookUrlError(
        rule.name,
        rule.internal
          ? `points at a ${rule.name} address; webhooks are not delivered to internal addresses unless the operator sets WEBHOOK_ALLOW_PRIVATE`
          : `points at a ${rule.name} address, which is never a webhook receiver`
      )
    }
  }
  return addresses
}

/** A `lookup` for http.request that answers with addresses already checked, never asking DNS again. */
export function pinnedLookup(addresses: readonly LookupAddress[]): LookupFunction {
  return ((_host: string, options: { all?: boolean; family?: number | string }, callback: (...args: unknown[]) => void) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family
    const usable = family ? addresses.filter((a) => a.family === family) : addresses
    if (usable.length === 0) {
      callback(Object.assign(new Error('no checked address of the requested family'), { code: 'ENOTFOUND' }))
      return
    }
    if (options.all) callback(null, usable)
    else callback(null, usable[0]!.address, usable[0]!.family)
  }) as unknown as LookupFunction
}
