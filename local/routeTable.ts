// The route templates of the HTTP functions, matched as the Azure host's ASP.NET routing does: `{name}`,
// `{name:int}`, `{name?}` and `{*rest}` segments, literals ignoring case, the most specific template first.
import type { HttpFunction } from '../shared/hosting/functionDefinition';

type RouteSegment =
  | { kind: 'literal'; text: string }
  | {
      kind: 'parameter';
      name: string;
      optional: boolean;
      catchAll: boolean;
      accepts: (value: string) => boolean;
    };

interface Route {
  fn: HttpFunction;
  segments: RouteSegment[];
  literals: number;
  variable: number;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  bool: /^(true|false)$/i,
  alpha: /^[a-z]+$/i,
  guid: /^[{(]?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}[)}]?$/i,
};

const PARAMETER = /^\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)((?::[a-z]+)*)(\?)?\}$/;

/** ASP.NET-style route templates: `{name}`, `{name:int}`, `{name?}` and `{*rest}` segments, literals ignoring case. */
export class RouteTable {
  private readonly routes: Route[];

  constructor(functions: readonly HttpFunction[]) {
    const compiled = functions.map((fn) => compileRoute(fn));
    // As in ASP.NET routing, the more literal segments a template has the sooner it is tried; then the fewer
    // optional or catch-all parameters; the stable sort keeps registration order for the rest.
    this.routes = compiled.sort((a, b) => b.literals - a.literals || a.variable - b.variable);
  }

  match(segments: readonly string[]): { fn: HttpFunction; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      const params = matchRoute(route.segments, segments);
      if (params) return { fn: route.fn, params };
    }
    return undefined;
  }
}

function compileRoute(fn: HttpFunction): Route {
  const segments = pathSegments(fn.route).map((segment): RouteSegment => {
    const parameter = PARAMETER.exec(segment);
    if (!parameter) {
      if (/[{}]/.test(segment)) {
        throw new Error(
          `Route ${fn.route} of ${fn.name}: the local host does not support the segment "${segment}".`,
        );
      }
      return { kind: 'literal', text: segment.toLowerCase() };
    }
    const [, star, name = '', constraintList = '', question] = parameter;
    const patterns = constraintList
      .split(':')
      .filter(Boolean)
      .map((constraint) => {
        const pattern = CONSTRAINTS[constraint];
        if (!pattern)
          throw new Error(`Route ${fn.route} of ${fn.name}: unsupported constraint "${constraint}".`);
        return pattern;
      });
    return {
      kind: 'parameter',
      name,
      optional: Boolean(question) || Boolean(star),
      catchAll: Boolean(star),
      accepts: (value) => patterns.every((pattern) => pattern.test(value)),
    };
  });
  return {
    fn,
    segments,
    literals: segments.filter((s) => s.kind === 'literal').length,
    variable: segments.filter((s) => s.kind === 'parameter' && s.optional).length,
  };
}

function matchRoute(
  template: readonly RouteSegment[],
  path: readonly string[],
): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const segment = template[i]!;
    if (segment.kind === 'parameter' && segment.catchAll) {
      const rest = path.slice(i).map(safeDecode);
      if (rest.some((part) => part === undefined)) return undefined;
      if (rest.length > 0) params[segment.name] = rest.join('/');
      return params;
    }
    const raw = path[i];
    if (raw === undefined) {
      // Only trailing optional parameters may be left out.
      return template.slice(i).every((s) => s.kind === 'parameter' && s.optional) ? params : undefined;
    }
    const value = safeDecode(raw);
    if (value === undefined || value === '') return undefined;
    if (segment.kind === 'literal') {
      if (value.toLowerCase() !== segment.text) return undefined;
    } else {
      if (!segment.accepts(value)) return undefined;
      params[segment.name] = value;
    }
  }
  return path.length === template.length ? params : undefined;
}

/** The segments of a path; a leading or trailing slash adds none. */
export const pathSegments = (path: string): string[] =>
  path.split('/').filter((segment, index, all) => segment !== '' || (index > 0 && index < all.length - 1));

export const joinPath = (...parts: string[]): string => parts.flatMap(pathSegments).join('/');

/** A URL path segment decoded; undefined when its escapes are malformed. */
export function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
