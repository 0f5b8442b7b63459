/** redact removes credentials (userinfo) and the query string from a URL, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = u.search ? '?…' : '';
    u.hash = '';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}
