import t from 'tap'
import { assertEnvelope, as, build, register } from './helper.js'
import { startReceiver } from './webhook-receiver.js'
import { checkUrlShape, forbiddenBy, resolveAllowed, type Resolver } from '../src/plugins/app/webhooks/ssrf-guard.js'
import { createWebhookSender } from '../src/plugins/app/webhooks/webhook-sender.js'

// The operator's switches are off, as in production by default.
const app = await build(t)
const alice = await register(app, 'alice')
const A = as(app, alice)

t.test('addresses: every internal and reserved range is named; public ones pass', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private (RFC 1918)'],
    ['172.16.0.1', 'private (RFC 1918)'],
    ['172.31.255.255', 'private (RFC 1918)'],
    ['192.168.1.1', 'private (RFC 1918)'],
    ['100.64.0.1', 'shared address space (CGNAT, RFC 6598)'],
    ['100.127.255.254', 'shared address space (CGNAT, RFC 6598)'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique local (fc00::/7)'],
    ['fd12:3456::1', 'unique local (fc00::/7)'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'reserved'],
    // IPv6 spellings of IPv4 addresses are judged as the IPv4 address they reach.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:10.0.0.1', 'private (RFC 1918)'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a00:1', 'private (RFC 1918)'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:c0a8:101::1', 'private (RFC 1918)'],
    // Public.
    ['93.184.216.34', null],
    ['8.8.8.8', null],
    ['172.32.0.1', null],
    ['100.128.0.1', null],
    ['2606:4700:4700::1111', null],
    ['::ffff:8.8.8.8', null],
    ['2002:808:808::1', null]
  ]
  for (const [address, rule] of cases) t.equal(forbiddenBy(address)?.name ?? null, rule, `${address}: ${rule ?? 'public'}`)
})

t.test('creating: plain http is a 400 naming the https rule; internal addresses a 400 naming theirs', async (t) => {
  const refused: Array<[string, RegExp]> = [
    ['http://example.com/hook', /url: must use https.*WEBHOOK_ALLOW_HTTP/],
    ['ftp://example.com/hook', /url: must use https/],
    ['not a url', /url: must be an absolute URL/],
    ['https://user:pass@example.com/hook', /url: must not carry a user name or password/],
    ['https://127.0.0.1/hook', /url: points at a loopback address.*WEBHOOK_ALLOW_PRIVATE/],
    ['https://localhost:8443/hook', /url: points at a loopback address/],
    ['https://[::1]/hook', /url: points at a loopback address/],
    ['https://[::ffff:127.0.0.1]/hook', /url: points at a loopback address/],
    ['https://2130706433/hook', /url: points at a loopback address/],
    ['https://0x7f.1/hook', /url: points at a loopback address/],
    ['https://169.254.169.254/latest/meta-data', /url: points at a link-local address/],
    ['https://[fe80::1]/hook', /url: points at a link-local address/],
    ['https://10.0.0.5/hook', /url: points at a private \(RFC 1918\) address/],
    ['https://192.168.0.10/hook', /url: points at a private \(RFC 1918\) address/],
    ['https://100.64.1.1/hook', /url: points at a shared address space \(CGNAT, RFC 6598\) address/],
    ['https://[fd00::1]/hook', /url: points at a unique local \(fc00::\/7\) address/],
    ['https://0.0.0.0/hook', /url: points at a unspecified address, which is never a webhook receiver/],
    ['https://224.0.0.1/hook', /url: points at a multicast address/],
    ['https://no-such-host.invalid/hook', /url: its host does not resolve/]
  ]
  for (const [url, message] of refused) {
    const body = assertEnvelope(t, await A('POST', '/api/webhooks', { url }), 400)
    t.match(body.message, message, url)
    t.notMatch(body.message, /127\.0\.0\.1|169\.254|10\.0\.0\.5/, 'the answer does not quote the address')
  }
  t.equal((await A('GET', '/api/webhooks')).json().count, 0, 'nothing was registered')
})

t.test('updating: a new url passes the same checks as at creation; a refused one changes nothing', async (t) => {
  // Public addresses need no network here: the guard answers before any delivery, and example.com stays unreached.
  const created = await A('POST', '/api/webhooks', { url: 'https://93.184.215.14/hook' })
  t.equal(created.statusCode, 201, created.body)
  const id = created.json().data.id as number
  for (const [url, message] of [
    ['http://93.184.215.14/hook', /url: must use https/],
    ['https://127.0.0.1/hook', /url: points at a loopback address/],
    ['https://169.254.169.254/latest/meta-data', /url: points at a link-local address/],
    ['https://no-such-host.invalid/hook', /url: its host does not resolve/]
  ] as const) {
    const body = assertEnvelope(t, await A('PATCH', `/api/webhooks/${id}`, { url }), 400)
    t.match(body.message, message, url)
  }
  t.equal((await A('GET', `/api/webhooks/${id}`)).json().data.url, 'https://93.184.215.14/hook', 'the url is unchanged')
  await A('DELETE', `/api/webhooks/${id}`)
})

t.test('a name resolving to a public and a private address is refused: every address is checked', async (t) => {
  const mixed: Resolver = async () => [
    { address: '93.184.216.34', family: 4 },
    { address: '10.0.0.7', family: 4 }
  ]
  const policy = { allowHttp: false, allowPrivate: false }
  await t.rejects(resolveAllowed(checkUrlShape('https://hooks.example.com/x', policy), policy, mixed), { name: 'WebhookUrlError', message: /private/ })
  const publicOnly: Resolver = async () => [{ address: '93.184.216.34', family: 4 }]
  t.same(await resolveAllowed(checkUrlShape('https://hooks.example.com/x', policy), policy, publicOnly), [{ address: '93.184.216.34', family: 4 }])
})

t.test('at delivery the address is checked again and the connection goes to that checked address only (DNS rebinding)', async (t) => {
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const url = `http://hooks.example.test:${receiver.port}/hook`
  let answer = '93.184.216.34'
  let lookups = 0
  const rebinding: Resolver = async () => {
    lookups++
    return [{ address: answer, family: 4 }]
  }
  // Registered while the name pointed at a public address; now it points at loopback.
  answer = '127.0.0.1'
  const strict = createWebhookSender({ policy: { allowHttp: true, allowPrivate: false }, timeoutMs: 2_000, resolve: rebinding })
  t.teardown(() => strict.close())
  const refused = await strict.send({ url, id: 'evt_rebind', body: '{}', secrets: ['whsec_' + Buffer.alloc(32, 1).toString('base64')] })
  t.equal(refused.ok, false)
  t.match(refused.error, /refused: the url points at a loopback address/)
  t.equal(receiver.received.length, 0, 'nothing reached the internal address')

  // Allowed: the request reaches the address the check saw, for a name no real DNS knows: nothing else was asked.
  const lenient = createWebhookSender({ policy: { allowHttp: true, allowPrivate: true }, timeoutMs: 2_000, resolve: rebinding })
  t.teardown(() => lenient.close())
  lookups = 0
  const sent = await lenient.send({ url, id: 'evt_pinned', body: '{}', secrets: ['whsec_' + Buffer.alloc(32, 1).toString('base64')] })
  t.equal(sent.ok, true, sent.error ?? '')
  t.equal(lookups, 1, 'one resolution per attempt, the one that was checked')
  t.equal(receiver.received[0]?.headers.host, `hooks.example.test:${receiver.port}`, 'the Host header keeps the name')
})
