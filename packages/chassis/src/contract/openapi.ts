import { z } from 'zod';
import type { Contract, RouteDef } from './define.ts';

const toJsonSchema = (schema: z.ZodType): Record<string, unknown> => {
  // `io: 'input'` documents what clients send (before defaults and coercion are applied).
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
  },
};

function parameters(def: RouteDef): unknown[] {
  const out: unknown[] = [];
  for (const [location, schema] of [['path', def.params], ['query', def.query], ['header', def.headers]] as const) {
    if (!schema) continue;
    const json = toJsonSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, prop] of Object.entries(json.properties ?? {})) {
      out.push({ name, in: location, required: location === 'path' || (json.required ?? []).includes(name), schema: prop });
    }
  }
  return out;
}

/** OpenAPI 3.1 document generated from a contract at boot (served at `/openapi.json`). */
export function buildOpenApi(contract: Contract, options: { title?: string; serverUrl?: string; prefix?: string } = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [operationId, def] of Object.entries(contract.routes)) {
    const path = (options.prefix ?? '') + def.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(def.responses)) {
      responses[status] = { description: 'success', content: { 'application/json': { schema: toJsonSchema(schema) } } };
    }
    responses.default = { description: 'error', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    paths[path] ??= {};
    paths[path][def.method.toLowerCase()] = {
      operationId,
      ...(def.summary ? { summary: def.summary } : {}),
      parameters: parameters(def),
      ...(def.body ? { requestBody: { required: true, content: { 'application/json': { schema: toJsonSchema(def.body) } } } } : {}),
      responses,
      ...(def.auth === 'service' ? { security: [{ serviceToken: [] }] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: options.title ?? `${contract.service} service`, version: contract.version },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    paths,
    components: {
      schemas: { Problem: PROBLEM_SCHEMA },
      securitySchemes: { serviceToken: { type: 'apiKey', in: 'header', name: 'x-service-token' } },
    },
    'x-events': Object.fromEntries(Object.values(contract.events).map((e) => [e.type, toJsonSchema(e.data)])),
  };
}
