import { Type } from '@sinclair/typebox'
import { Envelope, errorResponses } from './envelope.js'

/** Playback ids are base64url (16 characters as drawn today; up to the column's 64). Anything else names no stream. */
export const PLAYBACK_ID_PATTERN = '^[A-Za-z0-9_-]{8,64}$'

const Html = (description: string) => ({ description, content: { 'text/html': { schema: Type.String() } } })

export const watchPageSchema = {
  summary: 'The watch page of a stream (public: the playback id is public)',
  description:
    'An HTML page that plays the stream (hls.js, served by this api), shows its title, state and viewer count, kept current from the public events, and an embed snippet. `?embed=1` shows the video alone, for iframes.',
  params: Type.Object({ playback_id: Type.String({ pattern: PLAYBACK_ID_PATTERN }) }),
  querystring: Type.Object({ embed: Type.Optional(Type.String({ maxLength: 8, description: '`1`: the video alone, for an iframe' })) }),
  response: {
    200: Html('the watch page'),
    404: Html('no stream has this playback id (or it is not one): a page saying so'),
    '5xx': Html('the page cannot be shown now (a dependency is down, or its assets were not built): a page saying so')
  }
}

export const watchAssetSchema = {
  hide: true,
  params: Type.Object({ file: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,100}$' }) })
}

export const landingSchema = {
  summary: 'What this server is, and where to go',
  response: {
    200: Envelope(Type.Object({ service: Type.String(), links: Type.Record(Type.String(), Type.String()) })),
    ...errorResponses
  }
}

/** hls.js under its plain name: an asset, not an api route (kept out of the OpenAPI document). */
export const hlsAliasSchema = {
  hide: true,
  response: { 200: { description: 'hls.min.js', content: { 'text/javascript': { schema: Type.String() } } } }
}
