import t from 'tap'
import { InvalidEventError, jobIdFor, newEventId, parseHeartbeat, parseHeartbeats, parseStreamEvent, type StreamEvent } from '../src/index.js'

const published: StreamEvent = {
  type: 'stream.published',
  id: newEventId(),
  nodeId: 'node-a',
  sessionId: 'S1',
  at: new Date().toISOString(),
  streamId: 7,
  playbackBaseUrl: 'http://127.0.0.1:8000'
}

t.test('a well-formed event parses back to itself', async (t) => {
  t.same(parseStreamEvent(structuredClone(published)), published)
})

t.test('event ids are valid BullMQ job ids: no colon, not digits only, unique', async (t) => {
  const ids = new Set(Array.from({ length: 1000 }, () => jobIdFor({ id: newEventId() })))
  t.equal(ids.size, 1000)
  for (const id of ids) {
    t.notMatch(id, /:/)
    t.notMatch(id, /^\d+$/)
  }
})

t.test('a payload of the wrong shape is refused with the field named', async (t) => {
  t.throws(() => parseStreamEvent({ ...published, streamId: 'x' }), InvalidEventError)
  t.throws(() => parseStreamEvent({ ...published, type: 'stream.exploded' }), InvalidEventError)
  t.throws(() => parseStreamEvent({ ...published, extra: 1 }), InvalidEventError)
  t.throws(() => parseStreamEvent({ ...published, at: 'yesterday' }), InvalidEventError)
  try {
    parseStreamEvent({ ...published, streamId: -1 })
    t.fail('should throw')
  } catch (err) {
    t.match((err as Error).message, /streamId/)
  }
})

t.test('heartbeats validate', async (t) => {
  const hb = { nodeId: 'n', playbackBaseUrl: 'http://x', at: Date.now(), streamIds: [1, 2] }
  t.same(parseHeartbeat(hb), hb)
  t.equal(parseHeartbeat({ ...hb, streamIds: ['1'] }), null)
})

t.test("an older node's heartbeat, with a field no longer read (bootId), still counts", async (t) => {
  const hb = { nodeId: 'n', bootId: 'b', playbackBaseUrl: 'http://x', at: Date.now(), streamIds: [1] }
  t.same(parseHeartbeat(hb)?.streamIds, [1])
})

t.test('a heartbeat hash read back from Redis keeps the valid entries only', async (t) => {
  const hb = { nodeId: 'n', playbackBaseUrl: 'http://x', at: 1, streamIds: [] }
  const beats = parseHeartbeats({ n: JSON.stringify(hb), broken: '{not json', wrong: JSON.stringify({ ...hb, at: 'now' }) })
  t.same([...beats.keys()], ['n'])
  t.same(beats.get('n'), hb)
})
