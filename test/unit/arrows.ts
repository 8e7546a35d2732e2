// A state machine as a specification draws it, one line per state: `from -> to, to`.

/** The states `from` has an arrow to in `arrows`. */
export function drawnFrom<T extends string>(arrows: string, from: T): T[] {
  const line = arrows.split('\n').find((l) => l.trim().startsWith(`${from} ->`));
  return line
    ? (line
        .split('->')[1]
        .split(',')
        .map((s) => s.trim()) as T[])
    : [];
}
