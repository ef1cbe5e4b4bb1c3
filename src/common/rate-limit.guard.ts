import { Injectable, type ExecutionContext } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { callerOf, isPublicRoute } from './api-key.guard';

/**
 * RATE_LIMIT_PER_MINUTE per key: requests are counted against the key they came with (an opaque id, not
 * the key), or against the client address where no key is needed. Runs after ApiKeyGuard, which names
 * the caller. Probes are not counted: a busy orchestrator must not make a replica look dead.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  protected override getTracker(request: Record<string, unknown>): Promise<string> {
    const caller = callerOf(request as unknown as FastifyRequest);
    return Promise.resolve(
      caller ? caller.keyId : `ip:${(request as unknown as FastifyRequest).ip ?? 'unknown'}`,
    );
  }

  /** One budget per key across every endpoint (the default would keep one per endpoint). */
  protected override generateKey(_context: ExecutionContext, tracker: string, name: string): string {
    return `${name}:${tracker}`;
  }

  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    return Promise.resolve(isPublicRoute(this.reflector, context));
  }
}
