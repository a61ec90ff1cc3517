// The watch page's player (served as /watch/assets/watch.<hash>.js, after hls.js, both ours: nothing from a CDN).
// The server renders the page with the stream's state at load time in #watch-config; from then on the state comes
// from the public events (Server-Sent Events keyed by playback id), or, when those fail, from polling the public
// JSON every few seconds. The player runs only while the stream is live.
;(function () {
  'use strict'

  const POLL_MS = 5000
  const RETRY_MS = 3000
  // Event names the public events may use; every one is handled the same way (see applyMessage).
  const EVENT_NAMES = [
    'message', 'snapshot', 'stream', 'status', 'viewers', 'state', 'update',
    'stream.live', 'stream.reconnecting', 'stream.resumed', 'stream.ended', 'stream.viewers', 'stream.updated'
  ]
  const TEXT = {
    status: { pending: 'Not started', starting: 'Starting…', live: 'Live', reconnecting: 'Reconnecting…', ended: 'Ended' },
    overlay: {
      pending: 'This stream has not started yet. It will play here as soon as it does.',
      starting: 'The broadcaster has not connected yet. It will play here as soon as they do.',
      ended: 'This stream has ended.',
      loading: 'Loading…'
    }
  }

  const $ = (id) => document.getElementById(id)
  const config = JSON.parse($('watch-config').textContent)
  const video = $('video')
  const overlay = $('overlay')
  const statusBadge = $('status')
  const viewerCount = $('viewer-count')
  const unmute = $('unmute')

  /** The page's viewer session: ingest counts players by it (16-64 url-safe characters, new per page load). */
  const session = (function () {
    const bytes = new Uint8Array(18)
    window.crypto.getRandomValues(bytes)
    let s = ''
    for (const b of bytes) s += String.fromCharCode(b)
    return window.btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
  })()

  const withSession = (url) => {
    try {
      const u = new URL(url, window.location.href)
      u.searchParams.set('vs', session)
      return u.toString()
    } catch {
      return url
    }
  }

  const state = {
    title: config.title,
    status: config.status,
    connection: config.connection,
    viewerCount: config.viewer_count,
    playbackUrl: config.playback_url
  }

  // ---- the player --------------------------------------------------------------------------------------------------
  let hls = null
  let playing = false
  let retryTimer = null

  function allowedMediaUrl(url) {
    try {
      const origin = new URL(url, window.location.href).origin
      return origin === window.location.origin || config.media_origins.indexOf(origin) !== -1
    } catch {
      return false
    }
  }

  function startPlayer() {
    if (playing) return
    if (!allowedMediaUrl(state.playbackUrl)) {
      // The stream went live on a node this page's CSP was not written for: a fresh page gets one that is.
      const key = 'watch-reloaded:' + config.playback_id
      if (window.sessionStorage && window.sessionStorage.getItem(key) !== state.playbackUrl) {
        window.sessionStorage.setItem(key, state.playbackUrl)
        window.location.reload()
        return
      }
    }
    playing = true
    showOverlay(TEXT.overlay.loading)
    const url = withSession(state.playbackUrl)
    const Hls = window.Hls
    if (Hls && Hls.isSupported()) {
      hls = new Hls({
        lowLatencyMode: true,
        maxLiveSyncPlaybackRate: 1.5,
        backBufferLength: 30,
        // fMP4 needs no transmuxing worker; without one the page's CSP needs no worker-src.
        enableWorker: false,
        // Every media request carries the viewer session (playlists, parts, segments, init).
        xhrSetup(xhr, requestUrl) {
          xhr.open('GET', withSession(requestUrl), true)
        }
      })
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return
        // A live stream whose playlist is not served yet (or a node lost): try again while it is still live.
        stopPlayer()
        scheduleRetry()
      })
      hls.loadSource(url)
      hls.attachMedia(video)
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari (iOS): native HLS. Its requests carry no session on child playlists; ingest counts them by address.
      video.src = url
    } else {
      playing = false
      showOverlay('This browser cannot play this stream.')
      return
    }
    video.play().catch(() => {})
  }

  function stopPlayer() {
    playing = false
    if (hls) {
      hls.destroy()
      hls = null
    }
    if (video.getAttribute('src') !== null) {
      video.removeAttribute('src')
      video.load()
    }
  }

  function scheduleRetry() {
    if (retryTimer !== null) return
    retryTimer = window.setTimeout(() => {
      retryTimer = null
      render()
    }, RETRY_MS)
  }

  video.addEventListener('playing', () => hideOverlay())
  video.addEventListener('volumechange', () => {
    unmute.hidden = !video.muted
  })
  unmute.addEventListener('click', () => {
    video.muted = false
    unmute.hidden = true
    video.play().catch(() => {})
  })

  // ---- what the page shows -----------------------------------------------------------------------------------------
  function showOverlay(text) {
    overlay.textContent = text
    overlay.hidden = false
  }
  function hideOverlay() {
    overlay.hidden = true
  }

  /** As the server's page.ts shownState: the status, refined by the publisher's connection while live. */
  function shownState() {
    if (state.status !== 'live') return state.status
    if (state.connection === 'awaiting-publisher') return 'starting'
    return state.connection === 'reconnecting' ? 'reconnecting' : 'live'
  }

  function render() {
    const shown = shownState()
    statusBadge.dataset.status = shown
    statusBadge.textContent = TEXT.status[shown] || shown
    viewerCount.textContent = String(state.viewerCount)
    document.body.dataset.status = shown
    if (shown === 'live' || shown === 'reconnecting') {
      // Reconnecting: the player holds on (hls.js keeps reloading the playlist) and goes on once media flows again.
      unmute.hidden = !video.muted
      startPlayer()
    } else {
      stopPlayer()
      unmute.hidden = true
      showOverlay(TEXT.overlay[shown] || '')
    }
  }

  /** Takes whatever fields of the public stream state `data` carries. */
  function apply(data) {
    if (!data || typeof data !== 'object') return false
    let changed = false
    if (data.status === 'pending' || data.status === 'live' || data.status === 'ended') {
      changed = changed || data.status !== state.status
      state.status = data.status
      // A state without `connection` tells nothing about it; off-live it is null either way.
      if (!('connection' in data) && data.status !== 'live') state.connection = null
    }
    if ('connection' in data && (data.connection === null || typeof data.connection === 'string')) {
      state.connection = data.connection
      changed = true
    }
    if (typeof data.viewer_count === 'number' && data.viewer_count >= 0) {
      state.viewerCount = data.viewer_count
      changed = true
    }
    if (typeof data.playback_url === 'string' && data.playback_url !== state.playbackUrl) {
      state.playbackUrl = data.playback_url
      // A move to another node: play from there.
      if (playing) stopPlayer()
      changed = true
    }
    return changed
  }

  /** An event's or answer's body: the state itself, or wrapped (`{ data }`, `{ stream }`, `{ data: { stream } }`). */
  function applyMessage(raw) {
    let body
    try {
      body = JSON.parse(raw)
    } catch {
      return
    }
    const candidates = [body, body && body.data, body && body.stream, body && body.data && body.data.stream]
    let changed = false
    for (const c of candidates) if (apply(c)) changed = true
    if (changed) render()
    // Ended is final: nothing more to hear (and one connection fewer on the server).
    if (state.status === 'ended') stopUpdates()
  }

  // ---- live updates ------------------------------------------------------------------------------------------------
  let pollTimer = null
  let source = null

  function poll() {
    return window
      .fetch(config.state_url, { headers: { accept: 'application/json' }, cache: 'no-store' })
      .then((res) => (res.ok ? res.text() : null))
      .then((text) => {
        if (text !== null) applyMessage(text)
      })
      .catch(() => {})
  }

  function startPolling() {
    if (pollTimer !== null) return
    pollTimer = window.setInterval(() => {
      if (state.status === 'ended') return stopUpdates()
      poll()
    }, POLL_MS)
    poll()
  }

  function stopUpdates() {
    if (pollTimer !== null) window.clearInterval(pollTimer)
    pollTimer = null
    if (source) source.close()
    source = null
  }

  function startEvents() {
    if (!window.EventSource) return startPolling()
    source = new window.EventSource(config.events_url)
    const onMessage = (event) => applyMessage(event.data)
    for (const name of EVENT_NAMES) source.addEventListener(name, onMessage)
    source.addEventListener('open', () => {
      // Events flow again: polling is no longer needed (what changed meanwhile comes as the first event, or by poll).
      if (pollTimer !== null) {
        window.clearInterval(pollTimer)
        pollTimer = null
      }
      poll()
    })
    source.addEventListener('error', () => {
      // CLOSED: refused for good (no such endpoint, a 4xx); CONNECTING: the browser retries itself. Poll meanwhile.
      if (source && source.readyState === window.EventSource.CLOSED) {
        source.close()
        source = null
      }
      startPolling()
    })
  }

  // ---- embed snippet -----------------------------------------------------------------------------------------------
  const embedCode = $('embed-code')
  const copy = $('copy-embed')
  if (embedCode && copy) {
    const src = window.location.origin + '/watch/' + encodeURIComponent(config.playback_id) + '?embed=1'
    embedCode.value =
      '<iframe src="' + src + '" width="640" height="360" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen ' +
      'style="border:0;max-width:100%;aspect-ratio:16/9;height:auto" title="' + config.title.replace(/[&"<>]/g, (c) => '&#' + c.charCodeAt(0) + ';') + '"></iframe>'
    copy.addEventListener('click', () => {
      embedCode.select()
      const done = () => {
        copy.textContent = 'Copied'
        window.setTimeout(() => (copy.textContent = 'Copy'), 2000)
      }
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(embedCode.value).then(done, () => {})
      else if (document.execCommand('copy')) done()
    })
  }

  render()
  if (state.status !== 'ended') startEvents()

  // For tests and the curious: what the page believes, and its viewer session.
  window.watchPage = { state, session, playing: () => playing, polling: () => pollTimer !== null }
})()
