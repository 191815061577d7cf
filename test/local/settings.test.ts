import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadLocalSettings, repoRoot } from '../../local/settings';

const folderWith = (files: Record<string, unknown>): string => {
  const folder = mkdtempSync(join(tmpdir(), 'local-settings-'));
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(folder, name), JSON.stringify(content));
  return folder;
};

describe('loadLocalSettings', () => {
  it('copies the Values of local.settings.json into the environment without overriding what is set', () => {
    const root = folderWith({
      'local.settings.json': { IsEncrypted: false, Values: { A: 'from file', B: 'from file', PORT: 7071 } },
      'local.settings.sample.json': { IsEncrypted: false, Values: { A: 'from sample', C: 'from sample' } },
    });
    const env: NodeJS.ProcessEnv = { B: 'from shell' };

    const loaded = loadLocalSettings(root, env);

    expect(loaded).toEqual({ file: join(root, 'local.settings.json'), applied: ['A', 'PORT'] });
    expect(env).toEqual({ A: 'from file', B: 'from shell', PORT: '7071' });
  });

  it('falls back to the sample and resolves AUTH_JWKS_FILE against the root, whatever the cwd', () => {
    const root = folderWith({
      'local.settings.sample.json': { Values: { AUTH_JWKS_FILE: '.local/dev-jwks.json' } },
    });
    const env: NodeJS.ProcessEnv = {};

    expect(loadLocalSettings(root, env).file).toBe(join(root, 'local.settings.sample.json'));
    expect(env.AUTH_JWKS_FILE).toBe(join(root, '.local', 'dev-jwks.json'));
  });

  it('refuses encrypted settings it cannot read', () => {
    const root = folderWith({ 'local.settings.json': { IsEncrypted: true, Values: { A: 'x' } } });
    expect(() => loadLocalSettings(root, {})).toThrow(/encrypted/);
  });

  it('sets nothing when there is no settings file', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(loadLocalSettings(folderWith({}), env)).toEqual({ applied: [] });
    expect(env).toEqual({});
  });
});

describe('repoRoot', () => {
  it('finds the folder holding package.json above a source folder', () => {
    expect(repoRoot(join(__dirname, 'deeper', 'still'))).toBe(join(__dirname, '..', '..'));
  });
});
