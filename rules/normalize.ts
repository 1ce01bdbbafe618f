// Host normalisation for the `http.host` field. The path has its own canonicaliser
// (rules/canonical-path.ts), shared by the rules and the upstream.

/**
 * Host header normalisation: trims blanks, lower-cases, removes a default port and a trailing dot
 * ("Example.COM.:443" -> "example.com"). Without `scheme` both :80 and :443 count as default.
 * IPv6 literals keep their brackets ("[::1]:80" -> "[::1]").
 */
export function normalizeHost(h: string, scheme?: 'http' | 'https'): string {
  let host = h.trim().toLowerCase();
  let portAt = -1;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close >= 0 && host.charCodeAt(close + 1) === 58) portAt = close + 1;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0 && host.indexOf(':') === colon) portAt = colon;
  }
  if (portAt >= 0) {
    const port = host.slice(portAt + 1);
    const isDefault = scheme === 'http' ? port === '80' : scheme === 'https' ? port === '443' : port === '80' || port === '443';
    if (isDefault || port === '') host = host.slice(0, portAt);
    else {
      const name = host.slice(0, portAt);
      return (name.endsWith('.') ? name.slice(0, -1) : name) + ':' + port;
    }
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}
