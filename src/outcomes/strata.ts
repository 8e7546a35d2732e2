// What outcome figures are broken down by: the routed specialty, the referring institution, the
// reason for the request (its diagnosis code) and that code's ICD-10-CM chapter, and the month.
export const stratifiers = ['specialty', 'institution', 'reason', 'chapter', 'month'] as const;
export type Stratifier = (typeof stratifiers)[number];

/** A case's place in each stratifier but the month (which is when something happened, not what the case is). */
export type CaseStrata = Record<Exclude<Stratifier, 'month'>, string>;

export const unknownStratum = 'unknown';

/** ICD-10-CM chapters by the range of their first three characters (ICD-10-CM tabular list, FY2025). */
const chapters: [from: string, to: string, chapter: string][] = [
  ['A00', 'B99', 'I'],
  ['C00', 'D49', 'II'],
  ['D50', 'D89', 'III'],
  ['E00', 'E89', 'IV'],
  ['F01', 'F99', 'V'],
  ['G00', 'G99', 'VI'],
  ['H00', 'H59', 'VII'],
  ['H60', 'H95', 'VIII'],
  ['I00', 'I99', 'IX'],
  ['J00', 'J99', 'X'],
  ['K00', 'K95', 'XI'],
  ['L00', 'L99', 'XII'],
  ['M00', 'M99', 'XIII'],
  ['N00', 'N99', 'XIV'],
  ['O00', 'O9A', 'XV'],
  ['P00', 'P96', 'XVI'],
  ['Q00', 'Q99', 'XVII'],
  ['R00', 'R99', 'XVIII'],
  ['S00', 'T88', 'XIX'],
  ['U00', 'U85', 'XXII'],
  ['V00', 'Y99', 'XX'],
  ['Z00', 'Z99', 'XXI'],
];

/** The ICD-10-CM chapter of a code, as `II (C00-D49)`; `unknown` for anything else. */
export function icd10Chapter(code: string): string {
  const category = code.slice(0, 3).toUpperCase();
  if (!/^[A-Z][0-9][0-9A-Z]$/.test(category)) return unknownStratum;
  const found = chapters.find(([from, to]) => category >= from && category <= to);
  return found ? `${found[2]} (${found[0]}-${found[1]})` : unknownStratum;
}

/** `YYYY-MM` of an instant, in UTC. */
export function monthOf(instant: string | Date): string {
  return new Date(instant).toISOString().slice(0, 7);
}
