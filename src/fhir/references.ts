// Rewrites every Reference.reference in a resource, for references resolved within a transaction
// and for records copied from another server.
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
