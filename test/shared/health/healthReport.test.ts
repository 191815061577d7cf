// The health report says which storage account does not answer, in words that name nothing internal.
import { PoisonQueue } from '../../../shared/hosting/queueFailures';
import { healthReport } from '../../../shared/health/healthReport';
import { StorageAccounts } from '../../../shared/storage/storageAccounts';
import { testConfig } from '../../support/testStorage';

describe('healthReport', () => {
  it('reports an account that does not answer as unreachable, without its address or the error text', async () => {
    const config = testConfig();
    const dead = [
      'DefaultEndpointsProtocol=http',
      'AccountName=privacyau',
      'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
      'TableEndpoint=http://127.0.0.1:9/privacyau',
      'BlobEndpoint=http://127.0.0.1:9/privacyau',
      'QueueEndpoint=http://127.0.0.1:9/privacyau',
    ].join(';');
    const storage = new StorageAccounts({
      ...config.storage,
      geographies: {
        ...config.storage.geographies,
        AU: { kind: 'connectionString', connectionString: dead },
      },
    });
    const logged: unknown[] = [];
    const report = await healthReport(storage, new PoisonQueue(storage.global, () => new Date()), (_m, e) =>
      logged.push(e),
    );
    expect(report.status).toBe('unhealthy');
    expect(report.storage.AU).toMatchObject({
      reachable: false,
      error: expect.stringMatching(/^(unreachable|no answer within 5 s)$/),
    });
    expect(JSON.stringify(report)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|privacyau/);
    // The raw error is kept for the log.
    expect(logged.length).toBeGreaterThanOrEqual(1);
  }, 20_000);
});
