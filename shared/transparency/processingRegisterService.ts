// GET /api/tenants/{tid}/processing-register: gathers what the register is built from (the tenant's entry,
// its operator access policy, the operator settings) and has processingRegister.ts build it.
import type { Clock } from '../clock';
import type { ServiceConfig } from '../config';
import type { AccessRequestStore } from '../operatorAccess/accessRequestStore';
import type { TenantScope } from '../residency/tenantDirectory';
import { buildProcessingRegister, type ProcessingRegister } from './processingRegister';

export class ProcessingRegisterService {
  constructor(
    private readonly accessRequests: AccessRequestStore,
    private readonly operators: ServiceConfig['operators'],
    private readonly clock: Clock,
  ) {}

  async register(tenant: TenantScope): Promise<ProcessingRegister> {
    const policy = await this.accessRequests.policy(tenant);
    return buildProcessingRegister({
      tenant: {
        tenantId: tenant.tenantId,
        displayName: tenant.entry.displayName,
        countryCode: tenant.entry.countryCode,
        geography: tenant.geography,
      },
      requireTenantApproval: policy.requireTenantApproval,
      operators: { staffLocations: this.operators.staffLocations, authContext: this.operators.authContext },
      generatedAt: this.clock(),
    });
  }
}
