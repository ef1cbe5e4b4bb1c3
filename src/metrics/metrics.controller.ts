import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequireScope } from '../common/api-key.guard';
import { ApiKeyRequired } from '../common/api-responses';
import { MetricsService } from './metrics.service';

@ApiTags('operations')
@ApiKeyRequired()
@RequireScope('read', { publicWhen: (config) => config.metricsPublic })
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Prometheus metrics of this process and queue depth by state' })
  @ApiProduces('text/plain')
  @ApiOkResponse({
    description: 'Prometheus text exposition format. Needs a read key unless METRICS_PUBLIC=true.',
    schema: {
      type: 'string',
      example: 'jobs_by_state{state="pending"} 12\njobs_by_state{state="running"} 3\n',
    },
  })
  async scrape(@Res() reply: FastifyReply): Promise<void> {
    reply.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }
}
