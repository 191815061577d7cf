// Who is calling: the claims of a verified Entra ID token that the service uses (SPEC §2).

export const ROLES = [
  'Privacy.Admin',
  'Privacy.Reader',
  'Security.Admin',
  'Operator',
  'Operator.Approver',
] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  tenantId: string;
  objectId: string;
  roles: ReadonlySet<string>;
  upn?: string;
  amr: readonly string[];
  /** Conditional Access authentication contexts the sign-in satisfied (`acrs`, e.g. `c1`: a privileged workstation). */
  acrs: readonly string[];
}

export const hasAnyRole = (principal: Principal, roles: readonly Role[]): boolean =>
  roles.some((role) => principal.roles.has(role));

/** The audit actor of a caller: app-only tokens carry no user name. */
export const actorOf = (principal: Principal): { type: 'user' | 'app'; id: string; upn?: string } =>
  principal.upn
    ? { type: 'user', id: principal.objectId, upn: principal.upn }
    : { type: 'app', id: principal.objectId };
