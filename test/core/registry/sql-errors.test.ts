// Which engine errors the registry reports as REGISTRY_UNAVAILABLE (503, retry later) and which
// stay what they are: every SQLSTATE, socket error and client message that means "not now".
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import { translateError } from '../../../core/registry/sql/client.ts'

/** An error shaped like pg's DatabaseError: a message and a SQLSTATE in `code`. */
const dbError = (code: string, message = `error ${code}`): Error =>
  Object.assign(new Error(message), { code })
const nodeError = (code: string): Error =>
  Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code })

const unavailable: Array<[string, unknown]> = [
  ['08000 connection exception', dbError('08000')],
  ['08001 cannot establish a connection', dbError('08001')],
  ['08006 connection failure', dbError('08006')],
  ['53000 insufficient resources', dbError('53000')],
  ['53100 disk full', dbError('53100')],
  ['53200 out of memory', dbError('53200')],
  ['53300 too many connections', dbError('53300')],
  ['53400 configuration limit exceeded', dbError('53400')],
  ['57P01 admin shutdown', dbError('57P01', 'terminating connection due to administrator command')],
  ['57P02 crash shutdown', dbError('57P02')],
  ['57P03 cannot connect now', dbError('57P03', 'the database system is starting up')],
  ['57014 statement timeout', dbError('57014', 'canceling statement due to statement timeout')],
  [
    '55000 database not accepting connections',
    dbError('55000', 'database "registry" is not currently accepting connections'),
  ],
  ['55006 object in use', dbError('55006')],
  ['55P03 lock not available', dbError('55P03', 'canceling statement due to lock timeout')],
  ['40001 serialization failure', dbError('40001')],
  ['40P01 deadlock', dbError('40P01')],
  ['ECONNREFUSED', nodeError('ECONNREFUSED')],
  ['ECONNRESET', nodeError('ECONNRESET')],
  ['ETIMEDOUT', nodeError('ETIMEDOUT')],
  ['EPIPE', nodeError('EPIPE')],
  ['every address refused', new AggregateError([nodeError('ECONNREFUSED'), nodeError('ECONNREFUSED')])],
  ['pool connect timeout', new Error('timeout exceeded when trying to connect')],
  ['connection lost', new Error('Connection terminated unexpectedly')],
  ['pool ended', new Error('Cannot use a pool after calling end on the pool')],
  ['PGlite closed', new Error('PGlite is closed')],
  ['a socket error as cause', new Error('query failed', { cause: nodeError('ECONNRESET') })],
]

const statementFaults: Array<[string, Error]> = [
  ['55000 of a statement', dbError('55000', 'cannot refresh materialized view "v" concurrently')],
  ['42P01 undefined table', dbError('42P01', 'relation "x" does not exist')],
  ['42601 syntax error', dbError('42601')],
  ['an unknown error', new Error('boom')],
]

describe('translateError: unavailable databases', () => {
  it.each(unavailable)('%s → REGISTRY_UNAVAILABLE, retryable, with the cause', (_, err) => {
    const translated = translateError(err, {})
    expect(isTributaryError(translated, 'REGISTRY_UNAVAILABLE')).toBe(true)
    expect(translated).toMatchObject({ status: 503, canRetry: true, cause: err })
    expect((translated as Error).message).toMatch(/^the registry database is unavailable: /)
  })

  it.each(statementFaults)('%s stays the engine error', (_, err) => {
    expect(translateError(err, {})).toBe(err)
  })

  it('keeps mapping constraint violations to their codes', () => {
    const duplicate = Object.assign(dbError('23505'), { constraint: 'tenants_pkey' })
    expect(translateError(duplicate, { tenants_pkey: 'the tenant exists already' })).toMatchObject({
      code: 'REGISTRY_CONFLICT',
      message: 'the tenant exists already',
    })
  })
})
