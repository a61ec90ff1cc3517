import t from 'tap'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { bridgeMediaServerLogs, redactStreamPaths } from '../src/logger.js'
import { capturedLogger } from './helper.js'

const KEY = '3b241101-e2bb-4255-8caf-4136c566a962'
const require = createRequire(import.meta.url)
const nmsSrc = path.join(path.dirname(require.resolve('node-media-server/package.json')), 'src')

// The lines node-media-server 4.4.3 writes with a stream name in them, as its source builds them.
const id = 'm0abc123xyz'
const ip = '::ffff:10.0.0.7:53211'
const lines = {
  rtmpInvalid: (app: string, name: string) => `RTMP session ${id} ${ip} invalid stream path characters: app=${app}, name=${name}`,
  flvInvalid: (app: string, name: string) => `FLV session ${id} ${ip} invalid stream path characters: app=${app}, name=${name}`,
  rtmpPush: (p: string) => `RTMP session ${id} ${ip} start push ${p}`,
  rtmpPlayError: (p: string) => `RTMP session ${id} ${ip} play ${p} error, play stream ${p} authentication verification failed`,
  pushError: (p: string) => `FLV session ${id} ${ip} push ${p} error, streamPath=${p} already has a publisher`
}

t.test('the line formats tested here are the ones node-media-server writes', async (t) => {
  const rtmp = await readFile(path.join(nmsSrc, 'session/rtmp_session.js'), 'utf8')
  const flv = await readFile(path.join(nmsSrc, 'session/flv_session.js'), 'utf8')
  t.match(rtmp, 'RTMP session ${this.id} ${this.ip} invalid stream path characters: app=${req.app}, name=${req.name}')
  t.match(flv, 'FLV session ${this.id} ${this.ip} invalid stream path characters: app=${this.streamApp}, name=${this.streamName}')
  t.match(rtmp, 'RTMP session ${this.id} ${this.ip} start push ${this.streamPath}')
  t.match(flv, 'FLV session ${this.id} ${this.ip} push ${this.streamPath} error, ${err}')
})

t.test('invalid stream names are redacted: a key with a trailing space, a newline, a comma, in the app too', async (t) => {
  const names = [`${KEY} `, `${KEY}\nnext line`, `${KEY}, name=x`, `../${KEY}`, `${KEY}\u0000`, `a b ${KEY}`]
  for (const name of names) {
    for (const line of [lines.rtmpInvalid('live', name), lines.flvInvalid('live', name)]) {
      const out = redactStreamPaths(line)
      t.notMatch(out, KEY, JSON.stringify(name))
      t.match(out, /invalid stream path characters: app=\[redacted\], name=\[redacted\]$/)
      t.match(out, id, 'the session id stays for correlation')
    }
  }
  t.notMatch(redactStreamPaths(lines.rtmpInvalid(`live/${KEY}`, '')), KEY, 'a key pasted into the server URL (the app)')
})

t.test('stream paths are redacted, for any application', async (t) => {
  t.equal(redactStreamPaths('start push /live/3b241101-e2bb-4255-8caf-4136c566a962 ok'), 'start push /live/[redacted] ok')
  for (const p of [`/live/${KEY}`, `/other/${KEY}`, `/live/${KEY}?sign=1`]) {
    for (const line of [lines.rtmpPush(p), lines.rtmpPlayError(p), lines.pushError(p)]) t.notMatch(redactStreamPaths(line), KEY, line)
  }
  t.equal(redactStreamPaths(lines.rtmpPush(`/other/${KEY}`)), lines.rtmpPush('/other/[redacted]'))
  t.equal(redactStreamPaths('Store ready at /tmp/ls-media-x/.nms-store/node-1'), 'Store ready at /tmp/ls-media-x/.nms-store/node-1', 'file paths stay')
})

t.test("node-media-server's own logger, bridged, writes no key", async (t) => {
  const { log, lines: out } = capturedLogger()
  bridgeMediaServerLogs(log)
  const nmsLogger = require('node-media-server/src/core/logger.js') as { error(m: string): void; info(m: string): void }
  nmsLogger.error(lines.rtmpInvalid('live', `${KEY} `))
  nmsLogger.error(lines.flvInvalid('live', `${KEY}\u0000`))
  nmsLogger.info(lines.rtmpPush(`/live/${KEY}`))
  const text = out.join('')
  t.equal(out.length, 3, 'all three lines arrived')
  t.notMatch(text, KEY)
  t.match(text, 'name=[redacted]')
})
