import {
  ForbiddenException,
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { API_SCOPES, type ApiScope, type AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';

const PUBLIC_ROUTE = Symbol('PUBLIC_ROUTE');
const ROUTE_SCOPE = Symbol('ROUTE_SCOPE');

/** What a route asks of the caller's key. `publicWhen` lets configuration open it (METRICS_PUBLIC). */
export interface RouteScope {
  scope: ApiScope;
  publicWhen?: (config: AppConfig) => boolean;
}

/** Marks a controller or route as reachable without an API key (health probes). */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(PUBLIC_ROUTE, true);

export function isPublicRoute(reflector: Reflector, context: ExecutionContext): boolean {
  return (
    reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [context.getHandler(), context.getClass()]) === true
  );
}

/**
 * The smallest scope of key that may call this route. Every route that is not @Public() must declare one:
 * the guard refuses a route that does not, so a new endpoint is closed until someone decides who may use it.
 */
export const RequireScope = (
  scope: ApiScope,
  options: Omit<RouteScope, 'scope'> = {},
): ClassDecorator & MethodDecorator => SetMetadata(ROUTE_SCOPE, { scope, ...options } satisfies RouteScope);

/** The key a request was let in with, for the rate limit: an opaque id, never the key. */
export interface Caller {
  keyId: string;
  scope: ApiScope;
}

export function callerOf(request: FastifyRequest): Caller | undefined {
  return (request as FastifyRequest & { caller?: Caller }).caller;
}

export const API_KEY_REQUIRED = 'A valid API key is required: Authorization: Bearer <key>';
export const scopeTooSmall = (needed: ApiScope, held: ApiScope): string =>
  `This endpoint needs a key with scope ${needed}; this key has scope ${held}`;

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
const grants = (held: ApiScope, needed: ApiScope): boolean =>
  API_SCOPES.indexOf(held) >= API_SCOPES.indexOf(needed);

/**
 * Authentication and authorisation in one place. With API_KEYS set, a route needs
 * `Authorization: Bearer <key>` (401 without or with an unknown key) whose scope covers the route's
 * (403 otherwise). Without keys (development, or AUTH_DISABLED=true) scopes are not checked, but a route
 * that declares none is still refused.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: { digest: Buffer; scope: ApiScope; keyId: string }[];

  constructor(
    private readonly reflector: Reflector,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.keys = config.apiKeys.map(({ key, scope }, index) => ({
      digest: digest(key),
      scope,
      keyId: `key-${index + 1}`,
    }));
  }

  canActivate(context: ExecutionContext): boolean {
    if (isPublicRoute(this.reflector, context)) return true;
    const route = this.reflector.getAllAndOverride<RouteScope | undefined>(ROUTE_SCOPE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!route) throw new ForbiddenException('This endpoint declares no access scope, so it is closed');
    if (route.publicWhen?.(this.config)) return true;
    if (this.keys.length === 0) return true;

    const request = context.switchToHttp().getRequest<FastifyRequest & { caller?: Caller }>();
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(request.headers.authorization ?? '');
    const presented = match ? digest(match[1]) : null;
    // Every key is compared, in constant time, whichever matches: timing tells nothing about the keys.
    let found: (typeof this.keys)[number] | undefined;
    for (const key of this.keys) {
      if (presented && timingSafeEqual(key.digest, presented) && !found) found = key;
    }
    if (!found) throw new UnauthorizedException(API_KEY_REQUIRED);
    request.caller = { keyId: found.keyId, scope: found.scope };
    if (!grants(found.scope, route.scope)) {
      throw new ForbiddenException(scopeTooSmall(route.scope, found.scope));
    }
    return true;
  }
}
