import type { StreamView } from '../plugins/app/streams/stream-view.js'
import type { WatchAssets } from './assets.js'

/** Text for HTML content and quoted attribute values: the five characters that could end either. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * JSON inside a `<script type="application/json">`: `<` is escaped so that no `</script>` or `<!--` in a title can end
 * the element early, and the two line separators JavaScript once refused in strings go too.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/

/** The origin of a URL, when it is a plain http(s) origin safe to put in a CSP header; else null. */
export function originOf(url: string): string | null {
  try {
    const origin = new URL(url).origin
    return ORIGIN.test(origin) ? origin : null
  } catch {
    return null
  }
}

export type EmbedOrigins = '*' | 'none' | string[]

const frameAncestors = (embed: EmbedOrigins) => (embed === '*' ? '*' : embed === 'none' ? "'none'" : ["'self'", ...embed].join(' '))

/**
 * The watch page's policy: our own scripts and styles only (no inline code, no CDN), media and its requests from the
 * ingest origins the page may play from, `blob:` for Media Source Extensions, framing as configured.
 */
export function watchCsp(opts: { mediaOrigins: string[]; embedOrigins: EmbedOrigins }): string {
  const media = opts.mediaOrigins.join(' ')
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `media-src 'self' blob: ${media}`.trim(),
    `connect-src 'self' ${media}`.trim(),
    `frame-ancestors ${frameAncestors(opts.embedOrigins)}`,
    "base-uri 'none'",
    "form-action 'none'"
  ].join('; ')
}

/** For the 404 and 503 pages: a style sheet at most. */
export function messageCsp(embedOrigins: EmbedOrigins): string {
  return `default-src 'none'; style-src 'self'; frame-ancestors ${frameAncestors(embedOrigins)}; base-uri 'none'; form-action 'none'`
}

/** What the page shows: the status, refined by the publisher's connection while live. watch.js has the same table. */
export type ShownState = 'pending' | 'starting' | 'live' | 'reconnecting' | 'ended'
const STATUS_TEXT: Record<ShownState, string> = {
  pending: 'Not started',
  starting: 'Starting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  ended: 'Ended'
}
const OVERLAY_TEXT: Record<ShownState, string> = {
  pending: 'This stream has not started yet. It will play here as soon as it does.',
  starting: 'The broadcaster has not connected yet. It will play here as soon as they do.',
  live: 'Loading…',
  reconnecting: 'Loading…',
  ended: 'This stream has ended.'
}

export function shownState(status: 'pending' | 'live' | 'ended', connection: string | null): ShownState {
  if (status !== 'live') return status
  // A stream set live by hand that no publisher has reached yet.
  if (connection === 'awaiting-publisher') return 'starting'
  return connection === 'reconnecting' ? 'reconnecting' : 'live'
}

export interface WatchPageInput {
  stream: Pick<StreamView, 'title' | 'status' | 'viewer_count' | 'playback_id' | 'playback_url'> & { connection: string | null }
  assets: WatchAssets
  /** Origins the player may fetch media from (the CSP's), so that the page knows when a move needs a reload. */
  mediaOrigins: string[]
  embed: boolean
}

/**
 * The page, complete without JavaScript as far as words go (title, state, viewer count, the not-started or ended
 * message); watch.js then plays and keeps it current. Everything that came from a user is escaped.
 */
export function renderWatchPage({ stream, assets, mediaOrigins, embed }: WatchPageInput): string {
  const shown = shownState(stream.status, stream.connection)
  const id = encodeURIComponent(stream.playback_id)
  const config = {
    playback_id: stream.playback_id,
    title: stream.title,
    status: stream.status,
    connection: stream.connection,
    viewer_count: stream.viewer_count,
    playback_url: stream.playback_url,
    state_url: `/api/public/streams/${id}`,
    events_url: `/api/public/streams/${id}/events`,
    media_origins: mediaOrigins
  }
  const title = escapeHtml(stream.title)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="stylesheet" href="${assets.url('watch.css')}">
<script src="${assets.url('hls.js')}" defer></script>
<script src="${assets.url('watch.js')}" defer></script>
</head>
<body class="${embed ? 'watch embed' : 'watch'}" data-status="${shown}">
<main>
<div class="player">
<video id="video" muted autoplay playsinline controls></video>
<div id="overlay" class="overlay" role="status">${OVERLAY_TEXT[shown]}</div>
<div class="badges"><span id="status" class="badge" data-status="${shown}">${STATUS_TEXT[shown]}</span><span id="viewers" class="badge"><span id="viewer-count">${stream.viewer_count}</span> watching</span></div>
<button id="unmute" type="button" hidden>Tap to unmute</button>
</div>
<header>
<h1 id="title">${title}</h1>
</header>
<section class="embed-box">
<label for="embed-code">Embed this stream</label>
<textarea id="embed-code" rows="3" readonly>${escapeHtml(`<iframe src="/watch/${id}?embed=1" width="640" height="360" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen></iframe>`)}</textarea>
<button id="copy-embed" type="button">Copy</button>
</section>
</main>
<script type="application/json" id="watch-config">${scriptJson(config)}</script>
</body>
</html>
`
}

/** A page that says what went wrong in words (unknown stream, page not built), never with a stack. */
export function renderMessagePage(opts: { heading: string; text: string; assets: WatchAssets | null }): string {
  const css = opts.assets ? `\n<link rel="stylesheet" href="${opts.assets.url('watch.css')}">` : ''
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(opts.heading)}</title>${css}
</head>
<body>
<main class="not-found">
<h1>${escapeHtml(opts.heading)}</h1>
<p>${escapeHtml(opts.text)}</p>
</main>
</body>
</html>
`
}
