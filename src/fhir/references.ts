// Every Reference.reference in a resource: rewritten, for references resolved within a transaction
// and for records copied from another server; or listed, for what a record is about (access/ownership.ts).
import { fhirId, resourceTypeName } from '../base/ids.js';
export function mapReferences<T>(value: T, map: (reference: string) => string | undefined): T {
  if (Array.isArray(value)) {
    return (value as unknown[]).map((v) => mapReferences(v, map)) as T;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      // Defined, not assigned: a `__proto__` key stays a key (and is refused as one) rather than changing the prototype.
      Object.defineProperty(out, key, {
        value: key === 'reference' && typeof v === 'string' ? (map(v) ?? v) : mapReferences(v, map),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out as T;
  }
  return value;
}

/** `Type/id`, or a version of it (`Type/id/_history/v`, which names the record `Type/id`). */
const localReference = new RegExp(String.raw`^(${resourceTypeName}\/${fhirId})(?:\/_history\/${fhirId})?$`);

/** Every local reference (`Type/id`) anywhere in a resource, contained ones included, with the path of its element (`contained[0].subject`). */
export function referencesWithPaths(value: unknown): { reference: string; path: string }[] {
  const found: { reference: string; path: string }[] = [];
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length) {
    const [node, path] = stack.pop() as [unknown, string];
    if (Array.isArray(node)) {
      node.forEach((v, i) => stack.push([v, `${path}[${i}]`]));
    } else if (node && typeof node === 'object') {
      for (const [key, v] of Object.entries(node)) {
        if (key === 'reference' && typeof v === 'string') {
          const local = localReference.exec(v);
          if (local) found.push({ reference: local[1], path });
        } else {
          stack.push([v, path ? `${path}.${key}` : key]);
        }
      }
    }
  }
  return found.reverse();
}
