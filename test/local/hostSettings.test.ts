import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { readHostSettings } from '../../local/hostSettings';

describe('readHostSettings', () => {
  it('reads the queue settings of host.json as time spans, with the host defaults for the rest', () => {
    const folder = mkdtempSync(join(tmpdir(), 'host-json-'));
    const path = join(folder, 'host.json');
    writeFileSync(
      path,
      JSON.stringify({
        extensions: {
          queues: { maxPollingInterval: '00:00:02.5', visibilityTimeout: '1.00:00:01', batchSize: 8 },
        },
      }),
    );

    expect(readHostSettings(path)).toMatchObject({
      routePrefix: 'api',
      maxPollingIntervalMs: 2500,
      visibilityTimeoutSeconds: 86_401,
      batchSize: 8,
      newBatchThreshold: 4,
      maxDequeueCount: 5,
    });
  });
});
