// The registry's public surface: the model, the store port and its factory, the service, the
// outbox relay, the change events and the cached authenticators.
export * from './model.ts'
export type * from './store.ts'
export type * from './service.ts'
export { createRegistryStore } from './store-factory.ts'
export type { RegistryStoreConfig } from './store-factory.ts'
export { createSecrets, loadRegistryKey, PASSWORD_MAX_LENGTH, TOKEN_PREFIXES } from './secrets.ts'
export type { ParsedToken, RegistryKeyOptions, Secrets, SecretsOptions, TokenKind } from './secrets.ts'
export { apiTokenView, createRegistryService, credentialView, pskIdentity } from './service-impl.ts'
export type { RegistryServiceDeps } from './service-impl.ts'
export { createOutboxRelay } from './outbox.ts'
export type { OutboxRelay, OutboxRelayOptions } from './outbox.ts'
export { decodeChange, encodeChange } from './changes.ts'
export { createRegistryAuth, invalidatedTags } from './auth.ts'
export type {
  ApiTokenAuthenticator,
  DeviceAuthenticator,
  DeviceAuthFailure,
  DeviceAuthResult,
  PskAuthResult,
  RegistryAuth,
  RegistryAuthOptions,
} from './auth.ts'
export {
  commonNameOf,
  fingerprintOf,
  normaliseFingerprint,
  parseCertificate,
  trustAnchorFrom,
} from './x509.ts'
