// What the management API's request context carries between middleware and handlers.
import type { Principal } from '../core/auth/principal.ts'

export interface ApiEnv {
  Variables: {
    /** Set by the authentication middleware on every /api/v1 route but the public document ones. */
    principal: Principal
  }
}
