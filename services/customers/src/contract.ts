import { z } from 'zod';
import { defineContract, event, route } from '@simplebank/chassis';

export const Customer = z.object({ id: z.uuid(), name: z.string(), email: z.string() });
export type Customer = z.infer<typeof Customer>;

export const Registration = z.object({
  name: z.string().trim().min(1).max(200),
  email: z.email().max(320),
  password: z.string().min(8, 'must be at least 8 characters').max(200),
});

export const Session = z.object({ token: z.string(), customerId: z.uuid(), expiresAt: z.iso.datetime() });

export const customersContract = defineContract({
  service: 'customers',
  routes: {
    register: route({ method: 'POST', path: '/customers', summary: 'Sign up a customer', body: Registration, responses: { 201: Customer } }),
    authenticate: route({
      method: 'POST',
      path: '/sessions',
      summary: 'Log in: check credentials and issue a JWT (401 on bad credentials)',
      body: z.object({ email: z.email(), password: z.string().min(1).max(200) }),
      responses: { 200: Session },
      idempotent: true,
    }),
    getCustomer: route({ method: 'GET', path: '/customers/:id', params: z.object({ id: z.uuid() }), responses: { 200: Customer } }),
    jwks: route({
      method: 'GET',
      path: '/.well-known/jwks.json',
      summary: 'Public keys that verify the JWTs this service issues',
      responses: { 200: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) },
    }),
  },
  events: {
    CustomerRegistered: event('customers.CustomerRegistered.v1', z.object({ customerId: z.uuid(), name: z.string() })),
  },
});

/** JWT claims the gateway relies on. */
export const JWT_ISSUER = 'simplebank/customers';
export const JWT_AUDIENCE = 'simplebank/api';
