// SMART scopes, v1 (`system/ServiceRequest.write`, `patient/*.read`) and v2 (`user/Observation.rs`)
// parsed to one form; whether they allow a permission on a type; and the narrowing of what a client
// asks for to what it is allowed, which the token endpoint grants.

/** SMART v2 permissions: create, read (and vread, instance history), update, delete, search (and type history). */
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

const cruds: Permission[] = ['c', 'r', 'u', 'd', 's'];
const v1: Record<string, Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': cruds };

export interface Scope {
  context: 'patient' | 'user' | 'system';
  /** A resource type, or `*` for all. */
  type: string;
  permissions: Set<Permission>;
  /** A v2 restriction by search parameters (`?category=...`), which this service does not honour yet. */
  query?: string;
  /** The scope as written. */
  text: string;
}

// Letters only in the order c, r, u, d, s, at least one: `.dus` or `.rc` is not a scope.
const grammar = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)(\?\S+)?$/;

/** One scope, or undefined for anything that is not a resource scope (`openid`, `launch`, malformed). */
export function parseScope(text: string): Scope | undefined {
  const match = grammar.exec(text);
  if (!match || !match[3]) return undefined;
  const [, context, type, access, query] = match;
  const isV1 = access in v1;
  if (isV1 && query) return undefined; // v1 has no search restrictions
  return { context: context as Scope['context'], type, permissions: new Set(isV1 ? v1[access] : ([...access] as Permission[])), query: query?.slice(1), text };
}

/** The resource scopes in a space-separated `scope` string; the rest is dropped. */
export function parseScopes(scope: unknown): Scope[] {
  return typeof scope === 'string' ? scope.split(/\s+/).flatMap((s) => parseScope(s) ?? []) : [];
}

/**
 * Whether the scopes allow `permission` on `type`. Patient-context scopes and scopes restricted by
 * search parameters grant nothing here: both need a check of each resource this layer does not make.
 */
export function allows(scopes: Scope[], type: string, permission: Permission): boolean {
  return scopes.some((s) => s.context !== 'patient' && !s.query && (s.type === '*' || s.type === type) && s.permissions.has(permission));
}

/** How to name the scope a refused request lacks, in the context the token's scopes use. */
export function neededScope(scopes: Scope[], type: string, permission: Permission): string {
  const context = scopes.some((s) => s.context === 'system') || !scopes.some((s) => s.context === 'user') ? 'system' : 'user';
  return `${context}/${type}.${permission}`;
}

/**
 * What may be granted of the requested scopes, given the scopes a client is allowed: each requested
 * scope as asked when an allowed scope covers it whole, else its parts that allowed scopes cover
 * (in v2 form), else nothing.
 */
export function narrowScopes(requested: Scope[], allowed: Scope[]): string[] {
  const granted = new Set<string>();
  for (const want of requested) {
    const parts = want.query ? [] : allowed.flatMap((a) => intersect(want, a) ?? []);
    if (parts.some((p) => p.type === want.type && [...want.permissions].every((x) => p.permissions.has(x)))) {
      granted.add(want.text);
      continue;
    }
    for (const part of parts) {
      // A part that a wider part already holds adds nothing.
      if (!parts.some((other) => other !== part && other.type === '*' && part.type !== '*' && [...part.permissions].every((x) => other.permissions.has(x)))) {
        granted.add(formatScope(part));
      }
    }
  }
  return [...granted];
}

function intersect(want: Scope, allowed: Scope): Pick<Scope, 'context' | 'type' | 'permissions'> | undefined {
  if (allowed.context !== want.context || allowed.query) return undefined;
  const type = allowed.type === '*' ? want.type : want.type === '*' || want.type === allowed.type ? allowed.type : undefined;
  const permissions = new Set([...want.permissions].filter((p) => allowed.permissions.has(p)));
  return type && permissions.size ? { context: want.context, type, permissions } : undefined;
}

function formatScope(scope: Pick<Scope, 'context' | 'type' | 'permissions'>): string {
  return `${scope.context}/${scope.type}.${cruds.filter((p) => scope.permissions.has(p)).join('')}`;
}
