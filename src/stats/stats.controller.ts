import { Controller, Get, Header, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../common/api-key.guard';
import { ApiDatabaseUnavailable, ApiKeyRequired, ApiProblemResponse } from '../common/api-responses';
import { toProblem } from '../common/problem-details.filter';
import { RequestValidationError } from '../jobs/jobs.errors';
import { FinishesPerMinuteQuery, MAX_FINISHES_MINUTES } from './dto/finishes-per-minute.query';
import { FinishesPerMinuteResponse } from './dto/finishes-per-minute.response';
import { StatsResponse } from './dto/stats.response';
import { StatsService } from './stats.service';

@ApiTags('operations')
@ApiKeyRequired()
@ApiDatabaseUnavailable()
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
  @ApiProblemResponse(400, 'A query parameter was given', {
    unknown_parameter: {
      summary: 'GET /stats takes no query parameters',
      problem: toProblem(unknownQueryParameters(['state'])),
    },
  })
  async get(@Query() query: Record<string, unknown>): Promise<StatsResponse> {
    const unknown = Object.keys(query);
    if (unknown.length > 0) throw unknownQueryParameters(unknown);
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
  @ApiProblemResponse(400, 'minutes is not an integer from 1 to 60', {
    invalid_minutes: {
      summary: 'minutes out of range',
      problem: toProblem(
        new RequestValidationError([{ field: 'minutes', message: 'minutes must not be greater than 60' }]),
      ),
    },
  })
  async finishesPerMinute(@Query() query: FinishesPerMinuteQuery): Promise<FinishesPerMinuteResponse> {
    return this.stats.finishesPerMinute(query.minutes ?? MAX_FINISHES_MINUTES);
  }
}

function unknownQueryParameters(names: string[]): RequestValidationError {
  return new RequestValidationError(
    names.map((field) => ({ field, message: `property ${field} should not exist` })),
  );
}
