/**
 * Target paths on the signing side: which paths may be listed at all, and where clients look for
 * a path. A path is published as a file (`targets/<path>`), so every segment must be a plain
 * name; and a client takes a path from the first role that lists it on its delegation walk
 * (TUF 5.6.7), so an entry in any other role is never seen.
 *
 * The walk here is the client's own ({@link walkDelegations}), driven over the workspace's role
 * files: what the signing side refuses or flags is exactly what a client would not see.
 */
import {
  type JsonObject,
  Metadata,
  MisuseError,
  type TargetFile,
  Targets,
  walkDelegations,
} from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';

/** Names of Object.prototype's properties: clients that look paths up in plain objects find them. */
const PROTOTYPE_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

/** Windows device names, with or without an extension: never a file there. */
const WINDOWS_DEVICE =
  /^(con|prn|aux|nul|conin\$|conout\$|(com|lpt)[0-9\u00b9\u00b2\u00b3]) *(\..*)?$/i;

/** The longest file name (one path segment) common file systems take, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

/**
 * targetPathProblem says why a target path cannot be listed for every client to fetch, or
 * undefined when it can: every `/`-separated segment must be non-empty and not only dots and
 * spaces (`.`, `..`, and what Windows turns into them); `\\` (a separator in URLs and on
 * Windows), `%` (a web server decodes `%2e%2e`, `%41`), `?` (starts a query) and `#` (never
 * sent) are refused, as are control characters and the names of Object.prototype's properties
 * (`constructor`, `__proto__`: clients keeping targets in plain objects find those instead).
 * Used on the signing side only: clients accept what the specification allows.
 */
export function targetPathProblem(path: string): string | undefined {
  if (path.length === 0) return 'it is empty';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'it holds a control character';
  if (path.includes('\\')) return 'it holds a backslash (a path separator in URLs)';
  if (path.includes('%'))
    return 'it holds a % (web servers decode %XX: clients would get another file)';
  if (path.includes('?')) return 'it holds a ? (a URL query: clients would get another file)';
  if (path.includes('#')) return 'it holds a # (a URL fragment, never sent to the server)';
  if (PROTOTYPE_NAMES.has(path))
    return 'it is the name of a JavaScript object property (clients would find that instead)';
  for (const segment of path.split('/')) {
    if (segment.length === 0) return 'it has an empty segment (a leading, trailing or double /)';
    if (/^[. ]+$/.test(segment))
      return `it has a ${JSON.stringify(segment)} segment (only dots and spaces)`;
  }
  return undefined;
}

/**
 * fileNameProblem says why one path segment cannot be a file or folder name on every file
 * system, or undefined when it can: no `:` (a drive or stream on Windows), no Windows device
 * name (`CON`, `nul.txt`, `COM1`…), at most `maxBytes` bytes of UTF-8.
 */
export function fileNameProblem(segment: string, maxBytes = MAX_NAME_BYTES): string | undefined {
  const s = JSON.stringify(segment.length > 40 ? `${segment.slice(0, 40)}…` : segment);
  if (segment.includes(':')) return `${s} holds a : (a drive or stream name on Windows)`;
  if (WINDOWS_DEVICE.test(segment.replace(/[. ]+$/, ''))) return `${s} is a Windows device name`;
  if (Buffer.byteLength(segment) > maxBytes)
    return `${s} is longer than ${maxBytes} bytes (too long a file name)`;
  return undefined;
}

/**
 * targetFileProblem is {@link targetPathProblem} for a target published as a file
 * (`targets/<path>`): every segment must also be a file name ({@link fileNameProblem}).
 */
export function targetFileProblem(path: string): string | undefined {
  const bad = targetPathProblem(path);
  if (bad !== undefined) return bad;
  for (const segment of path.split('/')) {
    const why = fileNameProblem(segment);
    if (why !== undefined) return `its segment ${why}`;
  }
  return undefined;
}

/** checkTargetPath throws a {@link MisuseError} when a target path cannot be published. */
export function checkTargetPath(path: string, where = 'target path', asFile = false): void {
  const why = asFile ? targetFileProblem(path) : targetPathProblem(path);
  if (why !== undefined) throw new MisuseError(`${where} ${JSON.stringify(path)}: ${why}`);
}

/** Where clients look for one target path. */
export interface PathWalk {
  /** Every role a client would visit for the path, in its order, had no role listed it. */
  readonly order: ReadonlyArray<{ readonly role: string; readonly parent: string }>;
  /** The roles of `order` that list the path, in order: clients use the first one. */
  readonly listedBy: readonly string[];
}

/**
 * TargetWalker runs the client's delegation walk over role files loaded with `load` (each parsed
 * once per walker: make one per operation, not across edits).
 */
export class TargetWalker {
  private readonly roles = new Map<
    string,
    Promise<{ md: Metadata<Targets>; delegationsOnly: Metadata<Targets> }>
  >();

  constructor(
    private readonly load: (role: string) => Promise<Uint8Array>,
    private readonly fileName: (role: string) => string,
  ) {}

  /** role returns a role's metadata, and a copy listing no targets (to walk past any role). */
  private role(name: string) {
    let r = this.roles.get(name);
    if (r === undefined) {
      r = this.load(name).then((bytes) => {
        const md = Metadata.fromBytes(bytes, 'targets', this.fileName(name));
        const s = md.signed;
        const delegationsOnly = new Metadata(
          new Targets(s, new Map(), s.delegations),
          new Map(),
          {} as JsonObject,
        );
        return { md, delegationsOnly };
      });
      this.roles.set(name, r);
    }
    return r;
  }

  /** targetsOf returns the entries a role lists. */
  async targetsOf(name: string): Promise<ReadonlyMap<string, TargetFile>> {
    return (await this.role(name)).md.signed.targets;
  }

  /**
   * walk runs the client's search for `path` to its end: the roles it visits (with their copies
   * listing no targets, so it never stops early) and which of them list the path. Up to the
   * first of those, the order is exactly the client's.
   */
  async walk(path: string): Promise<PathWalk> {
    const order: Array<{ role: string; parent: string }> = [];
    const listedBy: string[] = [];
    const walk = walkDelegations(path, { backend: nodeBackend });
    let step = walk.next();
    while (!step.done) {
      const { role, parent } = step.value;
      const r = await this.role(role);
      order.push({ role, parent });
      if (r.md.signed.targets.has(path) && !listedBy.includes(role)) listedBy.push(role);
      step = walk.next(r.delegationsOnly);
    }
    return { order, listedBy };
  }
}

/**
 * defaultRole is the role a new path goes to when none is named: the deepest role on the first
 * branch of the walk (`targets`, its first delegation trusted for the path, that role's first…).
 */
export function defaultRole(w: PathWalk): string {
  let role = 'targets';
  for (const step of w.order.slice(1)) {
    if (step.parent !== role) break;
    role = step.role;
  }
  return role;
}

/**
 * placementProblem says why listing (or unlisting) `path` in `role` would not change what clients
 * get, or undefined when it would: the role must be on the client's walk for the path (removing
 * an entry clients never reach is allowed), and no
 * other role on the walk may list the path before it (the client stops there); when adding, no
 * later role may list it either (that entry would then be shadowed).
 */
export function placementProblem(
  w: PathWalk,
  path: string,
  role: string,
  op: 'add' | 'remove',
): string | undefined {
  const p = JSON.stringify(path);
  const at = w.order.findIndex((s) => s.role === role);
  // an entry clients never reach may be removed (it changes nothing they see)
  if (at < 0 && op === 'remove') return undefined;
  if (at < 0) {
    return `clients looking for ${p} never reach ${role}: it is not delegated that path (or an earlier terminating delegation ends the search)`;
  }
  const first = w.listedBy[0];
  if (first !== undefined && first !== role) {
    const firstAt = w.order.findIndex((s) => s.role === first);
    if (firstAt < at || op === 'add') {
      const where = firstAt < at ? 'before' : 'after';
      return `${p} is already listed by ${first}, which clients reach ${where} ${role} on the delegation walk: ${
        firstAt < at
          ? `they would keep getting ${first}'s entry`
          : `${first}'s entry would be shadowed`
      }; remove it from ${first} first (tufa repo remove-target ${path} --role ${first})`;
    }
  }
  return undefined;
}

/**
 * entryProblems lists what is wrong with the target entries of the given roles: a path clients
 * cannot fetch (or, for an entry `isFile` says is published as a file, that cannot be a file),
 * a hash that is not hex (it names the published file), an entry shadowed by an earlier role on
 * the walk or listed by a role clients never reach for that path,
 * two paths that are one file on a case- or normalization-insensitive file system, and (without
 * consistent snapshots, where the file is `targets/<path>`) a path that another needs as a folder.
 */
export async function entryProblems(
  walker: TargetWalker,
  roles: readonly string[],
  consistent: boolean,
  isFile: (entry: TargetFile) => Promise<boolean> = async () => true,
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const walks = new Map<string, PathWalk>();
  const byFolded = new Map<string, string>(); // folded path → the path
  const folders = new Map<string, string>(); // folded folder → a path under it
  const later: Array<{ role: string; path: string }> = [];
  const add = (role: string, problem: string) => {
    const list = out.get(role) ?? [];
    list.push(problem);
    out.set(role, list);
  };
  for (const role of roles) {
    for (const [path, entry] of await walker.targetsOf(role)) {
      const p = JSON.stringify(path);
      const bad = targetPathProblem(path);
      if (bad !== undefined) {
        add(role, `${role}: target path ${p}: ${bad}`);
        continue;
      }
      // a target whose content is published is a file (`targets/<path>`): its names must be too
      const notFile = (await isFile(entry)) ? targetFileProblem(path) : undefined;
      if (notFile !== undefined) add(role, `${role}: target path ${p}: ${notFile}`);
      for (const [alg, h] of Object.entries(entry.hashes)) {
        if (!/^[0-9a-fA-F]+$/.test(h))
          add(role, `${role}: target ${p}: its ${alg} hash is not hex`);
      }
      let w = walks.get(path);
      if (w === undefined) {
        w = await walker.walk(path);
        walks.set(path, w);
      }
      if (!w.order.some((s) => s.role === role)) {
        add(
          role,
          `${role}: lists ${p}, but clients looking for it never reach ${role} (not delegated that path): remove it`,
        );
      } else if (w.listedBy[0] !== role) {
        add(
          role,
          `${role}: lists ${p}, shadowed by ${w.listedBy[0]} (clients stop at the first role on the delegation walk that lists it): remove it from one of them`,
        );
      }
      const folded = foldPath(path);
      const other = byFolded.get(folded);
      if (other !== undefined && other !== path)
        add(
          role,
          `${role}: target ${p} and ${JSON.stringify(other)} are one file on some file systems`,
        );
      byFolded.set(folded, path);
      later.push({ role, path });
      const segments = folded.split('/');
      for (let i = 1; i < segments.length; i++) folders.set(segments.slice(0, i).join('/'), path);
    }
  }
  if (!consistent) {
    for (const { role, path } of later) {
      const under = folders.get(foldPath(path));
      if (under !== undefined)
        add(
          role,
          `${role}: target ${JSON.stringify(path)} is also the folder of ${JSON.stringify(under)}`,
        );
    }
  }
  return out;
}

/**
 * foldPath is the name a path has on a case- and normalization-insensitive file system (macOS,
 * Windows, ext4 casefold) or under Windows' name rules: each segment normalized (NFC), fully
 * case-folded (upper then lower case: `σ`/`ς`, `s`/`ſ`, `µ`/`μ`, `K`/`k` become one), and
 * stripped of trailing dots and spaces (Windows drops them: `x.` and `x ` are `x`). Stricter
 * than any one file system, never looser: two paths with one fold are refused as one file.
 */
export function foldPath(path: string): string {
  return path
    .split('/')
    .map((s) =>
      s
        .normalize('NFC')
        .toUpperCase()
        .toLowerCase()
        .normalize('NFC')
        .replace(/[. ]+$/, ''),
    )
    .join('/');
}
