import { Controller, Get, Header, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { callerOf, RequireScope } from '../common/api-key.guard';
import { ApiKeyRequired } from '../common/api-responses';
import { WhoamiResponse } from './dto/whoami.response';

@ApiTags('operations')
@ApiKeyRequired()
@Controller('auth')
export class AuthController {
  /**
   * Lets a client (the dashboard) check a key and learn what it may do before it offers an action, instead
   * of discovering it from a 403. Costs no database query.
   */
  @Get('whoami')
  @RequireScope('read')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: "The presented key's scope",
    description:
      '200 with the scope of the key in the Authorization header, 401 for a missing or unknown key. Without ' +
      'API_KEYS every request is let in: then scope is admin and key_required false. Never echoes the key.',
  })
  @ApiOkResponse({ type: WhoamiResponse })
  whoami(@Req() request: FastifyRequest): WhoamiResponse {
    const caller = callerOf(request);
    return caller ? { scope: caller.scope, key_required: true } : { scope: 'admin', key_required: false };
  }
}
