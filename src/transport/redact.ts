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

// scheme://, then user info (up to an @ before any / ? #), the rest of the authority and path,
// then an optional query or fragment; a URL ends at whitespace, a quote, <, >, \ or `
const URL_IN_TEXT =
  /\b([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/?#@"'<>\\`]*@)?([^\s?#"'<>\\`]*)([?#][^\s"'<>\\`]*)?/gi;

/**
 * redactText redacts every URL inside a free text (an error message from anywhere, a log
 * line, JSON output): user info dropped, query and fragment replaced by `?…`. Text that is not
 * a URL is kept as is.
 */
export function redactText(text: string): string {
  return text.replace(
    URL_IN_TEXT,
    (_m, scheme: string, rest: string, query: string | undefined) =>
      `${scheme}${rest}${query === undefined ? '' : '?…'}`,
  );
}
