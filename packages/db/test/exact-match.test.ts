import t from 'tap'
import { createDbClient, findStreamByKey, streams, users } from '../src/index.js'
import { createTestDatabase } from '../src/testing.js'

const tdb = await createTestDatabase('ls_exact')
const client = createDbClient({ url: tdb.url })
t.teardown(async () => {
  await client.close()
  await tdb.drop()
})
const [owner] = await client.db.insert(users).values({ email: 'owner@example.com', displayName: 'O' })
const KEY = '3b241101-e2bb-4255-8caf-4136c566a962'
await client.db.insert(streams).values({ refNo: 'LS-1', title: 't', streamKey: KEY, playbackId: 'AbC-pb_1', userId: owner.insertId })

t.test('findStreamByKey (the lookup ingest uses) finds the exact key and refuses its upper-cased twin', async (t) => {
  t.ok(await findStreamByKey(client.db, KEY), 'the key as issued')
  t.equal(await findStreamByKey(client.db, KEY.toUpperCase()), null, 'the upper-cased key is no key')
  t.equal(await findStreamByKey(client.db, `${KEY} `), null, 'nor with a trailing space (PAD SPACE collations ignore it)')
})

t.test('playback ids that differ only by case are two ids', async (t) => {
  await client.db.insert(streams).values({ refNo: 'LS-2', title: 't', streamKey: 'other-key', playbackId: 'abc-PB_1', userId: owner.insertId })
  const rows = await client.db.select({ id: streams.id }).from(streams)
  t.equal(rows.length, 2, 'both rows stored side by side under the unique index')
})
