// The port to the tenant keys: each tenant's data keys and secrets are stored wrapped by its tenant key,
// held in local files during development and in Azure Key Vault in Azure (keyProviders.ts picks one).

/** A key wrapped by a tenant key; stored as is, next to what the key protects. */
export interface WrappedKey {
  /** The provider that wrapped it (`local`, `keyvault`); only that provider unwraps it. */
  provider: string;
  /** Which tenant key (and version) wrapped it, so that old wraps keep unwrapping after a rotation. */
  keyId: string;
  /** The wrapped key as text: base64 from Key Vault, a sealed box (base64url parts) from local files. */
  value: string;
}

export interface KeyProvider {
  readonly name: string;
  /** Wraps `key` with the tenant's key, creating the tenant key on first use. */
  wrapKey(tenantId: string, key: Buffer): Promise<WrappedKey>;
  /** Unwraps a key wrapped for the same tenant; throws for another tenant's or another provider's key. */
  unwrapKey(tenantId: string, wrapped: WrappedKey): Promise<Buffer>;
  /**
   * Destroys the tenant key (passive deletion, SPEC §6): every key it wrapped, wherever a copy lingers
   * (backups, soft-deleted rows), no longer opens. False when there was none (already destroyed). A later
   * wrap for the tenant would create a new, unrelated key.
   */
  destroyTenantKey(tenantId: string): Promise<boolean>;
}
