// Local app settings, read the way `func start` reads them: the Values of local.settings.json (or of the
// committed sample when there is none) become environment variables unless the shell already set them.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export const SETTINGS_FILE = 'local.settings.json';
export const SAMPLE_SETTINGS_FILE = 'local.settings.sample.json';

/** Settings holding file paths; a relative path is taken from the repository root, whatever the cwd. */
const PATH_SETTINGS = ['AUTH_JWKS_FILE', 'KEY_FILE_FOLDER'];

/** The folder holding package.json; from dist/local/ at run time as from local/ under jest. */
export function repoRoot(from: string = __dirname): string {
  let folder = resolve(from);
  for (;;) {
    if (existsSync(join(folder, 'package.json'))) return folder;
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`No package.json found above ${from}.`);
    folder = parent;
  }
}

export interface LoadedSettings {
  /** The file the values came from; undefined when neither file exists. */
  file?: string;
  /** Names copied into the environment (the others were already set). */
  applied: string[];
}

export function loadLocalSettings(
  root: string = repoRoot(),
  env: NodeJS.ProcessEnv = process.env,
): LoadedSettings {
  const file = [SETTINGS_FILE, SAMPLE_SETTINGS_FILE]
    .map((name) => join(root, name))
    .find((path) => existsSync(path));
  if (!file) return { applied: [] };

  let parsed: { IsEncrypted?: unknown; Values?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed.IsEncrypted === true) {
    throw new Error(`${file} is encrypted (IsEncrypted: true); only plain local settings are supported.`);
  }
  const values = parsed.Values ?? {};
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new Error(`${file}: "Values" must be an object of setting names to values.`);
  }

  const applied: string[] = [];
  for (const [name, raw] of Object.entries(values as Record<string, unknown>)) {
    if (env[name] !== undefined || raw === null || raw === undefined) continue;
    let value = typeof raw === 'string' ? raw : String(raw);
    if (PATH_SETTINGS.includes(name) && value !== '' && !isAbsolute(value)) value = join(root, value);
    env[name] = value;
    applied.push(name);
  }
  return { file, applied };
}
