import { Controller, Get, Header, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { RequireScope } from '../common/api-key.guard';
import { ProblemResponse } from '../common/problem.response';
import { RequestValidationError } from '../jobs/jobs.errors';
import { FinishesPerMinuteQuery, MAX_FINISHES_MINUTES } from './dto/finishes-per-minute.query';
import { FinishesPerMinuteResponse } from './dto/finishes-per-minute.response';
import { StatsResponse } from './dto/stats.response';
import { StatsService } from './stats.service';

@ApiTags('operations')
@ApiBearerAuth()
@ApiServiceUnavailableResponse({
  description: 'The database is unreachable; retry later',
  type: ProblemResponse,
})
@Controller('stats')
export class StatsController {
  constructor(private readonly stats: StatsService) {}

  @Get()
  @RequireScope('read')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Queue health: jobs per state and type, the oldest due job, jobs finished in the last minute',
    description:
      'Read from counters the database keeps in the same transaction as every change to a job, so the ' +
      'figures are exact and cost the same however many jobs the table holds. Takes no query parameters.',
  })
  @ApiOkResponse({ type: StatsResponse })
  @ApiBadRequestResponse({ type: ProblemResponse, description: 'A query parameter was given' })
  @ApiUnauthorizedResponse({
    type: ProblemResponse,
    description: 'API_KEYS is set and no valid key was sent',
  })
  async get(@Query() query: Record<string, unknown>): Promise<StatsResponse> {
    const unknown = Object.keys(query);
    if (unknown.length > 0) {
      throw new RequestValidationError(
        unknown.map((field) => ({ field, message: `property ${field} should not exist` })),
      );
    }
    return this.stats.stats();
  }

  @Get('finished-per-minute')
  @RequireScope('read')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Jobs completed, failed and cancelled per minute, over up to the last hour',
    description:
      'Read from the per-second finish counters the database keeps (the same ones as finished_last_minute ' +
      'in GET /stats), never from the jobs table: the cost depends on the minutes asked for, not on how ' +
      'many jobs there are. The operator dashboard draws its throughput chart from it.',
  })
  @ApiOkResponse({ type: FinishesPerMinuteResponse })
  @ApiBadRequestResponse({ type: ProblemResponse, description: 'minutes is not an integer from 1 to 60' })
  @ApiUnauthorizedResponse({
    type: ProblemResponse,
    description: 'API_KEYS is set and no valid key was sent',
  })
  async finishesPerMinute(@Query() query: FinishesPerMinuteQuery): Promise<FinishesPerMinuteResponse> {
    return this.stats.finishesPerMinute(query.minutes ?? MAX_FINISHES_MINUTES);
  }
}
