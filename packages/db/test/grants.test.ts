import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import mysql from 'mysql2/promise'
import { createTestDatabase } from '../src/testing.js'

// scripts/ensure-services.sh gives the project's database user only the project's databases, from this machine. Checked
// on a user of this test's own (the script takes its name), so the shared `livestream` user is left as it is.
const run = promisify(execFile)
const SCRIPT = fileURLToPath(new URL('../../../scripts/ensure-services.sh', import.meta.url))
const admin = (sql: string) => run('mariadb', ['-uroot', '-N', '-r', '-e', sql])
const canAdmin = await admin('SELECT 1').then(
  () => true,
  () => false
)

t.test('the service user gets the livestream and ls_* databases from local addresses, and testing.ts still works', { skip: !canAdmin && 'no administrator access to MariaDB here' }, async (t) => {
  const user = `lsgrant_${randomBytes(3).toString('hex')}`
  const pass = randomBytes(12).toString('hex')
  t.teardown(() => admin(`DROP USER IF EXISTS '${user}'@'localhost', '${user}'@'127.0.0.1', '${user}'@'%'`))
  // An older install: everything, from anywhere. The script must narrow it, not only create.
  await admin(`CREATE USER '${user}'@'%' IDENTIFIED BY '${pass}'; GRANT ALL PRIVILEGES ON *.* TO '${user}'@'%';
    CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${pass}'; GRANT ALL PRIVILEGES ON *.* TO '${user}'@'127.0.0.1'`)
  await run('bash', [SCRIPT], { env: { ...process.env, LIVESTREAM_DB_USER: user, LIVESTREAM_DB_PASS: pass } })

  const { stdout: hosts } = await admin(`SELECT host FROM mysql.user WHERE user = '${user}' ORDER BY host`)
  t.same(hosts.trim().split('\n').sort(), ['127.0.0.1', 'localhost'], 'local addresses only')
  for (const host of ['127.0.0.1', 'localhost']) {
    const { stdout } = await admin(`SHOW GRANTS FOR '${user}'@'${host}'`)
    const grants = stdout.trim().split('\n')
    t.match(grants.find((g) => g.includes(' ON *.* ')), /^GRANT USAGE ON \*\.\* /, `${host}: nothing on every database`)
    t.ok(grants.some((g) => g.startsWith('GRANT ALL PRIVILEGES ON `livestream`.*')), `${host}: the livestream database`)
    t.ok(grants.some((g) => g.startsWith('GRANT ALL PRIVILEGES ON `ls\\_%`.*')), `${host}: the test databases`)
    t.equal(grants.length, 3, `${host}: and nothing else`)
  }

  const server = `mysql://${user}:${pass}@127.0.0.1:3306/`
  const before = process.env.TEST_DATABASE_URL
  process.env.TEST_DATABASE_URL = server
  t.teardown(() => {
    if (before === undefined) delete process.env.TEST_DATABASE_URL
    else process.env.TEST_DATABASE_URL = before
  })
  const tdb = await createTestDatabase('ls_grant')
  t.ok(tdb.name.startsWith('ls_grant_'), 'a test database is created and migrated with the narrow grant')
  await tdb.drop()
  const conn = await mysql.createConnection({ uri: server })
  t.teardown(() => conn.end())
  await t.rejects(conn.query('CREATE DATABASE lsx_not_ours'), { code: 'ER_DBACCESS_DENIED_ERROR' }, 'no other database')
  await t.rejects(conn.query('SELECT user FROM mysql.user'), /denied/, 'no system tables')
})
