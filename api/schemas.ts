// The management API's schemas, one source for request validation, responses and the OpenAPI document.
export * from './schemas/common.ts'
export * from './schemas/credentials.ts'
export * from './schemas/devices.ts'
export * from './schemas/routes.ts'
export * from './schemas/schemas.ts'
export * from './schemas/subscriptions.ts'
export * from './schemas/tenants.ts'
export * from './schemas/tokens.ts'
