/**
 * encodeName percent-encodes every byte except ASCII letters, digits and `-_.~` (as Python's
 * `quote(name, safe='')`), so a role name or target path becomes one safe file name or URL
 * segment: `../x` cannot leave a folder and `a/b` is one name (python-tuf CVE-2021-41131).
 * `.` and `..` are encoded too.
 */
export function encodeName(name: string): string {
  const enc = encodeURIComponent(name).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return enc === '.' || enc === '..' ? enc.replace(/\./g, '%2E') : enc;
}

/**
 * consistentTargetName is a target's file name under consistent snapshots (TUF 5.7.3):
 * `<dir>/<hash>.<basename>`.
 */
export function consistentTargetName(path: string, hash: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}${hash}.${path.slice(slash + 1)}`;
}
