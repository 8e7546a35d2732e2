// The outbound rule: the service calls an institution's FHIR server only at the base URL of its
// registered, active Endpoint. A URL the server hands back (a paging `next` link, an attachment, a
// redirect) is followed only on that same origin and under that same path; anything else is refused
// before any request is made, and only its origin is ever logged (a path or query may name a patient).

/** Whether `url` lies under `base`: the same scheme, host and port, and a path at or below the base's. */
export function withinBase(base: string, url: string): boolean {
  let target: URL;
  let root: URL;
  try {
    target = new URL(url);
    root = new URL(base);
  } catch {
    return false;
  }
  if (target.origin !== root.origin || target.username || target.password) return false;
  const prefix = root.pathname.replace(/\/+$/, '');
  return target.pathname === prefix || target.pathname.startsWith(`${prefix}/`);
}

/** The origin of a URL, for a log line; never its path or query. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(not a URL)';
  }
}
