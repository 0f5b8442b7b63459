/** redact removes credentials and the query string from a URL, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = u.search ? '?…' : '';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}
