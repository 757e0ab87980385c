// Credential statements: create (with the uniqueness rules of the schema), read, list, update,
// delete, and the hot-path lookups adapters use to authenticate devices.
import { TributaryError } from '../../errors.ts'
import { uuidv7 } from '../../events/ids.ts'
import type { Credential } from '../model.ts'
import type { NewCredential, Precondition } from '../store.ts'
import type { ConstraintMessages, SqlDatabase } from './client.ts'
import type { CredentialRow } from './rows.ts'
import { credentialMaterial, toCredential } from './rows.ts'
import { deviceName, expectedVersion, inserted, noRowWritten, now, read, tenantName, write } from './write.ts'

function clashes(c: NewCredential): ConstraintMessages {
  const device = deviceName(c.tenant, c.device)
  const cn = c.type === 'x509' ? JSON.stringify(c.subjectCn) : ''
  const fingerprint = c.type === 'x509' ? String(c.fingerprint) : ''
  return {
    credentials_one_password: `${device} has a password credential already`,
    credentials_one_psk: `${device} has a PSK credential already`,
    credentials_x509_cn: `subject CN ${cn} is taken by another X.509 credential of ${tenantName(c.tenant)}`,
    credentials_x509_fingerprint: `fingerprint ${fingerprint} is taken by another X.509 credential of ${tenantName(c.tenant)}`,
    credentials_device_fkey: `${device} does not exist`,
    credentials_pkey: 'a credential with this id exists already',
  }
}

const credentialName = (tenant: string, device: string, id: string): string =>
  `credential ${JSON.stringify(id)} of ${deviceName(tenant, device)}`

const one = async (pending: Promise<{ rows: CredentialRow[] }>): Promise<Credential | undefined> => {
  const { rows } = await pending
  return rows[0] === undefined ? undefined : toCredential(rows[0])
}

export function credentialStatements(db: SqlDatabase) {
  return {
    createCredential: (credential: NewCredential): Promise<Credential> =>
      write(db, clashes(credential), async (tx) => {
        const at = now()
        const id = uuidv7()
        const { rows } = await tx.query<CredentialRow>(
          `INSERT INTO credentials (id, tenant, device, type, enabled, expires_at, password_hash, match, subject_cn,
             fingerprint, identity, key_encrypted, token_hash, version, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14) RETURNING *`,
          [
            id,
            credential.tenant,
            credential.device,
            credential.type,
            credential.enabled,
            credential.expiresAt,
            ...credentialMaterial(credential),
            at,
          ],
        )
        return {
          result: toCredential(inserted(rows)),
          change: {
            op: 'created',
            resource: 'credential',
            tenant: credential.tenant,
            device: credential.device,
            id,
            version: 1,
          },
        }
      }),

    getCredential: (tenant: string, device: string, id: string): Promise<Credential | undefined> =>
      read(() =>
        one(
          db.query('SELECT * FROM credentials WHERE tenant = $1 AND device = $2 AND id = $3', [
            tenant,
            device,
            id,
          ]),
        ),
      ),

    listCredentials: (tenant: string, device: string): Promise<Credential[]> =>
      read(async () => {
        const { rows } = await db.query<CredentialRow>(
          'SELECT * FROM credentials WHERE tenant = $1 AND device = $2 ORDER BY id',
          [tenant, device],
        )
        return rows.map(toCredential)
      }),

    updateCredential: async (credential: Credential, pre?: Precondition): Promise<Credential> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      const { tenant, device, id } = credential
      const what = credentialName(tenant, device, id)
      return write(db, clashes(credential), async (tx) => {
        // The type is part of the match: a credential never changes its type.
        const { rows } = await tx.query<CredentialRow>(
          `UPDATE credentials SET enabled = $5, expires_at = $6, password_hash = $7, match = $8, subject_cn = $9,
             fingerprint = $10, identity = $11, key_encrypted = $12, token_hash = $13, version = version + 1, updated_at = $14
           WHERE tenant = $1 AND device = $2 AND id = $3 AND type = $4 AND ($15::integer IS NULL OR version = $15)
           RETURNING *`,
          [
            tenant,
            device,
            id,
            credential.type,
            credential.enabled,
            credential.expiresAt,
            ...credentialMaterial(credential),
            now(),
            ifVersion,
          ],
        )
        let row = rows[0]
        if (row === undefined) {
          const current = await tx.query<{ type: string }>(
            'SELECT type FROM credentials WHERE tenant = $1 AND device = $2 AND id = $3',
            [tenant, device, id],
          )
          const type = current.rows[0]?.type
          if (type !== undefined && type !== credential.type) {
            throw new TributaryError('REGISTRY_INVALID', `${what} is of type ${type}, not ${credential.type}`)
          }
          row = await noRowWritten(
            tx,
            {
              sql: 'SELECT version FROM credentials WHERE tenant = $1 AND device = $2 AND id = $3',
              params: [tenant, device, id],
            },
            what,
            pre?.ifVersion,
          )
        }
        const updated = toCredential(row)
        return {
          result: updated,
          change: { op: 'updated', resource: 'credential', tenant, device, id, version: updated.version },
        }
      })
    },

    deleteCredential: async (
      tenant: string,
      device: string,
      id: string,
      pre?: Precondition,
    ): Promise<void> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        const { rows } = await tx.query<{ version: number }>(
          `DELETE FROM credentials WHERE tenant = $1 AND device = $2 AND id = $3 AND ($4::integer IS NULL OR version = $4)
           RETURNING version`,
          [tenant, device, id, ifVersion],
        )
        const row =
          rows[0] ??
          (await noRowWritten(
            tx,
            {
              sql: 'SELECT version FROM credentials WHERE tenant = $1 AND device = $2 AND id = $3',
              params: [tenant, device, id],
            },
            credentialName(tenant, device, id),
            pre?.ifVersion,
          ))
        return {
          result: undefined,
          change: { op: 'deleted', resource: 'credential', tenant, device, id, version: row.version },
        }
      })
    },

    // Each lookup is served by one of the partial unique indexes (or the primary key). They return
    // disabled and expired credentials too: the caller decides, and can tell "wrong" from "disabled".
    findPassword: (tenant: string, device: string): Promise<Credential | undefined> =>
      read(() =>
        one(
          db.query("SELECT * FROM credentials WHERE tenant = $1 AND device = $2 AND type = 'password'", [
            tenant,
            device,
          ]),
        ),
      ),

    findPsk: (tenant: string, device: string): Promise<Credential | undefined> =>
      read(() =>
        one(
          db.query("SELECT * FROM credentials WHERE tenant = $1 AND device = $2 AND type = 'psk'", [
            tenant,
            device,
          ]),
        ),
      ),

    findX509: (
      tenant: string,
      by: { cn: string } | { fingerprint: string },
    ): Promise<Credential | undefined> =>
      read(() =>
        'cn' in by
          ? one(
              db.query(
                "SELECT * FROM credentials WHERE tenant = $1 AND type = 'x509' AND match = 'cn' AND subject_cn = $2",
                [tenant, by.cn],
              ),
            )
          : one(
              db.query(
                "SELECT * FROM credentials WHERE tenant = $1 AND type = 'x509' AND match = 'fingerprint' AND fingerprint = $2",
                [tenant, by.fingerprint],
              ),
            ),
      ),

    findDeviceToken: (id: string): Promise<Credential | undefined> =>
      read(() => one(db.query("SELECT * FROM credentials WHERE id = $1 AND type = 'token'", [id]))),
  }
}
