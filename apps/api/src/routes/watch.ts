import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isUnavailable } from '@livestream/db'
import { NotFoundError } from '../errors.js'
import { DomainError } from '../plugins/app/domain-errors.js'
import { publicStream } from '../plugins/app/live-updates/live-update.js'
import { streamView, type UrlConfig } from '../plugins/app/streams/stream-view.js'
import { hlsAliasSchema, watchAssetSchema, watchPageSchema } from '../schemas/watch.js'
import { loadWatchAssets, type Asset, type WatchAssets } from '../watch/assets.js'
import { messageCsp, originOf, renderMessagePage, renderWatchPage, watchCsp, type EmbedOrigins } from '../watch/page.js'

export interface WatchRoutesOptions {
  urls: UrlConfig
  watch: { embedOrigins: EmbedOrigins; mediaOrigins: string[] }
  /** Where the built assets are (tests); `dist/watch-assets` by default. */
  assetsDir?: string
}

const YEAR = 'public, max-age=31536000, immutable'

/**
 * `/watch/:playback_id`, public: the page that plays a stream, and its three assets (ours, content-hashed, cached a
 * year). Its answers are HTML, errors included; the JSON envelope stays the api's.
 */
const watchRoutes: FastifyPluginAsyncTypebox<WatchRoutesOptions> = async (app, opts) => {
  const assets: WatchAssets | null = opts.assetsDir === undefined ? loadWatchAssets() : loadWatchAssets(opts.assetsDir)
  if (!assets) app.log.warn('watch page assets are not built (run pnpm build): /watch answers 503')
  const { embedOrigins } = opts.watch
  const baseOrigins = [originOf(opts.urls.streamServerUrl), ...opts.watch.mediaOrigins].filter((o): o is string => o !== null)

  /** The page's headers: its own policy, framing as configured (X-Frame-Options only when framing is refused). */
  const pageHeaders = (reply: FastifyReply, csp: string) => {
    reply.header('content-security-policy', csp).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store')
    // An embedding site may isolate itself (COEP): the page then needs to say it may be framed across origins.
    reply.header('cross-origin-resource-policy', embedOrigins === 'none' ? 'same-origin' : 'cross-origin')
    if (embedOrigins === 'none') reply.header('x-frame-options', 'DENY')
    else reply.removeHeader('x-frame-options')
    return reply
  }

  const message = (reply: FastifyReply, status: number, heading: string, text: string) =>
    pageHeaders(reply, messageCsp(embedOrigins)).code(status).send(renderMessagePage({ heading, text, assets }))

  // Every failure of the page is a page: a malformed or unknown id, a database that is down, a bug.
  const pageError = (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (err.validation || (err instanceof DomainError && err.kind === 'not-found')) {
      return message(reply, 404, 'Stream not found', 'There is no stream at this address. Check the link you were given.')
    }
    if (isUnavailable(err)) {
      request.log.warn({ err }, 'dependency unavailable')
      reply.header('retry-after', '5')
      return message(reply, 503, 'Temporarily unavailable', 'This page cannot be shown right now. Try again in a moment.')
    }
    request.log.error({ err }, 'unhandled error')
    return message(reply, 500, 'Something went wrong', 'This page cannot be shown right now. Try again in a moment.')
  }

  app.get('/watch/:playback_id', { schema: watchPageSchema, errorHandler: pageError }, async (request, reply) => {
    if (!assets) return message(reply, 503, 'Temporarily unavailable', 'The watch page is not installed on this server.')
    const row = await app.streams.getByPlaybackId(request.params.playback_id)
    // What anyone with the playback id may see, as the public JSON and events give it (the page's updates carry it too).
    const view = publicStream(streamView(row, opts.urls))
    const own = originOf(view.playback_url)
    const mediaOrigins = [...new Set(own ? [...baseOrigins, own] : baseOrigins)]
    const embed = request.query.embed === '1' || request.query.embed === 'true'
    return pageHeaders(reply, watchCsp({ mediaOrigins, embedOrigins })).send(renderWatchPage({ stream: view, assets, mediaOrigins, embed }))
  })

  const sendAsset = (request: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string) => {
    const accepted = request.headers['accept-encoding'] ?? ''
    const [encoding, body] = /\bbr\b/.test(accepted) ? ['br', asset.br] : /\bgzip\b/.test(accepted) ? ['gzip', asset.gzip] : [null, asset.identity]
    reply.header('content-type', asset.type).header('cache-control', cacheControl).header('vary', 'accept-encoding')
    if (encoding) reply.header('content-encoding', encoding)
    return reply.send(body)
  }

  // Registered before the hashed names' route: the README's player snippet loads this from other sites' pages, so it
  // may be read across origins, and its bytes change with an upgrade (a day's cache, not a year's).
  app.get('/watch/assets/hls.js', { schema: hlsAliasSchema }, async (request, reply) => {
    if (!assets) throw new NotFoundError('no such asset')
    reply.header('cross-origin-resource-policy', 'cross-origin').header('access-control-allow-origin', '*')
    return sendAsset(request, reply, assets.hls, 'public, max-age=86400')
  })

  app.get('/watch/assets/:file', { schema: watchAssetSchema }, async (request, reply) => {
    const asset = assets?.byFile(request.params.file)
    if (!asset) throw new NotFoundError('no such asset')
    return sendAsset(request, reply, asset, YEAR)
  })
}
export default watchRoutes
