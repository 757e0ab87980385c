// The credential operations of the RegistryService: a password hashed, a PSK key encrypted, a
// device token generated and stored as a hash; views never carry any of them.
import { randomBytes } from 'node:crypto'
import { TributaryError, isTributaryError } from '../errors.ts'
import type { Credential, Device, Versioned } from './model.ts'
import type { Secrets } from './secrets.ts'
import type { CredentialView, RegistryService } from './service.ts'
import type { NewCredential, Precondition, RegistryStore } from './store.ts'
import {
  checkBoolean,
  checkDeviceId,
  checkFutureTime,
  checkOpaqueId,
  checkPassword,
  passwordMinLength,
  checkTenantId,
  credentialFields,
  onlyKeys,
} from './validate.ts'

/** What the credential operations share with the rest of the service (service-impl.ts). */
export interface ServiceContext {
  readonly store: RegistryStore
  readonly secrets: Secrets
  readonly now: () => Date
  /** Signals a successful write and passes the value through. */
  readonly changed: <T>(value: T) => T
  readonly requireDevice: (tenant: string, id: string) => Promise<Device>
  /** Read-modify-write under the resource's version (see service-impl.ts). */
  readonly update: <T extends Versioned>(
    what: string,
    read: () => Promise<T | undefined>,
    write: (current: T, pre: Precondition) => Promise<T>,
    pre?: Precondition,
  ) => Promise<T>
}

/** Read-modify-write attempts when the caller gave no If-Match and someone else wrote in between. */
export const MERGE_ATTEMPTS = 3

export const notFound = (what: string): TributaryError =>
  new TributaryError('REGISTRY_NOT_FOUND', `${what} not found`)

export function credentialView(credential: Credential): CredentialView {
  switch (credential.type) {
    case 'password': {
      const { passwordHash: _hash, ...view } = credential
      return view
    }
    case 'psk': {
      const { keyEncrypted: _key, ...view } = credential
      return view
    }
    case 'token': {
      const { tokenHash: _hash, ...view } = credential
      return view
    }
    case 'x509':
      return { ...credential }
  }
}

/** The TLS-PSK identity of a device: `<device>@<tenant>`. */
export function pskIdentity(tenant: string, device: string): string {
  return `${device}@${tenant}`
}

type CredentialOperations = Pick<
  RegistryService,
  | 'createCredential'
  | 'getCredential'
  | 'listCredentials'
  | 'setPassword'
  | 'updateCredential'
  | 'deleteCredential'
>

export function credentialOperations(context: ServiceContext): CredentialOperations {
  const { store, secrets, now, changed, requireDevice, update } = context

  /** Applies the tenant's password policy (settings.passwordMinLength). */
  async function checkTenantPassword(tenant: string, password: string): Promise<void> {
    checkPassword(password, 'password', passwordMinLength((await store.getTenant(tenant))?.settings))
  }

  async function newCredential(tenant: string, device: string, input: unknown) {
    const fields = credentialFields(input, now())
    await requireDevice(tenant, device)
    const base = { tenant, device, enabled: fields.enabled, expiresAt: fields.expiresAt }
    switch (fields.type) {
      case 'password': {
        await checkTenantPassword(tenant, fields.password)
        const passwordHash = await secrets.hashPassword(fields.password)
        return { credential: { ...base, type: 'password', passwordHash } satisfies NewCredential }
      }
      case 'x509':
        return {
          credential: {
            ...base,
            type: 'x509',
            match: fields.match,
            subjectCn: fields.match === 'cn' ? fields.subjectCn : null,
            fingerprint: fields.match === 'fingerprint' ? fields.fingerprint : null,
          } satisfies NewCredential,
        }
      case 'psk': {
        const key = fields.key ?? randomBytes(32)
        const identity = pskIdentity(tenant, device)
        // The identity is bound as associated data: a key copied onto another device's row fails.
        const keyEncrypted = secrets.encrypt(key, identity)
        const credential = { ...base, type: 'psk', identity, keyEncrypted } satisfies NewCredential
        return { credential, secret: fields.key === undefined ? key.toString('hex') : undefined }
      }
      case 'token': {
        const { secret, hash } = secrets.newTokenSecret()
        return {
          credential: { ...base, type: 'token', tokenHash: hash } satisfies NewCredential,
          token: secret,
        }
      }
    }
  }

  return {
    async createCredential(tenant, device, input) {
      const made = await newCredential(checkTenantId(tenant), checkDeviceId(device), input)
      const created = changed(await store.createCredential(made.credential))
      const secret =
        made.token === undefined ? made.secret : secrets.formatToken('device', created.id, made.token)
      return { credential: credentialView(created), ...(secret === undefined ? {} : { secret }) }
    },
    async getCredential(tenant, device, id) {
      const credential = await store.getCredential(
        checkTenantId(tenant),
        checkDeviceId(device),
        checkOpaqueId(id),
      )
      if (credential === undefined) throw notFound(`credential ${id} of device ${device}`)
      return credentialView(credential)
    },
    async listCredentials(tenant, device) {
      await requireDevice(tenant, device)
      return (await store.listCredentials(tenant, device)).map(credentialView)
    },
    async setPassword(tenant, device, password) {
      checkTenantId(tenant)
      checkDeviceId(device)
      checkPassword(password, 'password', 1)
      await requireDevice(tenant, device)
      await checkTenantPassword(tenant, password)
      const passwordHash = await secrets.hashPassword(password)
      for (let attempt = 1; ; attempt++) {
        const existing = await store.findPassword(tenant, device)
        try {
          // Only the secret changes: a credential an operator disabled or let expire stays so.
          const written =
            existing?.type === 'password'
              ? await store.updateCredential({ ...existing, passwordHash }, { ifVersion: existing.version })
              : await store.createCredential({
                  tenant,
                  device,
                  type: 'password',
                  enabled: true,
                  expiresAt: null,
                  passwordHash,
                })
          return credentialView(changed(written))
        } catch (err) {
          const raced =
            isTributaryError(err, 'REGISTRY_VERSION_MISMATCH') || isTributaryError(err, 'REGISTRY_CONFLICT')
          if (!raced || attempt >= MERGE_ATTEMPTS) throw err
        }
      }
    },
    async updateCredential(tenant, device, id, input, pre) {
      checkTenantId(tenant)
      checkDeviceId(device)
      checkOpaqueId(id)
      const fields = onlyKeys(input, ['enabled', 'expiresAt'], '')
      const enabled = fields['enabled'] === undefined ? undefined : checkBoolean(fields['enabled'], 'enabled')
      const expiresAt =
        fields['expiresAt'] === undefined ? undefined : checkFutureTime(fields['expiresAt'], now())
      const updated = await update(
        `credential ${id} of device ${device}`,
        () => store.getCredential(tenant, device, id),
        (current, version) =>
          store.updateCredential(
            {
              ...current,
              enabled: enabled ?? current.enabled,
              expiresAt: expiresAt === undefined ? current.expiresAt : expiresAt,
            },
            version,
          ),
        pre,
      )
      return credentialView(updated)
    },
    async deleteCredential(tenant, device, id, pre) {
      await store.deleteCredential(checkTenantId(tenant), checkDeviceId(device), checkOpaqueId(id), pre)
      changed(undefined)
    },
  }
}
