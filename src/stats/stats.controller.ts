import { Controller, Get, Header, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../common/api-key.guard';
import { ApiDatabaseUnavailable, ApiKeyRequired, ApiProblemResponse } from '../common/api-responses';
import { toProblem } from '../common/problem-details.filter';
import { RequestValidationError } from '../jobs/jobs.errors';
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
}

function unknownQueryParameters(names: string[]): RequestValidationError {
  return new RequestValidationError(
    names.map((field) => ({ field, message: `property ${field} should not exist` })),
  );
}
