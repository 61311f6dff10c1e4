import { buildOpenApi } from '@simplebank/chassis';
import { anonymousRoutes, gatewayContract } from './contract.ts';

/**
 * The public OpenAPI document: the chassis' one for the gateway contract, plus what the chassis cannot know from
 * a contract yet: that routes take a customer's bearer token (the chassis only models the service credential).
 */
export function publicOpenApi(): Record<string, unknown> {
  const doc = buildOpenApi(gatewayContract, { title: 'SimpleBank API' }) as {
    paths: Record<string, Record<string, { operationId: string; security?: unknown[]; responses: Record<string, unknown> }>>;
    components: { securitySchemes: Record<string, unknown> };
  };
  for (const operations of Object.values(doc.paths)) {
    for (const op of Object.values(operations)) {
      if (anonymousRoutes.has(op.operationId as never)) {
        op.security = [];
      } else {
        op.responses['401'] = {
          description: 'no, an invalid or an expired bearer token',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        };
      }
    }
  }
  // No public route takes the internal service credential; a client has no use for it.
  doc.components.securitySchemes = { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } };
  return { ...doc, security: [{ bearer: [] }] };
}
