/**
 * Redaction of URLs for messages, JSON output and logs: user info (`https://bot:token@host/`)
 * is dropped, a query string (signed URLs, `?token=…`) becomes `?…`, a fragment is dropped.
 * Everything that names a URL a user configured or a server sent goes through here.
 */

/** redact removes credentials, the query string and the fragment from a URL. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    // nothing to hide: the URL as written (the parser would normalise it, `https://h` → `https://h/`)
    if (u.username === '' && u.password === '' && u.search === '' && u.hash === '') return url;
    const query = u.search !== '';
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return `${u.toString()}${query ? '?…' : ''}`;
  } catch {
    return '<invalid URL>';
  }
}

// redactText reads a text once, left to right (linear time whatever the input: it runs on
// messages an attacker shapes). It follows the URL Standard where that matters for secrets,
// and redacts too much rather than too little:
// - a URL starts at a `:` after a scheme: a special one (http, https, ws, wss, ftp, file) as a
//   whole run of scheme characters or after a non-letter in it (`1https:`), followed by any
//   number of `/` or `\` (the parser ignores them, `https:u:p@h` has user info); any other
//   scheme only when `//` follows;
// - its user info runs to the LAST `@` before the authority ends at `/`, `?` or `#`; like the
//   parser we read on over quotes and white space (`p ss@h`), and also over `\` (which ends a
//   special URL's authority, but stands before an escaped quote in JSON: `p\"ss@h`);
// - from a `?` or `#` on, up to white space, everything is dropped (`?…`), quotes included.
// A URL ends at white space (so a query holding a raw space loses only what comes before it);
// a URL inside another's path is redacted too.

/** Schemes the URL Standard calls special: `\` separates, slashes after the `:` are optional. */
const SPECIAL = ['http', 'https', 'ws', 'wss', 'ftp', 'file'];

const isLetter = (c: number) => (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;
// letters, digits, + - .
const isSchemeChar = (c: number) =>
  isLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
// what /\s/ matches
const isSpace = (c: number) =>
  c === 0x20 ||
  (c >= 0x09 && c <= 0x0d) ||
  c === 0xa0 ||
  c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 ||
  c === 0x2029 ||
  c === 0x202f ||
  c === 0x205f ||
  c === 0x3000 ||
  c === 0xfeff;

/** sameLetters: `text` has `name` (lower case letters) at `at`, in any case. */
function sameLetters(text: string, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++)
    if ((text.charCodeAt(at + i) | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** Where the authority of a URL whose scheme ends at `colon` starts, if a URL is there. */
function authorityAt(text: string, colon: number): number | undefined {
  let run = colon;
  while (run > 0 && isSchemeChar(text.charCodeAt(run - 1))) run--;
  if (run === colon) return undefined;
  for (const name of SPECIAL) {
    const s = colon - name.length;
    if (s < run || !sameLetters(text, s, name)) continue;
    if (s > run && isLetter(text.charCodeAt(s - 1))) continue; // `allows:` is no `ws:`
    let start = colon + 1;
    while (text[start] === '/' || text[start] === '\\') start++;
    return start;
  }
  if (!text.startsWith('//', colon + 1)) return undefined;
  for (let i = colon - 1; i >= run; i--) {
    if (isLetter(text.charCodeAt(i))) return colon + 3;
  }
  return undefined;
}

/**
 * Authorities finds the last `@` of the authority starting at a position, for positions given
 * in increasing order, reading each character at most once: an authority that starts inside
 * the last one read ends where it ends.
 */
class Authorities {
  private end = -1;
  private at = -1;

  constructor(private readonly text: string) {}

  lastAt(start: number): number {
    if (start >= this.end) {
      let i = start;
      this.at = -1;
      for (; i < this.text.length; i++) {
        const c = this.text[i];
        if (c === '/' || c === '?' || c === '#') break;
        if (c === '@') this.at = i;
      }
      this.end = i;
    }
    return this.at >= start ? this.at : -1;
  }
}

/**
 * redactText redacts every URL inside a free text (an error message from anywhere, a log
 * line, JSON output): user info dropped, query and fragment replaced by `?…`. Text that is not
 * a URL is kept as is. Linear time.
 */
export function redactText(text: string): string {
  const authorities = new Authorities(text);
  let out = '';
  let copied = 0; // text before this index is in `out` or dropped
  let inUrl = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      inUrl = false;
    } else if (inUrl && (c === 0x3f || c === 0x23)) {
      let end = i + 1;
      while (end < text.length && !isSpace(text.charCodeAt(end))) end++;
      out += `${text.slice(copied, i)}?…`;
      copied = end;
      i = end - 1;
      inUrl = false;
    } else if (c === 0x3a) {
      const start = authorityAt(text, i);
      if (start === undefined) continue;
      const at = authorities.lastAt(start);
      if (at >= 0) {
        out += text.slice(copied, start);
        copied = at + 1;
      }
      i = Math.max(at, start - 1);
      inUrl = true;
    }
  }
  return out + text.slice(copied);
}

/**
 * redactJson writes `value` as JSON with every string in it, keys included, passed through
 * {@link redactText}: the form for JSON output, where redacting the serialized text would let
 * a query (which runs to white space) take the JSON syntax after it along.
 */
export function redactJson(value: unknown, indent?: number): string {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v);
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [redactText(k), walk(x)]));
    return v;
  };
  const json = JSON.stringify(value);
  return json === undefined ? 'null' : JSON.stringify(walk(JSON.parse(json)), null, indent);
}

/**
 * escapeControls writes every control character but tab and newline (C0, DEL, C1) as `\u00XX`:
 * a registry's or server's string in a message cannot move the cursor, retitle or clear a
 * terminal, or forge a line of a log. In JSON text the escape means the same character.
 */
export function escapeControls(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we escape
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
