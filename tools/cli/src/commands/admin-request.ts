/** A service's answer to an admin request: its status and its JSON body (`{}` when there is none or it is not JSON). */
export interface AdminAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * One request to a service's admin routes with the service credential, timed out after 5 s. Throws only when the
 * service cannot be reached (or does not answer in time); any answer, 4xx and 5xx included, is returned.
 */
export async function adminRequest(doFetch: typeof fetch, url: string, token: string, init: { method?: string; json?: unknown } = {}): Promise<AdminAnswer> {
  const res = await doFetch(url, {
    method: init.method ?? 'GET',
    headers: { 'x-service-token': token, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status: res.status, body };
}

/** `<service> answered 400: <detail>` and, for a validation problem, one indented line per field. */
export function describeProblem(service: string, answer: AdminAnswer): string {
  const { status, body } = answer;
  const details = Array.isArray(body.errors) ? (body.errors as { field: string; message: string }[]).map((e) => `\n  ${e.field}: ${e.message}`).join('') : '';
  return `${service} answered ${status}${body.detail ? `: ${String(body.detail)}` : ''}${details}`;
}
