import {
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';

const PUBLIC_ROUTE = Symbol('PUBLIC_ROUTE');

/** Marks a controller or route as reachable without an API key (health probes). */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(PUBLIC_ROUTE, true);

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** When API_KEYS is set, every non-public route needs `Authorization: Bearer <key>`. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keyDigests: Buffer[];

  constructor(
    private readonly reflector: Reflector,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.keyDigests = config.apiKeys.map(digest);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keyDigests.length === 0) return true;
    const isPublic = this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (isPublic) return true;
    const header = context.switchToHttp().getRequest<Request>().headers.authorization ?? '';
    const match = /^Bearer (.+)$/i.exec(header);
    // Compare digests in constant time so response timing reveals nothing about the keys.
    const presented = match ? digest(match[1].trim()) : null;
    if (presented && this.keyDigests.some((key) => timingSafeEqual(key, presented))) return true;
    throw new UnauthorizedException('A valid API key is required: Authorization: Bearer <key>');
  }
}
