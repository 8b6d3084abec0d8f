/**
 * A reference as it may be shown in a message: credentials a user wrote into it (`user:pass@host/repo`,
 * `docker://token@host/repo`) replaced by `***`. Registries take credentials from the Docker config, never from a
 * reference, so anything before an `@` that does not start a digest is taken for userinfo and hidden.
 */
export function redactCredentials(text: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? '';
  const rest = text.slice(scheme.length);
  let userinfoEnd = -1;
  for (let at = rest.indexOf('@'); at >= 0; at = rest.indexOf('@', at + 1)) {
    if (!rest.startsWith('sha256:', at + 1)) userinfoEnd = at;
  }
  return userinfoEnd < 0 ? text : `${scheme}***${rest.slice(userinfoEnd)}`;
}
