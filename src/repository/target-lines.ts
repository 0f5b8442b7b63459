/**
 * A JSON Lines manifest of targets, for artifacts that are not on the signing machine: one
 * `{"path", "length", "hashes", "custom"}` object a line (`custom` optional; blank lines
 * skipped). Every line is checked before anything is listed; a bad line is refused with its
 * number.
 */
import { type JsonObject, MisuseError, parseJson, TargetFile } from '../core/index.js';
import type { BatchTarget } from './workspace.js';

const KEYS: ReadonlySet<string> = new Set(['path', 'length', 'hashes', 'custom']);
/** The hex length of each digest clients compute; other algorithms are refused (never checkable). */
const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

/**
 * parseTargetLines reads a JSON Lines target manifest (`source` names it in errors).
 * @throws {@link MisuseError} naming the first bad line: not a JSON object, an unknown or
 *   missing member, a length that is not a non-negative integer, a hash that is not the
 *   lower-case hex digest of sha256 or sha512, or `custom` that is not an object
 */
export function parseTargetLines(text: string, source: string): BatchTarget[] {
  const out: BatchTarget[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `${source} line ${i + 1}`;
    try {
      const v = parseJson(line, { source: where });
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new Error('expected a JSON object');
      const unknown = Object.keys(v).find((k) => !KEYS.has(k));
      if (unknown !== undefined) throw new Error(`unknown member ${JSON.stringify(unknown)}`);
      if (typeof v.path !== 'string') throw new Error('"path": expected a string');
      const custom = v.custom;
      if (
        custom !== undefined &&
        (typeof custom !== 'object' || custom === null || Array.isArray(custom))
      )
        throw new Error('"custom": expected a JSON object');
      // the core's own reading of a target entry (length, hashes)
      const t = TargetFile.fromJSON(
        v.path,
        { length: v.length, hashes: v.hashes } as JsonObject,
        where,
      );
      for (const [alg, hex] of Object.entries(t.hashes)) {
        const n = HEX_LENGTH[alg];
        if (n === undefined) throw new Error(`"hashes": ${alg} is not sha256 or sha512`);
        if (!new RegExp(`^[0-9a-f]{${n}}$`).test(hex))
          throw new Error(`"hashes": ${alg} is not ${n} lower-case hex digits`);
      }
      out.push({
        path: v.path,
        entry: {
          length: t.length,
          hashes: { ...t.hashes },
          ...(custom === undefined ? {} : { custom }),
        },
        source: where,
      });
    } catch (e) {
      const msg = (e as Error).message;
      throw new MisuseError(msg.startsWith(where) ? msg : `${where}: ${msg}`);
    }
  }
  return out;
}
