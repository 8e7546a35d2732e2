// Every Reference.reference in a resource: rewritten, for references resolved within a transaction
// and for records copied from another server; or listed, for what a record is about (access/tenancy.ts).
export function mapReferences<T>(value: T, map: (reference: string) => string | undefined): T {
  if (Array.isArray(value)) {
    return value.map((v) => mapReferences(v, map)) as T;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = key === 'reference' && typeof v === 'string' ? (map(v) ?? v) : mapReferences(v, map);
    }
    return out as T;
  }
  return value;
}

const localReference = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;

/** The distinct local references (`Type/id`) anywhere in a resource. */
export function referencesIn(value: unknown): string[] {
  const found = new Set<string>();
  mapReferences(value, (reference) => {
    if (localReference.test(reference)) found.add(reference);
    return undefined;
  });
  return [...found];
}
