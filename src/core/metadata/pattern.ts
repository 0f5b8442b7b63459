/**
 * Delegation path patterns (TUF 4.5 PATHPATTERN): Unix shell-style wildcards matched one path
 * segment at a time, exactly as python-tuf does with `fnmatch` per segment.
 *
 * - the pattern and the path must have the same number of `/`-separated segments, so `*` never
 *   crosses a `/` (`acme/*` does not match `acme/x/y`);
 * - `*` matches any run of characters in a segment, `?` exactly one, `[seq]` / `[!seq]` one
 *   character in / not in the set (ranges like `a-z` allowed); a `[` without its `]` is literal;
 * - everything else is literal: `!x`, `{a,b}`, `+(x)`, `@(x)`, `**` widen nothing.
 */

/** isTargetInPathPattern tells whether a target path matches a delegation's path pattern. */
export function isTargetInPathPattern(targetPath: string, pattern: string): boolean {
  const t = targetPath.split('/');
  const p = pattern.split('/');
  if (t.length !== p.length) return false;
  for (let i = 0; i < p.length; i++) {
    if (!matchSegment(p[i] as string, t[i] as string)) return false;
  }
  return true;
}

/** matchSegment matches one segment with fnmatch rules (by code point, not UTF-16 unit). */
export function matchSegment(pattern: string, text: string): boolean {
  const p = Array.from(pattern);
  const s = Array.from(text);
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const c = p[pi];
    if (c === '*') {
      starP = pi++;
      starS = si;
      continue;
    }
    let step = 0; // pattern characters consumed by a match of s[si]; 0 = no match
    if (c === '?') {
      step = 1;
    } else if (c === '[') {
      const end = classEnd(p, pi);
      if (end < 0) step = s[si] === '[' ? 1 : 0;
      else if (inClass(p, pi, end, s[si] as string)) step = end - pi + 1;
    } else if (c !== undefined && c === s[si]) {
      step = 1;
    }
    if (step > 0) {
      pi += step;
      si++;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/** classEnd returns the index of the `]` closing the class opened at `open`, or -1. */
function classEnd(p: string[], open: number): number {
  let j = open + 1;
  if (p[j] === '!') j++;
  if (p[j] === ']') j++; // a leading ] is a member
  while (j < p.length && p[j] !== ']') j++;
  return j < p.length ? j : -1;
}

function inClass(p: string[], open: number, end: number, ch: string): boolean {
  let j = open + 1;
  const negate = p[j] === '!';
  if (negate) j++;
  const code = ch.codePointAt(0) as number;
  let hit = false;
  while (j < end) {
    const lo = p[j] as string;
    if (p[j + 1] === '-' && j + 2 < end) {
      const hi = p[j + 2] as string;
      if ((lo.codePointAt(0) as number) <= code && code <= (hi.codePointAt(0) as number))
        hit = true;
      j += 3;
    } else {
      if (lo === ch) hit = true;
      j++;
    }
  }
  return hit !== negate;
}
