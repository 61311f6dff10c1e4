import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

/** A public API client as a browser or curl would be: plain HTTP + JSON, nothing shared with the services. */
export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

export function api(baseUrl: string) {
  async function request<T = unknown>(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T };
  }

  return {
    request,
    get: <T = unknown>(path: string, token?: string) => request<T>('GET', path, token ? { token } : {}),
    post: <T = unknown>(path: string, body: unknown, options: { token?: string; headers?: Record<string, string> } = {}) =>
      request<T>('POST', path, { ...options, body }),
    delete: <T = unknown>(path: string, token?: string) => request<T>('DELETE', path, token ? { token } : {}),

    /** Signs up a fresh customer and logs in: what every scenario starts with. */
    async newCustomer(name = 'Test Customer'): Promise<{ id: string; email: string; password: string; token: string }> {
      const email = `${name.toLowerCase().replace(/[^a-z]+/g, '.')}.${randomUUID().slice(0, 8)}@example.com`;
      const password = `pw-${randomUUID()}`;
      const signUp = await request<{ id: string }>('POST', '/api/v1/customers', { body: { name, email, password } });
      assert.equal(signUp.status, 201, JSON.stringify(signUp.body));
      const session = await request<{ token: string; customerId: string }>('POST', '/api/v1/sessions', { body: { email, password } });
      assert.equal(session.status, 200, JSON.stringify(session.body));
      assert.equal(session.body.customerId, signUp.body.id);
      return { id: signUp.body.id, email, password, token: session.body.token };
    },
  };
}

/** Asserts an RFC 9457 answer with our stable code. */
export function assertProblem(res: ApiResponse, status: number, code?: string): Problem {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const problem = res.body as Problem;
  assert.equal(problem.status, status);
  assert.equal(typeof problem.title, 'string');
  if (code) assert.equal(problem.code, code, JSON.stringify(problem));
  return problem;
}

export const fieldsOf = (problem: Problem): string[] => (problem.errors ?? []).map((e) => e.field);

export async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
