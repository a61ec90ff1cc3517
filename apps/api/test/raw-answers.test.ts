import t, { type Test } from 'tap'
import { connect, type AddressInfo } from 'node:net'
import { build } from './helper.js'
import { SECURITY_HEADERS } from '../src/plugins/app/security-headers.js'

// Answers that Node's HTTP parser or Fastify's router give before any route runs: inject() skips both, so these go
// over a real socket, byte for byte.
const app = await build(t)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo

interface Raw {
  status: number
  headers: Record<string, string>
  body: string
}

/** Sends `request` as is and reads the first answer until the server closes or the body is complete. */
function send(request: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request))
    const chunks: Buffer[] = []
    const finish = () => {
      const text = Buffer.concat(chunks).toString()
      const split = text.indexOf('\r\n\r\n')
      if (split < 0) return reject(new Error(`no answer: ${JSON.stringify(text.slice(0, 200))}`))
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const i = line.indexOf(':')
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(split + 4, split + 4 + Number(headers['content-length'] ?? 1e9)) })
      socket.destroy()
    }
    socket.on('data', (c) => {
      chunks.push(c)
      const text = Buffer.concat(chunks).toString()
      const split = text.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, split))
      if (split >= 0 && length && Buffer.byteLength(text.slice(split + 4)) >= Number(length[1])) finish()
    })
    socket.on('error', () => {})
    socket.on('close', () => chunks.length && finish())
    setTimeout(() => {
      socket.destroy()
      reject(new Error('no answer within 10 s'))
    }, 10_000).unref()
  })
}

/** The envelope, our security headers, and nothing of what the client sent (`marker`) reflected back. */
function assertAnswer(t: Test, res: Raw, status: number, marker: string) {
  t.equal(res.status, status, `status ${status}`)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = JSON.parse(res.body) as { success: boolean; data: unknown; message: string }
  t.same({ success: body.success, data: body.data }, { success: false, data: null }, 'in the envelope')
  t.type(body.message, 'string')
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) t.equal(res.headers[name], value, name)
  t.notOk(res.body.includes(marker), 'the request is not echoed')
}

const digits = '7'.repeat(1001)
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`

t.test('a path segment over the router limit: 414 in the envelope, with the security headers, the path not echoed', async (t) => {
  assertAnswer(t, await send(get(`/api/livestream/streams/${digits}`)), 414, digits.slice(0, 50))
})

t.test('a path that is not valid percent-encoding: 400 in the envelope, not echoed', async (t) => {
  assertAnswer(t, await send(get('/api/livestream/streams/%ZZecho-me')), 400, 'echo-me')
})

t.test('an unknown route: 404 in the envelope without the path', async (t) => {
  assertAnswer(t, await send(get('/api/nowhere-echo-me')), 404, 'echo-me')
})

t.test('headers over Node limit: 431 in the envelope with the security headers', async (t) => {
  assertAnswer(t, await send(get('/api/healthz-echo-me', `x-big: ${'b'.repeat(20_000)}\r\n`)), 431, 'echo-me')
})

t.test('a request line that is not HTTP: 400 in the envelope with the security headers', async (t) => {
  assertAnswer(t, await send('GARBAGE /echo-me NOT-HTTP\r\n\r\n'), 400, 'echo-me')
})

t.test('an HTTP/1.1 request without Host: 400 in the envelope (Node would answer a bare 400)', async (t) => {
  assertAnswer(t, await send('GET /api/echo-me HTTP/1.1\r\nConnection: close\r\n\r\n'), 400, 'echo-me')
})

t.test('an Expect header other than 100-continue: 417 in the envelope (Node would answer a bare 417)', async (t) => {
  assertAnswer(t, await send(get('/api/echo-me', 'Expect: echo-me\r\n')), 417, 'echo-me')
})
