// node-media-server 4 with no hooks of ours: the peer our ingest adds auth, packaging and events to.
import { createRequire } from 'node:module'
import path from 'node:path'
import { ROOT } from './lib.mjs'

const require = createRequire(path.join(ROOT, 'apps/ingest/package.json'))
const NodeMediaServer = require('node-media-server')
const logger = require('node-media-server/src/core/logger.js')
logger.log = () => {}
const nms = new NodeMediaServer({
  bind: '127.0.0.1',
  rtmp: { port: Number(process.env.RTMP_PORT), chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 },
  webadmin: { enable: false },
  store: { path: process.env.STORE_PATH }
})
await nms.run()
process.on('SIGTERM', () => nms.stop().then(() => process.exit(0)))
