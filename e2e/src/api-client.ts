import { randomBytes } from 'node:crypto'

export interface Envelope<T = unknown> {
  success: boolean
  data: T
  message: string
  count?: number
}

export interface StreamView {
  id: number
  ref_no: string
  title: string
  status: 'pending' | 'live' | 'ended'
  playback_id: string
  playback_url: string
  dash_url: string
  stream_key?: string
  rtmp_url?: string
  ingest_node_id?: string | null
  ended_reason?: string | null
  started_at?: string | null
}

/** A tiny client for one user of the api under test. */
export class ApiUser {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
    readonly id: number
  ) {}

  static async register(baseUrl: string, name = 'user'): Promise<ApiUser> {
    const email = `${name}-${randomBytes(5).toString('hex')}@example.com`
    const res = await fetch(`${baseUrl}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'correct horse battery', display_name: name })
    })
    const body = (await res.json()) as Envelope<{ token: string; user: { id: number } }>
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(body)}`)
    return new ApiUser(baseUrl, body.data.token, body.data.user.id)
  }

  async call<T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: Envelope<T> }> {
    const res = await fetch(`${this.baseUrl}/api${url}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' })
      },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    return { status: res.status, body: (await res.json()) as Envelope<T> }
  }

  async createStream(title = 'e2e stream'): Promise<StreamView & { stream_key: string }> {
    const { status, body } = await this.call<StreamView & { stream_key: string }>('POST', '/livestream/streams', { title })
    if (status !== 201) throw new Error(`create stream failed: ${status} ${JSON.stringify(body)}`)
    return body.data
  }

  async stream(id: number): Promise<StreamView> {
    const { status, body } = await this.call<StreamView>('GET', `/livestream/streams/${id}`)
    if (status !== 200) throw new Error(`get stream failed: ${status} ${JSON.stringify(body)}`)
    return body.data
  }
}
