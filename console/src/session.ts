// The signed-in token and the chosen tenant live in sessionStorage only: gone when the tab closes,
// never in a URL, a cookie or localStorage.
import type { Identity } from './api.ts'

const TOKEN = 'tributary-console-token'
const TENANT = 'tributary-console-tenant'

export const session = {
  token: (): string | undefined => sessionStorage.getItem(TOKEN) ?? undefined,
  tenant: (): string | undefined => sessionStorage.getItem(TENANT) ?? undefined,
  save(token: string): void {
    sessionStorage.setItem(TOKEN, token)
  },
  chooseTenant(tenant: string): void {
    sessionStorage.setItem(TENANT, tenant)
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN)
    sessionStorage.removeItem(TENANT)
  },
}

/** Managers and admins change things; readers only look (the API refuses them all the same). */
export const canEdit = (identity: Identity): boolean =>
  identity.globalAdmin || identity.roles.includes('admin') || identity.roles.includes('manager')
